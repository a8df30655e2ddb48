//! The server's own OAuth clients (the admin console, issue #16): they go
//! through `/oauth/authorize` and the hosted login like any other client,
//! and redeem their code through the very same authorization-code grant
//! (`routes::grants::code::exchange`: single use, redirect-URI binding,
//! PKCE, audit), only without a round trip over HTTP to themselves.

use crate::OAuthState;
use crate::client_auth::AuthenticatedClient;
use crate::error::OAuthError;
use crate::form::Params;
use crate::jwt::AccessClaims;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use trusec_storage::clients::ClientRow;
use trusec_storage::secrets;

/// A PKCE pair (RFC 7636 §4.1, §4.2): the verifier stays with us, the S256
/// challenge goes in the authorization request.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    /// A fresh pair: a 256-bit base62 verifier (43 characters, the least
    /// §4.1 allows) and its S256 challenge.
    ///
    /// # Errors
    /// The OS random source failed.
    pub fn generate() -> Result<Self, secrets::SecretError> {
        let verifier = secrets::generate_secret("")?;
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Ok(Self {
            verifier,
            challenge,
        })
    }
}

/// Redeems `code` for `client` (a public client of ours: PKCE is its
/// proof) and returns the verified claims of the access token it got.
///
/// # Errors
/// Whatever the token endpoint would answer (`invalid_grant` for a used,
/// expired or foreign code, a wrong verifier or redirect URI), or
/// `invalid_token` if the token does not verify.
pub async fn redeem_code(
    state: &OAuthState,
    client: ClientRow,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> Result<AccessClaims, OAuthError> {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("code_verifier", verifier)
        .append_pair("redirect_uri", redirect_uri)
        .finish();
    let params = Params::parse(form.as_bytes())?;
    let client = AuthenticatedClient {
        row: client.into(),
        used_basic: false,
    };
    let tokens = crate::routes::grants::code::exchange(state, &client, &params, None).await?;
    let access_token = tokens
        .get("access_token")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| OAuthError::invalid_grant("the grant issued no access token"))?;
    let claims = crate::issue::verify_live_access_token(state, access_token).await?;
    if claims.client_id != client.row.id {
        return Err(OAuthError::invalid_token(
            "the token was issued to another client",
        ));
    }
    Ok(claims)
}
