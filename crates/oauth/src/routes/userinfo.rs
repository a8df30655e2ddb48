//! `GET/POST /oauth/userinfo` (OIDC Core §5.3): claims about the user of an
//! access token with the `openid` scope, filtered by its other scopes.

use crate::dpop::{self, TokenScheme};
use crate::error::OAuthError;
use crate::form::Params;
use crate::jwt::AccessClaims;
use crate::{OAuthState, issue};
use actix_web::http::header;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value, json};
use trusec_storage::users::UserRow;
use trusec_storage::{StorageError, users};
use trusec_ui::http::Authorization;

/// The access token: `Bearer` (RFC 6750 §2.1) or `DPoP` (RFC 9449 §7.1)
/// in the header, or for POST the `access_token` form field (§2.2, a
/// bearer token); never both.
fn bearer(req: &HttpRequest, form: Option<&Params>) -> Result<(TokenScheme, String), OAuthError> {
    let authorization = Authorization::of(req);
    let header = authorization
        .access_token()
        .map(|(scheme, t)| (scheme, t.to_owned()));
    let body = form
        .and_then(|f| f.get("access_token"))
        .map(|t| (TokenScheme::Bearer, t.to_owned()));
    match (header, body) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "send the token once, not in both header and body",
        )),
        (Some(t), None) | (None, Some(t)) => Ok(t),
        (None, None) => Err(OAuthError::token_required("an access token is required")),
    }
}

pub async fn get(req: HttpRequest, state: Data<OAuthState>) -> Result<HttpResponse, OAuthError> {
    respond(&state, &req, bearer(&req, None)?).await
}

pub async fn post(
    req: HttpRequest,
    state: Data<OAuthState>,
    body: Bytes,
) -> Result<HttpResponse, OAuthError> {
    let form = if body.is_empty() {
        None
    } else {
        Some(Params::parse(&body)?)
    };
    respond(&state, &req, bearer(&req, form.as_ref())?).await
}

async fn respond(
    state: &OAuthState,
    req: &HttpRequest,
    (scheme, token): (TokenScheme, String),
) -> Result<HttpResponse, OAuthError> {
    let claims = issue::verify_own_access_token(state, &token)
        .await
        .map_err(dpop::as_presented(scheme))?;
    let url = format!("{}/oauth/userinfo", state.settings.issuer);
    dpop::check_presented(state, req, &url, (scheme, &token), &claims).await?;
    if !claims.has_scope("openid") {
        return Err(OAuthError::insufficient_scope(
            "the token lacks the openid scope",
        ));
    }
    let (env, sub) = (claims.env.clone(), claims.sub.clone());
    let user = state
        .core()
        .db
        .run(move |conn| users::get(conn, &env, &sub))
        .await
        .map_err(|e| match e {
            StorageError::NotFound => OAuthError::invalid_token("the user no longer exists"),
            other => other.into(),
        })?;
    let mut out = Map::new();
    out.insert("sub".into(), json!(user.id));
    out.extend(released_claims(&claims, &user));
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Value::Object(out)))
}

/// The user's claims that an access token's scopes release (OIDC Core §5.4):
/// names for `profile`, the address for `email`, `groups` for `groups`. The
/// one mapping behind userinfo and `/v1/users/me`.
pub fn released_claims(claims: &AccessClaims, user: &UserRow) -> Map<String, Value> {
    let mut out = Map::new();
    if claims.has_scope("profile") {
        out.insert("name".into(), json!(user.name));
        out.insert("given_name".into(), json!(user.given_name));
        out.insert("family_name".into(), json!(user.family_name));
        out.insert(
            "updated_at".into(),
            json!(user.updated_at.and_utc().timestamp()),
        );
    }
    if claims.has_scope("email") {
        out.insert("email".into(), json!(user.email));
        // Addresses are not verified by TruSec itself.
        out.insert("email_verified".into(), json!(false));
    }
    if claims.has_scope("groups") {
        let groups: Value = serde_json::from_str(&user.groups).unwrap_or(json!([]));
        out.insert("groups".into(), groups);
    }
    out
}
