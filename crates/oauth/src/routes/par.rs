//! `POST /oauth/par` (RFC 9126): a client pushes its authorization request
//! and gets a `request_uri` to send the browser to `/oauth/authorize` with.
//!
//! The client authenticates as at the token endpoint (§2, with its limits);
//! the request is checked exactly as `/oauth/authorize` checks one
//! ([`super::authorize::validate`]), and stored validated in the database
//! (`storage::pushed_requests`) under the SHA-256 of the request_uri's
//! random part, for this client and environment, until it expires.
//!
//! Strict single use: RFC 9126 §4 lets a server tolerate a reused
//! request_uri (a user reloading the page), but a request taken once is
//! gone here — the reload starts a new sign-in at the client, and nobody
//! who saw the URI can replay it.

use super::authorize::request::AuthzRequest;
use super::no_store;
use crate::OAuthState;
use crate::dpop::{self, Jkt};
use crate::error::OAuthError;
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use trusec_storage::StorageError;
use trusec_storage::clients::ClientRow;
use trusec_storage::pushed_requests::{self, NewPushedRequest};
use trusec_storage::secrets;

/// §2.2: the URN prefix of our request_uris (RFC 9126 registers it).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The random part: 43 symbols of 62, about 256 bits (§2.2 and RFC 6749
/// §10.10 want it unguessable).
const MAX_REFERENCE: usize = 64;

#[tracing::instrument(skip_all)]
pub async fn post(
    req: HttpRequest,
    state: Data<OAuthState>,
    body: Bytes,
) -> Result<HttpResponse, OAuthError> {
    let params = super::token::read_form(&req, &body)?;
    let (client, _) =
        super::token::authenticate(&state, &req, &params, crate::client_auth::Endpoint::Par)
            .await?;
    let mut request = super::authorize::validate(&state, &client.row, &params)
        .await
        .map_err(super::authorize::Refusal::into_error)?;
    request.dpop_jkt = dpop_binding(&state, &req, request.dpop_jkt).await?;
    let request_uri = store(&state, &client.row, request).await?;
    // §2.2: 201 Created.
    Ok(no_store(StatusCode::CREATED).json(serde_json::json!({
        "request_uri": request_uri,
        "expires_in": state.settings.par.lifetime.as_secs(),
    })))
}

/// RFC 9449 §10.1: a proof sent with the pushed request binds the code to
/// its key like `dpop_jkt` does; both must then name the same key.
async fn dpop_binding(
    state: &OAuthState,
    req: &HttpRequest,
    named: Option<Jkt>,
) -> Result<Option<Jkt>, OAuthError> {
    let url = crate::client_auth::Endpoint::Par.url(&state.settings.issuer);
    let proved = dpop::check(state, req, &url, None)
        .await
        .map_err(dpop::Refusal::at_token_endpoint)?;
    match (named, proved) {
        (Some(named), Some(proved)) if !named.matches(&proved) => Err(
            OAuthError::invalid_dpop_proof("dpop_jkt is not the key of the DPoP proof"),
        ),
        (Some(key), _) | (None, Some(key)) => Ok(Some(key)),
        (None, None) => Ok(None),
    }
}

/// Stores the validated request; returns its request_uri.
async fn store(
    state: &OAuthState,
    client: &ClientRow,
    request: AuthzRequest,
) -> Result<String, OAuthError> {
    let reference = secrets::generate_secret("").map_err(StorageError::backend)?;
    let now = state.core().clock.now_naive();
    let lifetime = chrono::TimeDelta::from_std(state.settings.par.lifetime)
        .unwrap_or(chrono::TimeDelta::seconds(60));
    let new = NewPushedRequest {
        request_uri_hash: secrets::hash_secret(&reference),
        environment_id: state.env().id.clone(),
        client_id: client.id.clone(),
        request,
        expires_at: now + lifetime,
    };
    state
        .core()
        .db
        .run(move |c| pushed_requests::insert(c, new, now))
        .await?;
    Ok(format!("{REQUEST_URI_PREFIX}{reference}"))
}

/// The random part of one of our request_uris, or `None` when it is not
/// one (another URN or URL, or too long to be ours).
pub(crate) fn reference(request_uri: &str) -> Option<&str> {
    request_uri
        .strip_prefix(REQUEST_URI_PREFIX)
        .filter(|r| !r.is_empty() && r.len() <= MAX_REFERENCE)
}

/// Takes (uses up) `client`'s unexpired pushed request with this random
/// part in this environment, if there is one (§4: bound to the client that
/// pushed it).
///
/// # Errors
/// Database failures.
pub(crate) async fn take(
    state: &OAuthState,
    client: &ClientRow,
    reference: &str,
) -> Result<Option<AuthzRequest>, StorageError> {
    let hash = secrets::hash_secret(reference);
    let (env, client_id) = (state.env().id.clone(), client.id.clone());
    let now = state.core().clock.now_naive();
    state
        .core()
        .db
        .run(move |c| pushed_requests::take(c, &env, &client_id, &hash, now))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_urns_have_a_reference() {
        assert_eq!(
            reference("urn:ietf:params:oauth:request_uri:abc"),
            Some("abc")
        );
        for other in [
            "urn:ietf:params:oauth:request_uri:",
            "https://client.example/request.jwt",
            "urn:example:abc",
            &format!("{REQUEST_URI_PREFIX}{}", "a".repeat(MAX_REFERENCE + 1)),
        ] {
            assert_eq!(reference(other), None, "{other}");
        }
    }
}
