//! `POST /oauth/revoke` (RFC 7009). The client authenticates; a token it
//! does not own, an unknown or malformed token: still 200 (§2.2), and
//! nothing happens. Revoking a refresh token revokes its family and the
//! access tokens issued with it (§2.1).

use super::require_form;
use crate::client_auth::{self, AuthenticatedClient};
use crate::error::OAuthError;
use crate::form::Params;
use crate::issue::{self, TokenKind};
use crate::{OAuthState, jwt};
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use trusec_storage::audit::{Actor, EventType, NewAuditEvent};

pub async fn post(
    req: HttpRequest,
    state: Data<OAuthState>,
    body: Bytes,
) -> Result<HttpResponse, OAuthError> {
    require_form(&req)?;
    let params = Params::parse(&body)?;
    let client =
        client_auth::authenticate(&state, &req, &params, client_auth::Endpoint::Revocation).await?;
    let token = params.require("token")?;
    match TokenKind::of(token) {
        TokenKind::Refresh => revoke_refresh_token(&state, &client, token).await?,
        TokenKind::Access => revoke_access_token(&state, &client, token).await?,
    }
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .finish())
}

fn revoked(client: &AuthenticatedClient) -> NewAuditEvent {
    NewAuditEvent::new(
        EventType::OAuthTokenRevoked,
        Some(&client.row.environment_id),
        Actor::oauth_client(&client.row.id),
    )
}

async fn revoke_refresh_token(
    state: &OAuthState,
    client: &AuthenticatedClient,
    token: &str,
) -> Result<(), OAuthError> {
    let row = issue::find_refresh_token(state, token).await?;
    let Some(row) = row.filter(|r| r.client_id == client.row.id) else {
        return Ok(());
    };
    if issue::revoke_family(state, &row.family_id).await? > 0 {
        let mut event = revoked(client).data(serde_json::json!({"client_id": client.row.id, "token_type": "refresh_token", "family_id": row.family_id}));
        if let Some(uid) = &row.user_id {
            event = event.user(uid);
        }
        state.core().audit(event).await?;
    }
    Ok(())
}

async fn revoke_access_token(
    state: &OAuthState,
    client: &AuthenticatedClient,
    token: &str,
) -> Result<(), OAuthError> {
    let Ok((_, claims)) = jwt::verify_signature(&state.keyring, token).await else {
        return Ok(());
    };
    let claims: Option<jwt::AccessClaims> =
        serde_json::from_value(serde_json::Value::Object(claims)).ok();
    let Some(c) = claims.filter(|c| c.client_id == client.row.id) else {
        return Ok(());
    };
    issue::revoke_access_token(state, &c.jti, c.exp).await?;
    let mut event = revoked(client).data(
        serde_json::json!({"client_id": client.row.id, "token_type": "access_token", "jti": c.jti}),
    );
    if c.sub != c.client_id {
        event = event.user(&c.sub);
    }
    state.core().audit(event).await?;
    Ok(())
}
