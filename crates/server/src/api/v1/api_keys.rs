//! `/v1/api-keys`: create (shown once), list, read, revoke, rotate with a
//! grace period.
//!
//! A caller creates keys only for its own environment: a test key mints test
//! keys, a secret key mints secret or public keys, so no key can reach into
//! an environment it does not belong to.

use crate::durations::{DurationInput, to_delta};
use crate::error::ApiError;
use crate::extract::{Acting, ApiJson, Caller, PageQuery, path_id};
use crate::state::AppState;
use crate::validate;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use std::time::Duration;
use trusec_storage::StorageError;
use trusec_storage::api_keys::{self, ApiKey, ApiKeyRow, CreateKeyError, KeyType, MintedKey};
use trusec_storage::audit::EventType;
use trusec_storage::ids::ApiKeyId;

const DEFAULT_GRACE: Duration = Duration::from_secs(86_400);
const MAX_GRACE: Duration = Duration::from_secs(30 * 86_400);
const NAME_MAX: usize = 128;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    #[serde(rename = "type")]
    key_type: String,
    name: String,
    expires_in: Option<DurationInput>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    grace_period: Option<DurationInput>,
    expires_in: Option<DurationInput>,
}

fn key_not_found(e: StorageError) -> ApiError {
    match e {
        StorageError::NotFound => ApiError::not_found("API key", Some("id")),
        other => other.into(),
    }
}

fn create_failed(e: CreateKeyError) -> ApiError {
    match e {
        CreateKeyError::Storage(StorageError::Conflict(_)) => ApiError::Conflict {
            message: "this key is being rotated by another request".into(),
            param: Some("id".into()),
        },
        CreateKeyError::Storage(s) => key_not_found(s),
        CreateKeyError::Secret(s) => ApiError::internal(&s),
    }
}

fn lifetime(expires_in: Option<&DurationInput>) -> Result<Duration, ApiError> {
    expires_in.map_or(Ok(validate::API_KEY_LIFETIME_DEFAULT), |d| {
        validate::duration(
            "expires_in",
            d,
            validate::API_KEY_LIFETIME_MIN,
            validate::API_KEY_LIFETIME_MAX,
        )
    })
}

fn with_key(minted: &MintedKey) -> Result<serde_json::Value, ApiError> {
    let mut body = serde_json::to_value(minted.row.to_api_key())?;
    if let Some(obj) = body.as_object_mut() {
        obj.insert("key".into(), minted.key.clone().into());
    }
    Ok(body)
}

#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", request_body = CreateKey, security(("api_key" = []), ("access_token" = [])), responses((status = 201, description = "The key record and the key itself (shown once)", body = Object), (status = 422, description = "Invalid field", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<HttpResponse, ApiError> {
    let key_type = KeyType::parse(&body.key_type)
        .ok_or_else(|| ApiError::validation("type", "must be one of secret, public, test"))?;
    if !caller.key_type.may_create(key_type) {
        return Err(ApiError::Forbidden(format!(
            "a {} key cannot create {} keys",
            caller.key_type.as_str(),
            key_type.as_str()
        )));
    }
    let minted = mint(
        &state,
        &caller.acting(),
        key_type,
        &body.name,
        body.expires_in.as_ref(),
    )
    .await?;
    Ok(HttpResponse::Created().json(with_key(&minted)?))
}

/// Makes a key of `key_type` (whose environment the caller has checked it
/// may create keys in) and audits it: the decide step of `POST
/// /v1/api-keys` and of the console. The key itself is in the result, once.
///
/// # Errors
/// `Validation` naming `name` or `expires_in`; storage and audit failures.
pub(crate) async fn mint(
    state: &AppState,
    acting: &Acting,
    key_type: KeyType,
    name: &str,
    expires_in: Option<&DurationInput>,
) -> Result<MintedKey, ApiError> {
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > NAME_MAX {
        return Err(ApiError::validation(
            "name",
            format!("must be 1 to {NAME_MAX} characters"),
        ));
    }
    let lifetime = lifetime(expires_in)?;
    let now = state.core.clock.now_naive();
    let expires_at = Some(now + to_delta(lifetime));
    let minted = state
        .core
        .db
        .run(move |conn| {
            api_keys::create(conn, key_type, &name, now, expires_at).map_err(|e| match e {
                CreateKeyError::Storage(s) => s,
                CreateKeyError::Secret(s) => StorageError::backend(s),
            })
        })
        .await?;
    state
        .core
        .audit(
            acting
                .event(EventType::ApiKeyCreated)
                .data(serde_json::json!({"api_key_id": minted.row.id, "type": key_type.as_str()})),
        )
        .await?;
    Ok(minted)
}

#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", params(("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("after" = Option<String>, Query, description = "cursor: the last id of the previous page")), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "Keys of this environment (never their secrets)", body = crate::extract::ListOf<trusec_storage::api_keys::ApiKey>), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    caller
        .list::<ApiKeyId, _, _>(
            &state.core,
            &query,
            api_keys::list,
            |r| Ok(r.to_api_key()),
            |k: &ApiKey| k.id.clone(),
        )
        .await
}

