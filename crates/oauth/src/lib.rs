//! TruSec OAuth 2.0 / OpenID Connect: clients, signing keys, JWTs, and the
//! protocol endpoints (`/oauth/*`, discovery, JWKS).
//!
//! oxide-auth supplies the protocol primitive it is good at: PKCE
//! challenge encoding and verification. Scopes are parsed into the storage
//! crate's `ScopeSet`, which client rows hold too; redirect URIs are
//! compared as exact strings. The flows themselves are written against our
//! async storage (oxide-auth's endpoint traits are synchronous and its token
//! response has fixed fields, so OIDC, refresh families and the leeway need
//! our own handlers; see the project's crate notes).

pub mod client_auth;
pub mod client_document;
pub mod client_keys;
pub mod client_mac;
pub mod client_metadata;
pub mod crypto;
pub mod dpop;
pub mod error;
pub mod fetch;
pub mod first_party;
pub mod form;
pub mod issue;
pub mod jwt;
pub mod keys;
pub mod remote_jwks;
pub mod resources;
mod routes;
pub mod scopes;

pub use error::OAuthError;
pub use keys::Keyring;
pub use routes::userinfo::released_claims;

use actix_web::web;
use std::sync::Arc;
use std::time::Duration;
use trusec_storage::Core;
use trusec_ui::UiState;

/// The contract's default absolute lifetime of a refresh-token family.
pub const DEFAULT_REFRESH_FAMILY_LIFETIME: Duration = Duration::from_secs(90 * 86_400);

/// The default lifetime of a device code (RFC 8628 §3.2 `expires_in`).
pub const DEFAULT_DEVICE_CODE_TTL: Duration = Duration::from_secs(600);

/// The default lifetime of a pushed authorization request (RFC 9126 §2.2
/// `expires_in`: short; the RFC's example is 60 seconds).
pub const DEFAULT_PAR_LIFETIME: Duration = Duration::from_secs(60);

/// Pushed authorization requests (RFC 9126).
#[derive(Clone, Copy, Debug)]
pub struct ParSettings {
    /// How long a request_uri may be used (§2.2 `expires_in`).
    pub lifetime: Duration,
    /// Every client must push its authorization requests (§5
    /// `require_pushed_authorization_requests`).
    pub required: bool,
}

impl Default for ParSettings {
    fn default() -> Self {
        Self {
            lifetime: DEFAULT_PAR_LIFETIME,
            required: false,
        }
    }
}

/// Protocol settings (the server derives them from its own).
#[derive(Clone, Debug)]
pub struct OAuthSettings {
    pub issuer: String,
    pub access_token_ttl: Duration,
    pub id_token_ttl: Duration,
    /// A refresh token unused this long expires (sliding, per token).
    pub refresh_token_ttl: Duration,
    /// Absolute: a refresh family ends this long after it started, however
    /// often it rotated (contract: default 90 days).
    pub refresh_family_lifetime: Duration,
    pub code_ttl: Duration,
    /// RFC 8628 §3.2 `expires_in`: how long a device code and its user code
    /// live.
    pub device_code_ttl: Duration,
    pub open_registration: bool,
    /// How far ahead a client assertion's `exp` may be (RFC 7523 §3 point
    /// 4 lets the server bound it); a leeway is added.
    pub client_assertion_max_lifetime: Duration,
    pub par: ParSettings,
    /// The one outbound HTTP client and its cache (`jwks_uri`, client ID
    /// metadata documents), shared by every environment's state.
    pub fetcher: fetch::Fetcher,
    /// `client_id`s that are https URLs resolve to the metadata document
    /// there ([`client_document`]).
    pub client_id_metadata_documents: bool,
    /// DPoP (RFC 9449): the proof window and whether nonces are required.
    pub dpop: dpop::DpopSettings,
}

impl OAuthSettings {
    pub fn new(issuer: &str) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            access_token_ttl: Duration::from_secs(900),
            id_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(30 * 86_400),
            refresh_family_lifetime: DEFAULT_REFRESH_FAMILY_LIFETIME,
            // RFC 6749 §4.1.2: a maximum of 10 minutes is recommended; one is plenty.
            code_ttl: Duration::from_secs(60),
            device_code_ttl: DEFAULT_DEVICE_CODE_TTL,
            open_registration: false,
            client_assertion_max_lifetime: Duration::from_secs(300),
            par: ParSettings::default(),
            fetcher: fetch::Fetcher::default(),
            client_id_metadata_documents: true,
            dpop: dpop::DpopSettings::default(),
        }
    }

    /// [`Self::refresh_family_lifetime`] for date arithmetic.
    pub fn refresh_family_lifetime(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::from_std(self.refresh_family_lifetime).unwrap_or(chrono::TimeDelta::MAX)
    }

    /// Retired signing keys stay published this long after rotation.
    pub fn longest_token_lifetime(&self) -> Duration {
        self.access_token_ttl.max(self.id_token_ttl) + Duration::from_secs(300)
    }
}

/// What the protocol endpoints of one environment share: the core (through
/// the hosted pages' state, which the authorize flow hands the browser to,
/// and which names the environment) and what is OAuth's own: the
/// environment's signing keyring, the protocol settings (`issuer` is the
/// environment's), the pre-serialised discovery documents.
#[derive(Clone)]
pub struct OAuthState {
    pub ui: UiState,
    pub keyring: Arc<Keyring>,
    pub settings: Arc<OAuthSettings>,
    discovery: Arc<routes::discovery::Documents>,
}

impl OAuthState {
    /// The authorization server of `ui`'s environment: its issuer is that
    /// environment's (whatever `settings` said), `keyring` must be its keys.
    pub fn new(ui: UiState, keyring: Arc<Keyring>, mut settings: OAuthSettings) -> Self {
        settings.issuer.clone_from(&ui.env.issuer);
        let discovery = Arc::new(routes::discovery::Documents::build(&settings));
        Self {
            ui,
            keyring,
            settings: Arc::new(settings),
            discovery,
        }
    }

    pub fn core(&self) -> &Core {
        &self.ui.core
    }

    /// The environment this authorization server serves.
    pub fn env(&self) -> &trusec_ui::Environment {
        &self.ui.env
    }

    pub fn now_secs(&self) -> i64 {
        self.core().clock.now().timestamp()
    }
}

/// The protocol routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    routes::configure(cfg);
}

/// RFC 8414 §3.1: the metadata of an issuer with a path is also at
/// `/.well-known/oauth-authorization-server{path}` on the host's root.
pub fn configure_issuer_metadata(cfg: &mut web::ServiceConfig, state: OAuthState) {
    let path = format!(
        "/.well-known/oauth-authorization-server{}",
        state.env().base_path
    );
    cfg.service(
        web::resource(path)
            .app_data(web::Data::new(state))
            .route(web::get().to(routes::discovery::oauth)),
    );
}

/// The issuer a JWT claims (`iss`), read without verifying anything: only
/// to pick which environment's keys and issuer then verify it.
pub fn claimed_issuer(token: &str) -> Option<String> {
    jwt::claimed_issuer(token)
}

/// Verifies a bearer access token of ours for this server itself and
/// checks it was not revoked; for resource endpoints outside this crate
/// (`/v1/users/me`, `/v1`).
///
/// # Errors
/// `invalid_token` for anything but a live access token of this server
/// whose audience is this server (never one for a registered API).
pub async fn verify_bearer(
    state: &OAuthState,
    token: &str,
) -> Result<jwt::AccessClaims, OAuthError> {
    issue::verify_own_access_token(state, token).await
}
