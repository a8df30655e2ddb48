//! Passkey ceremonies (WebAuthn Level 3) through `webauthn-rs`: no CBOR,
//! COSE or attestation code of our own.
//!
//! - **Relying party per environment**: the RP id is the host of the
//!   environment's issuer and the one allowed origin is the issuer's origin
//!   (WebAuthn §5.1.3, §13.4.9), so an assertion made for another origin is
//!   refused. An issuer whose host is an IP address cannot be an RP id
//!   (§5.1.2, "valid domain"): passkeys are off then, and say so.
//! - **Ceremony state** (`webauthn-rs`' `danger-allow-state-serialisation`)
//!   is parked in the ephemeral store between the two requests of a
//!   ceremony, under the SHA-256 of a 256-bit token only the browser has,
//!   for [`TTL`], and *taken* (single use) when the answer comes: a
//!   replayed assertion finds no challenge to answer.
//! - **Answers are bounded** ([`MAX_CREDENTIAL_BYTES`]) and parsed into
//!   `webauthn-rs`' types; anything else is refused without a lookup.

use crate::{PageError, UiState};
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;
use trusec_storage::passkeys::PasskeyRow;
use trusec_storage::sessions::AuthMethod;
use trusec_storage::{StoreKey, secrets};
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
};

/// How long a ceremony waits for the authenticator (also the timeout the
/// browser is given).
pub(crate) const TTL: Duration = Duration::from_secs(300);
/// The largest answer of an authenticator we read: a registration with a
/// large attestation is a few kilobytes.
pub(crate) const MAX_CREDENTIAL_BYTES: usize = 16 * 1024;

/// The relying party of `state`'s environment.
///
/// # Errors
/// A refusal page when the issuer's host is not a domain name.
pub(crate) fn relying_party(state: &UiState) -> Result<Webauthn, PageError> {
    let issuer = Url::parse(&state.env.issuer).map_err(|_| off())?;
    let rp_id = issuer.domain().ok_or_else(off)?.to_owned();
    let origin = Url::parse(&issuer.origin().ascii_serialization()).map_err(|_| off())?;
    WebauthnBuilder::new(&rp_id, &origin)
        .map_err(|_| off())?
        .rp_name("TruSec")
        .timeout(TTL)
        .build()
        .map_err(|_| off())
}

/// Whether passkeys can be offered in this environment.
pub(crate) fn available(state: &UiState) -> bool {
    relying_party(state).is_ok()
}

fn off() -> PageError {
    PageError::refused(
        StatusCode::NOT_FOUND,
        "Passkeys are off",
        "Passkeys need this server's address (TRUSEC_ISSUER) to be a domain name.",
    )
}

/// A new ceremony token (256 bits) and the store key of its state.
pub(crate) fn new_token(key: fn(&str) -> StoreKey) -> Result<(String, StoreKey), PageError> {
    let token = secrets::generate_secret("").map_err(|e| PageError::internal(&e))?;
    let store_key = key(&secrets::hash_secret(&token));
    Ok((token, store_key))
}

/// The store key a token names; `None` for a malformed token.
pub(crate) fn key_of(token: &str, key: fn(&str) -> StoreKey) -> Option<StoreKey> {
    let ok =
        !token.is_empty() && token.len() <= 64 && token.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| key(&secrets::hash_secret(token)))
}

/// Parks a ceremony's state for [`TTL`].
pub(crate) async fn park<T: Serialize>(
    state: &UiState,
    key: &StoreKey,
    value: &T,
) -> Result<(), PageError> {
    let bytes = serde_json::to_vec(value).map_err(|e| PageError::internal(&e))?;
    Ok(state.core.store.put(key, &bytes, TTL).await?)
}

/// Takes a ceremony's state, once; `None` when it expired, was used, or
/// does not parse.
pub(crate) async fn take<T: DeserializeOwned>(
    state: &UiState,
    key: Option<StoreKey>,
) -> Result<Option<T>, PageError> {
    let Some(key) = key else {
        return Ok(None);
    };
    Ok(state
        .core
        .store
        .take(&key)
        .await?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

/// An authenticator's answer to a sign-in ceremony, if it is one.
pub(crate) fn assertion(json: &str) -> Option<PublicKeyCredential> {
    (json.len() <= MAX_CREDENTIAL_BYTES)
        .then(|| serde_json::from_str(json).ok())
        .flatten()
}

/// An authenticator's answer to a registration ceremony, if it is one.
pub(crate) fn attestation(json: &str) -> Option<RegisterPublicKeyCredential> {
    (json.len() <= MAX_CREDENTIAL_BYTES)
        .then(|| serde_json::from_str(json).ok())
        .flatten()
}

/// Asks the authenticator for a discoverable credential where it can make
/// one (WebAuthn §5.4.6 `residentKey: "preferred"`): signing in from the
/// e-mail field or the button names no account, so only a discoverable
/// passkey can answer it. `webauthn-rs` asks for `discouraged`; the
/// option is the browser's, not part of what is verified (§7.1 checks the
/// flags the authenticator reports, and `webauthn-rs` accepts both), so an
/// authenticator that cannot store one still registers a passkey usable as
/// the second step.
pub(crate) fn prefer_discoverable(options: &CreationChallengeResponse) -> serde_json::Value {
    let mut json = serde_json::to_value(options).unwrap_or_default();
    if let Some(public_key) = json.get_mut("publicKey").and_then(|v| v.as_object_mut()) {
        let selection = public_key
            .entry("authenticatorSelection")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(selection) = selection.as_object_mut() {
            selection.insert("residentKey".into(), "preferred".into());
            selection.insert("requireResidentKey".into(), false.into());
        }
    }
    json
}

/// The options of a ceremony for the page's script, with its token.
pub(crate) fn options(token: &str, options: &impl Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .json(serde_json::json!({"token": token, "options": options}))
}

/// The RFC 8176 method a verified assertion proves: `swk` for a synced
/// (backup-eligible, WebAuthn §6.1.3) passkey, `hwk` for one bound to its
/// device.
pub(crate) fn method(result: &AuthenticationResult) -> AuthMethod {
    if result.backup_eligible() {
        AuthMethod::Swk
    } else {
        AuthMethod::Hwk
    }
}

/// Records a verified use of `row`: the signature counter and backup
/// state `webauthn-rs` updated, and the time.
pub(crate) async fn used(
    state: &UiState,
    row: PasskeyRow,
    result: &AuthenticationResult,
) -> Result<(), PageError> {
    let mut passkey = row.passkey.0;
    passkey.update_credential(result);
    let now = state.core.clock.now_naive();
    Ok(state
        .core
        .db
        .run(move |conn| trusec_storage::passkeys::used(conn, &row.id, passkey, now))
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_or_malformed_answers_are_refused() {
        assert!(assertion("{}").is_none());
        assert!(assertion(&" ".repeat(MAX_CREDENTIAL_BYTES + 1)).is_none());
        assert!(attestation("not json").is_none());
    }

    #[test]
    fn tokens_are_checked_before_a_lookup() {
        assert!(key_of("", StoreKey::passkey_sign_in).is_none());
        assert!(key_of("a/b", StoreKey::passkey_sign_in).is_none());
        assert!(key_of("abc123", StoreKey::passkey_sign_in).is_some());
    }
}
