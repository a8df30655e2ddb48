//! A browser's trip through the hosted pages on behalf of a protocol
//! request: which environment and app, what to consent to, and where to go
//! back to. Lives in the ephemeral store for ten minutes.

use crate::Environment;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use trusec_storage::{EphemeralStore, StorageError, StoreKey, secrets};

pub const TTL: Duration = Duration::from_secs(600);

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Interaction {
    pub id: String,
    pub environment_id: String,
    /// The path prefix of that environment's endpoints (`/env/NAME`, or
    /// empty for live): the hosted pages it goes through are its own.
    #[serde(default)]
    pub base_path: String,
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    /// For a client that published its own metadata at a URL, that URL's
    /// host: the consent page shows it beside the name.
    #[serde(default)]
    pub client_host: Option<String>,
    /// Scopes to show on the consent page.
    pub scopes: Vec<String>,
    /// Words for scopes the protocol knows better than
    /// [`crate::pages::describe_scope`] (an API resource's own scopes).
    #[serde(default)]
    pub scope_descriptions: std::collections::BTreeMap<String, String>,
    pub login_hint: Option<String>,
    /// The user must type their password even if a session exists
    /// (`prompt=login`, `max_age` exceeded, SAML `ForceAuthn`).
    pub force_login: bool,
    /// Set once the user has signed in during this interaction.
    pub logged_in_session: Option<String>,
    /// `Some(true)` approved, `Some(false)` denied, `None` not asked yet.
    pub consent: Option<bool>,
    /// The login session that made the consent decision: a decision counts
    /// only for the browser that made it, so a link to an approved
    /// interaction is worthless to anyone else.
    #[serde(default)]
    pub consent_session: Option<String>,
    /// Where the protocol continues (a path of ours).
    pub return_to: String,
    /// The protocol's own state (the parsed authorization request).
    pub payload: serde_json::Value,
}

impl Interaction {
    /// A new interaction of `env` with an unguessable id; it returns to
    /// `return_to_prefix` (a path of `env`, without its base) plus the id.
    ///
    /// # Errors
    /// When the random source fails.
    pub fn new(
        env: &Environment,
        return_to_prefix: &str,
        payload: serde_json::Value,
    ) -> Result<Self, StorageError> {
        let id = secrets::generate_secret("").map_err(StorageError::backend)?;
        Ok(Self {
            return_to: format!("{}{id}", env.path(return_to_prefix)),
            id,
            environment_id: env.id.clone(),
            base_path: env.base_path.clone(),
            client_id: None,
            client_name: None,
            client_host: None,
            scopes: Vec::new(),
            scope_descriptions: std::collections::BTreeMap::new(),
            login_hint: None,
            force_login: false,
            logged_in_session: None,
            consent: None,
            consent_session: None,
            payload,
        })
    }

    /// Stores (or overwrites) this interaction.
    ///
    /// # Errors
    /// Store failures.
    pub async fn save(&self, store: &EphemeralStore) -> Result<(), StorageError> {
        store
            .put(
                &StoreKey::interaction(&self.id),
                &serde_json::to_vec(self)?,
                TTL,
            )
            .await
    }

    /// Loads an interaction of `env`; an unknown, expired or malformed id
    /// is `None`, and so is another environment's: an endpoint serves only
    /// its own environment's sign-ins (contract).
    ///
    /// # Errors
    /// Store failures.
    pub async fn load(
        store: &EphemeralStore,
        env: &Environment,
        id: &str,
    ) -> Result<Option<Self>, StorageError> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(None);
        }
        Ok(store
            .get(&StoreKey::interaction(id))
            .await?
            .and_then(|bytes| serde_json::from_slice::<Self>(&bytes).ok())
            .filter(|i| i.environment_id == env.id))
    }

    /// Ends an interaction (its outcome has been acted on).
    ///
    /// # Errors
    /// Store failures.
    pub async fn finish(&self, store: &EphemeralStore) -> Result<(), StorageError> {
        store.delete(&[StoreKey::interaction(&self.id)]).await
    }

    /// `/login?interaction=…` of its environment.
    pub fn login_url(&self) -> String {
        format!("{}/login?interaction={}", self.base_path, self.id)
    }

    /// `/second-factor?interaction=…` of its environment: step-up of the
    /// browser's session ([`crate::step_up`]).
    pub fn second_factor_url(&self) -> String {
        format!("{}/second-factor?interaction={}", self.base_path, self.id)
    }

    /// `/account/security?interaction=…` of its environment: a user the
    /// MFA policy requires a second factor of adds one, then goes on.
    pub fn enrol_url(&self) -> String {
        format!(
            "{}/account/security?interaction={}",
            self.base_path, self.id
        )
    }

    /// `/consent?interaction=…` of its environment.
    pub fn consent_url(&self) -> String {
        format!("{}/consent?interaction={}", self.base_path, self.id)
    }
}
