//! Passkeys (WebAuthn, issue 14): a user's registered credentials, several
//! per user, each named, with when it was last used.
//!
//! The credential itself (public key, signature counter, backup flags) is
//! the `webauthn-rs` [`Passkey`], stored as a [`Json`] column and never
//! read field by field here: the ceremonies (`trusec-ui`) verify with it
//! and give back the updated one ([`used`]). Its credential id is kept
//! apart, base64url, unique per environment, so that a discoverable
//! sign-in (conditional UI) finds the passkey, and so that one
//! credential never belongs to two accounts (WebAuthn Level 3 §7.1 step
//! 26). The ceremony state between the two requests of a ceremony is not
//! here: it lives in the ephemeral store, single-use and short-lived
//! (`StoreKey::passkey_registration`, `passkey_sign_in`,
//! `passkey_second_factor`).

use crate::db::DbConnection;
use crate::error::StorageError;
use crate::ids;
use crate::schema::passkeys;
use crate::sql_types::Json;
use base64::Engine;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{Passkey, Uuid};

/// How many passkeys one user may register (each is a row the sign-in
/// page's allow list carries: bounded).
pub const MAX_PER_USER: usize = 20;
/// The longest name, in characters.
pub const NAME_MAX_CHARS: usize = 64;

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = passkeys)]
pub struct PasskeyRow {
    pub id: String,
    pub environment_id: String,
    pub user_id: String,
    /// base64url (no padding) of the WebAuthn credential id.
    pub credential_id: String,
    pub passkey: Json<Passkey>,
    pub name: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
}

/// A passkey's name as the user typed it: trimmed, 1 to
/// [`NAME_MAX_CHARS`] characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyName(String);

