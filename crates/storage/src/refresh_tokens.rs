//! Refresh tokens: opaque 256-bit secrets stored as SHA-256, grouped into
//! families (one per authorization grant). Rotation marks the presented
//! token used with a conditional update, so of two concurrent refreshes with
//! the same token exactly one wins on every backend.
//!
//! What ends a family (contract, OAuth section) is decided when it starts
//! and copied by every rotation ([`FamilyTerms`]): its absolute expiry,
//! which rotation never extends; whether ending its sign-in session
//! revokes it (not when `offline_access` was granted); and, for every
//! family of a user, a password change or the user's deletion
//! ([`revoke_for_user`]).

use crate::audit::{EventType, NewAuditEvent};
use crate::db::DbConnection;
use crate::ephemeral::StoreKey;
use crate::error::StorageError;
use crate::schema::refresh_tokens;
use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use serde::Serialize;

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
    /// The grant included `offline_access` (OIDC Core §11).
    pub offline_access: bool,
    /// Ending the sign-in session `session_id` revokes the family.
    pub session_bound: bool,
    /// The family's absolute expiry; `None` only on rows an instance of the
    /// release before it wrote (see [`RefreshRow::family_expiry`]).
    pub family_expires_at: Option<NaiveDateTime>,
    /// The resources (RFC 8707 identifiers) the grant was authorized for:
    /// each access token minted from it is for one of them (§2.2). `None`
    /// on rows of releases before resources, whose grants were all for this
    /// server itself.
    pub resources: Option<crate::sql_types::Json<Vec<String>>>,
    /// The RFC 8176 `amr` values of the sign-in the grant came from, kept
    /// through rotation so refreshed tokens say how the user signed in.
    /// `None` on rows of releases before it was recorded.
    pub amr: Option<crate::sql_types::Json<Vec<String>>>,
    /// The `acr` the grant was issued with (it may be a requested alias of
    /// ours, OIDC Core §5.5.1.1); `None`: derived from `amr`
    /// ([`crate::assurance::Assurance::of_amr`]).
    pub acr: Option<String>,
    /// RFC 9449 §5: the JWK thumbprint (RFC 7638) of the DPoP key a public
    /// client's token is bound to; a refresh must prove that key again.
    /// `None`: not bound (and every row of earlier releases).
    pub dpop_jkt: Option<String>,
}

/// What a family keeps through every rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyTerms {
    pub id: String,
    /// Absolute: no token of the family is valid from then on.
    pub expires_at: NaiveDateTime,
    pub offline_access: bool,
    pub session_bound: bool,
}

impl FamilyTerms {
    /// The terms of a family that starts now: bound to the sign-in
    /// session it came from, if any, unless `offline_access` was granted.
    pub fn start(
        id: String,
        now: NaiveDateTime,
        lifetime: TimeDelta,
        offline_access: bool,
        session: Option<&str>,
    ) -> Self {
        Self {
            id,
            expires_at: now
                .checked_add_signed(lifetime)
                .unwrap_or(NaiveDateTime::MAX),
            offline_access,
            session_bound: !offline_access && session.is_some(),
        }
    }
}

impl RefreshRow {
    /// When the token's family ends. A row written by the release before
    /// the absolute lifetime existed (during a rolling upgrade) has none
    /// stored: its lifetime counts from the row's own creation.
    pub fn family_expiry(&self, lifetime: TimeDelta) -> NaiveDateTime {
        self.family_expires_at.unwrap_or_else(|| {
            self.created_at
                .checked_add_signed(lifetime)
                .unwrap_or(NaiveDateTime::MAX)
        })
    }

    /// The terms a successor of this token inherits.
    pub fn family_terms(&self, lifetime: TimeDelta) -> FamilyTerms {
        FamilyTerms {
            id: self.family_id.clone(),
            expires_at: self.family_expiry(lifetime),
            offline_access: self.offline_access,
            session_bound: self.session_bound,
        }
    }

    /// Whether this token can be presented at `now`: neither revoked,
    /// expired, nor past its family's absolute expiry.
    pub fn live_at(&self, now: NaiveDateTime, lifetime: TimeDelta) -> bool {
        self.revoked_at.is_none() && self.expires_at > now && self.family_expiry(lifetime) > now
    }
}

/// Why families were revoked in bulk (the `reason` of the audit event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    /// Their sign-in session ended (logout, single logout, `/v1`).
    SessionEnded,
    PasswordChanged,
    UserDeleted,
    UserDisabled,
}

