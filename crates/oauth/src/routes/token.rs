//! `POST /oauth/token` (RFC 6749 §3.2): rate limits per IP, authenticates
//! the client, rate limits a confidential client per client (a public one's
//! failed grants per client and IP), and dispatches on `grant_type`.

use super::grants;
use super::{no_store_json, require_form};
use crate::OAuthState;
use crate::client_auth::{self, AuthenticatedClient};
use crate::dpop::{self, Jkt};
use crate::error::OAuthError;
use crate::form::Params;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use trusec_storage::audit::ClientInfo;
use trusec_storage::audit::{Actor, EventType, NewAuditEvent};
use trusec_storage::clients::GrantType;
use trusec_storage::rate_limit::{Family, Subject};
use trusec_ui::http::client_info;

const MAX_BODY: usize = 16 * 1024;

#[tracing::instrument(skip_all)]
pub async fn post(
    req: HttpRequest,
    state: Data<OAuthState>,
    body: Bytes,
) -> Result<HttpResponse, OAuthError> {
    let params = read_form(&req, &body)?;
    let (client, caller) =
        authenticate(&state, &req, &params, client_auth::Endpoint::Token).await?;
    let dpop = proof_key(&state, &req, &client).await?;
    if !client.row.is_public() {
        return Ok(no_store_json(
            &grant(&state, &client, &params, dpop.as_ref()).await?,
        ));
    }
    // A public client proves nothing: anyone can send its `client_id`, so a
    // per-client budget would be everyone's to spend. Its failed grants are
    // counted per client and IP instead (reserved first, so concurrent
    // guesses cannot slip past, and given back when the grant succeeds).
    let budget = [Subject::CallerAtIp {
        caller: &client.row.id,
        ip: caller.ip.as_deref(),
    }];
    state
        .core()
        .reserve(Family::Token, &budget, || refusal(&client, &caller))
        .await?;
    let body = grant(&state, &client, &params, dpop.as_ref()).await?;
    state.core().refund(Family::Token, &budget).await;
    Ok(no_store_json(&body))
}

/// The key of the request's DPoP proof (RFC 9449 §5), checked for this
/// endpoint; `None` without one, unless the client registered
/// `dpop_bound_access_tokens` (§5.2: then a request without a proof is
/// refused).
///
/// # Errors
/// `invalid_dpop_proof` or `use_dpop_nonce` (400).
async fn proof_key(
    state: &OAuthState,
    req: &HttpRequest,
    client: &AuthenticatedClient,
) -> Result<Option<Jkt>, OAuthError> {
    let url = client_auth::Endpoint::Token.url(&state.settings.issuer);
    let key = dpop::check(state, req, &url, None)
        .await
        .map_err(dpop::Refusal::at_token_endpoint)?;
    if key.is_none() && client.row.dpop_bound_access_tokens {
        return Err(OAuthError::invalid_dpop_proof(
            "this client's token requests must carry a DPoP proof (dpop_bound_access_tokens)",
        ));
    }
    Ok(key)
}

/// A form body of at most [`MAX_BODY`] bytes.
///
/// # Errors
/// `invalid_request` for another media type or a larger body.
pub(super) fn read_form(req: &HttpRequest, body: &Bytes) -> Result<Params, OAuthError> {
    require_form(req)?;
    if body.len() > MAX_BODY {
        return Err(OAuthError::invalid_request("the request body is too large"));
    }
    Params::parse(body)
}

/// The token endpoint's client authentication with its limits, which the
/// device authorization endpoint shares (RFC 8628 §3.1: the client
/// authenticates as at the token endpoint). Per client IP before
/// authentication, per client only once a confidential one proved who it
/// is, so nobody can exhaust another client's budget by claiming its id (a
/// public client's budget is its caller's to reserve, see [`post`]).
///
/// # Errors
/// `invalid_client`; rate limits.
pub(super) async fn authenticate(
    state: &OAuthState,
    req: &HttpRequest,
    params: &Params,
    endpoint: client_auth::Endpoint,
) -> Result<(AuthenticatedClient, ClientInfo), OAuthError> {
    let caller = client_info(req);
    state.core().limit_ip(Family::Token, &caller).await?;
    let client = client_auth::authenticate(state, req, params, endpoint).await?;
    if !client.row.is_public() {
        state
            .core()
            .limit(Family::Token, Subject::Caller(&client.row.id), || {
                refusal(&client, &caller)
            })
            .await?;
    }
    Ok((client, caller))
}

fn refusal(client: &AuthenticatedClient, caller: &ClientInfo) -> NewAuditEvent {
    NewAuditEvent::new(
        EventType::RateLimitExceeded,
        Some(&client.row.environment_id),
        Actor::oauth_client(&client.row.id),
    )
    .client(caller)
}

/// Dispatches on `grant_type` for an authenticated client.
///
/// # Errors
/// The grant's own errors (RFC 6749 §5.2).
async fn grant(
    state: &OAuthState,
    client: &AuthenticatedClient,
    params: &Params,
    dpop: Option<&Jkt>,
) -> Result<serde_json::Value, OAuthError> {
    let grant_type = grant_type(params)?;
    allowed(client, grant_type)?;
    match grant_type {
        GrantType::AuthorizationCode => grants::code::exchange(state, client, params, dpop).await,
        GrantType::RefreshToken => grants::refresh::exchange(state, client, params, dpop).await,
        GrantType::ClientCredentials => {
            grants::client_credentials::exchange(state, client, params, dpop).await
        }
        GrantType::DeviceCode => grants::device_code::exchange(state, client, params, dpop).await,
    }
}

/// The `grant_type` parameter.
///
/// # Errors
/// `invalid_request` when it is missing, `unsupported_grant_type` (RFC 6749
/// §5.2) for a grant this server does not have.
fn grant_type(params: &Params) -> Result<GrantType, OAuthError> {
    let name = params.require("grant_type")?;
    GrantType::parse(name).ok_or_else(|| {
        OAuthError::unsupported_grant_type(format!("grant_type {name} is not supported"))
    })
}

/// RFC 6749 §5.2 `unauthorized_client`: a grant the client was not given.
fn allowed(client: &AuthenticatedClient, grant_type: GrantType) -> Result<(), OAuthError> {
    if client.row.allows(grant_type) {
        Ok(())
    } else {
        Err(OAuthError::unauthorized_client(format!(
            "this client may not use {grant_type}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn grant_of(body: &str) -> Result<GrantType, ErrorCode> {
        grant_type(&Params::parse(body.as_bytes()).unwrap()).map_err(|e| e.code)
    }

    #[test]
    fn grant_types_parse_and_unknown_ones_are_unsupported() {
        assert_eq!(
            grant_of("grant_type=authorization_code"),
            Ok(GrantType::AuthorizationCode)
        );
        assert_eq!(
            grant_of("grant_type=refresh_token"),
            Ok(GrantType::RefreshToken)
        );
        assert_eq!(
            grant_of("grant_type=client_credentials"),
            Ok(GrantType::ClientCredentials)
        );
        assert_eq!(
            grant_of("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"),
            Ok(GrantType::DeviceCode)
        );
        for unknown in ["password", "implicit", "Authorization_Code"] {
            assert_eq!(
                grant_of(&format!("grant_type={unknown}")),
                Err(ErrorCode::UnsupportedGrantType),
                "{unknown}"
            );
        }
        assert_eq!(grant_of("code=x"), Err(ErrorCode::InvalidRequest));
    }
}
