//! Reading an authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1):
//! first what decides whether errors may go back to the client at all (the
//! client's registered redirect URI, §4.1.2.1), then everything else, whose
//! errors are redirected.

use super::acr::AcrRequest;
use super::params::{self, Prompt, ResponseMode, ResponseType};
use crate::dpop::Jkt;
use crate::error::OAuthError;
use crate::form::Params;
use crate::scopes::{self, ScopeSet};
use oxide_auth::code_grant::extensions::Pkce;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use trusec_storage::clients::{ClientRow, GrantType, RegisteredBy};

const MAX_STATE: usize = 2048;
const MAX_NONCE: usize = 512;
const MAX_LOGIN_HINT: usize = 254;

/// A validated authorization request, kept in the interaction while the
/// user signs in and consents.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuthzRequest {
    /// Whether errors may be redirected before the user did anything: not
    /// for anonymously registered clients, whose redirect URI anyone could
    /// have chosen (RFC 9700 §4.11.1, open redirectors).
    pub trusted_redirect: bool,
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_uri_sent: bool,
    pub scope: ScopeSet,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub pkce: Option<String>,
    pub prompt: Vec<Prompt>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The resources (RFC 8707 §2.1) the grant is for, as identifiers.
    #[serde(default)]
    pub resources: Vec<String>,
    /// The consent page's words for the resource scopes requested.
    #[serde(default)]
    pub scope_descriptions: std::collections::BTreeMap<String, String>,
    /// How the flow ends.
    #[serde(default)]
    pub ending: Ending,
    /// The assurance asked for (`acr_values`, `claims`).
    #[serde(default)]
    pub acr: AcrRequest,
    /// RFC 9449 §10: the DPoP key the code will be bound to.
    #[serde(default)]
    pub dpop_jkt: Option<Jkt>,
}

/// Where a sign-in and consent lead.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub enum Ending {
    /// A code (or an error) for the client's redirect URI.
    #[default]
    Redirect,
    /// RFC 8628: the decision recorded on the device grant of this user
    /// code (its hash), and a page telling the user to return to the device.
    Device { user_code_hash: String },
}

impl AuthzRequest {
    /// What must hold before any error may go to the client: its redirect
    /// URI. The rest is left empty for [`AuthzRequest::complete`].
    ///
    /// # Errors
    /// `invalid_request` when the redirect URI is missing or not
    /// registered: an error that must not go to that URI.
    pub fn redirect_part(client: &ClientRow, params: &Params) -> Result<Self, OAuthError> {
        let (redirect_uri, redirect_uri_sent) = redirect_uri(client, params)?;
        Ok(Self {
            trusted_redirect: match client.registered_by {
                // Anyone could have chosen these redirect URIs.
                RegisteredBy::Anonymous | RegisteredBy::MetadataDocument => false,
                RegisteredBy::ApiKey | RegisteredBy::ManagementApi | RegisteredBy::Console => true,
            },
            client_id: client.id.clone(),
            redirect_uri,
            redirect_uri_sent,
            scope: ScopeSet::default(),
            state: params.get("state").map(str::to_owned),
            nonce: None,
            pkce: None,
            prompt: Vec::new(),
            max_age: None,
            login_hint: None,
            resources: Vec::new(),
            scope_descriptions: std::collections::BTreeMap::new(),
            ending: Ending::Redirect,
            acr: AcrRequest::default(),
            dpop_jkt: None,
        })
    }

    /// The request a device grant stands for (RFC 8628), as the hosted
    /// pages and the consent records see it: no redirect, and consent asked
    /// every time — §5.4: the user must see what a device they may not
    /// hold asks for, however often they approved the client before.
    pub fn for_device(
        row: &trusec_storage::device_grants::DeviceGrantRow,
        scope_descriptions: std::collections::BTreeMap<String, String>,
    ) -> Self {
        Self {
            trusted_redirect: false,
            client_id: row.client_id.clone(),
            redirect_uri: String::new(),
            redirect_uri_sent: false,
            scope: row.scope.0.clone(),
            state: None,
            nonce: None,
            pkce: None,
            prompt: vec![Prompt::Consent],
            max_age: None,
            login_hint: None,
            resources: row.resources.0.clone(),
            scope_descriptions,
            ending: Ending::Device {
                user_code_hash: row.user_code_hash.clone(),
            },
            acr: AcrRequest::default(),
            dpop_jkt: None,
        }
    }

    /// The rest of the request's checks; errors from here are redirected.
    ///
    /// # Errors
    /// The first thing wrong, as the §4.1.2.1 error to send back.
    pub fn complete(&mut self, client: &ClientRow, params: &Params) -> Result<(), OAuthError> {
        if self.state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
            // Too long to echo back.
            self.state = None;
            return Err(OAuthError::invalid_request("state is too long"));
        }
        check_flow(client, params)?;
        self.scope = requested_scope(client, params)?;
        self.pkce = pkce_challenge(client, params)?;
        self.nonce = nonce(params)?;
        self.prompt = params::prompts(params)?;
        self.max_age = max_age(params)?;
        self.acr = AcrRequest::parse(params)?;
        self.dpop_jkt = dpop_jkt(params)?;
        self.login_hint = params
            .get("login_hint")
            .map(|h| h.chars().take(MAX_LOGIN_HINT).collect());
        Ok(())
    }
}

