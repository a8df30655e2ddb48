//! TruSec SAML 2.0 identity provider: IdP metadata, SP-initiated SSO over
//! the HTTP-Redirect and HTTP-POST bindings, IdP-initiated SSO, and signed
//! assertions (RSA-SHA256, exclusive C14N) through samael and xmlsec. No
//! XML signing or canonicalisation is written here.

pub mod error;
pub mod idp_key;
pub mod metadata;
pub mod request;
pub mod response;
mod routes;
pub mod slo;
pub mod sp_config;
pub mod sp_metadata;
#[cfg(test)]
mod test_support;

pub use error::SamlError;

use actix_web::web;
use std::sync::Arc;
use trusec_ui::UiState;

/// What the SAML endpoints of one environment share: each environment is
/// its own IdP, with its own entity id, key and certificate.
#[derive(Clone)]
pub struct SamlState {
    /// The hosted pages of the same environment (`ui.env`).
    pub ui: UiState,
    /// This environment's IdP key.
    pub keys: Arc<idp_key::IdpKeys>,
    /// The environment's issuer; its IdP entity id is `{issuer}/saml/metadata`.
    pub issuer: String,
    /// Derives persistent NameIDs: stable per SP and user, opaque to both.
    persistent_secret: [u8; 32],
}

impl SamlState {
    /// The IdP of `ui`'s environment.
    pub fn new(ui: UiState, keys: Arc<idp_key::IdpKeys>, master_key: &[u8; 32]) -> Self {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"trusec saml persistent nameid v1\0");
        h.update(master_key);
        Self {
            issuer: ui.env.issuer.clone(),
            ui,
            keys,
            persistent_secret: h.finalize().into(),
        }
    }

    pub fn core(&self) -> &trusec_storage::Core {
        &self.ui.core
    }

    pub fn entity_id(&self) -> String {
        format!("{}/saml/metadata", self.issuer)
    }

    /// The environment this IdP serves.
    pub fn env(&self) -> &trusec_ui::Environment {
        &self.ui.env
    }

    /// The SessionIndex an SP sees for a login session: opaque and
    /// different for every SP, so SPs cannot link users through it.
    pub fn session_index(&self, sp_entity_id: &str, session_id: &str) -> String {
        format!(
            "_{}",
            self.persistent_name_id(&format!("session-index\0{sp_entity_id}"), session_id)
        )
    }

    /// A transient NameID (SAML core §8.3.8): opaque, different for every
    /// SP and every login session, so it lasts as long as the session and
    /// single logout can still name it.
    pub fn transient_name_id(&self, sp_entity_id: &str, session_id: &str) -> String {
        self.persistent_name_id(&format!("transient\0{sp_entity_id}"), session_id)
    }

    /// A persistent NameID (SAML core §8.3.7): HMAC-SHA256 of the SP and the
    /// user, so the same user looks the same to one SP and unrelated to two.
    pub fn persistent_name_id(&self, sp_entity_id: &str, user_id: &str) -> String {
        use base64::Engine;
        let key = openssl::pkey::PKey::hmac(&self.persistent_secret);
        let mac = key.and_then(|key| {
            let mut signer =
                openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)?;
            signer.update(sp_entity_id.as_bytes())?;
            signer.update(b"\0")?;
            signer.update(user_id.as_bytes())?;
            signer.sign_to_vec()
        });
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.unwrap_or_default())
    }
}

/// The SAML routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    routes::configure(cfg);
}
