//! `POST /oauth/introspect` (RFC 7662). Only confidential clients may ask,
//! and only about tokens of their own environment; anything else is simply
//! `{"active": false}` (§2.2), including garbage and oversized tokens.

use super::{no_store_json, require_form};
use crate::OAuthState;
use crate::client_auth;
use crate::error::{ErrorCode, OAuthError};
use crate::form::Params;
use crate::issue::{self, REFRESH_PREFIX};
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;
use trusec_storage::{refresh_tokens, secrets};

pub async fn post(
    req: HttpRequest,
    state: Data<OAuthState>,
    body: Bytes,
) -> Result<HttpResponse, OAuthError> {
    require_form(&req)?;
    let params = Params::parse(&body)?;
    let client = client_auth::authenticate(&state, &req, &params).await?;
    if client.row.is_public() {
        return Err(OAuthError::invalid_client(
            "introspection needs a confidential client",
        ));
    }
    let token = params.require("token")?;
    let inactive = json!({"active": false});
    let env = client.row.environment_id.clone();
    if token.starts_with(REFRESH_PREFIX) {
        let hash = secrets::hash_secret(token);
        let row = state
            .core()
            .db
            .run(move |c| refresh_tokens::find_by_hash(c, &hash))
            .await?;
        let now = state.core().clock.now_naive();
        let body = match row {
            Some(r)
                if r.environment_id == env
                    && r.revoked_at.is_none()
                    && r.rotated_at.is_none()
                    && r.expires_at > now =>
            {
                json!({
                    "active": true,
                    "token_type": "refresh_token",
                    "scope": r.scope,
                    "client_id": r.client_id,
                    "sub": r.user_id.unwrap_or_else(|| r.client_id.clone()),
                    "exp": r.expires_at.and_utc().timestamp(),
                    "iat": r.created_at.and_utc().timestamp(),
                    "iss": state.settings.issuer,
                })
            }
            _ => inactive,
        };
        return Ok(no_store_json(&body));
    }
    let body = match issue::verify_live_access_token(&state, token).await {
        Ok(c) if c.env == env => json!({
            "active": true,
            "token_type": "Bearer",
            "scope": c.scope,
            "client_id": c.client_id,
            "sub": c.sub,
            "aud": c.aud,
            "iss": c.iss,
            "exp": c.exp,
            "iat": c.iat,
            "jti": c.jti,
        }),
        Ok(_) => inactive,
        // A store outage must not read as "inactive" to a resource server
        // that would then refuse a good token — nor as active: say so.
        Err(e) if e.code == ErrorCode::ServerError => return Err(e),
        Err(_) => inactive,
    };
    Ok(no_store_json(&body))
}
