//! TruSec hosted pages: `/login`, `/consent`, `/logout` and message pages,
//! server-rendered with askama, working without JavaScript.
//!
//! Protocol crates (OAuth, SAML) hand the browser here through an
//! [`Interaction`]: a short-lived record in the ephemeral store naming the
//! environment, the app, the scopes to consent to, and where to return. The
//! login session is a `sessions` row whose token sits in an `HttpOnly`,
//! `SameSite=Lax` cookie (`Secure` when the issuer is https).

pub mod cookies;
pub mod interaction;
pub mod login_session;
pub mod pages;
mod routes;

pub use interaction::Interaction;
pub use login_session::LoginSession;
pub use routes::logout::LogoutIntent;

use actix_web::web;
use std::sync::Arc;
use tokio::sync::Semaphore;
use trusec_storage::audit::{AuditLog, NewAuditEvent};
use trusec_storage::rate_limit::{Decision, Limit};
use trusec_storage::{Clock, Db, EphemeralStore};

/// What the hosted pages need.
#[derive(Clone)]
pub struct UiState {
    pub db: Db,
    pub store: EphemeralStore,
    pub clock: Clock,
    pub audit: AuditLog,
    /// Cookies get `Secure` when the issuer is https.
    pub secure_cookies: bool,
    /// Login attempts per client IP and per account.
    pub login_limit: Option<Limit>,
    /// Bounds concurrent Argon2 verifications (~19 MiB and a core each).
    pub hashing: Arc<Semaphore>,
}

impl UiState {
    /// One GCRA step; a store outage lets the request through (logged).
    pub async fn limited(&self, key: &str) -> Option<std::time::Duration> {
        let limit = self.login_limit?;
        match self.store.rate_limit(key, &limit).await {
            Ok(Decision::Allowed { .. }) => None,
            Ok(Decision::Limited { retry_after }) => Some(retry_after),
            Err(e) => {
                tracing::warn!(error = %e, "login rate limiter unavailable; allowing");
                None
            }
        }
    }

    /// Records an audit event, logging (not failing) when that is impossible:
    /// the pages answer people, who can do nothing about it.
    ///
    /// # Errors
    /// When the event could not be committed.
    pub async fn audit(&self, event: NewAuditEvent) -> Result<(), trusec_storage::StorageError> {
        self.audit.record(event).await.map(|_| ())
    }
}

/// Routes of the hosted pages and their stylesheet.
pub fn configure(cfg: &mut web::ServiceConfig) {
    routes::configure(cfg);
}
