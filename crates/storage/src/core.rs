//! The one context every surface shares: storage, the clock, the audit log,
//! metrics, rate limiting and the password-hashing pool. It is built once at
//! start-up and handed to each protocol state (`UiState`, `OAuthState`,
//! `SamlState`, the server's `AppState`), which add only what is theirs.
//!
//! Each cross-cutting concern has its one owner here:
//! - [`Core::audit`] records an event and counts it in metrics, under the
//!   audit key the writer holds ([`Core::anchor_audit`],
//!   [`Core::verify_audit`] use the same one);
//! - [`Core::refused`] counts every refusal of an anonymous request (rate
//!   limits, SAML messages) and audits it once per address, reason and
//!   minute;
//! - [`Core::limit`] (and [`Core::reserve`]/[`Core::refund`], for limits
//!   that count failures only) owns the store keys of every budget, the
//!   per-subject multipliers ([`Family::multiplier`]), the fail-open policy,
//!   the metric, the refusal (through [`Core::refused`]) and (through
//!   [`Limited::retry_after_secs`]) the one `Retry-After` rule;
//! - [`Core::hash_password`]/[`Core::verify_password`] run Argon2 on the
//!   fixed pool of [`crate::hashing`] (~19 MiB and a core per thread, a
//!   bounded queue, [`crate::hashing::Busy`] beyond it);
//! - API-key authentication lives in [`crate::authn`].

use crate::audit::{
    self, Actor, Anchoring, AuditLog, ChainReport, ClientInfo, EventType, Head, NewAuditEvent,
    Pruning,
};
use crate::cache::{Cached, Parsed};
use crate::clients::{self, ClientRow};
use crate::ephemeral::{EphemeralStore, StoreKey};
use crate::error::StorageError;
use crate::hashing::HashPool;
use crate::metrics::Metrics;
use crate::rate_limit::{Decision, Family, Limited, RateLimits, Subject};
use crate::refusal::RefusalReason;
use crate::{Clock, Db};
use chrono::NaiveDateTime;
use std::sync::Arc;
use std::time::Duration;

/// Until start-up says otherwise ([`Core::with_access_token_ttl`]): the
/// OAuth default.
const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(900);
/// Decoded clients kept beside the cache (`cache::Parsed`): a few MiB at most.
const MAX_PARSED_CLIENTS: usize = 4096;
/// The bound of the per-instance budgets used while the shared store is
/// unreachable (`Core::reserve`): a few hundred thousand budgets.
const LOCAL_LIMITS_MAX_BYTES: usize = 16 * 1024 * 1024;

/// Rate limiting while the shared store cannot be reached: the same
/// budgets, kept in this process (so per instance, never none), and
/// whether the limiter is in that state now (one log line per change).
#[derive(Clone)]
struct LocalLimits {
    store: EphemeralStore,
    degraded: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Clone)]
pub struct Core {
    pub db: Db,
    pub store: EphemeralStore,
    pub clock: Clock,
    audit: AuditLog,
    metrics: Arc<Metrics>,
    limits: RateLimits,
    hashing: HashPool,
    /// OAuth clients as last decoded from their cache entries.
    clients: Arc<Parsed<ClientRow>>,
    access_token_ttl: Duration,
    local_limits: LocalLimits,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("db", &self.db.backend_name())
            .field("store", &self.store.backend_name())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Core {
    /// `hashing` runs every password hash (`HashPool::start`).
    pub fn new(
        db: Db,
        store: EphemeralStore,
        clock: Clock,
        audit: AuditLog,
        limits: RateLimits,
        hashing: HashPool,
    ) -> Self {
        let local_limits = LocalLimits {
            store: EphemeralStore::memory_bounded(clock.clone(), LOCAL_LIMITS_MAX_BYTES),
            degraded: Arc::default(),
        };
        Self {
            db,
            store,
            clock,
            audit,
            metrics: Arc::new(Metrics::new()),
            limits,
            hashing,
            clients: Arc::new(Parsed::new(MAX_PARSED_CLIENTS)),
            access_token_ttl: DEFAULT_ACCESS_TOKEN_TTL,
            local_limits,
        }
    }

    /// How long an access token lives, so that revoking what minted it
    /// (a refresh family) is remembered as long as the token could be
    /// used. The OAuth settings own the value; start-up passes it here.
    #[must_use]
    pub fn with_access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_token_ttl = ttl;
        self
    }

