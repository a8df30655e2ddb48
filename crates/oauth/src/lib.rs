//! TruSec OAuth 2.0 / OpenID Connect: clients, signing keys, JWTs, and the
//! protocol endpoints (`/oauth/*`, discovery, JWKS).
//!
//! oxide-auth supplies the protocol primitives it is good at: PKCE
//! challenge encoding and verification, scope parsing, exact redirect-URI
//! values. The flows themselves are written against our async storage
//! (oxide-auth's endpoint traits are synchronous and its token response has
//! fixed fields, so OIDC, refresh families and the leeway need our own
//! handlers; see the project's crate notes).

pub mod client_auth;
pub mod client_metadata;
pub mod crypto;
pub mod error;
pub mod form;
pub mod issue;
pub mod jwt;
pub mod keys;
mod routes;
pub mod scopes;

pub use error::OAuthError;
pub use keys::Keyring;

use actix_web::web;
use std::sync::Arc;
use std::time::Duration;
use trusec_storage::audit::{AuditLog, NewAuditEvent};
use trusec_storage::rate_limit::{Decision, Limit};
use trusec_storage::{Clock, Db, EphemeralStore};
use trusec_ui::UiState;

/// Protocol settings (the server derives them from its own).
#[derive(Clone, Debug)]
pub struct OAuthSettings {
    pub issuer: String,
    pub access_token_ttl: Duration,
    pub id_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub code_ttl: Duration,
    pub open_registration: bool,
    pub token_limit: Option<Limit>,
    pub registration_limit: Option<Limit>,
}

impl OAuthSettings {
    pub fn new(issuer: &str) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            access_token_ttl: Duration::from_secs(900),
            id_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(30 * 86_400),
            // RFC 6749 §4.1.2: a maximum of 10 minutes is recommended; one is plenty.
            code_ttl: Duration::from_secs(60),
            open_registration: false,
            token_limit: None,
            registration_limit: None,
        }
    }

    /// Retired signing keys stay published this long after rotation.
    pub fn longest_token_lifetime(&self) -> Duration {
        self.access_token_ttl.max(self.id_token_ttl) + Duration::from_secs(300)
    }
}

/// What the protocol endpoints share.
#[derive(Clone)]
pub struct OAuthState {
    pub db: Db,
    pub store: EphemeralStore,
    pub clock: Clock,
    pub audit: AuditLog,
    pub keyring: Arc<Keyring>,
    pub settings: Arc<OAuthSettings>,
    pub ui: UiState,
    discovery: Arc<routes::discovery::Documents>,
}

impl OAuthState {
    pub fn new(ui: UiState, keyring: Arc<Keyring>, settings: OAuthSettings) -> Self {
        let discovery = Arc::new(routes::discovery::Documents::build(&settings));
        Self {
            db: ui.db.clone(),
            store: ui.store.clone(),
            clock: ui.clock.clone(),
            audit: ui.audit.clone(),
            keyring,
            settings: Arc::new(settings),
            ui,
            discovery,
        }
    }

    /// Records an audit event, waiting for its commit.
    ///
    /// # Errors
    /// `server_error` when it cannot be committed.
    pub async fn audit(&self, event: NewAuditEvent) -> Result<(), OAuthError> {
        self.audit
            .record(event)
            .await
            .map(|_| ())
            .map_err(OAuthError::from)
    }

    /// One GCRA step; a store outage lets the request through (logged).
    ///
    /// # Errors
    /// `temporarily_unavailable` (429) when limited.
    pub async fn rate_limit(
        &self,
        family: &str,
        limit: Option<Limit>,
        key: &str,
    ) -> Result<(), OAuthError> {
        let Some(limit) = limit else {
            return Ok(());
        };
        match self
            .store
            .rate_limit(&format!("rl:{family}:{key}"), &limit)
            .await
        {
            Ok(Decision::Allowed { .. }) => Ok(()),
            Ok(Decision::Limited { retry_after }) => Err(OAuthError::rate_limited(retry_after)),
            Err(e) => {
                tracing::warn!(error = %e, family, "rate limiter unavailable; allowing");
                Ok(())
            }
        }
    }

    pub fn now_secs(&self) -> i64 {
        self.clock.now().timestamp()
    }
}

/// The protocol routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    routes::configure(cfg);
}

/// Verifies a bearer access token of ours and checks it was not revoked;
/// for resource endpoints outside this crate (`/v1/users/me`, `/v1`).
///
/// # Errors
/// `invalid_token` for anything but a live access token of this server.
pub async fn verify_bearer(
    state: &OAuthState,
    token: &str,
) -> Result<jwt::AccessClaims, OAuthError> {
    issue::verify_live_access_token(state, token).await
}
