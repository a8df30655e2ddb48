//! `/v1/users`: create, read, update, delete, list.

use crate::error::ApiError;
use crate::extract::{Acting, ApiJson, Caller, PageQuery, path_id};
use crate::state::AppState;
use crate::validate;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use trusec_storage::StorageError;
use trusec_storage::audit::EventType;
use trusec_storage::ids::UserId;
use trusec_storage::refresh_tokens::RevocationReason;
use trusec_storage::users::{self, NewUser, User, UserPatch};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub(crate) email: String,
    pub(crate) password: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) given_name: Option<String>,
    pub(crate) family_name: Option<String>,
    pub(crate) groups: Option<Vec<String>>,
    pub(crate) metadata: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub(crate) email: Option<String>,
    #[serde(default, deserialize_with = "validate::nullable")]
    pub(crate) password: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    pub(crate) name: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    pub(crate) given_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    pub(crate) family_name: Option<Option<String>>,
    pub(crate) groups: Option<Vec<String>>,
    pub(crate) metadata: Option<serde_json::Value>,
    /// `true` disables the user: their sessions and refresh tokens end and
    /// they cannot sign in until `false` enables them again.
    pub(crate) disabled: Option<bool>,
}

pub(crate) fn email_taken(e: StorageError) -> ApiError {
    match e {
        StorageError::Conflict(_) => ApiError::Conflict {
            message: "a user with this email already exists".into(),
            param: Some("email".into()),
        },
        other => other.into(),
    }
}

/// A storage `NotFound` for the user named by the path's `id`, as the
/// `/v1/users/{id}…` routes report it.
pub(crate) fn user_not_found(e: StorageError) -> ApiError {
    match e {
        StorageError::NotFound => ApiError::not_found("user", Some("id")),
        other => other.into(),
    }
}

/// Hashes a password after checking it against the absolute bounds and
/// the password policy of `env` (read from the database: a policy change
/// holds at once on every instance).
pub(crate) async fn password_hash(
    state: &AppState,
    env: &str,
    password: String,
) -> Result<String, ApiError> {
    validate::password(&password)?;
    let env = env.to_owned();
    let policy = state
        .core
        .db
        .run(move |conn| trusec_storage::policies::get(conn, &env))
        .await?;
    policy
        .password
        .check(&password)
        .map_err(|refusal| ApiError::validation("password", refusal.to_string()))?;
    Ok(state.core.hash_password(password).await?)
}

#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = CreateUser, security(("api_key" = []), ("access_token" = [])), responses((status = 201, description = "The user", body = trusec_storage::users::User), (status = 409, description = "Email taken", body = crate::error::ErrorBody), (status = 422, description = "Invalid field", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let user = register(&state, &caller.acting(), body).await?;
    Ok(HttpResponse::Created().json(user))
}

/// Creates a user in `acting`'s environment and audits it: the decide
/// step of `POST /v1/users` and of the console's Users page.
///
/// # Errors
/// `Validation` naming the field at fault; `Conflict` for a taken e-mail;
/// `Busy` when password hashing is at capacity; storage and audit failures.
pub(crate) async fn register(
    state: &AppState,
    acting: &Acting,
    body: CreateUser,
) -> Result<User, ApiError> {
    let email = validate::email("email", &body.email)?;
    let name = validate::name("name", body.name)?;
    let given_name = validate::name("given_name", body.given_name)?;
    let family_name = validate::name("family_name", body.family_name)?;
    let groups = validate::groups(body.groups.unwrap_or_default())?;
    let metadata = validate::metadata(body.metadata.unwrap_or_else(|| serde_json::json!({})))?;
    let password_hash = match body.password {
        Some(p) => Some(password_hash(state, &acting.environment, p).await?),
        None => None,
    };
    let new = NewUser {
        environment_id: acting.environment.clone(),
        email,
        password_hash,
        name,
        given_name,
        family_name,
        groups,
        metadata,
    };
    let now = state.core.clock.now_naive();
    let row = state
        .core
        .db
        .run(move |conn| users::insert(conn, new, now))
        .await
        .map_err(email_taken)?;
    let user = row.to_user()?;
    state
        .core
        .audit(
            acting
                .event(EventType::UserCreated)
                .user(&user.id)
                .data(serde_json::json!({"email": user.email})),
        )
        .await?;
    Ok(user)
}

