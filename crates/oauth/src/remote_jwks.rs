//! The keys of a `private_key_jwt` client that publishes them at a
//! `jwks_uri` (RFC 7591 §2, OIDC Core §10.1.1): fetched through
//! [`crate::fetch`] (its SSRF guard, bounds and cache), checked as
//! registered keys are ([`client_keys::public_jwks`]: public members only,
//! at most [`MAX_JWKS_LEN`] bytes), kept only once they are a valid set, and
//! fetched again once when an assertion names a `kid` the cached set lacks
//! — the client may have rotated — at most once per
//! [`crate::fetch::REFETCH_INTERVAL`] per URL.

use crate::OAuthState;
use crate::client_keys::{self, Expect, MAX_JWKS_LEN, NO_FITTING_KEY, Verified};
use crate::error::OAuthError;
use crate::fetch::{FetchError, Fetched};
use trusec_storage::clients::{ClientJwks, ClientRow};

/// Verifies `assertion` against the keys at `uri`, refetching once on an
/// unknown key.
///
/// # Errors
/// `invalid_client` with why: the keys could not be fetched or read, or
/// the assertion does not verify.
pub async fn verify(
    state: &OAuthState,
    client: &ClientRow,
    uri: &str,
    assertion: &str,
    expect: &Expect<'_>,
) -> Result<Verified, OAuthError> {
    let fetcher = &state.settings.fetcher;
    let now = state.now_secs();
    let fetched = fetcher
        .get(uri, now, MAX_JWKS_LEN)
        .await
        .map_err(|e| unreadable(&e))?;
    let keys = parse(client, &fetched)?;
    fetcher.keep(uri, now, &fetched);
    match client_keys::verify_with(client, Some(&keys), assertion, expect) {
        Err(why) if why == NO_FITTING_KEY => {}
        other => return other.map_err(OAuthError::invalid_client),
    }
    let Some(fetched) = fetcher
        .refetch(uri, now, MAX_JWKS_LEN)
        .await
        .map_err(|e| unreadable(&e))?
    else {
        return Err(OAuthError::invalid_client(NO_FITTING_KEY));
    };
    let keys = parse(client, &fetched)?;
    fetcher.keep(uri, now, &fetched);
    client_keys::verify_with(client, Some(&keys), assertion, expect)
        .map_err(OAuthError::invalid_client)
}

fn unreadable(e: &FetchError) -> OAuthError {
    OAuthError::invalid_client(format!("the client's jwks_uri could not be read: {e}"))
}

fn parse(client: &ClientRow, fetched: &Fetched) -> Result<ClientJwks, OAuthError> {
    let set: serde_json::Value = serde_json::from_slice(&fetched.body).map_err(|_| {
        OAuthError::invalid_client("the client's jwks_uri does not hold a JSON JWK Set")
    })?;
    client_keys::public_jwks(set, client.token_endpoint_auth_signing_alg).map_err(|e| {
        OAuthError::invalid_client(format!(
            "the JWK Set at the client's jwks_uri is refused: {}",
            e.message
        ))
    })
}
