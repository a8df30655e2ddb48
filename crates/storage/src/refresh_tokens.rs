//! Refresh tokens: opaque 256-bit secrets stored as SHA-256, grouped into
//! families (one per authorization grant). Rotation marks the presented
//! token used with a conditional update, so of two concurrent refreshes with
//! the same token exactly one wins on every backend.

use crate::db::DbConnection;
use crate::error::StorageError;
use crate::schema::refresh_tokens;
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshRow {
    pub id: String,
    pub environment_id: String,
    pub family_id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub token_hash: String,
    pub scope: String,
    pub auth_time: Option<NaiveDateTime>,
    pub session_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub rotated_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

/// Stores a new refresh token.
///
/// # Errors
/// Backend failures.
pub fn insert(conn: &mut DbConnection, row: &RefreshRow) -> Result<(), StorageError> {
    diesel::insert_into(refresh_tokens::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The refresh token with this hash, whatever its state.
///
/// # Errors
/// Backend failures.
pub fn find_by_hash(
    conn: &mut DbConnection,
    hash: &str,
) -> Result<Option<RefreshRow>, StorageError> {
    Ok(refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(hash))
        .select(RefreshRow::as_select())
        .first(conn)
        .optional()?)
}

/// Marks `old` rotated and stores its successor, atomically. Returns false
/// (and stores nothing) when `old` was already rotated or revoked: the
/// caller lost a race with another use of the same token.
///
/// # Errors
/// Backend failures.
pub fn rotate(
    conn: &mut DbConnection,
    old_id: &str,
    successor: &RefreshRow,
    now: NaiveDateTime,
) -> Result<bool, StorageError> {
    conn.transaction(|conn| {
        let claimed = diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::id.eq(old_id))
                .filter(refresh_tokens::rotated_at.is_null())
                .filter(refresh_tokens::revoked_at.is_null()),
        )
        .set(refresh_tokens::rotated_at.eq(Some(now)))
        .execute(conn)?;
        if claimed == 0 {
            return Ok(false);
        }
        insert(conn, successor)?;
        Ok(true)
    })
}

/// Revokes every token of a family; returns how many were still live.
///
/// # Errors
/// Backend failures.
pub fn revoke_family(
    conn: &mut DbConnection,
    family_id: &str,
    now: NaiveDateTime,
) -> Result<usize, StorageError> {
    Ok(diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Some(now)))
    .execute(conn)?)
}
