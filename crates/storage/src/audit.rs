//! The audit log: append-only and tamper-evident. Each event stores
//! `hash = HMAC-SHA-256(audit key, prev_hash ‖ "\n" ‖ canonical JSON of the
//! event)`, chaining it to the one before, so editing or deleting any row
//! breaks every link after it, and nobody without the master key can forge
//! new links; [`verify_chain`] finds the first broken one (`chain.rs` has
//! the hashing, the re-anchoring of chains written before the key, and the
//! check).

mod chain;
mod writer;

pub use chain::{
    Anchoring, AuditKey, BrokenLink, ChainReport, Hashing, Head, Pruning, anchor, prune,
    verify_chain,
};
pub use writer::AuditLog;

use crate::clock::rfc3339;
use crate::db::DbConnection;
use crate::error::StorageError;
use crate::ids;
use crate::page::{Page, PageRequest};
use crate::schema::audit_events;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

/// `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const PG_AUDIT_LOCK: i64 = 0x7275_7365_635f_6175;

crate::text_enum! {
    /// Whether the audited action succeeded.
    pub enum Outcome as "audit outcome" {
        Success = "success",
        Failure = "failure",
    }
}

crate::text_enum! {
    /// Every kind of audit event, the one catalog that the log, the `?type=`
    /// filter and the `trusec_audit_events_total{event_type}` metric share. The
    /// wire names are the contract's.
    pub enum EventType as "audit event type" {
        UserCreated = "user.created",
        UserUpdated = "user.updated",
        UserDeleted = "user.deleted",
        UserLoginSucceeded = "user.login.succeeded",
        UserLoginFailed = "user.login.failed",
        UserLogout = "user.logout",
        /// A second factor confirmed (TOTP enrolment; recovery codes made).
        UserMfaEnrolled = "user.mfa.enrolled",
        /// A second factor removed by its user, or by an administrator
        /// (one event per factor; `data.reset` for the help-desk reset).
        UserMfaRemoved = "user.mfa.removed",
        /// A second factor given at sign-in.
        UserMfaSucceeded = "user.mfa.succeeded",
        /// A wrong, replayed or malformed second-factor code.
        UserMfaFailed = "user.mfa.failed",
        /// A recovery code used up (with how many are left).
        UserMfaRecoveryCodeUsed = "user.mfa.recovery_code_used",
        SessionCreated = "session.created",
        SessionRevoked = "session.revoked",
        ApiKeyCreated = "api_key.created",
        ApiKeyRotated = "api_key.rotated",
        ApiKeyRevoked = "api_key.revoked",
        OAuthClientCreated = "oauth.client.created",
        OAuthClientUpdated = "oauth.client.updated",
        OAuthClientDeleted = "oauth.client.deleted",
        OAuthResourceCreated = "oauth.resource.created",
        OAuthResourceUpdated = "oauth.resource.updated",
        OAuthResourceDeleted = "oauth.resource.deleted",
        OAuthConsentGranted = "oauth.consent.granted",
        OAuthConsentRevoked = "oauth.consent.revoked",
        OAuthTokenIssued = "oauth.token.issued",
        OAuthTokenRefreshed = "oauth.token.refreshed",
        OAuthTokenRevoked = "oauth.token.revoked",
        OAuthRefreshTokenReuseDetected = "oauth.refresh_token.reuse_detected",
        SamlSpCreated = "saml.sp.created",
        SamlSpUpdated = "saml.sp.updated",
        SamlSpDeleted = "saml.sp.deleted",
        SamlAssertionIssued = "saml.assertion.issued",
        SamlRequestRefused = "saml.request.refused",
        /// The console's test of an SP's SSO: an assertion built, signed
        /// and checked for a user, shown to the administrator, not sent.
        SamlAssertionPreviewed = "saml.assertion.previewed",
        SamlLogout = "saml.logout",
        SigningKeyRotated = "signing_key.rotated",
        /// Every sealed value re-sealed under a new master key (`trusec master-key rotate`).
        MasterKeyRotated = "master_key.rotated",
        RateLimitExceeded = "rate_limit.exceeded",
        /// The checkpoint where a chain written before the audit key existed
        /// switches to keyed hashes (`chain::anchor`).
        AuditChainAnchored = "audit.chain.anchored",
        /// The oldest events were deleted (`trusec audit prune`, or the
        /// retention setting); the chain now starts after the head this
        /// event records (`chain::prune`).
        AuditChainPruned = "audit.chain.pruned",
        /// An environment's security policy changed (`data.before`,
        /// `data.after`).
        PolicyUpdated = "policy.updated",
    }
}

