//! `GET /oauth/authorize` (RFC 6749 §4.1.1, OIDC Core §3.1.2): validates the
//! request, sends the browser through the hosted login and consent pages
//! when needed, and redirects back with a code.
//!
//! Errors are shown as a page while the client or redirect URI cannot be
//! trusted (§4.1.2.1: never redirect to an unverified URI); after that they
//! go back to the registered redirect URI with `error`, `state` and `iss`
//! (RFC 9207).

mod params;

use super::grants::code::{self, CodeGrant};
use crate::OAuthState;
use crate::error::{ErrorCode, OAuthError};
use crate::form::Params;
use crate::scopes::{self, ScopeSet};
use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use oxide_auth::code_grant::extensions::Pkce;
use params::{Prompt, ResponseMode, ResponseType};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use trusec_storage::audit::{Actor, EventType, NewAuditEvent};
use trusec_storage::clients::{self, ClientRow, GrantType, RegisteredBy};
use trusec_storage::consents;
use trusec_ui::{Interaction, LoginSession, pages};

const MAX_STATE: usize = 2048;
const MAX_NONCE: usize = 512;

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
}

fn error_page(message: &str) -> HttpResponse {
    pages::message(
        StatusCode::BAD_REQUEST,
        "This sign-in request is invalid",
        message,
    )
}

fn unavailable() -> HttpResponse {
    pages::message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Something went wrong",
        "Please try again in a moment.",
    )
}

/// A redirect to the client (§4.1.2 / §4.1.2.1) with the given parameters.
fn back_to_client(state: &OAuthState, req: &AuthzRequest, params: &[(&str, &str)]) -> HttpResponse {
    let mut url = match url::Url::parse(&req.redirect_uri) {
        Ok(u) => u,
        Err(_) => return error_page("The registered redirect URI is malformed."),
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(s) = &req.state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", &state.settings.issuer);
    }
    pages::page_response(StatusCode::FOUND)
        .insert_header((actix_web::http::header::LOCATION, url.to_string()))
        .finish()
}

fn redirect_error(
    state: &OAuthState,
    req: &AuthzRequest,
    code: ErrorCode,
    description: &str,
) -> HttpResponse {
    if !req.trusted_redirect && code != ErrorCode::AccessDenied {
        return error_page(&format!("{code}: {description}"));
    }
    back_to_client(
        state,
        req,
        &[("error", code.as_str()), ("error_description", description)],
    )
}

pub async fn get(http: HttpRequest, state: Data<OAuthState>) -> HttpResponse {
    match Params::parse(http.query_string().as_bytes()) {
        Ok(p) => start(&http, &state, &p).await,
        Err(e) => error_page(&e.description),
    }
}

