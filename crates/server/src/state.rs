//! What every `/v1` and operations handler shares: the core (storage, clock,
//! audit, metrics, rate limits, hashing), the server's settings, and the
//! protocol states.

use crate::settings::Settings;
use std::sync::Arc;
use trusec_storage::Core;

#[derive(Clone)]
pub struct AppState {
    pub core: Core,
    pub settings: Arc<Settings>,
    /// The OAuth/OIDC side: keyring, protocol settings.
    pub oauth: trusec_oauth::OAuthState,
    /// The SAML identity provider.
    pub saml: trusec_saml::SamlState,
}
