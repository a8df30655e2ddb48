//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document
//! -01; the MCP authorization specification, 2025-11-25, makes them the
//! way an MCP client meets an authorization server it has no relationship
//! with): a `client_id` that is an https URL names the JSON document at
//! that URL, and the document says who the client is. With
//! `TRUSEC_CLIENT_ID_METADATA_DOCUMENTS` on (the default: MCP says
//! authorization servers SHOULD support them), `/oauth/authorize`,
//! `/oauth/par` and `/oauth/token` resolve such a `client_id` here, through
//! [`crate::fetch::Fetcher`] (its SSRF guard, no redirects, a 5 KB cap — the
//! draft's §6.6 recommendation — and its cache, by `Cache-Control`).
//!
//! The document is checked as RFC 7591 registration metadata is
//! ([`crate::client_metadata::validate`]), plus the draft's rules (§3,
//! §4.1): its `client_id` is the URL exactly, `redirect_uris` are required
//! and then matched exactly, no shared-secret method or `client_secret`
//! (§4.1: there is no way to share one), so `token_endpoint_auth_method` is
//! `none` (a public client: PKCE is required of it as of every public
//! client) or `private_key_jwt` with `jwks`/`jwks_uri`. Unknown members are
//! ignored (RFC 7591 §2; real documents carry `logo_uri`, `client_uri`,
//! `software_id` …). Such a client may ask for the OIDC scopes and the
//! environment's API-resource scopes (what it may ask for is shown to the
//! user on the consent page); never for management scopes, since nobody
//! vouched for it.
//!
//! **Not stored.** The client is the row [`resolve`] builds from the
//! document at each use, in the environment whose issuer the request came
//! to; it is never inserted into `oauth_clients`. The document stays the
//! one authority (a change at the URL takes effect within its cache
//! lifetime, and nothing is left to clean up when it goes away), the same
//! URL can be a client of every environment (a stored row's id is its
//! primary key, so it could belong to one only), and nobody can fill the
//! table by making up URLs. What a stored row would anchor is therefore
//! left out: consent is asked at every authorization, never remembered
//! (the draft's §6.4: a document may change under a remembered consent),
//! and no refresh token is issued (`refresh_tokens.client_id` references a
//! stored client) — the client signs the user in again instead.

use crate::OAuthState;
use crate::client_metadata::{self, ClientInput};
use crate::error::OAuthError;
use crate::fetch::Fetched;
use serde::Deserialize;
use serde_json::Value;
use trusec_storage::clients::{AuthMethod, ClientRow, ClientType, RegisteredBy};

/// §6.6: "The recommended maximum response size for client metadata
/// documents is 5 kilobytes."
pub const MAX_DOCUMENT_LEN: usize = 5 * 1024;
/// The longest such `client_id` resolved (§3 recommends short ones).
pub const MAX_ID_LEN: usize = 512;
/// What a document's client may ask for when its `scope` names nothing.
const DEFAULT_SCOPES: [&str; 3] = ["openid", "profile", "email"];

/// The members read; every other one is ignored (RFC 7591 §2).
#[derive(Debug, Deserialize)]
struct Document {
    client_id: String,
    client_name: Option<String>,
    redirect_uris: Option<Vec<String>>,
    post_logout_redirect_uris: Option<Vec<String>>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    scope: Option<String>,
    token_endpoint_auth_method: Option<String>,
    jwks: Option<Value>,
    jwks_uri: Option<String>,
    token_endpoint_auth_signing_alg: Option<String>,
    application_type: Option<String>,
    /// RFC 9449 §5.2.
    dpop_bound_access_tokens: Option<bool>,
    client_secret: Option<Value>,
    client_secret_expires_at: Option<Value>,
}

/// Whether `id` is to be resolved as a metadata document here: the feature
/// on, and an https URL (http only where outbound http is allowed, for
/// tests). Registered clients' ids never look like one (`client_…`).
pub fn names_a_document(state: &OAuthState, id: &str) -> bool {
    let settings = &state.settings;
    settings.client_id_metadata_documents
        && (id.starts_with("https://")
            || (settings.fetcher.settings().allow_http && id.starts_with("http://")))
}