    pub fn access_token_ttl(&self) -> Duration {
        self.access_token_ttl
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Records an audit event, counts it, and waits for its commit.
    ///
    /// # Errors
    /// When the event cannot be committed: the caller must not report success.
    pub async fn audit(&self, event: NewAuditEvent) -> Result<(), StorageError> {
        self.metrics.audit_event(event.event_type);
        self.audit.record(event).await
    }

    /// Makes the audit chain ready for keyed appends (`audit::anchor`):
    /// on the first start with a key, the checkpoint after an unkeyed chain.
    ///
    /// # Errors
    /// Backend failures.
    pub async fn anchor_audit(&self) -> Result<Anchoring, StorageError> {
        let key = self.audit.key().clone();
        let now = self.clock.now_naive();
        self.db
            .run(move |conn| audit::anchor(conn, &key, now))
            .await
    }

    /// Walks the whole audit chain under the audit key
    /// (`audit::verify_chain`), checking that it still holds `expect`.
    ///
    /// # Errors
    /// Backend failures.
    pub async fn verify_audit(&self, expect: Option<Head>) -> Result<ChainReport, StorageError> {
        let key = self.audit.key().clone();
        self.db
            .run(move |conn| audit::verify_chain(conn, &key, expect.as_ref()))
            .await
    }

    /// Deletes the audit events older than `before` once they verify
    /// (`audit::prune`), leaving a keyed record of where the chain now
    /// starts.
    ///
    /// # Errors
    /// Backend failures.
    pub async fn prune_audit(&self, before: NaiveDateTime) -> Result<Pruning, StorageError> {
        let key = self.audit.key().clone();
        let now = self.clock.now_naive();
        self.db
            .run(move |conn| audit::prune(conn, &key, before, now))
            .await
    }

    /// A refusal of an anonymous request: counted every time
    /// (`trusec_refusals_total{kind, reason}`), audited as `event` only the
    /// first time in a minute for its address (`event.ip`) and reason, so
    /// nobody can flood the audit chain with refusals (contract: a refusal
    /// that repeats is audited once). A store failure audits rather than
    /// drops; an audit failure is logged, and the request stays refused.
    pub async fn refused(&self, reason: RefusalReason, event: NewAuditEvent) {
        self.metrics.refused(reason);
        let first = self
            .store
            .put_if_absent(
                &StoreKey::refusal_audited(reason, event.ip.as_deref()),
                b"1",
                Duration::from_secs(60),
            )
            .await
            .unwrap_or(true);
        if !first {
            return;
        }
        if let Err(e) = self.audit(event).await {
            tracing::warn!(
                kind = reason.kind().as_str(),
                reason = reason.code(),
                error = %e,
                "could not audit a refusal"
            );
        }
    }

    /// One step of `family`'s budget for `subject`.
    ///
    /// Policy: while the shared store cannot be reached the same budgets
    /// are kept in this process (per instance, never none: losing Redis
    /// must take neither sign-in down nor the limits off), counted in
    /// `trusec_rate_limiter_unavailable_total{family}`, with one warning
    /// when it starts and one line when the store answers again. A refusal is counted
    /// (`trusec_rate_limited_total{family}`, and as every refusal in
    /// `trusec_refusals_total`) and audited as `rate_limit.exceeded` once
    /// per client address, family and minute ([`Self::refused`]), from the
    /// event `refusal` builds (its environment, actor and client).
    ///
    /// # Errors
    /// [`Limited`] when the budget is exhausted.
    pub async fn limit(
        &self,
        family: Family,
        subject: Subject<'_>,
        refusal: impl FnOnce() -> NewAuditEvent,
    ) -> Result<(), Limited> {
        self.reserve(family, &[subject], refusal).await
    }

    /// One step of `family`'s per-IP budget for a caller not identified
    /// yet (before authentication, or an anonymous request); a refusal is
    /// audited as anonymous, in no environment, with `client`.
    ///
    /// # Errors
    /// [`Limited`] when the address's budget is exhausted.
    pub async fn limit_ip(&self, family: Family, client: &ClientInfo) -> Result<(), Limited> {
        self.limit(family, Subject::Ip(client.ip.as_deref()), || {
            NewAuditEvent::new(EventType::RateLimitExceeded, None, Actor::anonymous())
                .client(client)
        })
        .await
    }

    /// One step of each of `subjects`' budgets, all or none: when one is
    /// exhausted the steps already taken are given back, and the refusal is
    /// counted and audited as in [`Self::limit`] (once, for the first
    /// exhausted budget).
    ///
    /// This is how a limit counts *failures* only: reserve before the work
    /// (so concurrent attempts cannot all slip past a check that spends
    /// nothing, as a peek-then-charge would let them), then [`Self::refund`]
    /// when the attempt succeeded.
    ///
    /// # Errors
    /// [`Limited`] when one budget is exhausted.
    pub async fn reserve(
        &self,
        family: Family,
        subjects: &[Subject<'_>],
        refusal: impl FnOnce() -> NewAuditEvent,
    ) -> Result<(), Limited> {
        let Some(limit) = self.limits.of(family) else {
            return Ok(());
        };
        for (taken, subject) in subjects.iter().enumerate() {
            let key = StoreKey::rate_limit(family, subject);
            let budget = family.budget(limit, subject);
            let decision = match self.store.rate_limit(&key, &budget).await {
                Ok(decision) => {
                    self.limiter_restored();
                    decision
                }
                Err(e) => {
                    self.metrics.rate_limiter_unavailable(family);
                    self.limiter_degraded(family, &e);
                    // The in-process store does not fail.
                    self.local_limits
                        .store
                        .rate_limit(&key, &budget)
                        .await
                        .unwrap_or(Decision::Allowed { remaining: 0 })
                }
            };
            match decision {
                Decision::Allowed { .. } => {}
                Decision::Limited { retry_after } => {
                    self.refund(family, subjects.get(..taken).unwrap_or_default())
                        .await;
                    self.metrics.rate_limited(family);
                    self.audit_refusal(family, refusal()).await;
                    return Err(Limited {
                        family,
                        retry_after,
                    });
                }
            }
        }
        Ok(())
    }

    /// The shared store failed a rate-limit step: one warning when the
    /// limiter starts keeping budgets in this process.
    fn limiter_degraded(&self, family: Family, e: &StorageError) {
        use std::sync::atomic::Ordering;
        if !self.local_limits.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                family = family.as_str(),
                error = %e,
                "the shared store is unreachable: rate limits are kept per instance until it answers again"
            );
        }
    }

