//! What every `/v1` and operations handler shares: the core (storage, clock,
//! audit, metrics, rate limits, hashing), the server's settings, and the
//! protocol states of every environment.

use crate::settings::Settings;
use std::sync::Arc;
use trusec_storage::Core;

#[derive(Clone)]
pub struct AppState {
    pub core: Core,
    pub settings: Arc<Settings>,
    /// The OAuth/OIDC side: keyring, protocol settings.
    pub oauth: trusec_oauth::OAuthState,
    /// Every environment's endpoints, live first.
    pub environments: Arc<Vec<EnvStates>>,
}

/// The protocol states of one environment: each environment is its own
/// issuer, so each has its own hosted pages, IdP key and entity id.
#[derive(Clone)]
pub struct EnvStates {
    pub ui: trusec_ui::UiState,
    pub saml: trusec_saml::SamlState,
}

impl EnvStates {
    pub fn env(&self) -> &trusec_ui::Environment {
        &self.ui.env
    }
}

impl AppState {
    /// The states of the environment with this id (`env_live`, …); `None`
    /// for an environment this process does not serve.
    pub fn environment(&self, id: &str) -> Option<&EnvStates> {
        self.environments.iter().find(|e| e.env().id == id)
    }
}
