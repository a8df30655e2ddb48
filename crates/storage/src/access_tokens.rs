//! Access tokens revoked before they expire. Access tokens are
//! self-contained JWTs, so a revocation is a record of its own: a row here
//! (the authority, until the token expires), plus a marker in the ephemeral
//! store for speed (`StoreKey::revoked_jti`). A marker the store loses —
//! evicted, flushed, or gone with a restart — must not make a revoked token
//! valid again, so a miss is answered from here (cached for a short while,
//! `crate::cache::Cached::access_token`).

use crate::cache::Cached;
use crate::db::DbConnection;
use crate::ephemeral::StoreKey;
use crate::error::StorageError;
use crate::schema::{refresh_tokens, revoked_access_tokens};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// Records that the token `jti`, valid until `expires_at`, is revoked, and
/// purges the records of tokens that have expired since.
///
/// # Errors
/// Backend failures.
pub fn revoke(
    conn: &mut DbConnection,
    jti: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    diesel::delete(revoked_access_tokens::table.filter(revoked_access_tokens::expires_at.le(now)))
        .execute(conn)?;
    let inserted = diesel::insert_into(revoked_access_tokens::table)
        .values((
            revoked_access_tokens::jti.eq(jti),
            revoked_access_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn);
    match inserted.map_err(StorageError::from) {
        // Revoked twice: the first record stands.
        Ok(_) | Err(StorageError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether the token `jti` was revoked, or the refresh-token family it was
/// issued with (`family`) was: the database's answer, whatever the store
/// remembers.
///
/// # Errors
/// Backend failures.
pub fn is_revoked(
    conn: &mut DbConnection,
    jti: &str,
    family: Option<&str>,
) -> Result<bool, StorageError> {
    let token: i64 = revoked_access_tokens::table
        .filter(revoked_access_tokens::jti.eq(jti))
        .count()
        .get_result(conn)?;
    if token > 0 {
        return Ok(true);
    }
    let Some(family) = family else {
        return Ok(false);
    };
    let revoked: i64 = refresh_tokens::table
        .filter(refresh_tokens::family_id.eq(family))
        .filter(refresh_tokens::revoked_at.is_not_null())
        .count()
        .get_result(conn)?;
    Ok(revoked > 0)
}

impl crate::Core {
    /// Whether the access token `jti` (of refresh family `family`, if any)
    /// was revoked: its markers and its cached database answer are read in
    /// one store round trip; only without a live cached answer is the
    /// database asked ([`is_revoked`], then cached).
    ///
    /// Fails closed: a store that cannot answer might hold a revocation.
    ///
    /// # Errors
    /// Store or database failures.
    pub async fn access_token_revoked(
        &self,
        jti: &str,
        family: Option<&str>,
    ) -> Result<bool, StorageError> {
        let status = Cached::access_token(jti);
        let mut keys = vec![status.key().clone(), StoreKey::revoked_jti(jti)];
        keys.extend(family.map(StoreKey::revoked_family));
        let mut values = self.store.get_many(&keys).await?.into_iter();
        let cached = values.next().flatten();
        if values.any(|marker| marker.is_some()) {
            return Ok(true);
        }
        if let Some(revoked) = cached.as_deref().and_then(Cached::live::<bool>) {
            return Ok(revoked);
        }
        let (record, fam) = (jti.to_owned(), family.map(str::to_owned));
        let revoked = self
            .db
            .run(move |conn| is_revoked(conn, &record, fam.as_deref()))
            .await?;
        self.store.fill(&status, &revoked).await;
        Ok(revoked)
    }
}
