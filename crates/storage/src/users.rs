//! Users: one row per person per environment. Emails are unique per
//! environment case-insensitively (`email_normalized`), passwords are stored
//! only as Argon2id PHC strings.

use crate::clock::rfc3339;
use crate::db::DbConnection;
use crate::error::StorageError;
use crate::ids;
use crate::page::{Page, PageRequest};
use crate::refresh_tokens::Revoked;
use crate::schema::{sessions, users};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub environment_id: String,
    pub email: String,
    pub email_normalized: String,
    pub password_hash: Option<String>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub groups: String,
    pub metadata: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// When an administrator disabled the user; `None`: enabled.
    pub disabled_at: Option<NaiveDateTime>,
}

/// A user as the API shows it: never the password or its hash.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub environment: String,
    pub email: String,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub groups: Vec<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub has_password: bool,
    /// A disabled user cannot sign in or be granted tokens; disabling ended
    /// their sessions and refresh tokens.
    pub disabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl UserRow {
    /// The public view of this row.
    ///
    /// # Errors
    /// When the stored JSON columns are corrupt.
    pub fn to_user(&self) -> Result<User, StorageError> {
        Ok(User {
            id: self.id.clone(),
            environment: self.environment_id.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            given_name: self.given_name.clone(),
            family_name: self.family_name.clone(),
            groups: serde_json::from_str(&self.groups)?,
            metadata: serde_json::from_str(&self.metadata)?,
            has_password: self.password_hash.is_some(),
            disabled: self.disabled_at.is_some(),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        })
    }
}

/// A validated new user (the edge has checked every field).
#[derive(Clone, Debug)]
pub struct NewUser {
    pub environment_id: String,
    pub email: String,
    pub password_hash: Option<String>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub groups: Vec<String>,
    pub metadata: serde_json::Value,
}

/// A validated partial update: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    pub email: Option<String>,
    pub password_hash: Option<Option<String>>,
    pub name: Option<Option<String>>,
    pub given_name: Option<Option<String>>,
    pub family_name: Option<Option<String>>,
    pub groups: Option<Vec<String>>,
    pub metadata: Option<serde_json::Value>,
    /// `Some(true)` disables the user (ending their sessions and refresh
    /// tokens), `Some(false)` enables them again.
    pub disabled: Option<bool>,
}

#[derive(AsChangeset)]
#[diesel(table_name = users)]
struct UserChanges {
    email: Option<String>,
    email_normalized: Option<String>,
    password_hash: Option<Option<String>>,
    name: Option<Option<String>>,
    given_name: Option<Option<String>>,
    family_name: Option<Option<String>>,
    groups: Option<String>,
    metadata: Option<String>,
    disabled_at: Option<Option<NaiveDateTime>>,
    updated_at: NaiveDateTime,
}

/// Emails compare case-insensitively; the stored form keeps what was typed.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Inserts a user.
///
/// # Errors
/// `Conflict("users_environment_email_key")` when the email is taken in this environment.
pub fn insert(
    conn: &mut DbConnection,
    new: NewUser,
    now: NaiveDateTime,
) -> Result<UserRow, StorageError> {
    let row = UserRow {
        id: ids::new_id(ids::USER),
        environment_id: new.environment_id,
        email_normalized: normalize_email(&new.email),
        email: new.email.trim().to_owned(),
        password_hash: new.password_hash,
        name: new.name,
        given_name: new.given_name,
        family_name: new.family_name,
        groups: serde_json::to_string(&new.groups)?,
        metadata: serde_json::to_string(&new.metadata)?,
        created_at: now,
        updated_at: now,
        disabled_at: None,
    };
    diesel::insert_into(users::table)
        .values((
            users::id.eq(&row.id),
            users::environment_id.eq(&row.environment_id),
            users::email.eq(&row.email),
            users::email_normalized.eq(&row.email_normalized),
            users::password_hash.eq(&row.password_hash),
            users::name.eq(&row.name),
            users::given_name.eq(&row.given_name),
            users::family_name.eq(&row.family_name),
            users::groups.eq(&row.groups),
            users::metadata.eq(&row.metadata),
            users::created_at.eq(row.created_at),
            users::updated_at.eq(row.updated_at),
        ))
        .execute(conn)
        .map_err(|e| match StorageError::from(e) {
            // SQLite names no constraint; there is only one unique rule here.
            StorageError::Conflict(_) => {
                StorageError::Conflict("users_environment_email_key".into())
            }
            other => other,
        })?;
    Ok(row)
}

