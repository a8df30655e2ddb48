//! Single logout bookkeeping: which service providers a login session has
//! signed in to (so logging out can tell them), and the chain of front-
//! channel messages that tells them one after another (SAML profiles
//! §4.4.3, by the HTTP-Redirect or HTTP-POST binding each SP registered).

use crate::metadata::xml_escape;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::time::Duration;
use trusec_storage::{EphemeralStore, StorageError, StoreKey, secrets};

/// As long as a login session can live.
const TTL: Duration = Duration::from_secs(24 * 3600);

/// A service provider this login session signed in to.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Participant {
    pub sp_id: String,
    pub environment_id: String,
    pub name_id: String,
    pub name_id_format: String,
    /// The SessionIndex this SP was given (opaque, different per SP).
    pub session_index: String,
}

/// An SP-initiated logout to answer once the others are told.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Initiator {
    pub sp_id: String,
    pub environment_id: String,
    pub request_id: String,
    pub relay_state: Option<String>,
    /// Success, or PartialLogout when no session could be found to end.
    pub status: String,
}

/// A logout in progress.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Chain {
    pub session_id: String,
    pub remaining: Vec<Participant>,
    pub initiator: Option<Initiator>,
    /// A hosted-logout intent to finish with (where the browser goes last).
    pub intent: Option<String>,
    /// The LogoutRequest we wait on a response to: (request id, SP id, environment).
    pub awaiting: Option<(String, String, String)>,
}

/// Records that `participant` was given an assertion in this session, and
/// registers the after-logout step that will tell it about a logout. The
/// step's URL carries a random reference, never anything an SP has seen.
///
/// # Errors
/// Store or random-source failures.
pub async fn joined(
    state: &crate::SamlState,
    session_id: &str,
    participant: Participant,
) -> Result<(), StorageError> {
    let store = &state.core().store;
    store
        .put(
            &StoreKey::saml_session_index(&participant.sp_id, &participant.session_index),
            session_id.as_bytes(),
            TTL,
        )
        .await?;
    let key = StoreKey::saml_participants(session_id);
    let mut list: Vec<Participant> = store
        .get(&key)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    list.retain(|p| p.sp_id != participant.sp_id);
    list.push(participant);
    store.put(&key, &serde_json::to_vec(&list)?, TTL).await?;
    let reference = match store.get(&StoreKey::saml_slo_ref_of(session_id)).await? {
        Some(r) => String::from_utf8(r).map_err(StorageError::backend)?,
        None => {
            let r = secrets::generate_secret("").map_err(StorageError::backend)?;
            store
                .put(&StoreKey::saml_slo_ref_of(session_id), r.as_bytes(), TTL)
                .await?;
            store
                .put(&StoreKey::saml_slo_ref(&r), session_id.as_bytes(), TTL)
                .await?;
            r
        }
    };
    trusec_ui::after_logout::register(
        store,
        session_id,
        &state
            .env()
            .path(&format!("/saml/slo/propagate?session_ref={reference}")),
        TTL,
    )
    .await
}

/// The login session an SP knows by this SessionIndex.
///
/// # Errors
/// Store failures.
pub async fn session_for_index(
    store: &EphemeralStore,
    sp_id: &str,
    session_index: &str,
) -> Result<Option<String>, StorageError> {
    Ok(store
        .get(&StoreKey::saml_session_index(sp_id, session_index))
        .await?
        .and_then(|b| String::from_utf8(b).ok()))
}

/// How `sp_id` knows the session, if it signed in to it.
///
/// # Errors
/// Store failures.
pub async fn participant(
    store: &EphemeralStore,
    session_id: &str,
    sp_id: &str,
) -> Result<Option<Participant>, StorageError> {
    let list: Vec<Participant> = store
        .get(&StoreKey::saml_participants(session_id))
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    Ok(list.into_iter().find(|p| p.sp_id == sp_id))
}

/// Takes the participants of a session (they are told once).
///
/// # Errors
/// Store failures.
pub async fn take_participants(
    store: &EphemeralStore,
    session_id: &str,
) -> Result<Vec<Participant>, StorageError> {
    Ok(store
        .take(&StoreKey::saml_participants(session_id))
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default())
}

/// The session behind a `session_ref` (used once).
///
/// # Errors
/// Store failures.
pub async fn resolve_ref(
    store: &EphemeralStore,
    reference: &str,
) -> Result<Option<String>, StorageError> {
    if reference.is_empty()
        || reference.len() > 64
        || !reference.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Ok(None);
    }
    Ok(store
        .take(&StoreKey::saml_slo_ref(reference))
        .await?
        .and_then(|b| String::from_utf8(b).ok()))
}

