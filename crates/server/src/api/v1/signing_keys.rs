//! `POST /v1/signing-keys/rotate`: rotate the JWT signing keys now (they
//! also rotate by themselves every 90 days). Keys are shared by every
//! environment, so only a live secret key may do this.

use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use trusec_storage::api_keys::KeyType;
use trusec_storage::audit::EventType;

#[utoipa::path(post, path = "/v1/signing-keys/rotate", tag = "signing-keys", security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "Rotated JWT algorithms, the new JWKS, and the SAML step taken", body = Object), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn rotate(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    if caller.key_type != KeyType::Secret || caller.via_oauth {
        return Err(ApiError::Forbidden(
            "signing keys serve every environment: rotate them with a live secret key (trusec_sk_)"
                .into(),
        ));
    }
    let rotated = state
        .oauth
        .keyring
        .rotate(false)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    // SAML rotates in two steps (SPs cache metadata): the first call
    // announces the next certificate, the next call switches to it.
    let saml = state
        .environment(&caller.environment)
        .ok_or_else(|| {
            ApiError::internal(&std::io::Error::other(
                "the caller's environment is not served",
            ))
        })?
        .saml
        .keys
        .rotate()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    state
        .core
        .audit(
            caller
                .event(EventType::SigningKeyRotated)
                .data(serde_json::json!({"algorithms": rotated, "saml": saml, "reason": "manual"})),
        )
        .await?;
    let jwks: serde_json::Value = serde_json::from_slice(&state.oauth.keyring.keys().jwks)?;
    Ok(
        HttpResponse::Ok()
            .json(serde_json::json!({"rotated": rotated, "jwks": jwks, "saml": saml})),
    )
}
