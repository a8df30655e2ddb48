//! `/v1/sessions`: create, verify, revoke; `/v1/users/{id}/sessions`: list,
//! revoke all.
//!
//! Verification is the hot path: hash the token, one ephemeral-store read on
//! a hit, one indexed join otherwise. Revocation writes a tombstone into the
//! shared cache and cache fills use set-if-absent, so a fill racing a revoke
//! can never resurrect the session: every instance sees the revoke at once.

use crate::durations::{DurationInput, to_delta};
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller, PageQuery, list_response, path_id};
use crate::state::AppState;
use crate::validate;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use trusec_storage::sessions::{
    self, CACHE_TTL, Invalid, SessionRow, TOMBSTONE_PREFIX, cache_key, tombstone,
};
use trusec_storage::users::User;
use trusec_storage::{StorageError, ids, secrets};

pub const TOKEN_PREFIX: &str = "trusec_st_";
const MIN_LIFETIME: Duration = Duration::from_secs(60);
const MAX_LIFETIME: Duration = Duration::from_secs(90 * 86_400);
const DEFAULT_LIFETIME: Duration = Duration::from_secs(86_400);
/// After a user changes, fills are kept out this long (a verification that
/// read the old row before the change must not cache it afterwards).
const STALE_TTL: Duration = Duration::from_secs(30);
const STALE: &[u8] = b"stale";

#[derive(Serialize, Deserialize)]
struct Cached {
    session: SessionRow,
    user: User,
}

/// Marks sessions revoked in the shared cache (overwriting any cached
/// verification). A revocation is reported only once this succeeded.
///
/// # Errors
/// When the store cannot be written: the caller answers 503 and the client
/// retries (a retry tombstones again).
pub async fn tombstone_sessions(
    state: &AppState,
    env: &str,
    hashes: &[String],
) -> Result<(), StorageError> {
    let mark = tombstone(env);
    let mut failed = None;
    for hash in hashes {
        if let Err(e) = state.store.put(&cache_key(hash), &mark, CACHE_TTL).await {
            tracing::error!(error = %crate::error::ErrorChain(&e), "could not tombstone a revoked session");
            failed = Some(e);
        }
    }
    failed.map_or(Ok(()), Err)
}

/// After a user changed: replaces cached verifications with a short-lived
/// marker, so the next verification reads the database and no late fill
/// brings the old user back.
pub async fn mark_sessions_stale(state: &AppState, hashes: &[String]) {
    for hash in hashes {
        if let Err(e) = state.store.put(&cache_key(hash), STALE, STALE_TTL).await {
            tracing::error!(error = %crate::error::ErrorChain(&e), "could not mark a cached session stale");
        }
    }
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

#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = CreateSession, security(("api_key" = []), ("access_token" = [])), responses((status = 201, description = "The session and its token (shown once)", body = Object), (status = 404, description = "No such user", body = crate::openapi::ErrorBody), (status = 422, description = "Invalid field", body = crate::openapi::ErrorBody), (status = 400, description = "Invalid request", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad API key", body = crate::openapi::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::openapi::ErrorBody), (status = 429, description = "Rate limited", body = crate::openapi::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateSession>,
) -> Result<HttpResponse, ApiError> {
    if !ids::is_valid(ids::USER, &body.user_id) {
        return Err(ApiError::not_found("user", Some("user_id")));
    }
    let lifetime = match &body.expires_in {
        Some(d) => validate::duration("expires_in", d, MIN_LIFETIME, MAX_LIFETIME)?,
        None => DEFAULT_LIFETIME,
    };
    let metadata = validate::metadata(body.metadata.unwrap_or_else(|| serde_json::json!({})))?;
    let token = secrets::generate_secret(TOKEN_PREFIX).map_err(|e| ApiError::internal(&e))?;
    let token_hash = secrets::hash_secret(&token);
    let now = state.clock.now_naive();
    let expires_at = now + to_delta(lifetime);
    let env = caller.environment.clone();
    let user_id = body.user_id.clone();
    let row = state
        .db
        .run(move |conn| {
            sessions::insert(conn, &env, &user_id, token_hash, &metadata, now, expires_at)
        })
        .await
        .map_err(|e| match e {
            StorageError::NotFound => ApiError::not_found("user", Some("user_id")),
            other => other.into(),
        })?;
    let session = row.to_session()?;
    state
        .audit(
            caller
                .event("session.created")
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

#[utoipa::path(post, path = "/v1/sessions/verify", tag = "sessions", request_body = TokenBody, security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "{valid: true, user, session} or {valid: false, reason}", body = Object), (status = 400, description = "Invalid request", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad API key", body = crate::openapi::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::openapi::ErrorBody), (status = 429, description = "Rate limited", body = crate::openapi::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn verify(
    state: web::Data<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now_naive();
    if !body.token.starts_with(TOKEN_PREFIX) {
        return Ok(HttpResponse::Ok()
            .json(serde_json::json!({"valid": false, "reason": Invalid::NotFound})));
    }
    let hash = secrets::hash_secret(&body.token);
    let key = cache_key(&hash);
    match state.store.get(&key).await {
        Ok(Some(bytes)) if bytes.starts_with(TOMBSTONE_PREFIX) => {
            let same_env =
                bytes.get(TOMBSTONE_PREFIX.len()..) == Some(caller.environment.as_bytes());
            let reason = if same_env {
                Invalid::Revoked
            } else {
                Invalid::NotFound
            };
            return Ok(
                HttpResponse::Ok().json(serde_json::json!({"valid": false, "reason": reason}))
            );
        }
        Ok(Some(bytes)) if bytes == STALE => {}
        Ok(Some(bytes)) => {
            if let Ok(cached) = serde_json::from_slice::<Cached>(&bytes)
                && cached.session.environment_id == caller.environment
                && secrets::constant_time_eq(cached.session.token_hash.as_bytes(), hash.as_bytes())
            {
                return Ok(HttpResponse::Ok().json(verdict(&cached.session, &cached.user, now)?));
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %crate::error::ErrorChain(&e), "session cache unavailable")
        }
    }
    let env = caller.environment.clone();
    let lookup = hash.clone();
    let found = state
        .db
        .run(move |conn| sessions::find_by_token_hash(conn, &env, &lookup))
        .await?;
    let Some((session, user_row)) = found else {
        return Ok(HttpResponse::Ok()
            .json(serde_json::json!({"valid": false, "reason": Invalid::NotFound})));
    };
    let user = user_row.to_user()?;
    let body = verdict(&session, &user, now)?;
    if session.check(now).is_ok() {
        let remaining = (session.expires_at - now).to_std().unwrap_or_default();
        let cached = serde_json::to_vec(&Cached { session, user })?;
        // Set-if-absent: never overwrite a revocation tombstone.
        if let Err(e) = state
            .store
            .put_if_absent(&key, &cached, remaining.min(CACHE_TTL))
            .await
        {
            tracing::warn!(error = %crate::error::ErrorChain(&e), "could not cache a session");
        }
    }
    Ok(HttpResponse::Ok().json(body))
}

#[utoipa::path(post, path = "/v1/sessions/revoke", tag = "sessions", request_body = TokenBody, security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "{revoked: bool}", body = Object), (status = 503, description = "Could not tell every instance; retry", body = crate::openapi::ErrorBody), (status = 400, description = "Invalid request", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad API key", body = crate::openapi::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::openapi::ErrorBody), (status = 429, description = "Rate limited", body = crate::openapi::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    let hash = secrets::hash_secret(&body.token);
    let env = caller.environment.clone();
    let now = state.clock.now_naive();
    let lookup = hash.clone();
    let revoked = state
        .db
        .run(move |conn| sessions::revoke_by_token_hash(conn, &env, &lookup, now))
        .await?;
    let Some((row, newly)) = revoked else {
        // RFC 7009 §2.2 in spirit: revoking an unknown token is not an error.
        return Ok(HttpResponse::Ok().json(serde_json::json!({"revoked": false})));
    };
    // Tombstone even when it was revoked before: this may be the client's
    // retry after a 503 from a first attempt whose tombstone failed.
    tombstone_sessions(&state, &caller.environment, &[hash]).await?;
    if newly {
        state
            .audit(
                caller
                    .event("session.revoked")
                    .user(&row.user_id)
                    .data(serde_json::json!({"session_id": row.id})),
            )
            .await?;
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({"revoked": newly, "session_id": row.id})))
}

