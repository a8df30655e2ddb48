//! Administrators: the members of [`ADMIN_GROUP`] in an environment, and
//! the single-use setup links through which one creates their account.
//!
//! A setup link carries a 256-bit token ([`crate::secrets::generate_secret`]);
//! only its SHA-256 is stored (`admin_setup_tokens`), it expires after
//! [`SETUP_TOKEN_TTL`], and [`take_setup_token`] deletes it in the
//! transaction that uses it, so it works once.

use crate::db::DbConnection;
use crate::error::StorageError;
use crate::schema::{admin_setup_tokens, users};
use crate::secrets;
use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

/// The group whose members may use the admin console of their environment.
pub const ADMIN_GROUP: &str = "trusec-admins";

/// How long a setup link works (issue #16: 30 minutes).
pub const SETUP_TOKEN_TTL: TimeDelta = TimeDelta::minutes(30);

/// A setup link's token, as stored.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = admin_setup_tokens)]
pub struct SetupTokenRow {
    pub token_hash: String,
    pub environment_id: String,
    /// `None`: the person chooses their email (the first administrator).
    pub email: Option<String>,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

/// Whether a user's stored `groups` (a JSON list) names [`ADMIN_GROUP`].
///
/// # Errors
/// A stored value that is not a JSON list of strings.
pub fn is_admin_groups(groups_json: &str) -> Result<bool, StorageError> {
    let groups: Vec<String> = serde_json::from_str(groups_json)?;
    Ok(groups.iter().any(|g| g == ADMIN_GROUP))
}

/// Whether `env` has at least one administrator.
///
/// # Errors
/// Backend failures.
pub fn any_admin(conn: &mut DbConnection, env: &str) -> Result<bool, StorageError> {
    // The LIKE narrows the rows to read; the JSON is parsed to decide, so a
    // group that merely contains the name ("trusec-admins-old") is no match.
    let candidates: Vec<String> = users::table
        .filter(users::environment_id.eq(env))
        .filter(users::groups.like(format!("%\"{ADMIN_GROUP}\"%")))
        .select(users::groups)
        .load(conn)?;
    for groups in candidates {
        if is_admin_groups(&groups)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Makes a setup link for `env` (bound to `email` when given) and returns
/// its token, which is stored only hashed. A new link for the first
/// administrator (`email` `None`) replaces the earlier ones of `env`, so
/// only the link printed last works.
///
/// # Errors
/// The random source or the backend failed.
pub fn create_setup_token(
    conn: &mut DbConnection,
    env: &str,
    email: Option<&str>,
    now: NaiveDateTime,
) -> Result<String, StorageError> {
    let token = secrets::generate_secret("").map_err(StorageError::backend)?;
    let hash = secrets::hash_secret(&token);
    conn.transaction(|conn| {
        if email.is_none() {
            diesel::delete(
                admin_setup_tokens::table
                    .filter(admin_setup_tokens::environment_id.eq(env))
                    .filter(admin_setup_tokens::email.is_null()),
            )
            .execute(conn)?;
        }
        // Expired links are of no use to anyone.
        diesel::delete(admin_setup_tokens::table.filter(admin_setup_tokens::expires_at.le(now)))
            .execute(conn)?;
        diesel::insert_into(admin_setup_tokens::table)
            .values((
                admin_setup_tokens::token_hash.eq(&hash),
                admin_setup_tokens::environment_id.eq(env),
                admin_setup_tokens::email.eq(email),
                admin_setup_tokens::expires_at.eq(now + SETUP_TOKEN_TTL),
                admin_setup_tokens::created_at.eq(now),
            ))
            .execute(conn)?;
        Ok::<(), StorageError>(())
    })?;
    Ok(token)
}

/// The unexpired setup link of `env` whose token is `token`, if any (for
/// showing the form; nothing is consumed).
///
/// # Errors
/// Backend failures.
pub fn find_setup_token(
    conn: &mut DbConnection,
    env: &str,
    token: &str,
    now: NaiveDateTime,
) -> Result<Option<SetupTokenRow>, StorageError> {
    Ok(admin_setup_tokens::table
        .filter(admin_setup_tokens::token_hash.eq(secrets::hash_secret(token)))
        .filter(admin_setup_tokens::environment_id.eq(env))
        .filter(admin_setup_tokens::expires_at.gt(now))
        .select(SetupTokenRow::as_select())
        .first(conn)
        .optional()?)
}

/// Uses up the setup link: deletes it and returns it when it was unexpired
/// and of `env`. Call it inside the transaction that creates the account,
/// so a failure leaves the link working and two uses cannot both succeed
/// (the second finds no row to delete).
///
/// # Errors
/// Backend failures.
pub fn take_setup_token(
    conn: &mut DbConnection,
    env: &str,
    token: &str,
    now: NaiveDateTime,
) -> Result<Option<SetupTokenRow>, StorageError> {
    let Some(row) = find_setup_token(conn, env, token, now)? else {
        return Ok(None);
    };
    let deleted = diesel::delete(
        admin_setup_tokens::table.filter(admin_setup_tokens::token_hash.eq(&row.token_hash)),
    )
    .execute(conn)?;
    Ok((deleted == 1).then_some(row))
}
