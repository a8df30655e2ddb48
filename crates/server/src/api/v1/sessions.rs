//! `/v1/sessions`: create, verify, revoke; `/v1/users/{id}/sessions`: list,
//! revoke all.
//!
//! Verification is the hot path: hash the token, one ephemeral-store read on
//! a hit, one indexed join otherwise. A revocation (and a change to the
//! user) marks the cached verification stale, and fills are set-if-absent,
//! so a fill racing a revoke can never resurrect the session: every instance
//! sees the revoke at once (`trusec_storage::cache`).

use crate::durations::{DurationInput, to_delta};
use crate::error::ApiError;
use crate::extract::{Acting, ApiJson, Caller, PageQuery, list_response, path_id};
use crate::state::AppState;
use crate::validate;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use trusec_storage::audit::EventType;
use trusec_storage::cache::Cached;
use trusec_storage::ids::TypedId;
use trusec_storage::ids::{SessionId, UserId};
use trusec_storage::refresh_tokens::RevocationReason;
use trusec_storage::sessions::{self, Invalid, SessionRow};
use trusec_storage::users::User;
use trusec_storage::{StorageError, secrets};

pub const TOKEN_PREFIX: &str = "trusec_st_";
const MIN_LIFETIME: Duration = Duration::from_secs(60);
const MAX_LIFETIME: Duration = Duration::from_secs(90 * 86_400);
const DEFAULT_LIFETIME: Duration = Duration::from_secs(86_400);
/// A cached verification: the session row and its user, as the database
/// had them (see `trusec_storage::cache` for the one invalidation rule).
#[derive(Serialize, Deserialize)]
struct Verified {
    session: SessionRow,
    user: User,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    user_id: String,
    expires_in: Option<DurationInput>,
    metadata: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    token: String,
}

#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = CreateSession, security(("api_key" = []), ("access_token" = [])), responses((status = 201, description = "The session and its token (shown once)", body = Object), (status = 404, description = "No such user", body = crate::error::ErrorBody), (status = 422, description = "Invalid field", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateSession>,
) -> Result<HttpResponse, ApiError> {
    let user_id =
        UserId::parse(&body.user_id).ok_or_else(|| ApiError::not_found("user", Some("user_id")))?;
    let lifetime = match &body.expires_in {
        Some(d) => validate::duration("expires_in", d, MIN_LIFETIME, MAX_LIFETIME)?,
        None => DEFAULT_LIFETIME,
    };
    let metadata = validate::metadata(body.metadata.unwrap_or_else(|| serde_json::json!({})))?;
    let token = secrets::generate_secret(TOKEN_PREFIX).map_err(|e| ApiError::internal(&e))?;
    let token_hash = secrets::hash_secret(&token);
    let now = state.core.clock.now_naive();
    let expires_at = now + to_delta(lifetime);
    let env = caller.environment.clone();

    let row = state
        .core
        .db
        .run(move |conn| {
            let new = sessions::NewSession {
                token_hash,
                metadata: &metadata,
                amr: &[],
                now,
                expires_at,
            };
            sessions::insert(conn, &env, &user_id, new)
        })
        .await
        .map_err(|e| match e {
            StorageError::NotFound => ApiError::not_found("user", Some("user_id")),
            other => other.into(),
        })?;
    let session = row.to_session()?;
    state
        .core
        .audit(
            caller
                .event(EventType::SessionCreated)
                .user(&row.user_id)
                .data(serde_json::json!({"session_id": row.id, "expires_at": session.expires_at})),
        )
        .await?;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "id": session.id,
        "token": token,
        "user_id": session.user_id,
        "environment": session.environment,
        "created_at": session.created_at,
        "expires_at": session.expires_at,
        "metadata": session.metadata,
    })))
}

fn verdict(
    session: &SessionRow,
    user: &User,
    now: chrono::NaiveDateTime,
) -> Result<serde_json::Value, ApiError> {
    Ok(match session.check(now) {
        Ok(()) => {
            serde_json::json!({"valid": true, "user": user, "session": session.to_session()?})
        }
        Err(reason) => serde_json::json!({"valid": false, "reason": reason}),
    })
}

#[utoipa::path(post, path = "/v1/sessions/verify", tag = "sessions", request_body = TokenBody, security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "{valid: true, user, session} or {valid: false, reason}", body = Object), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn verify(
    state: web::Data<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    let now = state.core.clock.now_naive();
    if !body.token.starts_with(TOKEN_PREFIX) {
        return Ok(HttpResponse::Ok()
            .json(serde_json::json!({"valid": false, "reason": Invalid::NotFound})));
    }
    let hash = secrets::hash_secret(&body.token);
    let env = caller.environment.clone();
    let lookup = hash.clone();
    let core = &state.core;
    let found = core
        .store
        .read_through(&Cached::session(&hash), || async move {
            let found = core
                .db
                .run(move |conn| sessions::find_by_token_hash(conn, &env, &lookup))
                .await?;
            found
                .map(|(session, user)| {
                    Ok::<_, ApiError>(Verified {
                        session,
                        user: user.to_user()?,
                    })
                })
                .transpose()
        })
        .await?
        // The cache is keyed by token hash alone: an entry of another
        // environment is, for this caller, no session at all.
        .filter(|v| {
            v.session.environment_id == caller.environment
                && secrets::constant_time_eq(v.session.token_hash.as_bytes(), hash.as_bytes())
        });
    let body = match found {
        Some(v) => verdict(&v.session, &v.user, now)?,
        None => serde_json::json!({"valid": false, "reason": Invalid::NotFound}),
    };
    Ok(HttpResponse::Ok().json(body))
}

