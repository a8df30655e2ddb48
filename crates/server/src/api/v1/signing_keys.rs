//! `POST /v1/signing-keys/rotate`: rotate the caller's environment's JWT
//! signing keys and SAML IdP key now (JWT keys also rotate by themselves
//! every 90 days). Each environment is its own issuer with its own keys.

use crate::error::ApiError;
use crate::extract::{Acting, Caller};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use trusec_storage::api_keys::KeyType;
use trusec_storage::audit::EventType;

#[utoipa::path(post, path = "/v1/signing-keys/rotate", tag = "signing-keys", security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "Rotated JWT algorithms, the new JWKS, and the SAML step taken", body = Object), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn rotate(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    // Each environment has keys of its own: a live secret key rotates
    // live's, a test key the test environment's. Public keys and access
    // tokens rotate nothing.
    if caller.key_type == KeyType::Public || caller.via_oauth {
        return Err(ApiError::Forbidden(
            "signing keys are rotated with a secret API key (trusec_sk_ or trusec_test_)".into(),
        ));
    }
    let (rotated, saml, jwks) = rotate_now(&state, &caller.acting()).await?;
    Ok(
        HttpResponse::Ok()
            .json(serde_json::json!({"rotated": rotated, "jwks": jwks, "saml": saml})),
    )
}

/// Rotates `acting`'s environment's JWT signing keys and takes the next
/// step of its SAML IdP key's rotation, and audits it: the decide step of
/// `POST /v1/signing-keys/rotate` and of the console. The algorithms
/// rotated, the SAML step and the new JWKS.
///
/// # Errors
/// Key-store and audit failures.
pub(crate) async fn rotate_now(
    state: &AppState,
    acting: &Acting,
) -> Result<(Vec<&'static str>, &'static str, serde_json::Value), ApiError> {
    let env = state.environment(&acting.environment).ok_or_else(|| {
        ApiError::internal(&std::io::Error::other(
            "the caller's environment is not served",
        ))
    })?;
    let rotated = env
        .oauth
        .keyring
        .rotate(false)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    // SAML rotates in two steps (SPs cache metadata): the first call
    // announces the next certificate, the next call switches to it.
    let saml = env
        .saml
        .keys
        .rotate()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    state
        .core
        .audit(
            acting
                .event(EventType::SigningKeyRotated)
                .data(serde_json::json!({"algorithms": rotated, "saml": saml, "reason": "manual"})),
        )
        .await?;
    let jwks: serde_json::Value = serde_json::from_slice(&env.oauth.keyring.keys().jwks)?;
    Ok((rotated, saml, jwks))
}