/// The user with this id in this environment.
///
/// # Errors
/// `NotFound` when there is none.
pub fn get(conn: &mut DbConnection, env: &str, id: &str) -> Result<UserRow, StorageError> {
    users::table
        .filter(users::environment_id.eq(env))
        .filter(users::id.eq(id))
        .select(UserRow::as_select())
        .first(conn)
        .map_err(StorageError::from)
}

/// [`get`], holding the row against a concurrent update until the
/// transaction ends: on PostgreSQL `FOR SHARE`, so a session made while the
/// user is being disabled either commits before the disable (which then
/// ends it) or sees the flag; on SQLite the caller's write lock
/// (`db::begin_write`) already serialises them.
///
/// # Errors
/// `NotFound` when there is none.
pub fn get_locked(conn: &mut DbConnection, env: &str, id: &str) -> Result<UserRow, StorageError> {
    match conn {
        DbConnection::Postgres(pg) => users::table
            .filter(users::environment_id.eq(env))
            .filter(users::id.eq(id))
            .select(UserRow::as_select())
            .for_share()
            .first(pg)
            .map_err(StorageError::from),
        DbConnection::Sqlite(_) => get(conn, env, id),
    }
}

/// The user with this id in this environment, if any.
///
/// # Errors
/// Backend failures.
pub fn find_by_id(
    conn: &mut DbConnection,
    env: &str,
    id: &str,
) -> Result<Option<UserRow>, StorageError> {
    Ok(users::table
        .filter(users::environment_id.eq(env))
        .filter(users::id.eq(id))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

/// The user with this email (any case) in this environment, if any.
///
/// # Errors
/// Backend failures.
pub fn find_by_email(
    conn: &mut DbConnection,
    env: &str,
    email: &str,
) -> Result<Option<UserRow>, StorageError> {
    Ok(users::table
        .filter(users::environment_id.eq(env))
        .filter(users::email_normalized.eq(normalize_email(email)))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

/// Users in creation order, after the cursor.
///
/// # Errors
/// Backend failures.
pub fn list(
    conn: &mut DbConnection,
    env: &str,
    page: &PageRequest,
) -> Result<Page<UserRow>, StorageError> {
    let mut query = users::table
        .filter(users::environment_id.eq(env))
        .select(UserRow::as_select())
        .order(users::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(users::id.gt(after.clone()));
    }
    Ok(Page::from_overfetch(query.load(conn)?, page.limit))
}

diesel::define_sql_function! {
    /// SQL `lower`, which SQLite and PostgreSQL both have (for ASCII; a
    /// search, not an identity check).
    #[sql_name = "lower"]
    fn lower_text(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

diesel::define_sql_function! {
    #[sql_name = "lower"]
    fn lower_nullable(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// The longest search text [`search`] takes.
pub const MAX_SEARCH: usize = 254;

/// Users of one environment whose e-mail or name contains `text` (case
/// folded for ASCII), in id order, at most `limit`: the console's search.
/// `%`, `_` and `\` in `text` match themselves.
///
/// # Errors
/// Backend failures.
pub fn search(
    conn: &mut DbConnection,
    env: &str,
    text: &str,
    limit: i64,
) -> Result<Vec<UserRow>, StorageError> {
    let escaped: String = text
        .chars()
        .take(MAX_SEARCH)
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => c.to_lowercase().collect(),
        })
        .collect();
    let pattern = format!("%{escaped}%");
    Ok(users::table
        .filter(users::environment_id.eq(env))
        .filter(
            lower_text(users::email)
                .like(pattern.clone())
                .escape('\\')
                .or(lower_nullable(users::name).like(pattern).escape('\\')),
        )
        .select(UserRow::as_select())
        .order(users::id.asc())
        .limit(limit)
        .load(conn)?)
}

/// Applies a patch and returns the updated row. A new (or removed)
/// password, or disabling the user, revokes every refresh family of the
/// user in the same transaction (contract: a password change revokes every
/// refresh token of the user); those are returned too. Disabling also ends
/// every live session of the user there (the caller forgets their cached
/// verifications).
///
/// # Errors
/// `NotFound`, or `Conflict` when the new email is taken.
pub fn update(
    conn: &mut DbConnection,
    env: &str,
    id: &str,
    patch: UserPatch,
    now: NaiveDateTime,
) -> Result<Updated, StorageError> {
    conn.transaction(|conn| {
        crate::db::begin_write(conn)?;
        let mut patch = patch;
        if patch.disabled == Some(get(conn, env, id)?.disabled_at.is_some()) {
            // Disabling a disabled user keeps when it first happened.
            patch.disabled = None;
        }
        let password_changed = patch.password_hash.is_some();
        let disabling = patch.disabled == Some(true);
        let row = apply(conn, env, id, patch, now)?;
        let ended_sessions = if disabling {
            // In the same transaction as the flag, so no session of theirs
            // outlives it; `sessions::insert` refuses new ones once it is set.
            let live = sessions::table
                .filter(sessions::user_id.eq(id))
                .filter(sessions::revoked_at.is_null());
            let hashes = live.select(sessions::token_hash).load::<String>(conn)?;
            diesel::update(live)
                .set(sessions::revoked_at.eq(now))
                .execute(conn)?;
            hashes
        } else {
            Vec::new()
        };
        let refresh = if password_changed || disabling {
            crate::refresh_tokens::revoke_for_user(conn, id, None, now)?
        } else {
            Revoked::default()
        };
        Ok(Updated {
            row,
            refresh,
            ended_sessions,
        })
    })
}

/// What [`update`] did.
#[derive(Debug)]
#[must_use = "the ended sessions' cached verifications and the revoked families are the caller's"]
pub struct Updated {
    pub row: UserRow,
    /// Refresh families ended by a new password or by disabling.
    pub refresh: Revoked,
    /// Token hashes of the sessions disabling ended.
    pub ended_sessions: Vec<String>,
}

fn apply(
    conn: &mut DbConnection,
    env: &str,
    id: &str,
    patch: UserPatch,
    now: NaiveDateTime,
) -> Result<UserRow, StorageError> {
    let changes = UserChanges {
        email_normalized: patch.email.as_deref().map(normalize_email),
        email: patch.email.map(|e| e.trim().to_owned()),
        password_hash: patch.password_hash,
        name: patch.name,
        given_name: patch.given_name,
        family_name: patch.family_name,
        groups: patch
            .groups
            .map(|g| serde_json::to_string(&g))
            .transpose()?,
        metadata: patch
            .metadata
            .map(|m| serde_json::to_string(&m))
            .transpose()?,
        disabled_at: patch.disabled.map(|d| d.then_some(now)),
        updated_at: now,
    };
    let updated = diesel::update(
        users::table
            .filter(users::environment_id.eq(env))
            .filter(users::id.eq(id)),
    )
    .set(&changes)
    .execute(conn)
    .map_err(|e| match StorageError::from(e) {
        StorageError::Conflict(_) => StorageError::Conflict("users_environment_email_key".into()),
        other => other,
    })?;
    if updated == 0 {
        return Err(StorageError::NotFound);
    }
    get(conn, env, id)
}

/// Deletes a user and, through the foreign key, every session and refresh
/// token of theirs. Returns the token hashes of those sessions so caches
/// can forget them, and the refresh families that were still live (their
/// access tokens are the caller's to revoke).
///
/// # Errors
/// `NotFound` when there is no such user.
pub fn delete(
    conn: &mut DbConnection,
    env: &str,
    id: &str,
    now: NaiveDateTime,
) -> Result<(Vec<String>, Revoked), StorageError> {
    conn.transaction(|conn| {
        crate::db::begin_write(conn)?;
        get(conn, env, id)?;
        // Revoked before the rows go, so the caller learns which families
        // ended; the delete cascades to them.
        let refresh = crate::refresh_tokens::revoke_for_user(conn, id, None, now)?;
        let hashes = sessions::table
            .filter(sessions::user_id.eq(id))
            .select(sessions::token_hash)
            .load::<String>(conn)?;
        diesel::delete(sessions::table.filter(sessions::user_id.eq(id))).execute(conn)?;
        let deleted = diesel::delete(
            users::table
                .filter(users::environment_id.eq(env))
                .filter(users::id.eq(id)),
        )
        .execute(conn)?;
        if deleted == 0 {
            return Err(StorageError::NotFound);
        }
        Ok((hashes, refresh))
    })
}
