//! `/v1/users/{id}/consents` (an administrator) and `/v1/users/me/consents`
//! (the user, through an app holding their access token): the grants a
//! user gave OAuth clients, and taking one back — which also revokes the
//! refresh tokens the client holds for the user, so the app must ask again.
//!
//! Through `/me` an app sees and takes back only its own grant ("disconnect
//! this app"): which other apps a user has signed in to is not any app's
//! business.

use crate::error::ApiError;
use crate::extract::{Caller, PageQuery, list_response, path_id};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use trusec_storage::StorageError;
use trusec_storage::audit::{Actor, EventType, NewAuditEvent};
use trusec_storage::consents;
use trusec_storage::ids::{ClientId, ConsentId, UserId};

async fn list(
    state: &AppState,
    env: String,
    user_id: UserId,
    only_client: Option<String>,
    query: &PageQuery,
) -> Result<HttpResponse, ApiError> {
    let page = query.to_request::<ConsentId>()?;
    let rows = state
        .core
        .db
        .run(move |conn| {
            consents::list_for_user(conn, &env, &user_id, only_client.as_deref(), &page)
        })
        .await
        .map_err(super::users::user_not_found)?;
    list_response(rows, consents::ConsentRow::to_consent, |c| c.id.clone())
}

/// Revokes the grant and its refresh tokens, audited as `event` says who
/// did: the decide step of both revoke routes and of the console.
///
/// # Errors
/// `NotFound` for no such grant; storage and audit failures.
pub(crate) async fn revoke(
    state: &AppState,
    env: String,
    user_id: UserId,
    client: &str,
    event: NewAuditEvent,
) -> Result<(), ApiError> {
    let client_id = path_id::<ClientId>(client)?;
    let now = state.core.clock.now_naive();
    let (e, u, c) = (env, user_id.clone(), client_id.clone());
    let (row, revoked) = state
        .core
        .db
        .run(move |conn| consents::revoke(conn, &e, &u, &c, now))
        .await
        .map_err(|e| match e {
            StorageError::NotFound => ApiError::not_found("consent", Some("client_id")),
            other => other.into(),
        })?;
    // Their access tokens stop too, on every instance.
    state
        .core
        .forget_refresh_families(&revoked.families)
        .await?;
    let event = event.user(&user_id).data(serde_json::json!({
        "client_id": &*client_id,
        "scopes": row.to_consent()?.scopes,
        "refresh_families_revoked": revoked.families.len(),
    }));
    state.core.audit(event).await?;
    Ok(())
}

#[utoipa::path(get, path = "/v1/users/{id}/consents", tag = "users", params(("id" = String, Path, description = "user_…"), ("limit" = Option<i64>, Query), ("after" = Option<String>, Query)), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "The clients this user granted scopes to", body = crate::extract::ListOf<trusec_storage::consents::Consent>), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 404, description = "No such user", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn list_for_user(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let user_id = path_id::<UserId>(&id)?;
    list(&state, caller.environment.clone(), user_id, None, &query).await
}

#[utoipa::path(delete, path = "/v1/users/{id}/consents/{client_id}", tag = "users", params(("id" = String, Path, description = "user_…"), ("client_id" = String, Path, description = "client_…")), security(("api_key" = []), ("access_token" = [])), responses((status = 204, description = "The grant and the client's refresh tokens for this user are revoked"), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 404, description = "No such grant", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn revoke_for_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, client) = path.into_inner();
    let user_id = path_id::<UserId>(&id)?;
    let event = caller.event(EventType::OAuthConsentRevoked);
    revoke(&state, caller.environment.clone(), user_id, &client, event).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/v1/users/me/consents", tag = "users", params(("limit" = Option<i64>, Query), ("after" = Option<String>, Query)), security(("access_token" = [])), responses((status = 200, description = "The grant of the token's user to the token's client (at most one)", body = crate::extract::ListOf<trusec_storage::consents::Consent>), (status = 401, description = "No or bad access token", body = crate::error::ErrorBody), (status = 403, description = "A client's own token", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn list_mine(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let claims = super::users::user_token(&req, &state).await?;
    let user_id = path_id::<UserId>(&claims.sub)?;
    let own = Some(claims.client_id.clone());
    list(&state, claims.env.clone(), user_id, own, &query).await
}

#[utoipa::path(delete, path = "/v1/users/me/consents/{client_id}", tag = "users", params(("client_id" = String, Path, description = "client_…")), security(("access_token" = [])), responses((status = 204, description = "The token's own client is disconnected: its grant and refresh tokens for this user are revoked"), (status = 401, description = "No or bad access token", body = crate::error::ErrorBody), (status = 403, description = "A client's own token", body = crate::error::ErrorBody), (status = 404, description = "No such grant", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn revoke_mine(
    req: HttpRequest,
    state: web::Data<AppState>,
    client: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let claims = super::users::user_token(&req, &state).await?;
    let user_id = path_id::<UserId>(&claims.sub)?;
    if *client != claims.client_id {
        return Err(ApiError::not_found("consent", Some("client_id")));
    }
    let event = NewAuditEvent::new(
        EventType::OAuthConsentRevoked,
        Some(&claims.env),
        Actor::user(&claims.sub),
    )
    .client(&trusec_ui::http::client_info(&req));
    revoke(&state, claims.env.clone(), user_id, &client, event).await?;
    Ok(HttpResponse::NoContent().finish())
}
