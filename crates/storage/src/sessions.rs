//! Sessions: opaque 256-bit bearer tokens bound to a user, stored as SHA-256.
//! Verification is the hot path; the server caches rows in the ephemeral store
//! keyed by token hash (`crate::cache::Cached::session`), and every write here
//! returns the rows it touched so the caller can mark them stale there
//! ([`crate::Core::forget_sessions`]).

use crate::assurance::Assurance;
use crate::clock::rfc3339;
use crate::db::DbConnection;
use crate::error::StorageError;
use crate::ids;
use crate::page::{Page, PageRequest};
use crate::schema::{sessions, users};
use crate::sql_types::Json;
use crate::users::UserRow;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: String,
    pub environment_id: String,
    pub user_id: String,
    pub token_hash: String,
    pub metadata: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    /// How the user authenticated (RFC 8176); empty for sessions the API
    /// made. Rows cached before the column existed read as empty.
    #[serde(default)]
    pub amr: Json<Vec<AuthMethod>>,
    /// When the user last actively authenticated, if a step-up
    /// ([`step_up`]) came after the sign-in; `None`: at `created_at`.
    #[serde(default)]
    pub authenticated_at: Option<NaiveDateTime>,
}

crate::text_enum! {
    /// An authentication method a sign-in used (RFC 8176 §2 values).
    pub enum AuthMethod as "authentication method" {
        /// A password.
        Pwd = "pwd",
        /// A TOTP code (RFC 6238) from an authenticator app.
        Otp = "otp",
        /// One of the user's single-use recovery codes. Its RFC 8176 value
        /// is `otp` too (a one-time code), but it is stored apart so that
        /// SAML does not claim a time-synchronised token for it.
        RecoveryCode = "recovery_code",
        /// A passkey (WebAuthn) bound to one device (not backup eligible,
        /// WebAuthn Level 3 §6.1.3): RFC 8176 `hwk`, a hardware-secured
        /// key as far as the credential's flags tell (no attestation is
        /// asked for, so this is the authenticator's word).
        Hwk = "hwk",
        /// A synced passkey (backup eligible): RFC 8176 `swk`, its key is
        /// copied between devices by software.
        Swk = "swk",
    }
}

impl AuthMethod {
    /// The RFC 8176 §2 `amr` value of the method.
    pub const fn rfc8176(self) -> &'static str {
        match self {
            Self::Pwd => "pwd",
            Self::Otp | Self::RecoveryCode => "otp",
            Self::Hwk => "hwk",
            Self::Swk => "swk",
        }
    }
}

impl SessionRow {
    /// The RFC 8176 `amr` values of this session: its methods, plus `mfa`
    /// when they are of more than one kind of factor (RFC 8176 §2, "mfa";
    /// [`Assurance::of`]).
    pub fn amr_values(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = self.amr.iter().map(|m| m.rfc8176()).collect();
        out.sort_unstable();
        out.dedup();
        if self.assurance() == Some(Assurance::MultiFactor) {
            out.push("mfa");
        }
        out
    }

    /// The session's assurance level (`None` for a session the API made).
    pub fn assurance(&self) -> Option<Assurance> {
        Assurance::of(&self.amr)
    }

    /// When the user last actively authenticated (OIDC `auth_time`, SAML
    /// `AuthnInstant`): the sign-in, or the last step-up after it.
    pub fn authenticated_at(&self) -> NaiveDateTime {
        self.authenticated_at.unwrap_or(self.created_at)
    }
}

/// A session as the API shows it (never the token or its hash).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub environment: String,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
}

/// Why a token does not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Invalid {
    NotFound,
    Expired,
    Revoked,
}

impl SessionRow {
    /// The public view of this row.
    ///
    /// # Errors
    /// When the stored metadata is corrupt.
    pub fn to_session(&self) -> Result<Session, StorageError> {
        Ok(Session {
            id: self.id.clone(),
            user_id: self.user_id.clone(),
            environment: self.environment_id.clone(),
            metadata: serde_json::from_str(&self.metadata)?,
            created_at: rfc3339(self.created_at),
            expires_at: rfc3339(self.expires_at),
            revoked_at: self.revoked_at.map(rfc3339),
        })
    }

    /// Whether this session is usable at `now`.
    pub fn check(&self, now: NaiveDateTime) -> Result<(), Invalid> {
        if self.revoked_at.is_some() {
            Err(Invalid::Revoked)
        } else if self.expires_at <= now {
            Err(Invalid::Expired)
        } else {
            Ok(())
        }
    }
}

/// What a new session is made of (besides its user).
#[derive(Clone, Debug)]
pub struct NewSession<'a> {
    pub token_hash: String,
    pub metadata: &'a serde_json::Value,
    /// How the user authenticated; empty for a session the API makes.
    pub amr: &'a [AuthMethod],
    pub now: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// Creates a session for a user of this environment.