#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", params(("id" = String, Path, description = "user_…")), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "The user", body = trusec_storage::users::User), (status = 404, description = "No such user", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<User>, ApiError> {
    let row = caller
        .fetch::<UserId, _>(&state.core, &id, users::get)
        .await?;
    Ok(web::Json(row.to_user()?))
}

#[utoipa::path(get, path = "/v1/users", tag = "users", params(("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("after" = Option<String>, Query, description = "cursor: the last id of the previous page")), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "A page of users", body = crate::extract::ListOf<trusec_storage::users::User>), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    caller
        .list::<UserId, _, _>(
            &state.core,
            &query,
            users::list,
            |r| r.to_user(),
            |u| u.id.clone(),
        )
        .await
}

/// The validated patch of a PATCH body and the names of the fields it
/// changes (a new password is hashed here).
async fn to_patch(
    state: &AppState,
    env: &str,
    body: UpdateUser,
) -> Result<(UserPatch, Vec<&'static str>), ApiError> {
    let mut changed: Vec<&'static str> = Vec::new();
    let mut patch = UserPatch::default();
    if let Some(email) = body.email {
        patch.email = Some(validate::email("email", &email)?);
        changed.push("email");
    }
    for (field, value, slot) in [
        ("name", body.name, &mut patch.name),
        ("given_name", body.given_name, &mut patch.given_name),
        ("family_name", body.family_name, &mut patch.family_name),
    ] {
        if let Some(value) = value {
            *slot = Some(validate::name(field, value)?);
            changed.push(field);
        }
    }
    if let Some(groups) = body.groups {
        patch.groups = Some(validate::groups(groups)?);
        changed.push("groups");
    }
    if let Some(metadata) = body.metadata {
        patch.metadata = Some(validate::metadata(metadata)?);
        changed.push("metadata");
    }
    if let Some(disabled) = body.disabled {
        patch.disabled = Some(disabled);
        changed.push("disabled");
    }
    if let Some(password) = body.password {
        patch.password_hash = Some(match password {
            Some(p) => Some(password_hash(state, env, p).await?),
            None => None,
        });
        changed.push("password");
    }
    Ok((patch, changed))
}

#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users", params(("id" = String, Path, description = "user_…")), request_body = UpdateUser, security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "The updated user", body = trusec_storage::users::User), (status = 404, description = "No such user", body = crate::error::ErrorBody), (status = 422, description = "Invalid field", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> Result<web::Json<User>, ApiError> {
    let id = path_id::<UserId>(&id)?;
    Ok(web::Json(
        change(&state, &caller.acting(), &id, body).await?,
    ))
}

/// Applies `body` to a user of `acting`'s environment and audits it; a new
/// password ends the user's refresh tokens (contract), disabling ends their
/// sessions too. The decide step of
/// `PATCH /v1/users/{id}` and of the console.
///
/// # Errors
/// As [`register`], and `NotFound`.
pub(crate) async fn change(
    state: &AppState,
    acting: &Acting,
    id: &UserId,
    body: UpdateUser,
) -> Result<User, ApiError> {
    let (patch, changed) = to_patch(state, &acting.environment, body).await?;
    let disabling = patch.disabled == Some(true);
    let env = acting.environment.clone();
    let now = state.core.clock.now_naive();
    let uid = id.clone();
    let (row, refresh, hashes) = state
        .core
        .db
        .run(move |conn| {
            let updated = users::update(conn, &env, &uid, patch, now)?;
            let mut hashes = trusec_storage::sessions::token_hashes_for_user(conn, &uid)?;
            hashes.extend(updated.ended_sessions);
            Ok((updated.row, updated.refresh, hashes))
        })
        .await
        .map_err(|e| match e {
            StorageError::Conflict(_) => email_taken(e),
            other => user_not_found(other),
        })?;
    // Cached session verifications carry the user: mark them stale.
    if let Err(e) = state
        .core
        .forget_sessions(hashes.iter().map(String::as_str))
        .await
    {
        tracing::error!(error = %crate::error::ErrorChain(&e), "sessions of an updated user may show the old user for a while");
    }
    // A new password, or disabling the user, ended every refresh token of
    // the user (contract).
    let reason = if disabling {
        RevocationReason::UserDisabled
    } else {
        RevocationReason::PasswordChanged
    };
    state
        .core
        .refresh_families_revoked(
            &refresh,
            reason,
            acting.event(EventType::OAuthTokenRevoked).user(id),
        )
        .await?;
    state
        .core
        .audit(
            acting
                .event(EventType::UserUpdated)
                .user(id)
                .data(serde_json::json!({"fields": changed})),
        )
        .await?;
    Ok(row.to_user()?)
}

