//! `/v1/policies`: the caller's environment's security policy (issue 14):
//! read it, change part of it. Every change is audited as
//! `policy.updated` with the policy before and after.

use crate::error::ApiError;
use crate::extract::{Acting, ApiJson, Caller};
use crate::state::AppState;
use actix_web::web;
use trusec_storage::audit::EventType;
use trusec_storage::policies::{self, Policy, PolicyPatch};

#[utoipa::path(get, path = "/v1/policies", tag = "policies", security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "The environment's security policy (the defaults until changed)", body = Policy), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<Policy>, ApiError> {
    let env = caller.environment.clone();
    Ok(web::Json(
        state
            .core
            .db
            .run(move |conn| policies::get(conn, &env))
            .await?,
    ))
}

#[utoipa::path(patch, path = "/v1/policies", tag = "policies", request_body = PolicyPatch, security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "The policy after the change; members not given are unchanged", body = Policy), (status = 400, description = "Invalid request (an unknown member)", body = crate::error::ErrorBody), (status = 422, description = "A member out of bounds", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PolicyPatch>,
) -> Result<web::Json<Policy>, ApiError> {
    Ok(web::Json(apply(&state, &caller.acting(), body).await?))
}

/// Validates and applies `patch` to `acting`'s environment's policy and
/// audits it: the decide step of `PATCH /v1/policies` and of the console.
///
/// # Errors
/// `Validation` naming the member out of bounds; storage failures.
pub(crate) async fn apply(
    state: &AppState,
    acting: &Acting,
    patch: PolicyPatch,
) -> Result<Policy, ApiError> {
    let patch = patch
        .validate()
        .map_err(|e| ApiError::validation(e.field, e.message))?;
    let (env, now) = (acting.environment.clone(), state.core.clock.now_naive());
    let change = state
        .core
        .db
        .run(move |conn| policies::update(conn, &env, &patch, now))
        .await?;
    let data = serde_json::json!({"before": change.before, "after": change.after});
    state
        .core
        .audit(acting.event(EventType::PolicyUpdated).data(data))
        .await?;
    Ok(change.after)
}

/// The policy of `env`.
///
/// # Errors
/// Storage failures.
pub(crate) async fn read(state: &AppState, env: &str) -> Result<Policy, ApiError> {
    let env = env.to_owned();
    Ok(state
        .core
        .db
        .run(move |conn| policies::get(conn, &env))
        .await?)
}
