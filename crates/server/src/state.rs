//! What every handler shares: storage, the clock, the audit writer, settings.

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::settings::Settings;
use std::sync::Arc;
use tokio::sync::Semaphore;
use trusec_storage::audit::{AuditLog, NewAuditEvent};
use trusec_storage::rate_limit::{Decision, Limit};
use trusec_storage::{Clock, Db, EphemeralStore};

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub store: EphemeralStore,
    pub clock: Clock,
    pub audit: AuditLog,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    /// Bounds concurrent Argon2 hashes (~19 MiB and a core each) so logins
    /// cannot starve other traffic or memory.
    pub hashing: Arc<Semaphore>,
    /// The OAuth/OIDC side: keyring, protocol settings, hosted pages.
    pub oauth: trusec_oauth::OAuthState,
    /// The SAML identity provider.
    pub saml: trusec_saml::SamlState,
    /// The OpenAPI document, serialised once.
    pub openapi: Arc<crate::openapi::Rendered>,
}

impl AppState {
    /// Records an audit event and waits for it to be committed.
    ///
    /// # Errors
    /// When the event cannot be committed: the caller must not report success.
    pub async fn audit(&self, event: NewAuditEvent) -> Result<(), ApiError> {
        self.metrics.audit_event(event.event_type);
        self.audit.record(event).await?;
        Ok(())
    }

    /// One step of the `family` limit for `key`. A store outage lets the
    /// request through (logged and counted): losing Redis must not take the
    /// management API down with it.
    ///
    /// # Errors
    /// `RateLimited` when the limit is exhausted.
    pub async fn rate_limit(
        &self,
        family: &'static str,
        limit: Option<Limit>,
        key: &str,
    ) -> Result<(), ApiError> {
        let Some(limit) = limit else {
            return Ok(());
        };
        match self
            .store
            .rate_limit(&format!("rl:{family}:{key}"), &limit)
            .await
        {
            Ok(Decision::Allowed { .. }) => Ok(()),
            Ok(Decision::Limited { retry_after }) => {
                self.metrics.rate_limited(family);
                Err(ApiError::RateLimited { retry_after })
            }
            Err(e) => {
                tracing::warn!(family, error = %crate::error::ErrorChain(&e), "rate limiter unavailable; allowing request");
                Ok(())
            }
        }
    }

    /// Hashes a password off the async runtime, at most one per core at a time.
    ///
    /// # Errors
    /// When hashing fails.
    pub async fn hash_password(&self, password: String) -> Result<String, ApiError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| ApiError::internal(&e))?;
        tokio::task::spawn_blocking(move || trusec_storage::secrets::hash_password(&password))
            .await
            .map_err(|e| ApiError::internal(&e))?
            .map_err(|e| ApiError::internal(&e))
    }
}
