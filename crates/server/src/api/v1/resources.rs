//! `/v1/oauth/resources`: the APIs that apps protect with this server's
//! tokens (RFC 8707). A resource's `identifier` is its tokens' `aud`; its
//! scopes may then be allowed to clients (`/v1/oauth/clients`), and tokens
//! asked for with `resource=<identifier>` carry only those.

use crate::error::ApiError;
use crate::extract::{ApiJson, Caller, PageQuery};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use trusec_oauth::resources::{self, ResourceInput};
use trusec_storage::StorageError;
use trusec_storage::audit::EventType;
use trusec_storage::ids::ResourceId;
use trusec_storage::resources::{
    self as repo, Resource, ResourceFields, ResourceRow, ResourceScope,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateResource {
    /// An absolute URI without fragment or query: the `aud` of its tokens.
    identifier: String,
    name: String,
    /// Each with the words the consent page shows.
    #[serde(default)]
    scopes: Vec<ResourceScope>,
    /// 60 up to the server's access-token lifetime; default the latter.
    access_token_lifetime_seconds: Option<i64>,
    /// `ES256` (default), `RS256` or `EdDSA`.
    signing_alg: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateResource {
    identifier: Option<String>,
    name: Option<String>,
    /// Replaces the list.
    scopes: Option<Vec<ResourceScope>>,
    access_token_lifetime_seconds: Option<i64>,
    signing_alg: Option<String>,
}

/// The fields validated for the caller's environment (its issuer is no
/// resource's, and its access-token lifetime bounds the resource's).
fn validated(
    state: &AppState,
    caller: &Caller,
    input: ResourceInput,
) -> Result<ResourceFields, ApiError> {
    let env = state
        .environment(&caller.environment)
        .ok_or_else(|| ApiError::not_found("environment", None))?;
    let settings = &env.oauth.settings;
    resources::validate(input, &settings.issuer, settings.access_token_ttl)
        .map_err(|e| ApiError::validation(e.field, e.message))
}

fn taken(e: StorageError) -> ApiError {
    match e {
        StorageError::Conflict(key) if key.starts_with(repo::SCOPE_TAKEN) => ApiError::Conflict {
            message: format!(
                "scope {} is a scope of another resource in this environment already: scope names are unique, so that a client's scope names one API",
                &key[repo::SCOPE_TAKEN.len()..]
            ),
            param: Some("scopes".into()),
        },
        StorageError::Conflict(_) => ApiError::Conflict {
            message: "a resource with this identifier exists already in this environment".into(),
            param: Some("identifier".into()),
        },
        StorageError::NotFound => ApiError::not_found("resource", Some("id")),
        other => other.into(),
    }
}

/// Clients whose default resource changed: their cached rows are stale.
async fn forget_clients(state: &AppState, ids: &[String]) -> Result<(), ApiError> {
    for id in ids {
        trusec_oauth::client_auth::forget_client(&state.core, id).await?;
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/oauth/resources", tag = "oauth-resources", request_body = CreateResource, security(("api_key" = [])), responses((status = 201, description = "The resource", body = trusec_storage::resources::Resource), (status = 409, description = "Identifier taken", body = crate::error::ErrorBody), (status = 422, description = "Invalid field", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateResource>,
) -> Result<HttpResponse, ApiError> {
    let fields = validated(
        &state,
        &caller,
        ResourceInput {
            identifier: body.identifier,
            name: body.name,
            scopes: body.scopes,
            access_token_lifetime_seconds: body.access_token_lifetime_seconds,
            signing_alg: body.signing_alg,
        },
    )?;
    let (env, now) = (caller.environment.clone(), state.core.clock.now_naive());
    let row = state
        .core
        .db
        .run(move |conn| repo::insert(conn, &env, fields, now))
        .await
        .map_err(taken)?;
    state
        .core
        .audit(
            caller
                .event(EventType::OAuthResourceCreated)
                .data(serde_json::json!({"resource_id": row.id, "identifier": row.identifier})),
        )
        .await?;
    Ok(HttpResponse::Created().json(row.to_resource()))
}

#[utoipa::path(get, path = "/v1/oauth/resources", tag = "oauth-resources", params(("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("after" = Option<String>, Query, description = "cursor: the last id of the previous page")), security(("api_key" = [])), responses((status = 200, description = "Resources", body = crate::extract::ListOf<trusec_storage::resources::Resource>), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    caller
        .list::<ResourceId, _, _>(
            &state.core,
            &query,
            repo::list,
            |r| Ok(r.to_resource()),
            |r: &Resource| r.id.clone(),
        )
        .await
}

async fn load(state: &AppState, caller: &Caller, id: &str) -> Result<ResourceRow, ApiError> {
    caller
        .fetch::<ResourceId, _>(&state.core, id, repo::get)
        .await
}

#[utoipa::path(get, path = "/v1/oauth/resources/{id}", tag = "oauth-resources", params(("id" = String, Path, description = "res_…")), security(("api_key" = [])), responses((status = 200, description = "The resource", body = trusec_storage::resources::Resource), (status = 404, description = "No such resource", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<Resource>, ApiError> {
    Ok(web::Json(load(&state, &caller, &id).await?.to_resource()))
}

#[utoipa::path(patch, path = "/v1/oauth/resources/{id}", tag = "oauth-resources", params(("id" = String, Path, description = "res_…")), request_body = UpdateResource, security(("api_key" = [])), responses((status = 200, description = "The updated resource", body = trusec_storage::resources::Resource), (status = 404, description = "No such resource", body = crate::error::ErrorBody), (status = 409, description = "Identifier taken", body = crate::error::ErrorBody), (status = 422, description = "Invalid field", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    ApiJson(body): ApiJson<UpdateResource>,
) -> Result<web::Json<Resource>, ApiError> {
    let current = load(&state, &caller, &id).await?;
    // The resource as it would be after the change, validated as a whole.
    let fields = validated(
        &state,
        &caller,
        ResourceInput {
            identifier: body.identifier.unwrap_or(current.identifier),
            name: body.name.unwrap_or(current.name),
            scopes: body.scopes.unwrap_or_else(|| current.scopes.to_vec()),
            access_token_lifetime_seconds: body
                .access_token_lifetime_seconds
                .or(current.access_token_lifetime_seconds),
            signing_alg: Some(
                body.signing_alg
                    .unwrap_or_else(|| current.signing_alg.as_str().to_owned()),
            ),
        },
    )?;
    let (env, rid, now) = (
        caller.environment.clone(),
        current.id.clone(),
        state.core.clock.now_naive(),
    );
    let (row, moved) = state
        .core
        .db
        .run(move |conn| repo::replace(conn, &env, &rid, fields, now))
        .await
        .map_err(taken)?;
    forget_clients(&state, &moved).await?;
    state
        .core
        .audit(
            caller
                .event(EventType::OAuthResourceUpdated)
                .data(serde_json::json!({"resource_id": row.id, "identifier": row.identifier})),
        )
        .await?;
    Ok(web::Json(row.to_resource()))
}

#[utoipa::path(delete, path = "/v1/oauth/resources/{id}", tag = "oauth-resources", params(("id" = String, Path, description = "res_…")), security(("api_key" = [])), responses((status = 200, description = "Deleted"), (status = 404, description = "No such resource", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let current = load(&state, &caller, &id).await?;
    let (env, rid) = (caller.environment.clone(), current.id.clone());
    let (row, cleared) = state
        .core
        .db
        .run(move |conn| repo::delete(conn, &env, &rid))
        .await
        .map_err(taken)?;
    forget_clients(&state, &cleared).await?;
    state
        .core
        .audit(
            caller
                .event(EventType::OAuthResourceDeleted)
                .data(serde_json::json!({"resource_id": row.id, "identifier": row.identifier})),
        )
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"id": row.id, "deleted": true})))
}