/// Stores a chain; returns its id (the RelayState of our requests).
///
/// # Errors
/// Store or random-source failures.
pub async fn save_chain(store: &EphemeralStore, chain: &Chain) -> Result<String, StorageError> {
    let id = secrets::generate_secret("").map_err(StorageError::backend)?;
    store
        .put(
            &StoreKey::saml_slo_chain(&id),
            &serde_json::to_vec(chain)?,
            Duration::from_secs(600),
        )
        .await?;
    Ok(id)
}

/// Takes a chain: each response continues it once.
///
/// # Errors
/// Store failures.
pub async fn take_chain(store: &EphemeralStore, id: &str) -> Result<Option<Chain>, StorageError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Ok(None);
    }
    Ok(store
        .take(&StoreKey::saml_slo_chain(id))
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// The text of the first `SessionIndex` element of a (verified) message.
pub fn session_index_of(xml: &str) -> Option<String> {
    let start = xml.find("SessionIndex>")? + "SessionIndex>".len();
    let rest = xml.get(start..)?;
    let end = rest.find('<')?;
    let value = rest.get(..end)?.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// What every logout message we send starts with.
pub struct Header<'a> {
    pub id: &'a str,
    pub now: &'a str,
    pub destination: &'a str,
    pub issuer: &'a str,
    /// A signature template (HTTP-POST binding, placed after `Issuer` as
    /// the schema orders it), or empty (HTTP-Redirect signs the query).
    pub signature: &'a str,
}

/// A LogoutRequest (SAML core §3.7.1).
pub fn logout_request(h: &Header<'_>, p: &Participant) -> String {
    format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{}" Version="2.0" IssueInstant="{}" Destination="{}"><saml:Issuer>{}</saml:Issuer>{}<saml:NameID Format="{}">{}</saml:NameID><samlp:SessionIndex>{}</samlp:SessionIndex></samlp:LogoutRequest>"#,
        xml_escape(h.id),
        xml_escape(h.now),
        xml_escape(h.destination),
        xml_escape(h.issuer),
        h.signature,
        xml_escape(&p.name_id_format),
        xml_escape(&p.name_id),
        xml_escape(&p.session_index),
    )
}

/// A LogoutResponse (SAML core §3.7.2).
pub fn logout_response(h: &Header<'_>, in_response_to: &str, status: &str) -> String {
    format!(
        r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{}" Version="2.0" IssueInstant="{}" Destination="{}" InResponseTo="{}"><saml:Issuer>{}</saml:Issuer>{}<samlp:Status><samlp:StatusCode Value="{}"/></samlp:Status></samlp:LogoutResponse>"#,
        xml_escape(h.id),
        xml_escape(h.now),
        xml_escape(h.destination),
        xml_escape(in_response_to),
        xml_escape(h.issuer),
        h.signature,
        xml_escape(status),
    )
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// An HTTP-Redirect binding URL carrying `message` (`SAMLRequest` or
/// `SAMLResponse`), signed RSA-SHA256 with the IdP key over the exact query
/// (bindings §3.4.4.1).
///
/// # Errors
/// Compression or signing failures.
pub fn redirect_url(
    endpoint: &str,
    param: &str,
    xml: &str,
    relay_state: Option<&str>,
    key_der: &[u8],
) -> Result<String, openssl::error::ErrorStack> {
    let mut deflater =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed = deflater
        .write_all(xml.as_bytes())
        .and_then(|()| deflater.finish())
        .unwrap_or_default();
    let mut query = format!("{param}={}", enc(&STANDARD.encode(compressed)));
    if let Some(r) = relay_state {
        query.push_str(&format!("&RelayState={}", enc(r)));
    }
    query.push_str(&format!("&SigAlg={}", enc(crate::request::SIG_RSA_SHA256)));
    let rsa = openssl::rsa::Rsa::private_key_from_der(key_der)?;
    let pkey = openssl::pkey::PKey::from_rsa(rsa)?;
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey)?;
    signer.update(query.as_bytes())?;
    let signature = signer.sign_to_vec()?;
    query.push_str(&format!("&Signature={}", enc(&STANDARD.encode(signature))));
    let sep = if endpoint.contains('?') { '&' } else { '?' };
    Ok(format!("{endpoint}{sep}{query}"))
}