///
/// # Errors
/// `NotFound` when the user does not exist in this environment,
/// `UserDisabled` when they are disabled.
pub fn insert(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
    new: NewSession<'_>,
) -> Result<SessionRow, StorageError> {
    let NewSession {
        token_hash,
        metadata,
        amr,
        now,
        expires_at,
    } = new;
    conn.transaction(|conn| {
        crate::db::begin_write(conn)?;
        if crate::users::get_locked(conn, env, user_id)?
            .disabled_at
            .is_some()
        {
            return Err(StorageError::UserDisabled);
        }
        let row = SessionRow {
            id: ids::new_id(ids::SESSION),
            environment_id: env.to_owned(),
            user_id: user_id.to_owned(),
            token_hash,
            metadata: serde_json::to_string(metadata)?,
            created_at: now,
            expires_at,
            revoked_at: None,
            amr: Json(amr.to_vec()),
            authenticated_at: None,
        };
        diesel::insert_into(sessions::table)
            .values((
                sessions::id.eq(&row.id),
                sessions::environment_id.eq(&row.environment_id),
                sessions::user_id.eq(&row.user_id),
                sessions::token_hash.eq(&row.token_hash),
                sessions::metadata.eq(&row.metadata),
                sessions::created_at.eq(row.created_at),
                sessions::expires_at.eq(row.expires_at),
                sessions::amr.eq(&row.amr),
            ))
            .execute(conn)?;
        Ok(row)
    })
}

/// Step-up: the user of a live session gave `added` factors at `now`. The
/// methods are merged into the session's and `now` becomes its
/// `authenticated_at` — OIDC Core §2: `auth_time` is when the user was
/// last *actively* authenticated, and a second factor typed now is that.
/// `None` when the session is not live in this environment any more.
///
/// # Errors
/// Backend failures.
pub fn step_up(
    conn: &mut DbConnection,
    env: &str,
    id: &str,
    added: &[AuthMethod],
    now: NaiveDateTime,
) -> Result<Option<SessionRow>, StorageError> {
    conn.transaction(|conn| {
        crate::db::begin_write(conn)?;
        let live = sessions::table
            .filter(sessions::id.eq(id))
            .filter(sessions::environment_id.eq(env))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(now));
        let Some(mut row) = live
            .select(SessionRow::as_select())
            .first(conn)
            .optional()?
        else {
            return Ok(None);
        };
        for m in added {
            if !row.amr.contains(m) {
                row.amr.0.push(*m);
            }
        }
        row.authenticated_at = Some(now);
        diesel::update(live)
            .set((
                sessions::amr.eq(&row.amr),
                sessions::authenticated_at.eq(row.authenticated_at),
            ))
            .execute(conn)?;
        Ok(Some(row))
    })
}

/// The session with this token hash and its user, in one indexed read.
///
/// # Errors
/// Backend failures.
pub fn find_by_token_hash(
    conn: &mut DbConnection,
    env: &str,
    token_hash: &str,
) -> Result<Option<(SessionRow, UserRow)>, StorageError> {
    Ok(sessions::table
        .inner_join(users::table)
        .filter(sessions::token_hash.eq(token_hash))
        .filter(sessions::environment_id.eq(env))
        .select((SessionRow::as_select(), UserRow::as_select()))
        .first(conn)
        .optional()?)
}

/// A session that a revocation found: whether this call revoked it, and
/// the refresh families that ended with it.
#[derive(Clone, Debug)]
pub struct Ended {
    pub session: SessionRow,
    /// False when it was revoked before: a second revoke changes nothing
    /// and is not an error.
    pub newly: bool,
    pub refresh: crate::refresh_tokens::Revoked,
}

/// Marks the session with this token hash revoked, with the refresh
/// families bound to it, in one transaction. `None` when no session of
/// this environment has the hash.
///
/// # Errors
/// Backend failures.
pub fn revoke_by_token_hash(
    conn: &mut DbConnection,
    env: &str,
    token_hash: &str,
    now: NaiveDateTime,
) -> Result<Option<Ended>, StorageError> {
    conn.transaction(|conn| {
        crate::db::begin_write(conn)?;
        let row = sessions::table
            .filter(sessions::token_hash.eq(token_hash))
            .filter(sessions::environment_id.eq(env))
            .select(SessionRow::as_select())
            .first(conn)
            .optional()?;
        row.map(|row| end(conn, row, now)).transpose()
    })
}

