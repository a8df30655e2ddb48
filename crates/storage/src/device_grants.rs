//! Device authorization grants (RFC 8628): the device code a device polls
//! with and the user code a person types on the hosted `/device` page.
//!
//! The database is the authority on every grant's state (`device_grants`):
//! a user code is decided once ([`decide`], a conditional update of a
//! pending row) and a device code redeems once ([`poll`], a conditional
//! update of an approved row), so concurrent polls, or a flushed ephemeral
//! store, cannot issue tokens twice. Only SHA-256 hashes of both codes are
//! stored.

use crate::db::DbConnection;
use crate::error::StorageError;
use crate::schema::device_grants;
use crate::scopes::ScopeSet;
use crate::sql_types::Json;
use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

crate::text_enum! {
    /// Where a device grant stands.
    pub enum DeviceStatus as "device grant status" {
        /// Waiting for the user (`authorization_pending`).
        Pending = "pending",
        /// The user approved; the next poll redeems it.
        Approved = "approved",
        /// The user denied (`access_denied`).
        Denied = "denied",
        /// Tokens were issued; the device code is used up.
        Redeemed = "redeemed",
    }
}

/// RFC 8628 §3.5: what `slow_down` adds to the polling interval.
pub const SLOW_DOWN_STEP_SECS: i64 = 5;

/// How long an expired grant is kept so a late poll still hears
/// `expired_token` rather than `invalid_grant`.
const KEEP_EXPIRED: TimeDelta = TimeDelta::hours(1);

