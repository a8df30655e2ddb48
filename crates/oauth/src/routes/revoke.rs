//! `POST /oauth/revoke` (RFC 7009). The client authenticates; a token it
//! does not own, an unknown or malformed token: still 200 (§2.2), and
//! nothing happens. Revoking a refresh token revokes its family and the
//! access tokens issued with it (§2.1).

use super::require_form;
use crate::client_auth;
use crate::error::OAuthError;
use crate::form::Params;
use crate::issue::{self, REFRESH_PREFIX};
use crate::{OAuthState, jwt};
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use trusec_storage::audit::{Actor, EventType, NewAuditEvent};
use trusec_storage::{refresh_tokens, secrets};

pub async fn post(
    req: HttpRequest,
    state: Data<OAuthState>,
    body: Bytes,
) -> Result<HttpResponse, OAuthError> {
    require_form(&req)?;
    let params = Params::parse(&body)?;
    let client = client_auth::authenticate(&state, &req, &params).await?;
    let token = params.require("token")?;
    let actor = Actor::oauth_client(&client.row.id);
    let env = client.row.environment_id.clone();
    if token.starts_with(REFRESH_PREFIX) {
        let hash = secrets::hash_secret(token);
        let row = state
            .core()
            .db
            .run(move |c| refresh_tokens::find_by_hash(c, &hash))
            .await?;
        if let Some(row) = row.filter(|r| r.client_id == client.row.id) {
            let n = issue::revoke_family(&state, &row.family_id).await?;
            if n > 0 {
                let mut event = NewAuditEvent::new(EventType::OAuthTokenRevoked, Some(&env), actor)
                    .data(serde_json::json!({"client_id": client.row.id, "token_type": "refresh_token", "family_id": row.family_id}));
                if let Some(uid) = &row.user_id {
                    event = event.user(uid);
                }
                state.core().audit(event).await?;
            }
        }
    } else if let Ok((_, claims)) = jwt::verify_signature(&state.keyring, token).await {
        let claims: Option<jwt::AccessClaims> =
            serde_json::from_value(serde_json::Value::Object(claims)).ok();
        if let Some(c) = claims.filter(|c| c.client_id == client.row.id) {
            issue::revoke_access_token(&state, &c.jti, c.exp).await?;
            let mut event = NewAuditEvent::new(EventType::OAuthTokenRevoked, Some(&env), actor)
                .data(serde_json::json!({"client_id": client.row.id, "token_type": "access_token", "jti": c.jti}));
            if c.sub != c.client_id {
                event = event.user(&c.sub);
            }
            state.core().audit(event).await?;
        }
    }
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .finish())
}
