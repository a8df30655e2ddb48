//! `GET /oauth/authorize` (RFC 6749 §4.1.1, OIDC Core §3.1.2): validates the
//! request, sends the browser through the hosted login and consent pages
//! when needed, and redirects back with a code.
//!
//! Errors are shown as a page ([`PageError`], with an `error_id` when the
//! failure is ours) while the client or redirect URI cannot be trusted
//! (§4.1.2.1: never redirect to an unverified URI); after that they go back
//! to the registered redirect URI with `error`, `state` and `iss` (RFC 9207).

mod acr;
pub(crate) mod decide;
mod params;
pub(crate) mod request;

use super::par;
use crate::OAuthState;
use crate::error::{ErrorCode, OAuthError};
use crate::form::Params;
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use request::AuthzRequest;
use std::borrow::Cow;
use trusec_storage::clients::ClientRow;
use trusec_storage::rate_limit::Family;
use trusec_ui::http::limit_per_ip;
use trusec_ui::{Interaction, PageError, pages};

/// A request refused before its redirect URI is trusted.
fn invalid(message: impl Into<Cow<'static, str>>) -> PageError {
    PageError::refused(
        StatusCode::BAD_REQUEST,
        "This sign-in request is invalid",
        message,
    )
}

/// A redirect to the client (§4.1.2 / §4.1.2.1) with the given parameters.
fn back_to_client(
    state: &OAuthState,
    req: &AuthzRequest,
    params: &[(&str, &str)],
) -> Result<HttpResponse, PageError> {
    let mut url = url::Url::parse(&req.redirect_uri)
        .map_err(|_| invalid("The registered redirect URI is malformed."))?;
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
    Ok(pages::page_response(StatusCode::FOUND)
        .insert_header((actix_web::http::header::LOCATION, url.to_string()))
        .finish())
}

/// An error for the client: redirected when its redirect URI may be
/// trusted with one, else shown. `access_denied` always goes back: the
/// user chose it.
fn redirect_error(
    state: &OAuthState,
    req: &AuthzRequest,
    code: ErrorCode,
    description: &str,
) -> Result<HttpResponse, PageError> {
    if !req.trusted_redirect && code != ErrorCode::AccessDenied {
        return Err(invalid(format!("{code}: {description}")));
    }
    back_to_client(
        state,
        req,
        &[("error", code.as_str()), ("error_description", description)],
    )
}

pub async fn get(http: HttpRequest, state: Data<OAuthState>) -> Result<HttpResponse, PageError> {
    limit_per_ip(state.core(), &http, Family::Authorize).await?;
    let params =
        Params::parse(http.query_string().as_bytes()).map_err(|e| invalid(e.description))?;
    start(&http, &state, &params).await
}

/// OIDC Core §3.1.2.1: the authorization endpoint accepts POST (form) too.
pub async fn post(
    http: HttpRequest,
    state: Data<OAuthState>,
    body: Bytes,
) -> Result<HttpResponse, PageError> {
    limit_per_ip(state.core(), &http, Family::Authorize).await?;
    super::require_form(&http).map_err(|_| invalid("The request body must be a form."))?;
    let params = Params::parse(&body).map_err(|e| invalid(e.description))?;
    start(&http, &state, &params).await
}

/// Parse (the client and its redirect URI first, then the rest), then let
/// the flow decide. A request naming a `request_uri` is a pushed one (RFC
/// 9126 §4): the stored request is used and the other parameters are
/// ignored, `client_id` aside.
async fn start(
    http: &HttpRequest,
    state: &OAuthState,
    params: &Params,
) -> Result<HttpResponse, PageError> {
    let client_id = params
        .get("client_id")
        .ok_or_else(|| invalid("client_id is missing."))?;
    let client = registered(state, client_id, "The application is not registered.").await?;
    if let Some(request_uri) = params.get("request_uri") {
        let req = pushed(state, &client, request_uri).await?;
        return decide::proceed(http, state, &client, req, None).await;
    }
    let req = match validate(state, &client, params).await {
        Ok(req) => req,
        Err(Refusal::Untrusted(e)) if e.code == ErrorCode::ServerError => {
            return Err(PageError::internal(&e));
        }
        Err(Refusal::Untrusted(e)) => return Err(invalid(e.description)),
        Err(Refusal::Redirectable(req, e)) => {
            return redirect_error(state, &req, e.code, &e.description);
        }
    };
    // RFC 9126 §6: the client, or this server, accepts pushed requests only.
    if state.settings.par.required || client.require_pushed_authorization_requests {
        let why = "pushed authorization request required";
        return redirect_error(state, &req, ErrorCode::InvalidRequest, why);
    }
    decide::proceed(http, state, &client, req, None).await
}