/// The families a bulk revocation ended (those still live before it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use = "the revoked families' access tokens and audit event are the caller's"]
pub struct Revoked {
    pub families: Vec<String>,
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

/// Stores the first token of a family. A family bound to a sign-in
/// session is stored only while that session is live, under a lock on the
/// session's row: a logout racing the grant either finds the family and
/// revokes it, or ends the session first, and then this stores nothing and
/// returns false (the grant must fail: its sign-in is over).
///
/// # Errors
/// Backend failures.
pub fn start_family(conn: &mut DbConnection, row: &RefreshRow) -> Result<bool, StorageError> {
    conn.transaction(|conn| {
        crate::db::begin_write(conn)?;
        if row.session_bound {
            let live = match row.session_id.as_deref() {
                Some(id) => crate::sessions::lock_if_live(conn, id)?,
                None => false,
            };
            if !live {
                return Ok(false);
            }
        }
        insert(conn, row)?;
        Ok(true)
    })
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

/// Bounds the parameters of one statement (SQLite allows 32,766).
const CHUNK: usize = 500;

/// Revokes every live token of these families.
fn revoke_families(
    conn: &mut DbConnection,
    families: &[String],
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    for chunk in families.chunks(CHUNK) {
        diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::family_id.eq_any(chunk))
                .filter(refresh_tokens::revoked_at.is_null()),
        )
        .set(refresh_tokens::revoked_at.eq(Some(now)))
        .execute(conn)?;
    }
    Ok(())
}

/// Revokes the families bound to these sign-in sessions (ending a session
/// ends them, except those granted `offline_access`). Call it in the
/// transaction that ends the sessions.
///
/// # Errors
/// Backend failures.
pub fn revoke_for_sessions(
    conn: &mut DbConnection,
    session_ids: &[&str],
    now: NaiveDateTime,
) -> Result<Revoked, StorageError> {
    let mut families = Vec::new();
    for chunk in session_ids.chunks(CHUNK) {
        families.extend(
            refresh_tokens::table
                .filter(refresh_tokens::session_id.eq_any(chunk))
                .filter(refresh_tokens::session_bound.eq(true))
                .filter(refresh_tokens::revoked_at.is_null())
                .select(refresh_tokens::family_id)
                .distinct()
                .load::<String>(conn)?,
        );
    }
    revoke_families(conn, &families, now)?;
    Ok(Revoked { families })
}

/// Revokes every family of a user, `offline_access` ones included (a
/// password change; the user's deletion) — or, with `only_client`, every
/// family that client holds for the user (the user took back their
/// consent to it).
///
/// # Errors
/// Backend failures.
pub fn revoke_for_user(
    conn: &mut DbConnection,
    user_id: &str,
    only_client: Option<&str>,
    now: NaiveDateTime,
) -> Result<Revoked, StorageError> {
    let mut live = refresh_tokens::table
        .filter(refresh_tokens::user_id.eq(user_id))
        .filter(refresh_tokens::revoked_at.is_null())
        .into_boxed();
    if let Some(client) = only_client {
        live = live.filter(refresh_tokens::client_id.eq(client.to_owned()));
    }
    let families = live
        .select(refresh_tokens::family_id)
        .distinct()
        .load::<String>(conn)?;
    revoke_families(conn, &families, now)?;
    Ok(Revoked { families })
}

impl crate::Core {
    /// After refresh families were revoked in the database: the access
    /// tokens minted with them stop verifying on every instance at once,
    /// and the revocation is audited once, as `oauth.token.revoked` with
    /// its reason and count, from `event` (its environment, actor, user).
    ///
    /// # Errors
    /// Store or audit failures: the caller reports failure, since the
    /// access tokens might still verify or the revocation go unrecorded.
    pub async fn refresh_families_revoked(
        &self,
        revoked: &Revoked,
        reason: RevocationReason,
        mut event: NewAuditEvent,
    ) -> Result<(), StorageError> {
        if revoked.families.is_empty() {
            return Ok(());
        }
        self.forget_refresh_families(&revoked.families).await?;
        event.event_type = EventType::OAuthTokenRevoked;
        self.audit(event.data(serde_json::json!({
            "reason": reason,
            "token_type": "refresh_token",
            "count": revoked.families.len(),
        })))
        .await
    }

    /// Marks families revoked in the ephemeral store for as long as an
    /// access token minted with one can live: access tokens are JWTs and
    /// carry their family (`fid`), and verification checks this mark.
    ///
    /// # Errors
    /// Store failures.
    pub async fn forget_refresh_families(&self, families: &[String]) -> Result<(), StorageError> {
        for family in families {
            self.store
                .put(
                    &StoreKey::revoked_family(family),
                    b"1",
                    self.access_token_ttl(),
                )
                .await?;
        }
        Ok(())
    }
}
