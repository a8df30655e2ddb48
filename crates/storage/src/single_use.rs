//! Single-use artifacts claimed in the database. The ephemeral store takes
//! an artifact atomically (`EphemeralStore::take`), but Redis is not
//! durable: a flush loses nothing dangerous (the artifact goes with it),
//! while a failover to a replica that missed the taking write would hand
//! the artifact out again. A claim here is the authority: the second claim
//! of the same artifact fails on the primary key, whatever Redis says.
//! Client assertions' `jti`s are claimed here too, so a flushed Redis cannot
//! let an assertion be replayed.

use crate::db::DbConnection;
use crate::error::StorageError;
use crate::schema::single_use_claims;
use chrono::NaiveDateTime;
use diesel::prelude::*;

crate::text_enum! {
    /// What was claimed.
    pub enum ClaimKind as "single-use artifact" {
        /// An OAuth authorization code (RFC 6749 §4.1.2: used once).
        AuthorizationCode = "authorization_code",
        /// The `jti` of a client assertion (RFC 7523 §3 point 7: used once
        /// until it expires), by the SHA-256 of client id and `jti`.
        ClientAssertion = "client_assertion",
        /// A DPoP proof (RFC 9449 §11.1), claimed here when the ephemeral
        /// store cannot answer.
        DpopProof = "dpop_proof",
    }
}

/// Claims the artifact `hash` of `kind`, valid until `expires_at`: `true`
/// the first time, `false` ever after (until it has expired). Purges the
/// claims of artifacts that have expired.
///
/// # Errors
/// Backend failures.
pub fn claim(
    conn: &mut DbConnection,
    kind: ClaimKind,
    hash: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<bool, StorageError> {
    diesel::delete(single_use_claims::table.filter(single_use_claims::expires_at.le(now)))
        .execute(conn)?;
    let inserted = diesel::insert_into(single_use_claims::table)
        .values((
            single_use_claims::kind.eq(kind),
            single_use_claims::hash.eq(hash),
            single_use_claims::expires_at.eq(expires_at),
        ))
        .execute(conn);
    match inserted.map_err(StorageError::from) {
        Ok(_) => Ok(true),
        Err(StorageError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}