#[utoipa::path(get, path = "/v1/users/{id}/sessions", tag = "sessions", params(("id" = String, Path, description = "user_…"), ("limit" = Option<u32>, Query), ("after" = Option<String>, Query)), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "Live sessions of the user", body = crate::openapi::ListOf<trusec_storage::sessions::Session>), (status = 400, description = "Invalid request", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad API key", body = crate::openapi::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::openapi::ErrorBody), (status = 429, description = "Rate limited", body = crate::openapi::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn list_for_user(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let user_id = path_id(ids::USER, "user", &id)?;
    let page = query.to_request(ids::SESSION)?;
    let env = caller.environment.clone();
    let now = state.clock.now_naive();
    let rows = state
        .db
        .run(move |conn| sessions::list_active_for_user(conn, &env, &user_id, now, &page))
        .await
        .map_err(|e| match e {
            StorageError::NotFound => ApiError::not_found("user", Some("id")),
            other => other.into(),
        })?;
    list_response(rows, |r| r.to_session(), |s| s.id.clone())
}

#[utoipa::path(delete, path = "/v1/users/{id}/sessions", tag = "sessions", params(("id" = String, Path, description = "user_…")), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "{revoked: n}", body = Object), (status = 400, description = "Invalid request", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad API key", body = crate::openapi::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::openapi::ErrorBody), (status = 429, description = "Rate limited", body = crate::openapi::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn revoke_all_for_user(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user_id = path_id(ids::USER, "user", &id)?;
    let env = caller.environment.clone();
    let now = state.clock.now_naive();
    let uid = user_id.clone();
    let rows = state
        .db
        .run(move |conn| sessions::revoke_all_for_user(conn, &env, &uid, now))
        .await
        .map_err(|e| match e {
            StorageError::NotFound => ApiError::not_found("user", Some("id")),
            other => other.into(),
        })?;
    let hashes: Vec<String> = rows.iter().map(|r| r.token_hash.clone()).collect();
    tombstone_sessions(&state, &caller.environment, &hashes).await?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    state
        .audit(
            caller
                .event("session.revoked")
                .user(&user_id)
                .data(serde_json::json!({"session_ids": ids, "all": true})),
        )
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"revoked": rows.len()})))
}