#[utoipa::path(get, path = "/v1/api-keys/{id}", tag = "api-keys", params(("id" = String, Path, description = "key_…")), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "The key record", body = trusec_storage::api_keys::ApiKey), (status = 404, description = "No such key", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<ApiKey>, ApiError> {
    let row = caller
        .fetch::<ApiKeyId, _>(&state.core, &id, api_keys::get)
        .await?;
    Ok(web::Json(row.to_api_key()))
}

#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", params(("id" = String, Path, description = "key_…")), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "The revoked key", body = trusec_storage::api_keys::ApiKey), (status = 404, description = "No such key", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<ApiKey>, ApiError> {
    let id = path_id::<ApiKeyId>(&id)?;
    let row = revoke_key(&state, &caller.acting(), &id).await?;
    Ok(web::Json(row.to_api_key()))
}

/// Revokes a key of `acting`'s environment on every instance and audits it
/// (once, however often it is asked): the decide step of `DELETE
/// /v1/api-keys/{id}` and of the console.
///
/// # Errors
/// `NotFound`; storage failures, and a 503 when other instances could not
/// be told.
pub(crate) async fn revoke_key(
    state: &AppState,
    acting: &Acting,
    id: &ApiKeyId,
) -> Result<ApiKeyRow, ApiError> {
    let (env, id) = (acting.environment.clone(), id.clone());
    let now = state.core.clock.now_naive();
    let (row, newly) = state
        .core
        .db
        .run(move |conn| api_keys::revoke(conn, &env, &id, now))
        .await
        .map_err(key_not_found)?;
    // Mark stale even when it was revoked before: this may be a retry after
    // a 503 from an attempt whose cache update failed.
    state.core.forget_api_key(&row).await?;
    if newly {
        state
            .core
            .audit(
                acting
                    .event(EventType::ApiKeyRevoked)
                    .data(serde_json::json!({"api_key_id": row.id})),
            )
            .await?;
    }
    Ok(row)
}

#[utoipa::path(post, path = "/v1/api-keys/{id}/rotate", tag = "api-keys", params(("id" = String, Path, description = "key_…")), request_body = RotateKey, security(("api_key" = []), ("access_token" = [])), responses((status = 201, description = "The new key (shown once) and the previous record", body = Object), (status = 404, description = "No such key, or already rotated", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn rotate(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    ApiJson(body): ApiJson<RotateKey>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id::<ApiKeyId>(&id)?;
    let (old, minted) = rotate_key(
        &state,
        &caller.acting(),
        &id,
        body.grace_period.as_ref(),
        body.expires_in.as_ref(),
    )
    .await?;
    let mut body = with_key(&minted)?;
    if let Some(obj) = body.as_object_mut() {
        obj.insert("previous".into(), serde_json::to_value(old.to_api_key())?);
    }
    Ok(HttpResponse::Created().json(body))
}

/// Replaces a key of `acting`'s environment with a new one; the old one
/// works until the grace period ends (default a day, at most 30). Audited.
/// The decide step of `POST /v1/api-keys/{id}/rotate` and of the console:
/// the old row and the new key (shown once).
///
/// # Errors
/// `Validation` naming `grace_period` or `expires_in`; `NotFound` (also for
/// a key already rotated); `Conflict` for a concurrent rotation.
pub(crate) async fn rotate_key(
    state: &AppState,
    acting: &Acting,
    id: &ApiKeyId,
    grace_period: Option<&DurationInput>,
    expires_in: Option<&DurationInput>,
) -> Result<(ApiKeyRow, MintedKey), ApiError> {
    let grace = match grace_period {
        Some(d) => validate::duration("grace_period", d, Duration::ZERO, MAX_GRACE)?,
        None => DEFAULT_GRACE,
    };
    let lifetime = lifetime(expires_in)?;
    let (env, id) = (acting.environment.clone(), id.clone());
    let now = state.core.clock.now_naive();
    let grace_until = now + to_delta(grace);
    let new_expiry = Some(now + to_delta(lifetime));
    let (old, minted) = state
        .core
        .db
        .run(move |conn| {
            Ok(api_keys::rotate(
                conn,
                &env,
                &id,
                now,
                grace_until,
                new_expiry,
            ))
        })
        .await?
        .map_err(create_failed)?;
    if let Err(e) = state.core.forget_api_key(&old).await {
        // The old key then keeps its previous expiry for at most the cache
        // lifetime (a minute) on other instances.
        tracing::error!(error = %crate::error::ErrorChain(&e), "rotated key's cache entry not refreshed");
    }
    state
        .core
        .audit(
            acting
                .event(EventType::ApiKeyRotated)
                .data(serde_json::json!({
                    "api_key_id": old.id,
                    "replaced_by": minted.row.id,
                    "old_key_expires_at": old.to_api_key().expires_at,
                })),
        )
        .await?;
    Ok((old, minted))
}