#[utoipa::path(post, path = "/v1/sessions/revoke", tag = "sessions", request_body = TokenBody, security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "{revoked: bool}", body = Object), (status = 503, description = "Could not tell every instance; retry", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    let hash = secrets::hash_secret(&body.token);
    let env = caller.environment.clone();
    let now = state.core.clock.now_naive();
    let revoked = state
        .core
        .db
        .run(move |conn| sessions::revoke_by_token_hash(conn, &env, &hash, now))
        .await?;
    let Some(ended) = revoked else {
        // RFC 7009 §2.2 in spirit: revoking an unknown token is not an error.
        return Ok(HttpResponse::Ok().json(serde_json::json!({"revoked": false})));
    };
    let id = ended.session.id.clone();
    let newly = after_end(&state, &caller.acting(), ended).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"revoked": newly, "session_id": id})))
}

#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions", params(("id" = String, Path, description = "sess_…")), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "{revoked: bool, session_id}: the session and its refresh tokens are revoked on every instance", body = Object), (status = 404, description = "No such session", body = crate::error::ErrorBody), (status = 503, description = "Could not tell every instance; retry", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn revoke_by_id(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id::<SessionId>(&id)?;
    let newly = end_by_id(&state, &caller.acting(), &id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"revoked": newly, "session_id": id})))
}

/// Ends the session `id` of `acting`'s environment: the decide step of
/// `DELETE /v1/sessions/{id}` and of the console. Whether it was live.
///
/// # Errors
/// `NotFound`; storage failures, and a 503 when other instances could not
/// be told.
pub(crate) async fn end_by_id(
    state: &AppState,
    acting: &Acting,
    id: &SessionId,
) -> Result<bool, ApiError> {
    let (env, sid) = (acting.environment.clone(), id.to_string());
    let now = state.core.clock.now_naive();
    let ended = state
        .core
        .db
        .run(move |conn| sessions::revoke_by_id(conn, &env, &sid, now))
        .await?
        .ok_or_else(|| ApiError::not_found("session", Some("id")))?;
    after_end(state, acting, ended).await
}

/// After a session was ended in the database: its cached verification
/// marked stale on every instance, its refresh tokens' access tokens
/// revoked, and `session.revoked` audited if it was live. Whether it was.
async fn after_end(
    state: &AppState,
    acting: &Acting,
    ended: sessions::Ended,
) -> Result<bool, ApiError> {
    let (row, newly) = (&ended.session, ended.newly);
    // Mark stale even when it was revoked before: this may be the client's
    // retry after a 503 from a first attempt whose cache update failed.
    state
        .core
        .forget_sessions([row.token_hash.as_str()])
        .await?;
    // The session's refresh tokens (and their access tokens) end with it.
    state
        .core
        .refresh_families_revoked(
            &ended.refresh,
            RevocationReason::SessionEnded,
            acting
                .event(EventType::OAuthTokenRevoked)
                .user(&row.user_id),
        )
        .await?;
    if newly {
        state
            .core
            .audit(
                acting
                    .event(EventType::SessionRevoked)
                    .user(&row.user_id)
                    .data(serde_json::json!({"session_id": row.id})),
            )
            .await?;
    }
    Ok(newly)
}

#[utoipa::path(get, path = "/v1/users/{id}/sessions", tag = "sessions", params(("id" = String, Path, description = "user_…"), ("limit" = Option<u32>, Query), ("after" = Option<String>, Query)), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "Live sessions of the user", body = crate::extract::ListOf<trusec_storage::sessions::Session>), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn list_for_user(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let user_id = path_id::<UserId>(&id)?;
    let page = query.to_request::<SessionId>()?;
    let env = caller.environment.clone();
    let now = state.core.clock.now_naive();
    let rows = state
        .core
        .db
        .run(move |conn| sessions::list_active_for_user(conn, &env, &user_id, now, &page))
        .await
        .map_err(super::users::user_not_found)?;
    list_response(rows, |r| r.to_session(), |s| s.id.clone())
}

#[utoipa::path(delete, path = "/v1/users/{id}/sessions", tag = "sessions", params(("id" = String, Path, description = "user_…")), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "{revoked: n}", body = Object), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn revoke_all_for_user(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user_id = path_id::<UserId>(&id)?;
    let revoked = end_all(&state, &caller.acting(), &user_id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"revoked": revoked})))
}

/// Ends every live session of a user of `acting`'s environment, with
/// their refresh tokens: the decide step of `DELETE
/// /v1/users/{id}/sessions` and of the console. How many were live.
///
/// # Errors
/// `NotFound`; storage failures, and a 503 when other instances could not
/// be told.
pub(crate) async fn end_all(
    state: &AppState,
    acting: &Acting,
    user_id: &UserId,
) -> Result<usize, ApiError> {
    let env = acting.environment.clone();
    let now = state.core.clock.now_naive();
    let uid = user_id.clone();
    let (rows, refresh) = state
        .core
        .db
        .run(move |conn| sessions::revoke_all_for_user(conn, &env, &uid, now))
        .await
        .map_err(super::users::user_not_found)?;
    let hashes: Vec<String> = rows.iter().map(|r| r.token_hash.clone()).collect();
    state
        .core
        .forget_sessions(hashes.iter().map(String::as_str))
        .await?;
    state
        .core
        .refresh_families_revoked(
            &refresh,
            RevocationReason::SessionEnded,
            acting.event(EventType::OAuthTokenRevoked).user(user_id),
        )
        .await?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    state
        .core
        .audit(
            acting
                .event(EventType::SessionRevoked)
                .user(user_id)
                .data(serde_json::json!({"session_ids": ids, "all": true})),
        )
        .await?;
    Ok(rows.len())
}
