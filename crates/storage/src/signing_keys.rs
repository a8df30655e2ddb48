//! Signing keys for JWTs, one chain per algorithm, through the shared
//! lifecycle of [`crate::key_lifecycle`]: a retired key stays published until
//! every token it signed has expired. Private keys arrive here already
//! encrypted; this module never sees them in the clear.

use crate::db::DbConnection;
use crate::error::StorageError;
use crate::key_lifecycle::{KeyState, RotationLock};
use crate::schema::signing_keys;
use chrono::NaiveDateTime;
use diesel::prelude::*;

crate::text_enum! {
    /// The JWS algorithms (RFC 7518 §3.1, RFC 8037 §3.1) keys sign with; a
    /// client's `id_token_signed_response_alg` is one of them.
    pub enum Alg as "signing algorithm" {
        Es256 = "ES256",
        Rs256 = "RS256",
        EdDsa = "EdDSA",
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub id: String,
    pub algorithm: Alg,
    pub state: KeyState,
    pub private_key: String,
    pub public_jwk: String,
    pub created_at: NaiveDateTime,
    pub activated_at: Option<NaiveDateTime>,
    pub retired_at: Option<NaiveDateTime>,
    pub publish_until: Option<NaiveDateTime>,
    /// Each environment is its own issuer, with keys of its own.
    pub environment_id: String,
}

/// Every key of `env` still published at `now`: next, current, and retired
/// keys whose tokens may still be alive.
///
/// # Errors
/// Backend failures.
pub fn published(
    conn: &mut DbConnection,
    env: &str,
    now: NaiveDateTime,
) -> Result<Vec<SigningKeyRow>, StorageError> {
    Ok(signing_keys::table
        .filter(signing_keys::environment_id.eq(env))
        .filter(
            signing_keys::state
                .eq_any([KeyState::Next, KeyState::Current])
                .or(signing_keys::publish_until.gt(now)),
        )
        .select(SigningKeyRow::as_select())
        .order(signing_keys::created_at.asc())
        .load(conn)?)
}

/// The algorithms that have a current key in `env`.
///
/// # Errors
/// Backend failures.
pub fn algorithms_with_current(
    conn: &mut DbConnection,
    env: &str,
) -> Result<Vec<Alg>, StorageError> {
    Ok(signing_keys::table
        .filter(signing_keys::environment_id.eq(env))
        .filter(signing_keys::state.eq(KeyState::Current))
        .select(signing_keys::algorithm)
        .load(conn)?)
}

/// Installs a first `current` and `next` key for an algorithm in their
/// environment unless another instance did so first. Returns whether these
/// keys were installed.
///
/// # Errors
/// Backend failures.
pub fn install_first(
    conn: &mut DbConnection,
    current: &SigningKeyRow,
    next: &SigningKeyRow,
) -> Result<bool, StorageError> {
    RotationLock::JwtSigningKeys.run(conn, |conn| {
        let exists: i64 = signing_keys::table
            .filter(signing_keys::environment_id.eq(&current.environment_id))
            .filter(signing_keys::algorithm.eq(current.algorithm))
            .filter(signing_keys::state.eq(KeyState::Current))
            .count()
            .get_result(conn)?;
        if exists > 0 {
            return Ok(false);
        }
        diesel::insert_into(signing_keys::table)
            .values(current)
            .execute(conn)?;
        diesel::insert_into(signing_keys::table)
            .values(next)
            .execute(conn)?;
        Ok(true)
    })
}

/// When the current key of `algorithm` in `env` became current, if there
/// is one.
///
/// # Errors
/// Backend failures.
pub fn current_since(
    conn: &mut DbConnection,
    env: &str,
    algorithm: Alg,
) -> Result<Option<NaiveDateTime>, StorageError> {
    Ok(signing_keys::table
        .filter(signing_keys::environment_id.eq(env))
        .filter(signing_keys::algorithm.eq(algorithm))
        .filter(signing_keys::state.eq(KeyState::Current))
        .select(signing_keys::activated_at)
        .first::<Option<NaiveDateTime>>(conn)
        .optional()?
        .flatten())
}

/// One rotation step for `algorithm` in `new_next`'s environment: current → retired (published until
/// `publish_retired_until`), next → current, `new_next` → next. When
/// `only_if_activated_before` is set, rotates only if the current key became
/// current before it (so instances racing on the 90-day schedule rotate once).
/// Returns whether a rotation happened.
///
/// # Errors
/// Backend failures.
pub fn rotate(
    conn: &mut DbConnection,
    algorithm: Alg,
    new_next: &SigningKeyRow,
    now: NaiveDateTime,
    publish_retired_until: NaiveDateTime,
    only_if_activated_before: Option<NaiveDateTime>,
) -> Result<bool, StorageError> {
    let env = new_next.environment_id.as_str();
    RotationLock::JwtSigningKeys.run(conn, |conn| {
        if let Some(cutoff) = only_if_activated_before {
            let since = current_since(conn, env, algorithm)?;
            if since.is_some_and(|t| t >= cutoff) {
                return Ok(false);
            }
        }
        diesel::update(
            signing_keys::table
                .filter(signing_keys::environment_id.eq(env))
                .filter(signing_keys::algorithm.eq(algorithm))
                .filter(signing_keys::state.eq(KeyState::Current)),
        )
        .set((
            signing_keys::state.eq(KeyState::Retired),
            signing_keys::retired_at.eq(Some(now)),
            signing_keys::publish_until.eq(Some(publish_retired_until)),
        ))
        .execute(conn)?;
        diesel::update(
            signing_keys::table
                .filter(signing_keys::environment_id.eq(env))
                .filter(signing_keys::algorithm.eq(algorithm))
                .filter(signing_keys::state.eq(KeyState::Next)),
        )
        .set((
            signing_keys::state.eq(KeyState::Current),
            signing_keys::activated_at.eq(Some(now)),
        ))
        .execute(conn)?;
        diesel::insert_into(signing_keys::table)
            .values(new_next)
            .execute(conn)?;
        Ok(true)
    })
}