/// OIDC Core §3.1.2.1: the authorization endpoint accepts POST (form) too.
pub async fn post(
    http: HttpRequest,
    state: Data<OAuthState>,
    body: actix_web::web::Bytes,
) -> HttpResponse {
    if super::require_form(&http).is_err() {
        return error_page("The request body must be a form.");
    }
    match Params::parse(&body) {
        Ok(p) => start(&http, &state, &p).await,
        Err(e) => error_page(&e.description),
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

async fn start(http: &HttpRequest, state: &OAuthState, params: &Params) -> HttpResponse {
    let Some(client_id) = params.get("client_id") else {
        return error_page("client_id is missing.");
    };
    let cid = client_id.to_owned();
    let client = match state.core().db.run(move |c| clients::find(c, &cid)).await {
        Ok(Some(c)) => c,
        Ok(None) => return error_page("The application is not registered."),
        Err(e) => {
            tracing::error!(error = %e, "authorize: client lookup failed");
            return unavailable();
        }
    };
    let registered = &client.redirect_uris;
    // An absent scope defaults to openid when the client may use it.
    let scope_has_openid = match params.get("scope") {
        Some(s) => s.split(' ').any(|t| t == "openid"),
        None => client.scopes.contains("openid"),
    };
    let (redirect_uri, sent) = match params.get("redirect_uri") {
        // RFC 9700 §4.1.3: exact string comparison (loopback ports aside).
        Some(uri) if registered.iter().any(|r| redirect_matches(r, uri)) => (uri.to_owned(), true),
        Some(_) => return error_page("The redirect URI is not registered for this application."),
        // OIDC Core §3.1.2.1 requires it; RFC 6749 §3.1.2.3 allows omitting
        // it when exactly one is registered.
        None if !scope_has_openid && registered.len() == 1 => {
            (registered.first().cloned().unwrap_or_default(), false)
        }
        None => return error_page("redirect_uri is missing."),
    };
    let mut req = AuthzRequest {
        trusted_redirect: match client.registered_by {
            RegisteredBy::Anonymous => false,
            RegisteredBy::ApiKey | RegisteredBy::ManagementApi => true,
        },
        client_id: client.id.clone(),
        redirect_uri,
        redirect_uri_sent: sent,
        scope: ScopeSet::default(),
        state: params.get("state").map(str::to_owned),
        nonce: None,
        pkce: None,
        prompt: Vec::new(),
        max_age: None,
        login_hint: None,
    };
    if req.state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        req.state = None;
        return redirect_error(state, &req, ErrorCode::InvalidRequest, "state is too long");
    }
    if let Err(e) = validate(&client, params, &mut req) {
        return redirect_error(state, &req, e.code, &e.description);
    }
    proceed(http, state, &client, req, None).await
}

/// The rest of the request's checks; errors from here are redirected.
fn validate(client: &ClientRow, params: &Params, req: &mut AuthzRequest) -> Result<(), OAuthError> {
    // The only flow, delivered the only way.
    let ResponseType::Code = params::response_type(params)?;
    let ResponseMode::Query = params::response_mode(params)?;
    params::no_request_object(params)?;
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the authorization code grant",
        ));
    }
    let allowed = &client.scopes;
    req.scope = match params.get("scope") {
        Some(text) => scopes::parse(text)?,
        None if allowed.contains("openid") => scopes::parse("openid")?,
        None => return Err(OAuthError::invalid_scope("scope is required")),
    };
    if req.scope.is_empty() {
        return Err(OAuthError::invalid_scope("scope is empty"));
    }
    scopes::check_allowed(&req.scope, allowed)?;
    // PKCE (RFC 7636, RFC 9700 §2.1.1): S256 only; required of public clients.
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
    req.pkce = encoded.and_then(|v| v.into_private_value().ok().flatten());
    if let Some(n) = params.get("nonce") {
        if n.len() > MAX_NONCE {
            return Err(OAuthError::invalid_request("nonce is too long"));
        }
        req.nonce = Some(n.to_owned());
    }
    req.prompt = params::prompts(params)?;
    if let Some(m) = params.get("max_age") {
        req.max_age = Some(m.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
            OAuthError::invalid_request("max_age must be a non-negative integer")
        })?);
    }
    req.login_hint = params
        .get("login_hint")
        .map(|h| h.chars().take(254).collect());
    Ok(())
}

/// `GET /oauth/authorize/continue?interaction=…`: back from the hosted pages.
pub async fn resume(http: HttpRequest, state: Data<OAuthState>) -> HttpResponse {
    let params = Params::parse(http.query_string().as_bytes()).unwrap_or_default();
    let id = params.get("interaction").unwrap_or_default();
    let interaction = match Interaction::load(&state.core().store, id).await {
        Ok(Some(i)) => i,
        Ok(None) => {
            return error_page(
                "This sign-in request has expired. Go back to the app and start again.",
            );
        }
        Err(_) => return unavailable(),
    };
    let Ok(req) = serde_json::from_value::<AuthzRequest>(interaction.payload.clone()) else {
        return error_page("This sign-in request is corrupt.");
    };
    let cid = req.client_id.clone();
    let client = match state.core().db.run(move |c| clients::find(c, &cid)).await {
        Ok(Some(c)) => c,
        Ok(None) => return error_page("The application is no longer registered."),
        Err(_) => return unavailable(),
    };
    proceed(&http, &state, &client, req, Some(interaction)).await
}

