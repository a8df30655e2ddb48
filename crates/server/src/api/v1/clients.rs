//! `/v1/oauth/clients`: register, read, update, delete OAuth clients. A
//! confidential client's secret is shown once, at creation.

use crate::error::ApiError;
use crate::extract::{Acting, ApiJson, Caller, PageQuery};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use trusec_oauth::client_auth;
use trusec_oauth::client_metadata::{self, ClientInput, FieldError};
use trusec_oauth::resources::Catalog;
use trusec_storage::StorageError;
use trusec_storage::audit::EventType;
use trusec_storage::clients::{self, Client, ClientPatch, ClientRow, ClientType, RegisteredBy};
use trusec_storage::ids::ClientId;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    name: String,
    #[serde(rename = "type")]
    client_type: String,
    #[serde(default)]
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Option<Vec<String>>,
    grant_types: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt` or
    /// `client_secret_jwt` (confidential), `none` (public). Named: only
    /// that method is accepted (RFC 7591 §2). Omitted: a confidential
    /// client may use either secret method.
    token_endpoint_auth_method: Option<String>,
    id_token_signed_response_alg: Option<String>,
    refresh_token_leeway_seconds: Option<i64>,
    /// May introspect access tokens issued to other clients of this
    /// environment (RFC 7662 §4). Default false: a client introspects only
    /// its own tokens. Confidential clients only.
    resource_server: Option<bool>,
    /// The identifier of a registered resource (`/v1/oauth/resources`):
    /// the audience of tokens whose request names no `resource` but asks
    /// for resource scopes (RFC 8707 §2); for a resource server, the
    /// resource whose tokens it may introspect.
    default_resource: Option<String>,
    /// `private_key_jwt`: the client's public keys as a JWK Set (RFC 7517
    /// §5; private members refused).
    #[schema(value_type = Option<Object>)]
    jwks: Option<serde_json::Value>,
    /// Or the https URL where the client publishes its JWK Set (RFC 7591 §2; not with `jwks`).
    jwks_uri: Option<String>,
    /// The one algorithm its assertions may use: ES256, PS256, EdDSA or
    /// RS256 (`private_key_jwt`), HS256, HS384 or HS512
    /// (`client_secret_jwt`). Omitted: any of the method's.
    token_endpoint_auth_signing_alg: Option<String>,
    /// Its authorization requests must be pushed to `/oauth/par` first
    /// (RFC 9126 §6). Default false.
    require_pushed_authorization_requests: Option<bool>,
    /// `web` (default: https redirect URIs only) or `native` (also
    /// loopback and private-use scheme redirect URIs, RFC 8252).
    application_type: Option<String>,
    /// Every token request must carry a DPoP proof, so its access tokens
    /// are always DPoP-bound (RFC 9449 §5.2). Default false.
    dpop_bound_access_tokens: Option<bool>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateClient {
    name: Option<String>,
    redirect_uris: Option<Vec<String>>,
    post_logout_redirect_uris: Option<Vec<String>>,
    grant_types: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
    /// Choosing a method enforces it from then on (RFC 7591 §2).
    token_endpoint_auth_method: Option<String>,
    id_token_signed_response_alg: Option<String>,
    refresh_token_leeway_seconds: Option<i64>,
    resource_server: Option<bool>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    default_resource: Option<Option<String>>,
    /// Replaces the keys; `null` removes them (with a method that needs
    /// none).
    #[serde(default, deserialize_with = "present_value")]
    #[schema(value_type = Option<Object>)]
    jwks: Option<Option<serde_json::Value>>,
    /// Replaces the URL of the keys (and drops inline `jwks`); `null`
    /// removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    jwks_uri: Option<Option<String>>,
    /// `null` allows any algorithm that fits the key again.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    token_endpoint_auth_signing_alg: Option<Option<String>>,
    require_pushed_authorization_requests: Option<bool>,
    application_type: Option<String>,
    dpop_bound_access_tokens: Option<bool>,
}

/// [`present`] for a JSON value.
fn present_value<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<serde_json::Value>>, D::Error> {
    Option::<serde_json::Value>::deserialize(d).map(Some)
}

/// A field that may be sent as `null`: `Some(None)`, unlike an absent one.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The resources of the caller's environment, whose scopes a client may
/// be allowed.
pub(crate) async fn catalog(state: &AppState, environment: &str) -> Result<Catalog, ApiError> {
    Ok(Catalog::of(&state.core, environment).await?)
}

fn invalid(e: FieldError) -> ApiError {
    ApiError::validation(e.field, e.message)
}

fn not_found(e: StorageError) -> ApiError {
    match e {
        StorageError::NotFound => ApiError::not_found("client", Some("id")),
        other => other.into(),
    }
}

#[utoipa::path(post, path = "/v1/oauth/clients", tag = "oauth-clients", request_body = CreateClient, security(("api_key" = []), ("access_token" = [])), responses((status = 201, description = "The client, and its secret once (confidential clients)", body = Object), (status = 422, description = "Invalid field", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateClient>,
) -> Result<HttpResponse, ApiError> {
    let input = ClientInput {
        name: Some(body.name),
        client_type: Some(body.client_type),
        redirect_uris: Some(body.redirect_uris),
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        grant_types: body.grant_types,
        scopes: body.scopes,
        token_endpoint_auth_method: body.token_endpoint_auth_method,
        id_token_signed_response_alg: body.id_token_signed_response_alg,
        refresh_token_leeway_seconds: body.refresh_token_leeway_seconds,
        resource_server: body.resource_server,
        default_resource: body.default_resource,
        jwks: body.jwks,
        jwks_uri: body.jwks_uri,
        token_endpoint_auth_signing_alg: body.token_endpoint_auth_signing_alg,
        require_pushed_authorization_requests: body.require_pushed_authorization_requests,
        application_type: body.application_type,
        dpop_bound_access_tokens: body.dpop_bound_access_tokens,
        catalog: catalog(&state, &caller.environment).await?,
        outbound: state.settings.outbound,
    };
    let (row, secret) = register(&state, &caller.acting(), input).await?;
    Ok(HttpResponse::Created().json(with_secret(&row, secret)?))
}

/// The client as the API shows it, with its secret when one was just made
/// (shown this once).
fn with_secret(row: &ClientRow, secret: Option<String>) -> Result<serde_json::Value, ApiError> {
    let mut body = serde_json::to_value(row.to_client())?;
    if let (Some(secret), Some(obj)) = (secret, body.as_object_mut()) {
        obj.insert("client_secret".into(), secret.into());
    }
    Ok(body)
}

/// Registers a client in `acting`'s environment and audits it: the decide
/// step of `POST /v1/oauth/clients` and of the console's Applications
/// page. Returns the row and, for a confidential client, its secret (which
/// is stored only hashed).
///
/// # Errors
/// `Validation` naming the first wrong field; storage and audit failures.
pub(crate) async fn register(
    state: &AppState,
    acting: &Acting,
    input: ClientInput,
) -> Result<(ClientRow, Option<String>), ApiError> {
    let valid = client_metadata::validate(input).map_err(invalid)?;
    let secret = client_auth::secret_for(&valid).map_err(|e| ApiError::internal(&e))?;
    let mac = secret.as_ref().and_then(|(s, _)| {
        client_auth::mac_secret(valid.token_endpoint_auth_method, s, &state.seal_key)
    });
    let new = valid.into_new(
        acting.environment.clone(),
        secret.as_ref().map(|(_, h)| h.clone()),
        RegisteredBy::ManagementApi,
    );
    let now = state.core.clock.now_naive();
    let row = state
        .core
        .db
        .run(move |conn| clients::insert_sealing(conn, new, mac, now))
        .await?;
    state
        .core
        .audit(
            acting
                .event(EventType::OAuthClientCreated)
                .data(serde_json::json!({"client_id": row.id, "type": row.client_type})),
        )
        .await?;
    Ok((row, secret.map(|(s, _)| s)))
}

/// Gives a confidential client of `acting`'s environment a new secret (the
/// old one stops working at once) and audits it as `oauth.client.updated`:
/// the decide step of `POST /v1/oauth/clients/{id}/rotate-secret` and of
/// the console. Returns the row and the new secret, shown once.
///
/// # Errors
/// `NotFound` for a client of another environment; `Conflict` for a
/// public client, which has no secret; storage and audit failures.
pub(crate) async fn rotate_secret(
    state: &AppState,
    acting: &Acting,
    id: &ClientId,
) -> Result<(ClientRow, String), ApiError> {
    let (env, cid) = (acting.environment.clone(), id.to_string());
    let current = state
        .core
        .db
        .run(move |conn| clients::get(conn, &env, &cid))
        .await
        .map_err(not_found)?;
    if current.client_type == ClientType::Public
        || current.token_endpoint_auth_method == clients::AuthMethod::PrivateKeyJwt
    {
        return Err(ApiError::Conflict {
            message: "this client has no secret to rotate (public or private_key_jwt)".into(),
            param: Some("id".into()),
        });
    }
    let method = current.token_endpoint_auth_method;
    let (secret, hash) = client_auth::new_secret(method).map_err(|e| ApiError::internal(&e))?;
    let mac = client_auth::mac_secret(method, &secret, &state.seal_key);
    let (env, cid) = (acting.environment.clone(), current.id.clone());
    let now = state.core.clock.now_naive();
    let row = state
        .core
        .db
        .run(move |conn| clients::set_secret_hash(conn, &env, &cid, &hash, mac, now))
        .await
        .map_err(not_found)?;
    client_auth::forget_client(&state.core, &row.id).await?;
    state
        .core
        .audit(
            acting
                .event(EventType::OAuthClientUpdated)
                .data(serde_json::json!({"client_id": row.id, "secret_rotated": true})),
        )
        .await?;
    Ok((row, secret))
}

#[utoipa::path(post, path = "/v1/oauth/clients/{id}/rotate-secret", tag = "oauth-clients", params(("id" = String, Path, description = "client_…")), security(("api_key" = [])), responses((status = 200, description = "The client with its new `client_secret`, shown once; the old secret no longer works", body = Object), (status = 404, description = "No such client", body = crate::error::ErrorBody), (status = 409, description = "A public client has no secret", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn rotate(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = crate::extract::path_id::<ClientId>(&id)?;
    let (row, secret) = rotate_secret(&state, &caller.acting(), &id).await?;
    Ok(HttpResponse::Ok().json(with_secret(&row, Some(secret))?))
}

#[utoipa::path(get, path = "/v1/oauth/clients", tag = "oauth-clients", params(("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("after" = Option<String>, Query, description = "cursor: the last id of the previous page")), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "Clients", body = crate::extract::ListOf<trusec_storage::clients::Client>), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    caller
        .list::<ClientId, _, _>(
            &state.core,
            &query,
            clients::list,
            |r| Ok(r.to_client()),
            |c: &Client| c.client_id.clone(),
        )
        .await
}

async fn load(state: &AppState, caller: &Caller, id: &str) -> Result<ClientRow, ApiError> {
    caller
        .fetch::<ClientId, _>(&state.core, id, clients::get)
        .await
}

#[utoipa::path(get, path = "/v1/oauth/clients/{id}", tag = "oauth-clients", params(("id" = String, Path, description = "client_…")), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "The client", body = trusec_storage::clients::Client), (status = 404, description = "No such client", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<Client>, ApiError> {
    Ok(web::Json(load(&state, &caller, &id).await?.to_client()))
}

/// The client as it would be after `body` (`existing` with the change
/// applied), as input to validate as a whole.
fn merged_input(
    body: &UpdateClient,
    existing: Client,
    catalog: Catalog,
    outbound: trusec_oauth::fetch::OutboundSettings,
) -> ClientInput {
    // One key source replaces the other (RFC 7591 §2: never both).
    let (keep_jwks, keep_jwks_uri) = (
        !matches!(body.jwks_uri, Some(Some(_))),
        !matches!(body.jwks, Some(Some(_))),
    );
    ClientInput {
        name: Some(body.name.clone().unwrap_or(existing.name)),
        client_type: Some(existing.client_type),
        redirect_uris: Some(body.redirect_uris.clone().unwrap_or(existing.redirect_uris)),
        post_logout_redirect_uris: Some(
            body.post_logout_redirect_uris
                .clone()
                .unwrap_or(existing.post_logout_redirect_uris),
        ),
        grant_types: Some(body.grant_types.clone().unwrap_or(existing.grant_types)),
        scopes: Some(body.scopes.clone().unwrap_or(existing.scopes)),
        token_endpoint_auth_method: Some(
            body.token_endpoint_auth_method
                .clone()
                .unwrap_or(existing.token_endpoint_auth_method),
        ),
        id_token_signed_response_alg: Some(
            body.id_token_signed_response_alg
                .clone()
                .unwrap_or(existing.id_token_signed_response_alg),
        ),
        refresh_token_leeway_seconds: Some(
            body.refresh_token_leeway_seconds
                .unwrap_or(existing.refresh_token_leeway_seconds),
        ),
        resource_server: Some(body.resource_server.unwrap_or(existing.resource_server)),
        default_resource: body
            .default_resource
            .clone()
            .unwrap_or(existing.default_resource),
        jwks: body.jwks.clone().unwrap_or_else(|| {
            existing
                .jwks
                .filter(|_| keep_jwks)
                .and_then(|j| serde_json::to_value(j).ok())
        }),
        jwks_uri: body
            .jwks_uri
            .clone()
            .unwrap_or_else(|| existing.jwks_uri.filter(|_| keep_jwks_uri)),
        token_endpoint_auth_signing_alg: body
            .token_endpoint_auth_signing_alg
            .clone()
            .unwrap_or(existing.token_endpoint_auth_signing_alg),
        require_pushed_authorization_requests: Some(
            body.require_pushed_authorization_requests
                .unwrap_or(existing.require_pushed_authorization_requests),
        ),
        application_type: Some(
            body.application_type
                .clone()
                .unwrap_or(existing.application_type),
        ),
        dpop_bound_access_tokens: Some(
            body.dpop_bound_access_tokens
                .unwrap_or(existing.dpop_bound_access_tokens),
        ),
        catalog,
        outbound,
    }
}

/// The change `body` asks for, validated against the client as it would be
/// after it, as a whole ([`merged_input`]).
fn patch_of(
    body: UpdateClient,
    existing: Client,
    catalog: Catalog,
    outbound: trusec_oauth::fetch::OutboundSettings,
) -> Result<ClientPatch, ApiError> {
    let merged = client_metadata::validate(merged_input(&body, existing, catalog, outbound))
        .map_err(invalid)?;
    let keys_changed = body.token_endpoint_auth_method.is_some()
        || body.jwks.is_some()
        || body.jwks_uri.is_some()
        || body.token_endpoint_auth_signing_alg.is_some();
    Ok(ClientPatch {
        name: body.name.map(|_| merged.name),
        redirect_uris: body.redirect_uris.map(|_| merged.redirect_uris),
        post_logout_redirect_uris: body
            .post_logout_redirect_uris
            .map(|_| merged.post_logout_redirect_uris),
        grant_types: body.grant_types.map(|_| merged.grant_types),
        scopes: body.scopes.map(|_| merged.scopes),
        id_token_signed_response_alg: body
            .id_token_signed_response_alg
            .map(|_| merged.id_token_signed_response_alg),
        refresh_token_leeway_seconds: body.refresh_token_leeway_seconds,
        resource_server: body.resource_server.map(|_| merged.resource_server),
        token_endpoint_auth_method: body
            .token_endpoint_auth_method
            .map(|_| merged.token_endpoint_auth_method),
        default_resource: body.default_resource.map(|_| merged.default_resource),
        keys: keys_changed.then_some(merged.keys),
        require_pushed_authorization_requests: body.require_pushed_authorization_requests,
        application_type: body.application_type.map(|_| merged.application_type),
        dpop_bound_access_tokens: body.dpop_bound_access_tokens,
    })
}

#[utoipa::path(patch, path = "/v1/oauth/clients/{id}", tag = "oauth-clients", params(("id" = String, Path, description = "client_…")), request_body = UpdateClient, security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "The updated client", body = trusec_storage::clients::Client), (status = 422, description = "Invalid field", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    ApiJson(body): ApiJson<UpdateClient>,
) -> Result<web::Json<Client>, ApiError> {
    let current = load(&state, &caller, &id).await?;
    let patch = patch_of(
        body,
        current.to_client(),
        catalog(&state, &caller.environment).await?,
        state.settings.outbound,
    )?;
    let (env, cid) = (caller.environment.clone(), current.id.clone());
    let now = state.core.clock.now_naive();
    let row = state
        .core
        .db
        .run(move |conn| clients::update(conn, &env, &cid, patch, now))
        .await
        .map_err(not_found)?;
    trusec_oauth::client_auth::forget_client(&state.core, &row.id).await?;
    state
        .core
        .audit(
            caller
                .event(EventType::OAuthClientUpdated)
                .data(serde_json::json!({"client_id": row.id})),
        )
        .await?;
    Ok(web::Json(row.to_client()))
}

#[utoipa::path(delete, path = "/v1/oauth/clients/{id}", tag = "oauth-clients", params(("id" = String, Path, description = "client_…")), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "Deleted"), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let current = load(&state, &caller, &id).await?;
    let (env, cid) = (caller.environment.clone(), current.id.clone());
    state
        .core
        .db
        .run(move |conn| clients::delete(conn, &env, &cid))
        .await
        .map_err(not_found)?;
    trusec_oauth::client_auth::forget_client(&state.core, &current.id).await?;
    state
        .core
        .audit(
            caller
                .event(EventType::OAuthClientDeleted)
                .data(serde_json::json!({"client_id": current.id})),
        )
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"client_id": current.id, "deleted": true})))
}