    /// The shared store answered a rate-limit step: one line when it is
    /// back after an outage.
    fn limiter_restored(&self) {
        use std::sync::atomic::Ordering;
        if self.local_limits.degraded.load(Ordering::Relaxed)
            && self.local_limits.degraded.swap(false, Ordering::Relaxed)
        {
            tracing::info!("the shared store answers again: rate limits are shared again");
        }
    }

    /// Gives back the step [`Self::reserve`] took from each of `subjects`'
    /// budgets, for an attempt that turned out not to count (a sign-in that
    /// succeeded). A store failure is logged: at worst the attempt stays
    /// counted.
    pub async fn refund(&self, family: Family, subjects: &[Subject<'_>]) {
        let Some(limit) = self.limits.of(family) else {
            return;
        };
        for subject in subjects {
            let key = StoreKey::rate_limit(family, subject);
            let budget = family.budget(limit, subject);
            if let Err(e) = self.store.rate_limit_refund(&key, &budget).await {
                // The step was taken from the per-instance budget then.
                tracing::debug!(family = family.as_str(), error = %e, "rate-limit step refunded per instance");
                if let Err(e) = self
                    .local_limits
                    .store
                    .rate_limit_refund(&key, &budget)
                    .await
                {
                    tracing::warn!(family = family.as_str(), error = %e, "could not refund a rate-limit step");
                }
            }
        }
    }

    /// A rate-limit refusal, as `rate_limit.exceeded` with its family,
    /// through [`Self::refused`] (once per address, family and minute).
    async fn audit_refusal(&self, family: Family, event: NewAuditEvent) {
        let mut event = event
            .failed()
            .data(serde_json::json!({"family": family.as_str()}));
        event.event_type = EventType::RateLimitExceeded;
        self.refused(RefusalReason::rate_limit(family), event).await;
    }

    /// The OAuth client `id` (of any environment: the caller holds it to
    /// its own), through the read-through cache (`Cached::client`, marked
    /// stale on every change), decoded once per cached version.
    ///
    /// # Errors
    /// Database failures.
    pub async fn client(&self, id: &str) -> Result<Option<Arc<ClientRow>>, StorageError> {
        let lookup = id.to_owned();
        self.store
            .read_through_parsed(&Cached::client(id), &self.clients, || async move {
                self.db.run(move |conn| clients::find(conn, &lookup)).await
            })
            .await
    }

    /// Hashes a password (Argon2id) on the hashing pool.
    ///
    /// # Errors
    /// [`StorageError::Busy`] when the pool's queue is full (503 with
    /// `Retry-After`); hashing failures.
    pub async fn hash_password(&self, password: String) -> Result<String, StorageError> {
        self.hashing.hash(password).await
    }

    /// Checks a password against a stored hash; with no hash (an unknown
    /// account), against a decoy, so both cost one Argon2 verification and
    /// timing does not tell whether an account exists.
    ///
    /// # Errors
    /// [`StorageError::Busy`] when the pool's queue is full: the attempt was
    /// not made, so it must not count as a failure.
    pub async fn verify_password(
        &self,
        password: String,
        phc: Option<String>,
    ) -> Result<bool, StorageError> {
        self.hashing.verify(password, phc).await
    }
}