#[utoipa::path(delete, path = "/v1/users/{id}", tag = "users", params(("id" = String, Path, description = "user_…")), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "Deleted; the user's sessions and refresh tokens are revoked"), (status = 404, description = "No such user", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id::<UserId>(&id)?;
    remove(&state, &caller.acting(), &id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"id": id, "deleted": true})))
}

/// Deletes a user of `acting`'s environment, ending their sessions and
/// refresh tokens, and audits it: the decide step of `DELETE
/// /v1/users/{id}` and of the console.
///
/// # Errors
/// `NotFound`; storage and audit failures.
pub(crate) async fn remove(state: &AppState, acting: &Acting, id: &UserId) -> Result<(), ApiError> {
    let env = acting.environment.clone();
    let uid = id.clone();
    let now = state.core.clock.now_naive();
    let (hashes, refresh) = state
        .core
        .db
        .run(move |conn| users::delete(conn, &env, &uid, now))
        .await
        .map_err(user_not_found)?;
    // The user is gone whatever happens next; a cache that cannot be told
    // only matters while Redis half-works, and verification re-reads the
    // database on every miss.
    if let Err(e) = state
        .core
        .forget_sessions(hashes.iter().map(String::as_str))
        .await
    {
        tracing::error!(error = %crate::error::ErrorChain(&e), "sessions of a deleted user may stay cached");
    }
    state
        .core
        .refresh_families_revoked(
            &refresh,
            RevocationReason::UserDeleted,
            acting.event(EventType::OAuthTokenRevoked).user(id),
        )
        .await?;
    state
        .core
        .audit(
            acting
                .event(EventType::UserDeleted)
                .user(id)
                .data(serde_json::json!({"sessions_revoked": hashes.len()})),
        )
        .await?;
    Ok(())
}

#[utoipa::path(get, path = "/v1/users/me", tag = "users", security(("access_token" = [])), responses((status = 200, description = "The user behind the OAuth access token: `id` and the fields its scopes release (`email`; names for `profile`; `groups`); the whole user with `read:users`", body = Object), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
/// `GET /v1/users/me`: the user behind an OAuth access token.
#[tracing::instrument(skip_all)]
pub async fn me(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> Result<web::Json<serde_json::Value>, ApiError> {
    let claims = user_token(&req, &state).await?;
    let (env, sub) = (claims.env.clone(), claims.sub.clone());
    let row = state
        .core
        .db
        .run(move |conn| users::get(conn, &env, &sub))
        .await
        .map_err(user_not_found)?;
    Ok(web::Json(released_fields(&claims, &row)?))
}

/// The claims of the OAuth access token a user's app presents at
/// `/v1/users/me…` (never an API key, never a client's own token).
///
/// # Errors
/// 401 for a missing, malformed or refused token or an API key; 403 for a
/// client-credentials token.
pub(crate) async fn user_token(
    req: &actix_web::HttpRequest,
    state: &AppState,
) -> Result<trusec_oauth::jwt::AccessClaims, ApiError> {
    let (scheme, token) = crate::extract::presented(req)?;
    if token.starts_with("trusec_") {
        return Err(ApiError::Unauthenticated(
            "/v1/users/me takes an OAuth access token, not an API key".into(),
        ));
    }
    let claims = state
        .verify_access_token(req, (scheme, &token))
        .await
        .map_err(|e| crate::extract::token_refused(&e, e.description.clone()))?;
    if claims.sub == claims.client_id {
        return Err(ApiError::Forbidden(
            "this access token was issued to a client, not a user".into(),
        ));
    }
    Ok(claims)
}

/// The user as `/v1/users/me` shows it to a token: `id` and what the token's
/// scopes release, as userinfo does (contract); the whole record, metadata
/// included, only to a token that may read users anyway (`read:users`).
fn released_fields(
    claims: &trusec_oauth::jwt::AccessClaims,
    row: &users::UserRow,
) -> Result<serde_json::Value, ApiError> {
    if claims.has_scope("read:users") {
        return Ok(serde_json::to_value(row.to_user()?)?);
    }
    let mut out = serde_json::Map::new();
    out.insert("id".into(), row.id.clone().into());
    out.extend(trusec_oauth::released_claims(claims, row));
    Ok(serde_json::Value::Object(out))
}
