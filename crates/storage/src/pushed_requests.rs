//! Pushed authorization requests (RFC 9126): an authorization request a
//! client posted to `/oauth/par`, kept until `/oauth/authorize` takes it by
//! its `request_uri`.
//!
//! The database, not the ephemeral store, holds them: a request is taken by
//! one conditional `DELETE … RETURNING` ([`take`]), so of two concurrent
//! uses exactly one gets it, and a flushed or failed-over Redis cannot let
//! it be used twice. Only the SHA-256 of the request_uri's random part is
//! stored. The request itself is typed by the caller (`T`): this crate
//! stores it as a [`Json<T>`] and knows nothing of its fields.

use crate::db::DbConnection;
use crate::error::StorageError;
use crate::schema::pushed_authorization_requests as par;
use crate::sql_types::Json;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A request to store.
#[derive(Debug)]
pub struct NewPushedRequest<T> {
    /// SHA-256 of the request_uri's random part.
    pub request_uri_hash: String,
    pub environment_id: String,
    pub client_id: String,
    pub request: T,
    pub expires_at: NaiveDateTime,
}

/// Stores a pushed request; requests that expired (used or not) are
/// purged first, so the table holds only live ones.
///
/// # Errors
/// [`StorageError::Conflict`] on a request_uri collision (256 random bits:
/// never in practice); backend failures.
pub fn insert<T>(
    conn: &mut DbConnection,
    new: NewPushedRequest<T>,
    now: NaiveDateTime,
) -> Result<(), StorageError>
where
    T: Serialize + std::fmt::Debug + Send + Sync + 'static,
{
    conn.transaction(|conn| {
        diesel::delete(par::table.filter(par::expires_at.le(now))).execute(conn)?;
        diesel::insert_into(par::table)
            .values((
                par::request_uri_hash.eq(new.request_uri_hash),
                par::environment_id.eq(new.environment_id),
                par::client_id.eq(new.client_id),
                par::request.eq(Json(new.request)),
                par::expires_at.eq(new.expires_at),
                par::created_at.eq(now),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// Takes the unexpired request of `client_id` in `env` whose request_uri
/// hashes to `hash`: it is deleted as it is read, so it is returned once
/// only. `None` when there is none — unknown, expired, used already, or
/// pushed by another client or in another environment (the caller cannot
/// and need not tell these apart, RFC 9126 §4).
///
/// # Errors
/// Backend failures, or a stored request that no longer parses as `T`.
pub fn take<T>(
    conn: &mut DbConnection,
    env: &str,
    client_id: &str,
    hash: &str,
    now: NaiveDateTime,
) -> Result<Option<T>, StorageError>
where
    T: DeserializeOwned + 'static,
{
    let target = par::table
        .filter(par::request_uri_hash.eq(hash))
        .filter(par::environment_id.eq(env))
        .filter(par::client_id.eq(client_id))
        .filter(par::expires_at.gt(now));
    let taken: Option<Json<T>> = match conn {
        DbConnection::Postgres(pg) => diesel::delete(target)
            .returning(par::request)
            .get_result(pg)
            .optional()?,
        DbConnection::Sqlite(lite) => diesel::delete(target)
            .returning(par::request)
            .get_result(lite)
            .optional()?,
    };
    Ok(taken.map(|j| j.0))
}
