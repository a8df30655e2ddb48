//! `GET/POST /oauth/logout`: OIDC RP-Initiated Logout 1.0. Validates
//! `id_token_hint` (our signature; expiry does not matter), the client, and
//! `post_logout_redirect_uri` (registered, exact match), then hands over to
//! the hosted `/logout` page, which asks before signing out and returns to
//! the app only when that URI was validated — and, for a client registered
//! anonymously (whose URIs anyone could have chosen), only when a valid
//! `id_token_hint` issued to it came along (RP-Initiated Logout §2, §3: the
//! OP decides when to redirect; without the hint it shows the signed-out
//! page instead of becoming an open redirector). Errors are pages
//! ([`PageError`]).

use crate::form::Params;
use crate::{OAuthState, jwt};
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use std::borrow::Cow;
use trusec_storage::clients::{ClientRow, RegisteredBy};
use trusec_storage::rate_limit::Family;
use trusec_ui::http::limit_per_ip;
use trusec_ui::{LogoutIntent, PageError, pages};

fn invalid(message: impl Into<Cow<'static, str>>) -> PageError {
    PageError::refused(StatusCode::BAD_REQUEST, "Invalid sign-out request", message)
}

pub async fn get(req: HttpRequest, state: Data<OAuthState>) -> Result<HttpResponse, PageError> {
    limit_per_ip(state.core(), &req, Family::Authorize).await?;
    let params =
        Params::parse(req.query_string().as_bytes()).map_err(|e| invalid(e.description))?;
    handle(&state, &params).await
}

pub async fn post(
    req: HttpRequest,
    state: Data<OAuthState>,
    body: Bytes,
) -> Result<HttpResponse, PageError> {
    limit_per_ip(state.core(), &req, Family::Authorize).await?;
    let params = Params::parse(&body).map_err(|e| invalid(e.description))?;
    handle(&state, &params).await
}

async fn handle(state: &OAuthState, params: &Params) -> Result<HttpResponse, PageError> {
    let named = client_id(state, params).await?;
    let client = match &named.client_id {
        // A metadata document's client: its post_logout_redirect_uris are
        // the document's; one that cannot be had now is no client (the
        // user is still signed out, just not sent anywhere).
        Some(id) => match crate::client_document::resolve(state, id).await {
            Ok(Some(row)) => Some(row),
            Ok(None) => crate::client_auth::client_of_env(state, id).await?,
            Err(e) => {
                tracing::info!(reason = %e.description, "logout names an unusable client document");
                None
            }
        },
        None => None,
    };
    let return_url = return_url(params, client.as_ref(), named.hinted)?;
    let intent = LogoutIntent {
        client_name: client.map(|c| c.name),
        return_url,
        environment_id: state.env().id.clone(),
    };
    let id = intent.save(&state.ui).await?;
    Ok(pages::page_response(StatusCode::FOUND)
        .insert_header((
            actix_web::http::header::LOCATION,
            state.env().path(&format!("/logout?intent={id}")),
        ))
        .finish())
}

/// The client a logout request names, and whether a valid `id_token_hint`
/// issued to it came along.
struct Named {
    client_id: Option<String>,
    hinted: bool,
}

/// The client named by `client_id` or by the audience of `id_token_hint`;
/// when both are given they must agree.
async fn client_id(state: &OAuthState, params: &Params) -> Result<Named, PageError> {
    let client_id = params.get("client_id").map(str::to_owned);
    let Some(hint) = params.get("id_token_hint") else {
        return Ok(Named {
            client_id,
            hinted: false,
        });
    };
    // Signed by this environment's keys and naming this environment's
    // issuer: another environment's ID token is not one issued here.
    let claims = match jwt::verify_signature(&state.keyring, hint).await {
        Ok((_, claims))
            if claims.get("iss").and_then(|i| i.as_str()) == Some(&state.settings.issuer) =>
        {
            claims
        }
        _ => return Err(invalid("id_token_hint is not an ID token issued here.")),
    };
    let aud = claims
        .get("aud")
        .and_then(|a| a.as_str())
        .map(str::to_owned);
    match (client_id, aud) {
        (Some(c), Some(a)) if c != a => Err(invalid("client_id does not match id_token_hint.")),
        (_, Some(a)) => Ok(Named {
            client_id: Some(a),
            hinted: true,
        }),
        (c, None) => Ok(Named {
            client_id: c,
            hinted: false,
        }),
    }
}

/// Whether a client's post-logout URIs are followed on its `client_id`
/// alone: yes when an operator (API key) registered it, no when anyone could
/// have (open RFC 7591 registration).
fn trusted_without_hint(client: &ClientRow) -> bool {
    match client.registered_by {
        RegisteredBy::ManagementApi | RegisteredBy::ApiKey | RegisteredBy::Console => true,
        RegisteredBy::Anonymous | RegisteredBy::MetadataDocument => false,
    }
}

/// Where to return after signing out: a registered post-logout URI, with
/// `state` appended.
/// The longest `state` an RP may send through logout (RP-Initiated Logout
/// §2 leaves it opaque; 512 bytes is far more than any RP uses).
const MAX_STATE: usize = 512;

fn return_url(
    params: &Params,
    client: Option<&ClientRow>,
    hinted: bool,
) -> Result<Option<String>, PageError> {
    let Some(uri) = params.get("post_logout_redirect_uri") else {
        return Ok(None);
    };
    let Some(client) = client else {
        return Err(invalid(
            "post_logout_redirect_uri needs client_id or id_token_hint.",
        ));
    };
    if !client.post_logout_redirect_uris.iter().any(|r| r == uri) {
        return Err(invalid(
            "post_logout_redirect_uri is not registered for this application.",
        ));
    }
    if !trusted_without_hint(client) && !hinted {
        // Sign out, but stay on our page: see the module docs.
        return Ok(None);
    }
    let mut url =
        url::Url::parse(uri).map_err(|_| invalid("post_logout_redirect_uri is malformed."))?;
    if let Some(s) = params.get("state") {
        // Stored with the logout intent for minutes on an anonymous request:
        // bounded like every other piece of unauthenticated state.
        if s.len() > MAX_STATE {
            return Err(invalid("state is longer than 512 bytes."));
        }
        url.query_pairs_mut().append_pair("state", s);
    }
    Ok(Some(url.to_string()))
}