crate::text_enum! {
    /// What kind of party acted.
    pub enum ActorKind as "actor kind" {
        ApiKey = "api_key",
        User = "user",
        OAuthClient = "oauth_client",
        Cli = "cli",
        System = "system",
        Anonymous = "anonymous",
    }
}

/// Who did it: an API key, a user, an OAuth client, the CLI, the system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
}

impl Actor {
    pub fn api_key(id: &str) -> Self {
        Self {
            kind: ActorKind::ApiKey,
            id: Some(id.into()),
        }
    }
    pub fn user(id: &str) -> Self {
        Self {
            kind: ActorKind::User,
            id: Some(id.into()),
        }
    }
    pub fn oauth_client(id: &str) -> Self {
        Self {
            kind: ActorKind::OAuthClient,
            id: Some(id.into()),
        }
    }
    pub fn cli() -> Self {
        Self {
            kind: ActorKind::Cli,
            id: None,
        }
    }
    pub fn system() -> Self {
        Self {
            kind: ActorKind::System,
            id: None,
        }
    }
    pub fn anonymous() -> Self {
        Self {
            kind: ActorKind::Anonymous,
            id: None,
        }
    }
}

/// The caller's address and user agent, as the HTTP layer parsed them
/// (`trusec_ui::http::client_info`), for the audit log and per-IP limits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// An event to record.
#[derive(Clone, Debug)]
pub struct NewAuditEvent {
    pub event_type: EventType,
    pub environment_id: Option<String>,
    pub actor: Actor,
    pub user_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub outcome: Outcome,
    pub data: Value,
}

impl NewAuditEvent {
    pub fn new(event_type: EventType, environment_id: Option<&str>, actor: Actor) -> Self {
        Self {
            event_type,
            environment_id: environment_id.map(str::to_owned),
            actor,
            user_id: None,
            ip: None,
            user_agent: None,
            outcome: Outcome::Success,
            data: Value::Object(serde_json::Map::new()),
        }
    }
    #[must_use]
    pub fn user(mut self, user_id: &str) -> Self {
        self.user_id = Some(user_id.to_owned());
        self
    }
    #[must_use]
    pub fn failed(mut self) -> Self {
        self.outcome = Outcome::Failure;
        self
    }
    #[must_use]
    pub fn data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }
    #[must_use]
    pub fn client(mut self, client: &ClientInfo) -> Self {
        self.ip.clone_from(&client.ip);
        self.user_agent.clone_from(&client.user_agent);
        self
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
pub struct AuditRow {
    pub id: String,
    pub seq: i64,
    pub event_type: EventType,
    pub environment_id: Option<String>,
    pub actor_type: ActorKind,
    pub actor_id: Option<String>,
    pub user_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub outcome: Outcome,
    pub data: String,
    pub created_at: NaiveDateTime,
    pub prev_hash: String,
    pub hash: String,
}

/// The actor of a stored event, as the API shows it (`{"type", "id"}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ActorView {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<String>,
}

/// An event as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub environment: Option<String>,
    pub actor: ActorView,
    pub user_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub outcome: String,
    #[schema(value_type = Object)]
    pub data: Value,
    pub created_at: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRow {
    /// The public view.
    ///
    /// # Errors
    /// When the stored data column is corrupt.
    pub fn to_event(&self) -> Result<AuditEvent, StorageError> {
        Ok(AuditEvent {
            id: self.id.clone(),
            event_type: self.event_type.as_str().to_owned(),
            environment: self.environment_id.clone(),
            actor: ActorView {
                kind: self.actor_type.as_str().to_owned(),
                id: self.actor_id.clone(),
            },
            user_id: self.user_id.clone(),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            outcome: self.outcome.as_str().to_owned(),
            data: serde_json::from_str(&self.data)?,
            created_at: rfc3339(self.created_at),
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        })
    }
}

