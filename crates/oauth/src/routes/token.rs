//! `POST /oauth/token` (RFC 6749 §3.2): authenticates the client, rate
//! limits per client, and dispatches on `grant_type`.

use super::grants;
use super::{no_store_json, require_form};
use crate::OAuthState;
use crate::client_auth::{self, AuthenticatedClient};
use crate::error::OAuthError;
use crate::form::Params;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use trusec_storage::audit::{Actor, EventType, NewAuditEvent};
use trusec_storage::rate_limit::{Family, Subject};
use trusec_ui::http::client_info;

const MAX_BODY: usize = 16 * 1024;

#[tracing::instrument(skip_all)]
pub async fn post(
    req: HttpRequest,
    state: Data<OAuthState>,
    body: Bytes,
) -> Result<HttpResponse, OAuthError> {
    require_form(&req)?;
    if body.len() > MAX_BODY {
        return Err(OAuthError::invalid_request("the request body is too large"));
    }
    let params = Params::parse(&body)?;
    // Per client IP before authentication, per client only once it proved
    // who it is, so nobody can exhaust another client's budget by claiming
    // its id.
    let caller = client_info(&req);
    let anonymous = || {
        NewAuditEvent::new(EventType::RateLimitExceeded, None, Actor::anonymous()).client(&caller)
    };
    state
        .core()
        .limit(Family::Token, Subject::Ip(caller.ip.as_deref()), anonymous)
        .await?;
    let client = client_auth::authenticate(&state, &req, &params).await?;
    let refusal = || {
        NewAuditEvent::new(
            EventType::RateLimitExceeded,
            Some(&client.row.environment_id),
            Actor::oauth_client(&client.row.id),
        )
        .client(&caller)
    };
    state
        .core()
        .limit(Family::Token, Subject::Caller(&client.row.id), refusal)
        .await?;
    let grant_type = params.require("grant_type")?;
    if !["authorization_code", "refresh_token", "client_credentials"].contains(&grant_type) {
        return Err(OAuthError::unsupported_grant_type(format!(
            "grant_type {grant_type} is not supported"
        )));
    }
    allowed(&client, grant_type)?;
    let body = match grant_type {
        "authorization_code" => grants::code::exchange(&state, &client, &params).await?,
        "refresh_token" => grants::refresh::exchange(&state, &client, &params).await?,
        _ => grants::client_credentials::exchange(&state, &client, &params).await?,
    };
    Ok(no_store_json(&body))
}

fn allowed(client: &AuthenticatedClient, grant_type: &str) -> Result<(), OAuthError> {
    if client
        .row
        .grant_types
        .iter()
        .any(|g| g.as_str() == grant_type)
    {
        Ok(())
    } else {
        Err(OAuthError::unauthorized_client(format!(
            "this client may not use {grant_type}"
        )))
    }
}