/// Whether `id` is a live session of `user_id` in `env` (the console ends
/// a session it names together with its user).
///
/// # Errors
/// Backend failures.
pub fn is_live_of_user(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
    id: &str,
    now: NaiveDateTime,
) -> Result<bool, StorageError> {
    let n: i64 = sessions::table
        .filter(sessions::id.eq(id))
        .filter(sessions::environment_id.eq(env))
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Revokes the session with this id (single logout finds sessions by id,
/// not by token), as [`revoke_by_token_hash`] does.
///
/// # Errors
/// Backend failures.
pub fn revoke_by_id(
    conn: &mut DbConnection,
    env: &str,
    id: &str,
    now: NaiveDateTime,
) -> Result<Option<Ended>, StorageError> {
    conn.transaction(|conn| {
        crate::db::begin_write(conn)?;
        let row = sessions::table
            .filter(sessions::id.eq(id))
            .filter(sessions::environment_id.eq(env))
            .select(SessionRow::as_select())
            .first(conn)
            .optional()?;
        row.map(|row| end(conn, row, now)).transpose()
    })
}

/// Ends a session inside the caller's transaction. The update is
/// conditional: of two concurrent revokes exactly one reports it. The
/// session's refresh families are revoked either way (a retry after a
/// failure must not leave them live).
fn end(
    conn: &mut DbConnection,
    row: SessionRow,
    now: NaiveDateTime,
) -> Result<Ended, StorageError> {
    let revoked = diesel::update(
        sessions::table
            .filter(sessions::id.eq(&row.id))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(Some(now)))
    .execute(conn)?;
    let refresh = crate::refresh_tokens::revoke_for_sessions(conn, &[row.id.as_str()], now)?;
    Ok(Ended {
        session: row,
        newly: revoked == 1,
        refresh,
    })
}

/// Inside a transaction: whether the session is still live (not revoked),
/// holding its row until the transaction ends, so that a revocation running
/// at the same time waits for this transaction (or this one for it, and
/// then sees it revoked). SQLite's writer lock (`db::begin_write`) already
/// orders the two; PostgreSQL needs `FOR UPDATE`.
///
/// # Errors
/// Backend failures.
pub fn lock_if_live(conn: &mut DbConnection, id: &str) -> Result<bool, StorageError> {
    let live = sessions::table
        .filter(sessions::id.eq(id))
        .filter(sessions::revoked_at.is_null())
        .select(sessions::id);
    let found = match conn {
        DbConnection::Postgres(pg) => live.for_update().first::<String>(pg).optional()?,
        DbConnection::Sqlite(lite) => live.first::<String>(lite).optional()?,
    };
    Ok(found.is_some())
}

/// Revokes every live session of a user and the refresh families bound to
/// them, in one transaction; returns the revoked rows and families.
///
/// # Errors
/// `NotFound` when the user does not exist in this environment.
pub fn revoke_all_for_user(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
    now: NaiveDateTime,
) -> Result<(Vec<SessionRow>, crate::refresh_tokens::Revoked), StorageError> {
    conn.transaction(|conn| {
        crate::db::begin_write(conn)?;
        crate::users::get(conn, env, user_id)?;
        let rows = sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null())
            .select(SessionRow::as_select())
            .load(conn)?;
        diesel::update(
            sessions::table
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::revoked_at.is_null()),
        )
        .set(sessions::revoked_at.eq(Some(now)))
        .execute(conn)?;
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let refresh = crate::refresh_tokens::revoke_for_sessions(conn, &ids, now)?;
        Ok((rows, refresh))
    })
}

/// The user's sessions that are neither revoked nor expired, oldest first.
///
/// # Errors
/// `NotFound` when the user does not exist in this environment.
pub fn list_active_for_user(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
    now: NaiveDateTime,
    page: &PageRequest,
) -> Result<Page<SessionRow>, StorageError> {
    crate::users::get(conn, env, user_id)?;
    let mut query = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .select(SessionRow::as_select())
        .order(sessions::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(sessions::id.gt(after.clone()));
    }
    Ok(Page::from_overfetch(query.load(conn)?, page.limit))
}

/// The token hashes of every session of a user (to drop them from caches
/// after the user changed).
///
/// # Errors
/// Backend failures.
pub fn token_hashes_for_user(
    conn: &mut DbConnection,
    user_id: &str,
) -> Result<Vec<String>, StorageError> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .select(sessions::token_hash)
        .load(conn)?)
}

impl crate::Core {
    /// After sessions were revoked: every instance's cached verification
    /// of them is marked stale at once (see `crate::cache`).
    ///
    /// # Errors
    /// When the cache can be neither marked nor cleared: the caller reports
    /// failure, so the client retries, rather than a revocation that other
    /// instances would not see.
    pub async fn forget_sessions<'a>(
        &self,
        token_hashes: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), StorageError> {
        let entries: Vec<_> = token_hashes
            .into_iter()
            .map(crate::cache::Cached::session)
            .collect();
        self.store.invalidate(&entries).await
    }
}