/// Appends events in order, chaining each to the last stored one under
/// `key`, in one transaction. On PostgreSQL an advisory lock orders writers
/// from every instance; on SQLite the write lock does, taken first thing.
///
/// # Errors
/// Backend failures; `Conflict` if another writer took the same `seq`.
pub fn append(
    conn: &mut DbConnection,
    key: &AuditKey,
    events: &[NewAuditEvent],
    now: NaiveDateTime,
) -> Result<Vec<AuditRow>, StorageError> {
    conn.transaction(|conn| {
        crate::db::serialize_writers(conn, PG_AUDIT_LOCK)?;
        let last: Option<(i64, String)> = audit_events::table
            .select((audit_events::seq, audit_events::hash))
            .order(audit_events::seq.desc())
            .first(conn)
            .optional()?;
        insert(
            conn,
            key,
            events,
            now,
            last.unwrap_or((0, GENESIS_HASH.to_owned())),
        )
    })
}

/// Inserts `events` after the event `(seq, hash)`, inside the caller's
/// serialised transaction.
fn insert(
    conn: &mut DbConnection,
    key: &AuditKey,
    events: &[NewAuditEvent],
    now: NaiveDateTime,
    (mut seq, mut prev_hash): (i64, String),
) -> Result<Vec<AuditRow>, StorageError> {
    let mut rows = Vec::with_capacity(events.len());
    for event in events {
        seq += 1;
        let mut row = AuditRow {
            id: ids::new_id(ids::EVENT),
            seq,
            event_type: event.event_type,
            environment_id: event.environment_id.clone(),
            actor_type: event.actor.kind,
            actor_id: event.actor.id.clone(),
            user_id: event.user_id.clone(),
            ip: event.ip.clone(),
            user_agent: event.user_agent.clone(),
            outcome: event.outcome,
            data: serde_json::to_string(&event.data)?,
            created_at: now,
            prev_hash: prev_hash.clone(),
            hash: String::new(),
        };
        // The data as the event holds it: no reading back of the column.
        row.hash = row.compute_hash_of(&event.data, Hashing::Keyed(key))?;
        diesel::insert_into(audit_events::table)
            .values(&row)
            .execute(conn)?;
        prev_hash.clone_from(&row.hash);
        rows.push(row);
    }
    Ok(rows)
}

/// Filters of `GET /v1/audit-events`.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub event_type: Option<EventType>,
    pub user_id: Option<String>,
    pub since: Option<NaiveDateTime>,
    pub outcome: Option<Outcome>,
}

/// Events of one environment, newest first; the cursor is an event id.
///
/// # Errors
/// `NotFound` when the cursor is not an event of this environment.
pub fn list(
    conn: &mut DbConnection,
    env: &str,
    filter: &AuditFilter,
    page: &PageRequest,
) -> Result<Page<AuditRow>, StorageError> {
    let mut query = audit_events::table
        .filter(audit_events::environment_id.eq(env))
        .select(AuditRow::as_select())
        .order(audit_events::seq.desc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(t) = &filter.event_type {
        query = query.filter(audit_events::event_type.eq(*t));
    }
    if let Some(u) = &filter.user_id {
        query = query.filter(audit_events::user_id.eq(u.clone()));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_events::created_at.ge(since));
    }
    if let Some(outcome) = filter.outcome {
        query = query.filter(audit_events::outcome.eq(outcome));
    }
    if let Some(after) = &page.after {
        let cursor: i64 = audit_events::table
            .filter(audit_events::id.eq(after))
            .filter(audit_events::environment_id.eq(env))
            .select(audit_events::seq)
            .first(conn)
            .optional()?
            .ok_or(StorageError::NotFound)?;
        query = query.filter(audit_events::seq.lt(cursor));
    }
    Ok(Page::from_overfetch(query.load(conn)?, page.limit))
}

/// Every environment's events after `after_seq` (and, with `since`, created
/// at or after it), oldest first, at most `limit`: one batch of
/// `trusec audit export`, which resumes from the last seq it wrote.
///
/// # Errors
/// Backend failures.
pub fn export_batch(
    conn: &mut DbConnection,
    after_seq: i64,
    since: Option<NaiveDateTime>,
    limit: i64,
) -> Result<Vec<AuditRow>, StorageError> {
    let mut query = audit_events::table
        .filter(audit_events::seq.gt(after_seq))
        .select(AuditRow::as_select())
        .order(audit_events::seq.asc())
        .limit(limit)
        .into_boxed();
    if let Some(since) = since {
        query = query.filter(audit_events::created_at.ge(since));
    }
    Ok(query.load(conn)?)
}