async fn proceed(
    http: &HttpRequest,
    state: &OAuthState,
    client: &ClientRow,
    req: AuthzRequest,
    interaction: Option<Interaction>,
) -> HttpResponse {
    let env = client.environment_id.clone();
    let login = match LoginSession::from_request(http, &state.ui, &env).await {
        Ok(l) => l,
        Err(_) => return unavailable(),
    };
    let fresh_login = match (&login, &interaction) {
        (Some(l), Some(i)) => i.logged_in_session.as_deref() == Some(l.session.id.as_str()),
        _ => false,
    };
    let now = state.now_secs();
    let too_old = |l: &LoginSession| req.max_age.is_some_and(|max| now - l.auth_time() > max);
    let needs_login = match &login {
        None => true,
        Some(l) => !fresh_login && (req.prompt.contains(&Prompt::Login) || too_old(l)),
    };
    if needs_login {
        if req.prompt.contains(&Prompt::None) {
            return redirect_error(
                state,
                &req,
                ErrorCode::LoginRequired,
                "the user is not signed in",
            );
        }
        return to_hosted_page(state, client, &req, interaction, true).await;
    }
    let Some(login) = login else {
        return unavailable();
    };
    // Management scopes act as an administrator: only administrators may
    // hand them to an app.
    if req.scope.iter().any(scopes::is_management) {
        let admin = serde_json::from_str::<Vec<String>>(&login.user.groups)
            .is_ok_and(|g| g.iter().any(|g| g == scopes::ADMIN_GROUP));
        if !admin {
            return redirect_error(
                state,
                &req,
                ErrorCode::AccessDenied,
                "only administrators can grant management scopes",
            );
        }
    }
    let (uid, cid) = (login.user.id.clone(), client.id.clone());
    let remembered = match state
        .core()
        .db
        .run(move |c| consents::find(c, &uid, &cid))
        .await
    {
        Ok(r) => r.unwrap_or_default(),
        Err(_) => return unavailable(),
    };
    let covered = req.scope.iter().all(|s| remembered.iter().any(|r| r == s));
    // A decision counts only for the session that made it.
    let decision = interaction
        .as_ref()
        .filter(|i| i.consent_session.as_deref() == Some(login.session.id.as_str()))
        .and_then(|i| i.consent);
    match decision {
        Some(false) => {
            if let Some(i) = &interaction {
                let _ = i.finish(&state.core().store).await;
            }
            return redirect_error(
                state,
                &req,
                ErrorCode::AccessDenied,
                "the user denied the request",
            );
        }
        Some(true) => {
            let (env2, uid, cid, scope) = (
                env.clone(),
                login.user.id.clone(),
                client.id.clone(),
                req.scope.clone(),
            );
            let now_naive = state.core().clock.now_naive();
            if state
                .core()
                .db
                .run(move |c| consents::grant(c, &env2, &uid, &cid, scope.as_slice(), now_naive))
                .await
                .is_err()
            {
                return unavailable();
            }
            let event = NewAuditEvent::new(
                EventType::OAuthConsentGranted,
                Some(&env),
                Actor::user(&login.user.id),
            )
            .user(&login.user.id)
            .data(serde_json::json!({"client_id": client.id, "scope": req.scope}));
            if state.core().audit(event).await.is_err() {
                return unavailable();
            }
        }
        None if !covered || req.prompt.contains(&Prompt::Consent) => {
            if req.prompt.contains(&Prompt::None) {
                return redirect_error(
                    state,
                    &req,
                    ErrorCode::ConsentRequired,
                    "the user has not consented",
                );
            }
            return to_hosted_page(state, client, &req, interaction, false).await;
        }
        None => {}
    }
    let grant = CodeGrant {
        client_id: client.id.clone(),
        environment_id: env,
        user_id: login.user.id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        redirect_uri_sent: req.redirect_uri_sent,
        scope: req.scope.clone(),
        nonce: req.nonce.clone(),
        pkce: req.pkce.clone(),
        auth_time: login.auth_time(),
        session_id: Some(login.session.id.clone()),
    };
    let code = match code::store(state, &grant).await {
        Ok(c) => c,
        Err(_) => return unavailable(),
    };
    if let Some(i) = &interaction {
        let _ = i.finish(&state.core().store).await;
    }
    back_to_client(state, &req, &[("code", &code)])
}

/// Hands the browser to `/login` or `/consent` with an interaction that
/// brings it back here.
async fn to_hosted_page(
    state: &OAuthState,
    client: &ClientRow,
    req: &AuthzRequest,
    interaction: Option<Interaction>,
    login: bool,
) -> HttpResponse {
    let payload = match serde_json::to_value(req) {
        Ok(p) => p,
        Err(_) => return unavailable(),
    };
    let mut i = match interaction {
        Some(i) => i,
        None => match Interaction::new(
            &client.environment_id,
            "/oauth/authorize/continue?interaction=",
            payload,
        ) {
            Ok(i) => i,
            Err(_) => return unavailable(),
        },
    };
    i.client_id = Some(client.id.clone());
    i.client_name = Some(client.name.clone());
    i.scopes = req.scope.as_slice().to_vec();
    i.login_hint.clone_from(&req.login_hint);
    i.force_login = login;
    i.consent = None;
    i.consent_session = None;
    if i.save(&state.core().store).await.is_err() {
        return unavailable();
    }
    let target = if login {
        i.login_url()
    } else {
        i.consent_url()
    };
    pages::page_response(StatusCode::FOUND)
        .insert_header((actix_web::http::header::LOCATION, target))
        .finish()
}
