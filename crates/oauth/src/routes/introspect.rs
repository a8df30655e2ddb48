//! `POST /oauth/introspect` (RFC 7662). Only confidential clients may ask,
//! and only about tokens of their own environment issued to themselves,
//! except that a client flagged `resource_server` may ask about the access
//! tokens of its environment for its resource: those whose `aud` is its
//! `default_resource` (RFC 8707), or this server's own tokens when it has
//! none (§4: the endpoint decides who may learn what). The answer names
//! the audience (`aud`). Anything else is simply `{"active": false}`
//! (§2.2: nothing revealed), including garbage and oversized tokens.

use super::{no_store_json, require_form};
use crate::OAuthState;
use crate::client_auth;
use crate::error::{ErrorCode, OAuthError};
use crate::form::Params;
use crate::issue::{self, TokenKind};
use crate::jwt::AccessClaims;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};
use trusec_storage::clients::ClientRow;

pub async fn post(
    req: HttpRequest,
    state: Data<OAuthState>,
    body: Bytes,
) -> Result<HttpResponse, OAuthError> {
    require_form(&req)?;
    let params = Params::parse(&body)?;
    let client =
        client_auth::authenticate(&state, &req, &params, client_auth::Endpoint::Introspection)
            .await?;
    if client.row.is_public() {
        return Err(OAuthError::invalid_client(
            "introspection needs a confidential client",
        ));
    }
    let token = params.require("token")?;
    let body = match TokenKind::of(token) {
        TokenKind::Refresh => refresh_token(&state, &client.row, token).await?,
        TokenKind::Access => access_token(&state, &client.row, token).await?,
    };
    Ok(no_store_json(
        &body.unwrap_or_else(|| json!({"active": false})),
    ))
}

/// A live refresh token of the asking client: not revoked (alone, with its
/// family, its sign-in session or its user's password), not rotated, not
/// expired, and its family within its absolute lifetime. Refresh tokens are
/// for their client alone (RFC 6749 §1.5), so not even a resource server
/// learns about another client's.
async fn refresh_token(
    state: &OAuthState,
    asker: &ClientRow,
    token: &str,
) -> Result<Option<Value>, OAuthError> {
    let row = issue::find_refresh_token(state, token).await?;
    let now = state.core().clock.now_naive();
    let lifetime = state.settings.refresh_family_lifetime();
    Ok(row
        .filter(|r| {
            r.environment_id == asker.environment_id
                && r.client_id == asker.id
                && r.rotated_at.is_none()
                && r.live_at(now, lifetime)
        })
        .map(|r| {
            json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": r.scope,
                "client_id": r.client_id,
                "exp": r.expires_at.min(r.family_expiry(lifetime)).and_utc().timestamp(),
                "sub": r.user_id.unwrap_or_else(|| r.client_id.clone()),
                "iat": r.created_at.and_utc().timestamp(),
                "iss": state.settings.issuer,
            })
        }))
}

/// The token's `cnf` (RFC 9449 §6.2), `auth_time`, `amr` and `acr` (RFC 9068 §2.2.1; RFC 7662 §2.2
/// allows members of its own), when it has them:
/// a claim the token lacks is left out, not null.
fn with_sign_in(c: &AccessClaims, mut body: Value) -> Value {
    if let Some(obj) = body.as_object_mut() {
        // RFC 9449 §6.2: a DPoP-bound token's key, and its type.
        if let Some(cnf) = &c.cnf {
            obj.insert("cnf".into(), json!({"jkt": cnf.jkt}));
            obj.insert("token_type".into(), json!("DPoP"));
        }
        if let Some(t) = c.auth_time {
            obj.insert("auth_time".into(), json!(t));
        }
        if !c.amr.is_empty() {
            obj.insert("amr".into(), json!(c.amr));
        }
        if let Some(acr) = &c.acr {
            obj.insert("acr".into(), json!(acr));
        }
    }
    body
}

/// Whether `asker` may learn about this access token: its own, or one of
/// its environment for the resource it serves when it is a resource server.
fn may_see(state: &OAuthState, asker: &ClientRow, token: &AccessClaims) -> bool {
    let serves = asker
        .default_resource
        .as_deref()
        .unwrap_or(&state.settings.issuer);
    token.env == asker.environment_id
        && (token.client_id == asker.id || (asker.resource_server && token.aud == serves))
}

/// A live access token the asking client may see ([`may_see`]).
async fn access_token(
    state: &OAuthState,
    asker: &ClientRow,
    token: &str,
) -> Result<Option<Value>, OAuthError> {
    match issue::verify_live_access_token(state, token).await {
        Ok(c) if may_see(state, asker, &c) => Ok(Some(with_sign_in(
            &c,
            json!({
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
        ))),
        Ok(_) => Ok(None),
        // A store outage must not read as "inactive" to a resource server
        // that would then refuse a good token — nor as active: say so.
        Err(e) if e.code == ErrorCode::ServerError => Err(e),
        Err(_) => Ok(None),
    }
}