/// Why an authorization request was refused.
pub(crate) enum Refusal {
    /// Before its redirect URI could be trusted (or our failure): the
    /// error must not go to the redirect URI (RFC 6749 §4.1.2.1).
    Untrusted(OAuthError),
    /// After: the error may go back to the client.
    Redirectable(Box<AuthzRequest>, OAuthError),
}

impl Refusal {
    /// The error alone, for an endpoint that answers with JSON (PAR).
    pub(crate) fn into_error(self) -> OAuthError {
        match self {
            Self::Untrusted(e) | Self::Redirectable(_, e) => e,
        }
    }
}

/// Every check of an authorization request, at `/oauth/authorize` and at
/// the pushed authorization request endpoint alike (RFC 9126 §2.1: "the
/// same as for authorization requests"): the redirect URI, the flow,
/// scopes, PKCE, `resource`s.
///
/// # Errors
/// The first thing wrong, and whether it may be redirected.
pub(crate) async fn validate(
    state: &OAuthState,
    client: &ClientRow,
    params: &Params,
) -> Result<AuthzRequest, Refusal> {
    let mut req = AuthzRequest::redirect_part(client, params).map_err(Refusal::Untrusted)?;
    if let Err(e) = req.complete(client, params) {
        return Err(Refusal::Redirectable(Box::new(req), e));
    }
    match crate::resources::for_authorization(state, client, params, &req.scope).await {
        Ok(audiences) => {
            req.resources = crate::resources::identifiers(state, &audiences);
            req.scope_descriptions = crate::resources::descriptions(&audiences, &req.scope);
            Ok(req)
        }
        Err(e) if e.code == ErrorCode::ServerError => Err(Refusal::Untrusted(e)),
        Err(e) => Err(Refusal::Redirectable(Box::new(req), e)),
    }
}

/// The pushed request `request_uri` stands for, taken (used up) now. Any
/// failure is a page, never a redirect: without a valid request_uri there
/// is no trusted redirect URI (RFC 9126 §4, RFC 6749 §4.1.2.1).
async fn pushed(
    state: &OAuthState,
    client: &ClientRow,
    request_uri: &str,
) -> Result<AuthzRequest, PageError> {
    let Some(reference) = par::reference(request_uri) else {
        // OIDC Core §6.2: request objects by reference are not supported;
        // only our own pushed requests' URNs are accepted.
        return Err(invalid(format!(
            "{}: only request_uri values from the pushed authorization request endpoint are accepted.",
            ErrorCode::RequestUriNotSupported
        )));
    };
    par::take(state, client, reference)
        .await?
        .ok_or_else(|| {
            invalid(
                "invalid_request_uri: the request_uri is unknown, expired, already used, or not this application's. Go back to the app and start again.",
            )
        })
}

/// The client with this id, or a page saying it is `missing`: a
/// registered one, or the one a client ID metadata document describes (a
/// document that cannot be had is a page too, never a redirect: nothing
/// about its redirect URIs is known, RFC 6749 §4.1.2.1).
async fn registered(
    state: &OAuthState,
    id: &str,
    missing: &'static str,
) -> Result<ClientRow, PageError> {
    match crate::client_document::resolve(state, id).await {
        Ok(Some(row)) => return Ok(row),
        Ok(None) => {}
        Err(e) if e.code == ErrorCode::ServerError => return Err(PageError::internal(&e)),
        Err(e) => return Err(invalid(e.description)),
    }
    crate::client_auth::client_of_env(state, id)
        .await?
        .ok_or_else(|| invalid(missing))
}

/// `GET /oauth/authorize/continue?interaction=…`: back from the hosted pages.
pub async fn resume(http: HttpRequest, state: Data<OAuthState>) -> Result<HttpResponse, PageError> {
    let params = Params::parse(http.query_string().as_bytes()).unwrap_or_default();
    let id = params.get("interaction").unwrap_or_default();
    let interaction = Interaction::load(&state.core().store, &state.ui.env, id)
        .await?
        .ok_or_else(|| {
            invalid("This sign-in request has expired. Go back to the app and start again.")
        })?;
    let req = serde_json::from_value::<AuthzRequest>(interaction.payload.clone())
        .map_err(|_| invalid("This sign-in request is corrupt."))?;
    let missing = "The application is no longer registered.";
    let client = registered(&state, &req.client_id, missing).await?;
    decide::proceed(&http, &state, &client, req, Some(interaction)).await
}