impl PasskeyName {
    /// `None` when it is empty, too long or holds control characters.
    pub fn parse(typed: &str) -> Option<Self> {
        let name = typed.trim();
        let ok = !name.is_empty()
            && name.chars().count() <= NAME_MAX_CHARS
            && !name.chars().any(char::is_control);
        ok.then(|| Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The WebAuthn credential id as stored (base64url, no padding).
pub fn credential_id_text(raw: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// The WebAuthn user handle of a user (WebAuthn Level 3 §5.4.3: opaque, at
/// most 64 bytes, no personal information): derived from the user id, so
/// it needs no column and says nothing about the account.
pub fn user_handle(user_id: &str) -> Uuid {
    let digest = Sha256::digest(format!("trusec-webauthn-user:{user_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(digest.get(..16).unwrap_or(&[0u8; 16]));
    Uuid::from_bytes(bytes)
}

/// The passkeys of a user, oldest first.
///
/// # Errors
/// Backend failures.
pub fn list(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
) -> Result<Vec<PasskeyRow>, StorageError> {
    Ok(passkeys::table
        .filter(passkeys::environment_id.eq(env))
        .filter(passkeys::user_id.eq(user_id))
        .order((passkeys::created_at.asc(), passkeys::id.asc()))
        .select(PasskeyRow::as_select())
        .load(conn)?)
}

/// The passkey with this credential id in this environment, if any.
///
/// # Errors
/// Backend failures.
pub fn find_by_credential(
    conn: &mut DbConnection,
    env: &str,
    credential_id: &[u8],
) -> Result<Option<PasskeyRow>, StorageError> {
    Ok(passkeys::table
        .filter(passkeys::environment_id.eq(env))
        .filter(passkeys::credential_id.eq(credential_id_text(credential_id)))
        .select(PasskeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// Registers a verified passkey for a user.
///
/// # Errors
/// `Conflict` when the credential is registered already (to anyone in
/// this environment) or the user has [`MAX_PER_USER`]; `NotFound` for an
/// unknown user; backend failures.
pub fn insert(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
    passkey: Passkey,
    name: &PasskeyName,
    now: NaiveDateTime,
) -> Result<PasskeyRow, StorageError> {
    conn.transaction(|conn| {
        crate::db::begin_write(conn)?;
        crate::users::get(conn, env, user_id)?;
        if list(conn, env, user_id)?.len() >= MAX_PER_USER {
            return Err(StorageError::Conflict("passkeys per user".into()));
        }
        let raw: &[u8] = passkey.cred_id().as_ref();
        if find_by_credential(conn, env, raw)?.is_some() {
            return Err(StorageError::Conflict("passkeys.credential_id".into()));
        }
        let row = PasskeyRow {
            id: ids::new_id(ids::PASSKEY),
            environment_id: env.to_owned(),
            user_id: user_id.to_owned(),
            credential_id: credential_id_text(raw),
            passkey: Json(passkey),
            name: name.as_str().to_owned(),
            created_at: now,
            last_used_at: None,
        };
        diesel::insert_into(passkeys::table)
            .values((
                passkeys::id.eq(&row.id),
                passkeys::environment_id.eq(&row.environment_id),
                passkeys::user_id.eq(&row.user_id),
                passkeys::credential_id.eq(&row.credential_id),
                passkeys::passkey.eq(&row.passkey),
                passkeys::name.eq(&row.name),
                passkeys::created_at.eq(row.created_at),
            ))
            .execute(conn)?;
        Ok(row)
    })
}

/// [`insert`], and in the same transaction the user's recovery codes when
/// they have no unused one ([`crate::mfa::recovery_codes_if_none`]: a first
/// second factor must not be added without a way back, nor the codes
/// without the passkey); whether the codes were given.
///
/// # Errors
/// As [`insert`].
pub fn insert_with_recovery_codes(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
    passkey: Passkey,
    name: &PasskeyName,
    code_hashes: &[String],
    now: NaiveDateTime,
) -> Result<(PasskeyRow, bool), StorageError> {
    conn.transaction(|conn| {
        crate::db::begin_write(conn)?;
        let row = insert(conn, env, user_id, passkey, name, now)?;
        let given = crate::mfa::recovery_codes_if_none(conn, env, user_id, code_hashes, now)?;
        Ok((row, given))
    })
}

/// Renames one of a user's passkeys.
///
/// # Errors
/// `NotFound` when the user has no such passkey; backend failures.
pub fn rename(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
    id: &str,
    name: &PasskeyName,
) -> Result<(), StorageError> {
    let updated = diesel::update(
        passkeys::table
            .find(id)
            .filter(passkeys::environment_id.eq(env))
            .filter(passkeys::user_id.eq(user_id)),
    )
    .set(passkeys::name.eq(name.as_str()))
    .execute(conn)?;
    if updated == 0 {
        return Err(StorageError::NotFound);
    }
    Ok(())
}

/// Removes one of a user's passkeys. The last second factor takes the
/// recovery codes with it, as [`crate::mfa::remove`] does.
///
/// # Errors
/// `NotFound` when the user has no such passkey; `Conflict` when it is the
/// last way a user without a password can sign in; backend failures.
pub fn remove(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
    id: &str,
) -> Result<PasskeyRow, StorageError> {
    conn.transaction(|conn| {
        crate::db::begin_write(conn)?;
        let user = crate::users::get(conn, env, user_id)?;
        let all = list(conn, env, user_id)?;
        let row = all
            .iter()
            .find(|p| p.id == id)
            .cloned()
            .ok_or(StorageError::NotFound)?;
        if user.password_hash.is_none() && all.len() == 1 {
            return Err(StorageError::Conflict("the last sign-in method".into()));
        }
        diesel::delete(passkeys::table.find(&row.id)).execute(conn)?;
        if !crate::mfa::has_factor(conn, env, user_id)? {
            crate::mfa::delete_recovery_codes(conn, env, user_id)?;
        }
        Ok(row)
    })
}

/// Removes every passkey of a user (the help-desk reset); returns them.
///
/// # Errors
/// Backend failures.
pub fn remove_all(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
) -> Result<Vec<PasskeyRow>, StorageError> {
    let rows = list(conn, env, user_id)?;
    diesel::delete(
        passkeys::table
            .filter(passkeys::environment_id.eq(env))
            .filter(passkeys::user_id.eq(user_id)),
    )
    .execute(conn)?;
    Ok(rows)
}

/// Records a sign-in with the passkey: its updated credential (signature
/// counter, backup state, as `webauthn-rs` updated it) and when.
///
/// # Errors
/// Backend failures.
pub fn used(
    conn: &mut DbConnection,
    id: &str,
    passkey: Passkey,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    diesel::update(passkeys::table.find(id))
        .set((
            passkeys::passkey.eq(Json(passkey)),
            passkeys::last_used_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Whether a user has a passkey.
///
/// # Errors
/// Backend failures.
pub fn any(conn: &mut DbConnection, env: &str, user_id: &str) -> Result<bool, StorageError> {
    let n: i64 = passkeys::table
        .filter(passkeys::environment_id.eq(env))
        .filter(passkeys::user_id.eq(user_id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bounded_and_trimmed() {
        assert_eq!(
            PasskeyName::parse("  Laptop ").map(|n| n.as_str().to_owned()),
            Some("Laptop".to_owned())
        );
        assert_eq!(PasskeyName::parse("   "), None);
        assert_eq!(PasskeyName::parse(&"x".repeat(NAME_MAX_CHARS + 1)), None);
        assert_eq!(PasskeyName::parse("a\u{0}b"), None);
    }

    #[test]
    fn user_handles_are_stable_and_distinct() {
        assert_eq!(user_handle("user_a"), user_handle("user_a"));
        assert_ne!(user_handle("user_a"), user_handle("user_b"));
    }
}
