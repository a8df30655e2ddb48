//! The device authorization grant at the token endpoint (RFC 8628 §3.4,
//! §3.5). The database answers each poll ([`device_grants::poll`]): the
//! interval is enforced there, and an approved grant is redeemed by a
//! conditional update, so a device code issues tokens once however many
//! polls race, and whatever happens to the ephemeral store.

use super::code::{self, CodeGrant};
use crate::OAuthState;
use crate::client_auth::AuthenticatedClient;
use crate::dpop::Jkt;
use crate::error::{ErrorCode, OAuthError};
use crate::form::Params;
use crate::issue;
use trusec_storage::clients::GrantType;
use trusec_storage::device_grants::{self, DeviceGrantRow, Poll};
use trusec_storage::secrets;

pub async fn exchange(
    state: &OAuthState,
    client: &AuthenticatedClient,
    params: &Params,
    dpop: Option<&Jkt>,
) -> Result<serde_json::Value, OAuthError> {
    let hash = secrets::hash_secret(params.require("device_code")?);
    let (env, cid) = (client.row.environment_id.clone(), client.row.id.clone());
    let now = state.core().clock.now_naive();
    let poll = state
        .core()
        .db
        .run(move |c| device_grants::poll(c, &env, &cid, &hash, now))
        .await?;
    let row = answer(poll)?;
    let grant = code_grant(&row);
    let user = issue::grant_user(state, &grant.environment_id, &grant.user_id).await?;
    let (tokens, _) = code::issue(state, client, params, &grant, &user, dpop).await?;
    code::audit_issued(state, client, &user, &tokens, GrantType::DeviceCode).await?;
    Ok(tokens.to_json())
}

/// §3.5: each state of the grant as the device hears it.
fn answer(poll: Poll) -> Result<DeviceGrantRow, OAuthError> {
    let (code, why) = match poll {
        Poll::Redeem(row) => return Ok(*row),
        Poll::Unknown => (ErrorCode::InvalidGrant, "the device code is invalid"),
        Poll::Expired => (ErrorCode::ExpiredToken, "the device code has expired"),
        Poll::SlowDown => (
            ErrorCode::SlowDown,
            "polling too fast: the interval is now 5 seconds longer",
        ),
        Poll::Pending => (
            ErrorCode::AuthorizationPending,
            "the user has not approved the request yet",
        ),
        Poll::Denied => (ErrorCode::AccessDenied, "the user denied the request"),
        Poll::AlreadyRedeemed => (ErrorCode::InvalidGrant, "the device code was already used"),
    };
    Err(OAuthError::new(code, why))
}

/// The approved grant in the shape the code flow issues from: the same
/// tokens (no redirect URI or PKCE: the device code is the proof).
fn code_grant(row: &DeviceGrantRow) -> CodeGrant {
    CodeGrant {
        client_id: row.client_id.clone(),
        environment_id: row.environment_id.clone(),
        user_id: row.user_id.clone().unwrap_or_default(),
        redirect_uri: String::new(),
        redirect_uri_sent: false,
        scope: row.scope.0.clone(),
        nonce: None,
        pkce: None,
        auth_time: row.auth_time.unwrap_or_default(),
        session_id: row.session_id.clone(),
        resources: row.resources.0.clone(),
        amr: row.amr.as_ref().map(|a| a.0.clone()).unwrap_or_default(),
        acr: None,
        dpop_jkt: None,
    }
}
