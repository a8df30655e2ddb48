//! TruSec hosted pages: `/login`, `/consent`, `/logout` and message pages,
//! server-rendered with askama, working without JavaScript.
//!
//! Protocol crates (OAuth, SAML) hand the browser here through an
//! [`Interaction`]: a short-lived record in the ephemeral store naming the
//! environment, the app, the scopes to consent to, and where to return. The
//! login session is a `sessions` row whose token sits in an `HttpOnly`,
//! cookie that is `SameSite=None; Secure` when the issuer is https and
//! `SameSite=Lax` over plain http (see [`cookies`]).

pub mod after_logout;
pub mod cookies;
pub mod environment;
pub mod error;
pub mod http;
pub mod interaction;
pub mod login_session;
pub mod pages;
mod passkey;
mod routes;
pub mod step_up;

pub use environment::Environment;
pub use error::PageError;
pub use interaction::Interaction;
pub use login_session::LoginSession;
pub use routes::logout::LogoutIntent;

use actix_web::web;
use trusec_storage::Core;

/// What the hosted pages need: the shared core, their own settings, and
/// the environment they serve (one `UiState` per environment).
#[derive(Clone, Debug)]
pub struct UiState {
    pub core: Core,
    /// Cookies get `Secure` when the issuer is https.
    pub secure_cookies: bool,
    pub env: std::sync::Arc<Environment>,
    /// The master key, which seals and opens TOTP secrets.
    pub seal_key: trusec_storage::sealed::SealKey,
}

/// Routes of the hosted pages and their stylesheet.
pub fn configure(cfg: &mut web::ServiceConfig) {
    routes::configure(cfg);
}