/// A device grant as stored.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = device_grants)]
pub struct DeviceGrantRow {
    pub device_code_hash: String,
    pub user_code_hash: String,
    pub environment_id: String,
    pub client_id: String,
    pub scope: Json<ScopeSet>,
    /// The RFC 8707 resources the grant is for, as identifiers.
    pub resources: Json<Vec<String>>,
    pub status: DeviceStatus,
    pub user_id: Option<String>,
    /// Unix seconds of the sign-in that approved the grant.
    pub auth_time: Option<i64>,
    pub session_id: Option<String>,
    pub amr: Option<Json<Vec<String>>>,
    pub interval_secs: i64,
    pub last_poll_at: Option<NaiveDateTime>,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

/// Who approved a grant, as the tokens will say.
#[derive(Clone, Debug)]
pub struct Approval {
    pub user_id: String,
    pub auth_time: i64,
    pub session_id: String,
    pub amr: Vec<String>,
}

/// The user's decision on the hosted page.
#[derive(Clone, Debug)]
pub enum Decision {
    Approve(Approval),
    Deny,
}

/// What a poll of the token endpoint finds (RFC 8628 §3.5).
#[derive(Clone, Debug)]
pub enum Poll {
    /// No such device code for this client in this environment.
    Unknown,
    Expired,
    /// Polled before the interval passed; the interval grew by
    /// [`SLOW_DOWN_STEP_SECS`].
    SlowDown,
    Pending,
    Denied,
    /// Redeemed before: a second redemption.
    AlreadyRedeemed,
    /// Approved, and now redeemed by this poll (the only one that sees it).
    Redeem(Box<DeviceGrantRow>),
}

/// Stores a new grant; expired grants long past use are removed.
///
/// # Errors
/// [`StorageError::Conflict`] when the user code is taken (the caller
/// draws another); backend failures.
pub fn insert(
    conn: &mut DbConnection,
    row: &DeviceGrantRow,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    conn.transaction(|conn| {
        diesel::delete(
            device_grants::table.filter(device_grants::expires_at.le(now - KEEP_EXPIRED)),
        )
        .execute(conn)?;
        diesel::insert_into(device_grants::table)
            .values(row)
            .execute(conn)?;
        Ok(())
    })
}

/// The pending, unexpired grant of `env` whose user code hashes to
/// `user_code_hash` (nothing is changed).
///
/// # Errors
/// Backend failures.
pub fn find_pending(
    conn: &mut DbConnection,
    env: &str,
    user_code_hash: &str,
    now: NaiveDateTime,
) -> Result<Option<DeviceGrantRow>, StorageError> {
    Ok(device_grants::table
        .filter(device_grants::user_code_hash.eq(user_code_hash))
        .filter(device_grants::environment_id.eq(env))
        .filter(device_grants::status.eq(DeviceStatus::Pending))
        .filter(device_grants::expires_at.gt(now))
        .select(DeviceGrantRow::as_select())
        .first(conn)
        .optional()?)
}

/// Records the user's decision on a pending, unexpired grant: `false` when
/// there was none (unknown, expired, or decided already — a user code is
/// single use).
///
/// # Errors
/// Backend failures.
pub fn decide(
    conn: &mut DbConnection,
    env: &str,
    user_code_hash: &str,
    decision: &Decision,
    now: NaiveDateTime,
) -> Result<bool, StorageError> {
    let target = device_grants::table
        .filter(device_grants::user_code_hash.eq(user_code_hash))
        .filter(device_grants::environment_id.eq(env))
        .filter(device_grants::status.eq(DeviceStatus::Pending))
        .filter(device_grants::expires_at.gt(now));
    let changed = match decision {
        Decision::Approve(a) => diesel::update(target)
            .set((
                device_grants::status.eq(DeviceStatus::Approved),
                device_grants::user_id.eq(Some(&a.user_id)),
                device_grants::auth_time.eq(Some(a.auth_time)),
                device_grants::session_id.eq(Some(&a.session_id)),
                device_grants::amr.eq(Some(Json(a.amr.clone()))),
            ))
            .execute(conn)?,
        Decision::Deny => diesel::update(target)
            .set(device_grants::status.eq(DeviceStatus::Denied))
            .execute(conn)?,
    };
    Ok(changed == 1)
}

/// One poll by `client` with the device code hashing to `hash`: enforces
/// the interval (§3.5 `slow_down`), then answers by the grant's state; an
/// approved grant is redeemed by a conditional update, so of concurrent
/// polls exactly one gets [`Poll::Redeem`].
///
/// # Errors
/// Backend failures.
pub fn poll(
    conn: &mut DbConnection,
    env: &str,
    client: &str,
    hash: &str,
    now: NaiveDateTime,
) -> Result<Poll, StorageError> {
    let by_hash = device_grants::table
        .filter(device_grants::device_code_hash.eq(hash))
        .filter(device_grants::environment_id.eq(env))
        .filter(device_grants::client_id.eq(client));
    let Some(row) = by_hash
        .select(DeviceGrantRow::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(Poll::Unknown);
    };
    if row.expires_at <= now {
        return Ok(Poll::Expired);
    }
    let too_soon = row
        .last_poll_at
        .is_some_and(|last| now < last + TimeDelta::seconds(row.interval_secs));
    if too_soon {
        diesel::update(by_hash)
            .set((
                device_grants::interval_secs.eq(device_grants::interval_secs + SLOW_DOWN_STEP_SECS),
                device_grants::last_poll_at.eq(Some(now)),
            ))
            .execute(conn)?;
        return Ok(Poll::SlowDown);
    }
    diesel::update(by_hash)
        .set(device_grants::last_poll_at.eq(Some(now)))
        .execute(conn)?;
    Ok(match row.status {
        DeviceStatus::Pending => Poll::Pending,
        DeviceStatus::Denied => Poll::Denied,
        DeviceStatus::Redeemed => Poll::AlreadyRedeemed,
        DeviceStatus::Approved => {
            let taken =
                diesel::update(by_hash.filter(device_grants::status.eq(DeviceStatus::Approved)))
                    .set(device_grants::status.eq(DeviceStatus::Redeemed))
                    .execute(conn)?;
            if taken == 1 {
                Poll::Redeem(Box::new(row))
            } else {
                Poll::AlreadyRedeemed
            }
        }
    })
}

/// RFC 8628 §6.1: consonants only (no vowels, so no words; no look-alike
/// digits), upper case, read and typed easily.
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// User-code length: 20^8 ≈ 2^34.6 codes, with failed entries limited per
/// IP (§5.1) and a code living minutes, guessing one is impractical.
pub const USER_CODE_LEN: usize = 8;

/// A fresh user code, normalised (no dash).
///
/// # Errors
/// When the OS random source fails.
pub fn new_user_code() -> Result<String, crate::secrets::SecretError> {
    let mut out = String::with_capacity(USER_CODE_LEN);
    let mut buf = [0u8; 32];
    while out.len() < USER_CODE_LEN {
        crate::secrets::random_bytes(&mut buf)?;
        // Rejection sampling keeps every symbol uniform: 240 = 12 · 20.
        for b in buf.iter().copied().filter(|b| *b < 240) {
            if out.len() == USER_CODE_LEN {
                break;
            }
            if let Some(c) = USER_CODE_ALPHABET.get(usize::from(b % 20)) {
                out.push(char::from(*c));
            }
        }
    }
    Ok(out)
}

/// A typed user code as stored (§6.1: case, dashes and spaces do not
/// matter), or `None` when it cannot be one of ours.
pub fn normalise_user_code(typed: &str) -> Option<String> {
    // Bounded before any work: a user code with generous separators.
    if typed.len() > 4 * USER_CODE_LEN {
        return None;
    }
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// A normalised user code as shown: `XXXX-XXXX`.
pub fn display_user_code(code: &str) -> String {
    let (a, b) = code.split_at(code.len().min(USER_CODE_LEN / 2));
    format!("{a}-{b}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_drawn_from_the_alphabet_and_normalised() {
        let code = new_user_code().unwrap();
        assert_eq!(code.len(), USER_CODE_LEN);
        assert_eq!(normalise_user_code(&code).as_deref(), Some(code.as_str()));
        let shown = display_user_code(&code);
        assert_eq!(shown.len(), USER_CODE_LEN + 1);
        assert_eq!(
            normalise_user_code(&shown.to_lowercase()),
            Some(code.clone())
        );
        assert_eq!(
            normalise_user_code(" bcdf - ghjk ").as_deref(),
            Some("BCDFGHJK")
        );
        for bad in [
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "",
            &"-".repeat(100),
        ] {
            assert_eq!(normalise_user_code(bad), None, "{bad}");
        }
    }
}