/// RFC 9449 §10: `dpop_jkt`, a JWK SHA-256 thumbprint (RFC 7638).
fn dpop_jkt(params: &Params) -> Result<Option<Jkt>, OAuthError> {
    params
        .get("dpop_jkt")
        .map(|v| {
            Jkt::parse(v).ok_or_else(|| {
                OAuthError::invalid_request("dpop_jkt must be a base64url SHA-256 JWK thumbprint")
            })
        })
        .transpose()
}

/// The redirect URI and whether the request named it.
fn redirect_uri(client: &ClientRow, params: &Params) -> Result<(String, bool), OAuthError> {
    let registered = &client.redirect_uris;
    // An absent scope defaults to openid when the client may use it.
    let scope_has_openid = match params.get("scope") {
        Some(s) => s.split(' ').any(|t| t == "openid"),
        None => client.scopes.contains("openid"),
    };
    match params.get("redirect_uri") {
        // RFC 9700 §4.1.3: exact string comparison (loopback ports aside).
        Some(uri) if registered.iter().any(|r| redirect_matches(r, uri)) => {
            Ok((uri.to_owned(), true))
        }
        Some(_) => Err(OAuthError::invalid_request(
            "The redirect URI is not registered for this application.",
        )),
        // OIDC Core §3.1.2.1 requires it; RFC 6749 §3.1.2.3 allows omitting
        // it when exactly one is registered.
        None if !scope_has_openid && registered.len() == 1 => {
            Ok((registered.first().cloned().unwrap_or_default(), false))
        }
        None => Err(OAuthError::invalid_request("redirect_uri is missing.")),
    }
}

/// Whether `requested` is the registered redirect URI `registered`: the same
/// string, except that for http loopback IP literals any port is accepted
/// (RFC 8252 §7.3: native apps listen on ephemeral ports).
fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(r), Ok(q)) = (url::Url::parse(registered), url::Url::parse(requested)) else {
        return false;
    };
    let loopback =
        |u: &url::Url| u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1" | "[::1]"));
    loopback(&r)
        && loopback(&q)
        && r.host_str() == q.host_str()
        && r.path() == q.path()
        && r.query() == q.query()
        && r.username() == q.username()
        && r.password() == q.password()
        && q.fragment().is_none()
}

/// The code flow, in the query, without request objects, for a client
/// that may use it.
fn check_flow(client: &ClientRow, params: &Params) -> Result<(), OAuthError> {
    let ResponseType::Code = params::response_type(params)?;
    let ResponseMode::Query = params::response_mode(params)?;
    params::no_request_object(params)?;
    if client.allows(GrantType::AuthorizationCode) {
        Ok(())
    } else {
        Err(OAuthError::unauthorized_client(
            "this client may not use the authorization code grant",
        ))
    }
}

/// The requested scope, `openid` when absent and the client may use it.
pub(crate) fn requested_scope(client: &ClientRow, params: &Params) -> Result<ScopeSet, OAuthError> {
    let allowed = &client.scopes;
    let scope = match params.get("scope") {
        Some(text) => scopes::parse(text)?,
        None if allowed.contains("openid") => scopes::parse("openid")?,
        None => return Err(OAuthError::invalid_scope("scope is required")),
    };
    if scope.is_empty() {
        return Err(OAuthError::invalid_scope("scope is empty"));
    }
    scopes::check_allowed(&scope, allowed)?;
    Ok(scope)
}

/// PKCE (RFC 7636, RFC 9700 §2.1.1): S256 only; required of public
/// clients. The challenge in oxide-auth's encoding, if there is one.
fn pkce_challenge(client: &ClientRow, params: &Params) -> Result<Option<String>, OAuthError> {
    let method = params::code_challenge_method(params)?;
    let challenge = params.get("code_challenge");
    if method.is_some() && challenge.is_none() {
        return Err(OAuthError::invalid_request("code_challenge is missing"));
    }
    if let Some(c) = challenge {
        let well_formed = c.len() == 43
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(OAuthError::invalid_request(
                "code_challenge must be the base64url SHA-256 of the verifier",
            ));
        }
        // Absent method defaults to plain (RFC 7636 §4.3), which we refuse.
        if method.is_none() {
            return Err(OAuthError::invalid_request(
                "code_challenge_method=S256 is required",
            ));
        }
    }
    let pkce = if client.is_public() {
        Pkce::required()
    } else {
        Pkce::optional()
    };
    let encoded = pkce
        .challenge(
            method.map(|m| Cow::Borrowed(m.as_str())),
            challenge.map(Cow::Borrowed),
        )
        .map_err(|()| {
            OAuthError::invalid_request(
                "PKCE (code_challenge with S256) is required for public clients",
            )
        })?;
    Ok(encoded.and_then(|v| v.into_private_value().ok().flatten()))
}

fn nonce(params: &Params) -> Result<Option<String>, OAuthError> {
    match params.get("nonce") {
        Some(n) if n.len() > MAX_NONCE => Err(OAuthError::invalid_request("nonce is too long")),
        n => Ok(n.map(str::to_owned)),
    }
}

/// OIDC Core §3.1.2.1: seconds since the last active sign-in.
fn max_age(params: &Params) -> Result<Option<i64>, OAuthError> {
    params
        .get("max_age")
        .map(|m| {
            m.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
                OAuthError::invalid_request("max_age must be a non-negative integer")
            })
        })
        .transpose()
}
