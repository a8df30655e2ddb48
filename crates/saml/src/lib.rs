//! TruSec SAML 2.0 identity provider: IdP metadata, SP-initiated SSO over
//! the HTTP-Redirect and HTTP-POST bindings, IdP-initiated SSO, and signed
//! assertions (RSA-SHA256, exclusive C14N) through samael and xmlsec. No
//! XML signing or canonicalisation is written here.

pub mod authn_context;
pub mod error;
pub mod idp_key;
pub mod metadata;
pub mod profiles;
pub mod request;
pub mod response;
mod routes;
pub mod signature_policy;
pub mod slo;
pub mod sp_config;
pub mod sp_metadata;
#[cfg(test)]
mod test_support;
pub mod xml_work;

pub use error::SamlError;
pub use routes::sso::{TestAssertion, TestAttribute, test_assertion};

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
    /// Every XML parse, signature check and signing runs here.
    pub xml: xml_work::XmlWork,
    /// The last signed metadata document, for the key set it was made for.
    signed_metadata: LastSigned,
}

/// One signed document and what it was made from; replaced, never grown.
#[derive(Clone, Default)]
struct LastSigned(Arc<std::sync::Mutex<Option<Signed>>>);

/// What a signed document was made for (its signer's inputs), and the document.
type Signed = (String, Arc<str>);

impl LastSigned {
    fn get(&self, made_for: &str) -> Option<Arc<str>> {
        let last = self.0.lock().ok()?;
        last.as_ref()
            .filter(|(key, _)| key == made_for)
            .map(|(_, body)| body.clone())
    }

    fn put(&self, made_for: String, body: Arc<str>) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some((made_for, body));
        }
    }
}

impl SamlState {
    /// The IdP of `ui`'s environment.
    /// `xml` is the process's one XML pool, shared by every environment's
    /// IdP so that its bound holds for the process.
    /// `name_id_secret` is the deployment's NameID secret
    /// (`storage::deployment_secrets`), which outlives master-key rotations.
    pub fn new(
        ui: UiState,
        keys: Arc<idp_key::IdpKeys>,
        name_id_secret: &[u8; 32],
        xml: xml_work::XmlWork,
    ) -> Self {
        // Before any request: no XML this process handles may name a URI
        // it would resolve (the pool refuses all work if this failed).
        let _ = xml_work::locked_down();
        Self {
            issuer: ui.env.issuer.clone(),
            ui,
            keys,
            persistent_secret: *name_id_secret,
            xml,
            signed_metadata: LastSigned::default(),
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
    ///
    /// # Errors
    /// When the HMAC cannot be computed ([`Self::persistent_name_id`]).
    pub fn session_index(&self, sp_entity_id: &str, session_id: &str) -> Result<String, SamlError> {
        let id = self.persistent_name_id(&format!("session-index\0{sp_entity_id}"), session_id)?;
        Ok(format!("_{id}"))
    }

    /// A transient NameID (SAML core §8.3.8): opaque, different for every
    /// SP and every login session, so it lasts as long as the session and
    /// single logout can still name it.
    ///
    /// # Errors
    /// When the HMAC cannot be computed ([`Self::persistent_name_id`]).
    pub fn transient_name_id(
        &self,
        sp_entity_id: &str,
        session_id: &str,
    ) -> Result<String, SamlError> {
        self.persistent_name_id(&format!("transient\0{sp_entity_id}"), session_id)
    }

    /// A persistent NameID (SAML core §8.3.7): HMAC-SHA256 of the SP and the
    /// user, so the same user looks the same to one SP and unrelated to two.
    ///
    /// # Errors
    /// When OpenSSL cannot compute the HMAC: an internal error, never a
    /// fallback value (an empty MAC would give every user the same NameID).
    pub fn persistent_name_id(
        &self,
        sp_entity_id: &str,
        user_id: &str,
    ) -> Result<String, SamlError> {
        use base64::Engine;
        let mac = self.mac(&[sp_entity_id.as_bytes(), b"\0", user_id.as_bytes()])?;
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac))
    }

    /// HMAC-SHA-256 under the deployment's NameID secret.
    fn mac(&self, parts: &[&[u8]]) -> Result<Vec<u8>, SamlError> {
        trusec_storage::secrets::hmac_sha256(&self.persistent_secret, parts)
            .map_err(|e| SamlError::internal(&e))
    }

    /// The scope of `subject-id` and `pairwise-id` values: the issuer's
    /// host, lower case (Subject Identifier Attributes profile §3.2: ASCII
    /// letters, digits, hyphen and period, an SP checks it against the
    /// `shibmd:Scope` it trusts for this IdP). The issuer was parsed as an
    /// http(s) URL with a host at start-up.
    fn identifier_scope(&self) -> String {
        url::Url::parse(&self.issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .unwrap_or_default()
    }

    /// A scoped identifier: the lower-case hex of an HMAC of `parts`
    /// (letters and digits only, 64 of the 127 characters allowed), `@`,
    /// the scope (profile §3.2).
    fn scoped_identifier(&self, parts: &[&[u8]]) -> Result<String, SamlError> {
        let hex = hex::encode(self.mac(parts)?);
        Ok(format!("{hex}@{}", self.identifier_scope()))
    }

    /// `subject-id` (profile §3.3): the user, the same to every SP of this IdP.
    ///
    /// # Errors
    /// When the HMAC cannot be computed.
    pub fn subject_id(&self, user_id: &str) -> Result<String, SamlError> {
        self.scoped_identifier(&[b"subject-id\0", user_id.as_bytes()])
    }

    /// `pairwise-id` (profile §3.4): the user, different for every SP.
    ///
    /// # Errors
    /// When the HMAC cannot be computed.
    pub fn pairwise_id(&self, sp_entity_id: &str, user_id: &str) -> Result<String, SamlError> {
        self.scoped_identifier(&[
            b"pairwise-id\0",
            sp_entity_id.as_bytes(),
            b"\0",
            user_id.as_bytes(),
        ])
    }
}

/// The SAML routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    routes::configure(cfg);
}