/// The client the document at `id` describes, in this environment; `None`
/// when `id` does not name a document ([`names_a_document`]).
///
/// # Errors
/// `invalid_client` saying what is wrong with the URL, the fetch or the
/// document; `server_error` for our own failures.
pub async fn resolve(state: &OAuthState, id: &str) -> Result<Option<ClientRow>, OAuthError> {
    if !names_a_document(state, id) {
        return Ok(None);
    }
    check_id(id).map_err(refused)?;
    let (fetcher, now) = (&state.settings.fetcher, state.now_secs());
    let fetched = fetcher
        .get(id, now, MAX_DOCUMENT_LEN)
        .await
        .map_err(|e| refused(format!("it could not be fetched: {e}")))?;
    let row = client_of(state, id, &fetched).await?;
    // §4.3: only a valid document is cached, never an error.
    fetcher.keep(id, now, &fetched);
    Ok(Some(row))
}

fn refused(why: impl std::fmt::Display) -> OAuthError {
    OAuthError::invalid_client(format!("the client's metadata document is refused: {why}"))
}

/// §3: https (or allowed http), a path, no dot segments, fragment or user
/// info; bounded.
fn check_id(id: &str) -> Result<(), &'static str> {
    if id.len() > MAX_ID_LEN {
        return Err("the client_id URL is too long");
    }
    let url = url::Url::parse(id).map_err(|_| "the client_id is not a URL")?;
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err("the client_id URL has a fragment or user info");
    }
    if url.path() == "/" {
        return Err("the client_id URL has no path");
    }
    // The parser removes dot segments, so look at what was sent.
    let raw_path = id
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map_or("", |(_, path)| path);
    let raw_path = raw_path.split(['?', '#']).next().unwrap_or_default();
    if raw_path.split('/').any(|s| s == "." || s == "..") {
        return Err("the client_id URL has dot segments");
    }
    Ok(())
}

/// The document as this environment's client.
async fn client_of(
    state: &OAuthState,
    id: &str,
    fetched: &Fetched,
) -> Result<ClientRow, OAuthError> {
    let doc: Document = serde_json::from_slice(&fetched.body)
        .map_err(|e| refused(format!("it is not a JSON metadata document ({e})")))?;
    // §4.1: "MUST match the URL of the document using simple string
    // comparison".
    if doc.client_id != id {
        return Err(refused("its client_id is not the URL it was fetched from"));
    }
    if doc.client_secret.is_some() || doc.client_secret_expires_at.is_some() {
        return Err(refused("it must not carry a client_secret"));
    }
    let method = doc
        .token_endpoint_auth_method
        .clone()
        .unwrap_or_else(|| AuthMethod::None.as_str().into());
    let client_type = match AuthMethod::parse(&method) {
        Some(AuthMethod::None) => ClientType::Public,
        Some(AuthMethod::PrivateKeyJwt) => ClientType::Confidential,
        _ => {
            return Err(refused(
                "token_endpoint_auth_method must be none or private_key_jwt: nothing can share a secret with a metadata document",
            ));
        }
    };
    if doc.redirect_uris.as_ref().is_none_or(Vec::is_empty) {
        return Err(refused("redirect_uris are required"));
    }
    if doc
        .response_types
        .as_ref()
        .is_some_and(|r| r.iter().any(|t| t != "code"))
    {
        return Err(refused("only the code response type is supported"));
    }
    let application_type = doc
        .application_type
        .clone()
        .or_else(|| native_by_its_uris(client_type, doc.redirect_uris.as_deref()));
    let env = state.env().id.clone();
    let catalog = crate::resources::Catalog::of(state.core(), &env).await?;
    let input = ClientInput {
        name: Some(name_of(&doc, id)),
        client_type: Some(client_type.as_str().into()),
        redirect_uris: doc.redirect_uris,
        post_logout_redirect_uris: doc.post_logout_redirect_uris,
        grant_types: Some(grant_types(doc.grant_types.as_deref())?),
        scopes: Some(scopes(doc.scope.as_deref(), &catalog)),
        token_endpoint_auth_method: Some(method),
        jwks: doc.jwks,
        jwks_uri: doc.jwks_uri,
        token_endpoint_auth_signing_alg: doc.token_endpoint_auth_signing_alg,
        application_type,
        dpop_bound_access_tokens: doc.dpop_bound_access_tokens,
        catalog,
        outbound: state.settings.fetcher.settings(),
        ..ClientInput::default()
    };
    let valid = client_metadata::validate(input)
        .map_err(|e| refused(format!("{}: {}", e.field, e.message)))?;
    let now = state.core().clock.now_naive();
    Ok(valid
        .into_new(env, None, RegisteredBy::MetadataDocument)
        .into_row(id.to_owned(), now))
}

