//! `/v1/users/{id}/factors`: a user's second factors (an administrator's
//! view; never a secret), removing one, and the help-desk reset that
//! removes every factor and recovery code, so that the user signs in with
//! the password alone and can enrol again.

use crate::error::ApiError;
use crate::extract::{Acting, Caller, path_id};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use trusec_storage::StorageError;
use trusec_storage::audit::{EventType, NewAuditEvent};
use trusec_storage::clock::rfc3339;
use trusec_storage::ids::UserId;
use trusec_storage::mfa::{self, FactorKind, FactorRow};
use trusec_storage::passkeys::{self, PasskeyRow};

/// What kind of second factor a [`Factor`] is.
#[derive(Clone, Copy, Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An authenticator app (RFC 6238).
    Totp,
    /// A passkey (WebAuthn).
    Passkey,
}

impl From<FactorKind> for Kind {
    fn from(k: FactorKind) -> Self {
        match k {
            FactorKind::Totp => Self::Totp,
        }
    }
}

/// A confirmed second factor as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Factor {
    /// `mfa_…` (an authenticator app) or `passkey_…`
    pub id: String,
    pub kind: Kind,
    /// A passkey's name, as the user gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// The factors of a user, in the list shape of every `/v1` list (a user
/// has a handful at most: one page), and the unused recovery codes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FactorList {
    pub data: Vec<Factor>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
    pub recovery_codes_left: i64,
}

fn to_factor(row: &FactorRow) -> Factor {
    Factor {
        id: row.id.clone(),
        kind: row.kind.into(),
        name: None,
        created_at: rfc3339(row.confirmed_at.unwrap_or(row.created_at)),
        last_used_at: row.last_used_at.map(rfc3339),
    }
}

fn passkey_factor(row: &PasskeyRow) -> Factor {
    Factor {
        id: row.id.clone(),
        kind: Kind::Passkey,
        name: Some(row.name.clone()),
        created_at: rfc3339(row.created_at),
        last_used_at: row.last_used_at.map(rfc3339),
    }
}

/// `user.mfa.removed`, one per factor, by the caller.
async fn audit_removed(
    state: &AppState,
    event: impl Fn() -> NewAuditEvent,
    user_id: &UserId,
    removed: &[FactorRow],
    reset: bool,
) -> Result<(), ApiError> {
    for f in removed {
        let data = serde_json::json!({"factor_id": f.id, "kind": f.kind, "reset": reset});
        state.core.audit(event().user(user_id).data(data)).await?;
    }
    Ok(())
}

#[utoipa::path(get, path = "/v1/users/{id}/factors", tag = "users", params(("id" = String, Path, description = "user_…")), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "The user's confirmed second factors and how many recovery codes are left", body = FactorList), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 404, description = "No such user", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user_id = path_id::<UserId>(&id)?;
    let env = caller.environment.clone();
    let (rows, keys, left) = state
        .core
        .db
        .run(move |conn| {
            trusec_storage::users::get(conn, &env, &user_id)?;
            Ok((
                mfa::list(conn, &env, &user_id)?,
                passkeys::list(conn, &env, &user_id)?,
                mfa::recovery_codes_left(conn, &env, &user_id)?,
            ))
        })
        .await
        .map_err(super::users::user_not_found)?;
    Ok(HttpResponse::Ok().json(FactorList {
        data: rows
            .iter()
            .map(to_factor)
            .chain(keys.iter().map(passkey_factor))
            .collect(),
        has_more: false,
        next_cursor: None,
        recovery_codes_left: left,
    }))
}

#[utoipa::path(delete, path = "/v1/users/{id}/factors/{factor_id}", tag = "users", params(("id" = String, Path, description = "user_…"), ("factor_id" = String, Path, description = "mfa_… or passkey_…")), security(("api_key" = []), ("access_token" = [])), responses((status = 204, description = "Removed; removing the last factor also removes the recovery codes"), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 404, description = "No such user or factor", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn remove(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, factor_id) = path.into_inner();
    let user_id = path_id::<UserId>(&id)?;
    if trusec_storage::ids::is_valid(trusec_storage::ids::PASSKEY, &factor_id) {
        return remove_passkey(&state, &caller, &user_id, factor_id).await;
    }
    if !trusec_storage::ids::is_valid(trusec_storage::ids::FACTOR, &factor_id) {
        return Err(ApiError::not_found("factor", Some("factor_id")));
    }
    let (env, u) = (caller.environment.clone(), user_id.clone());
    let removed = state
        .core
        .db
        .run(move |conn| mfa::remove(conn, &env, &u, &factor_id))
        .await
        .map_err(|e| match e {
            StorageError::NotFound => ApiError::not_found("factor", Some("factor_id")),
            other => other.into(),
        })?;
    let event = || caller.event(EventType::UserMfaRemoved);
    audit_removed(&state, event, &user_id, &[removed], false).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /v1/users/{id}/factors/passkey_…`: the decide step for a
/// passkey. The last way to sign in of a user without a password is not
/// removed (409): the reset below is for that.
async fn remove_passkey(
    state: &AppState,
    caller: &Caller,
    user_id: &UserId,
    passkey_id: String,
) -> Result<HttpResponse, ApiError> {
    let (env, u) = (caller.environment.clone(), user_id.clone());
    let removed = state
        .core
        .db
        .run(move |conn| passkeys::remove(conn, &env, &u, &passkey_id))
        .await
        .map_err(|e| match e {
            StorageError::NotFound => ApiError::not_found("factor", Some("factor_id")),
            other => other.into(),
        })?;
    let data = serde_json::json!({"passkey_id": removed.id, "kind": "passkey", "reset": false});
    let event = caller
        .event(EventType::UserMfaRemoved)
        .user(user_id)
        .data(data);
    state.core.audit(event).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(delete, path = "/v1/users/{id}/factors", tag = "users", params(("id" = String, Path, description = "user_…")), security(("api_key" = []), ("access_token" = [])), responses((status = 204, description = "Every factor (pending ones too) and recovery code removed: the user signs in with the password and may enrol again"), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 404, description = "No such user", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn reset(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user_id = path_id::<UserId>(&id)?;
    reset_all(&state, &caller.acting(), &user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The help-desk reset of a user of `acting`'s environment: every factor,
/// passkey and recovery code removed, each audited: the decide step of `DELETE
/// /v1/users/{id}/factors` and of the console. How many were removed.
///
/// # Errors
/// `NotFound`; storage and audit failures.
pub(crate) async fn reset_all(
    state: &AppState,
    acting: &Acting,
    user_id: &UserId,
) -> Result<usize, ApiError> {
    let (env, u) = (acting.environment.clone(), user_id.clone());
    let (removed, passkeys) = state
        .core
        .db
        .run(move |conn| mfa::reset(conn, &env, &u))
        .await
        .map_err(super::users::user_not_found)?;
    let event = || acting.event(EventType::UserMfaRemoved);
    audit_removed(state, event, user_id, &removed, true).await?;
    for p in &passkeys {
        let data = serde_json::json!({"passkey_id": p.id, "kind": "passkey", "reset": true});
        state.core.audit(event().user(user_id).data(data)).await?;
    }
    Ok(removed.len() + passkeys.len())
}
