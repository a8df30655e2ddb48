//! `/.well-known/openid-configuration` (OIDC Discovery §3) and
//! `/.well-known/oauth-authorization-server` (RFC 8414): built once,
//! served as bytes.

use crate::OAuthSettings;
use crate::OAuthState;
use actix_web::HttpResponse;
use actix_web::web::{Bytes, Data};
use serde_json::json;

pub struct Documents {
    openid: Bytes,
    oauth: Bytes,
}

/// Members of OIDC Discovery that RFC 8414 metadata does not have.
const OIDC_ONLY: [&str; 10] = [
    "userinfo_endpoint",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
    "claims_supported",
    "claims_parameter_supported",
    "acr_values_supported",
    "request_parameter_supported",
    "request_uri_parameter_supported",
    "prompt_values_supported",
    "end_session_endpoint",
];

impl Documents {
    pub fn build(settings: &OAuthSettings) -> Self {
        let doc = openid_configuration(settings);
        let mut oauth = doc.clone();
        if let Some(obj) = oauth.as_object_mut() {
            for oidc_only in OIDC_ONLY {
                obj.remove(oidc_only);
            }
        }
        Self {
            openid: Bytes::from(doc.to_string()),
            oauth: Bytes::from(oauth.to_string()),
        }
    }
}

/// The OpenID Provider metadata of `settings`' issuer.
fn openid_configuration(settings: &OAuthSettings) -> serde_json::Value {
    let iss = &settings.issuer;
    let auth_methods = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "client_secret_jwt",
        "none",
    ];
    // RFC 8414 §2: the algorithms of private_key_jwt (asymmetric) and
    // client_secret_jwt (HMAC) assertions; never `none`.
    let assertion_algs = [
        "ES256", "PS256", "EdDSA", "RS256", "HS256", "HS384", "HS512",
    ];
    json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oauth/authorize"),
        "token_endpoint": format!("{iss}/oauth/token"),
        "device_authorization_endpoint": format!("{iss}/oauth/device_authorization"),
        // RFC 9126 §5.
        "pushed_authorization_request_endpoint": format!("{iss}/oauth/par"),
        "require_pushed_authorization_requests": settings.par.required,
        "dpop_signing_alg_values_supported": crate::dpop::ALGS,
        "userinfo_endpoint": format!("{iss}/oauth/userinfo"),
        "jwks_uri": format!("{iss}/.well-known/jwks.json"),
        "registration_endpoint": format!("{iss}/oauth/register"),
        "revocation_endpoint": format!("{iss}/oauth/revoke"),
        "introspection_endpoint": format!("{iss}/oauth/introspect"),
        "end_session_endpoint": format!("{iss}/oauth/logout"),
        "scopes_supported": crate::scopes::supported(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "client_secret_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "code_challenge_methods_supported": ["S256"],
        // draft-ietf-oauth-client-id-metadata-document §5.
        "client_id_metadata_document_supported": settings.client_id_metadata_documents,
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "amr", "acr", "nonce", "at_hash", "sid",
            "name", "given_name", "family_name", "email", "email_verified", "groups", "updated_at"],
        // §5.5: read for `id_token.acr` (step-up); other members are
        // voluntary requests, answered as the scopes release claims.
        "claims_parameter_supported": true,
        "acr_values_supported": trusec_storage::assurance::Assurance::ACR_VALUES,
        "request_parameter_supported": false,
        // OIDC Discovery §3: request_uri values the client hosts itself
        // (OIDC Core §6.2), which we never fetch. A PAR request_uri is
        // not one of them (RFC 9126 §5 advertises PAR on its own).
        "request_uri_parameter_supported": false,
        "prompt_values_supported": ["none", "login", "consent"],
        "authorization_response_iss_parameter_supported": true,
    })
}

fn serve(body: Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("cache-control", "public, max-age=300"))
        .insert_header(("access-control-allow-origin", "*"))
        .body(body)
}

pub async fn openid(state: Data<OAuthState>) -> HttpResponse {
    serve(state.discovery.openid.clone())
}

pub async fn oauth(state: Data<OAuthState>) -> HttpResponse {
    serve(state.discovery.oauth.clone())
}