/// MCP clients on the user's machine (IDEs, CLIs) publish loopback
/// redirect URIs (`http://127.0.0.1:PORT/callback`, RFC 8252 §7.3) and
/// rarely say `application_type`: a public document client whose redirect
/// URIs are not all https is taken as `native`, whose rules
/// ([`client_metadata::check_redirect_uri`]) allow exactly those. A
/// confidential one must say so itself.
fn native_by_its_uris(client_type: ClientType, uris: Option<&[String]>) -> Option<String> {
    let public = client_type == ClientType::Public;
    let not_web = uris
        .unwrap_or_default()
        .iter()
        .any(|u| !u.starts_with("https://"));
    (public && not_web).then(|| "native".to_owned())
}

/// `client_name`, or the URL's host (what the user is shown either way).
fn name_of(doc: &Document, id: &str) -> String {
    doc.client_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map_or_else(|| host_of(id).unwrap_or_default(), str::to_owned)
}

/// The host of a document client's id, for the consent page: the draft's
/// §6.5 has the user see it beside the name the document chose.
pub fn host_of(id: &str) -> Option<String> {
    url::Url::parse(id)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
}

/// The code flow only: `refresh_token` (which real documents list) is
/// dropped, since no refresh token can be issued to an unstored client;
/// a document that lists grants without `authorization_code` is refused.
fn grant_types(listed: Option<&[String]>) -> Result<Vec<String>, OAuthError> {
    let code = "authorization_code";
    match listed {
        Some(g) if !g.iter().any(|g| g == code) => {
            Err(refused("grant_types must include authorization_code"))
        }
        Some(_) | None => Ok(vec![code.to_owned()]),
    }
}

/// The scopes it may ask for: those of its `scope` this server knows (the
/// OIDC ones and the environment's resources'), the others ignored; all of
/// them when it names none. Never management scopes or `offline_access`.
fn scopes(scope: Option<&str>, catalog: &crate::resources::Catalog) -> Vec<String> {
    let allowed = |s: &str| {
        s != crate::scopes::OFFLINE_ACCESS
            && !crate::scopes::is_management(s)
            && (crate::scopes::is_supported(s) || catalog.scopes.iter().any(|c| c == s))
    };
    match scope {
        Some(scope) => scope
            .split_ascii_whitespace()
            .filter(|s| allowed(s))
            .map(str::to_owned)
            .collect(),
        None => DEFAULT_SCOPES
            .iter()
            .map(|s| (*s).to_owned())
            .chain(catalog.scopes.iter().filter(|s| allowed(s)).cloned())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_urls_follow_section_3() {
        assert!(check_id("https://app.example.com/oauth/client.json").is_ok());
        assert!(check_id("https://app.example.com:8443/c?x=1").is_ok());
        for bad in [
            "https://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/a/../b",
            "https://app.example.com/./b",
            "https://app.example.com/c#f",
            "https://u:p@app.example.com/c",
        ] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
        let long = format!("https://app.example.com/{}", "a".repeat(MAX_ID_LEN));
        assert!(check_id(&long).is_err());
    }

    #[test]
    fn grants_are_the_code_flow_only() {
        let listed = |g: &[&str]| g.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(grant_types(None).unwrap(), ["authorization_code"]);
        assert_eq!(
            grant_types(Some(&listed(&["authorization_code", "refresh_token"]))).unwrap(),
            ["authorization_code"]
        );
        assert!(grant_types(Some(&listed(&["client_credentials"]))).is_err());
    }

    #[test]
    fn scopes_are_known_and_never_management_or_offline() {
        let catalog = crate::resources::Catalog {
            identifiers: vec!["https://mcp.example.com".into()],
            scopes: vec!["mcp:tools".into()],
        };
        assert_eq!(
            scopes(
                Some("openid read:users offline_access mcp:tools claudeai"),
                &catalog
            ),
            ["openid", "mcp:tools"]
        );
        assert_eq!(
            scopes(None, &catalog),
            ["openid", "profile", "email", "mcp:tools"]
        );
    }
}
