//! The hosted `/device` page (RFC 8628 §3.3): the user types the code their
//! device shows (or arrives with `?user_code=`, §3.3.1), signs in and
//! consents through the same pages, interaction and consent records as the
//! code flow (`authorize::decide`), and is told to return to the device.
//!
//! Wrong codes are counted per IP (`Family::DeviceCode`, reserved before the
//! lookup and refunded for a code that exists, so guessing is limited,
//! §5.1); a code is decided once (`device_grants::decide`).

use super::authorize::decide;
use super::authorize::request::AuthzRequest;
use crate::OAuthState;
use crate::error::ErrorCode;
use actix_web::http::StatusCode;
use actix_web::web::{self, Data};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use trusec_storage::audit::{Actor, EventType, NewAuditEvent};
use trusec_storage::device_grants::{self, Approval, Decision, DeviceGrantRow};
use trusec_storage::rate_limit::{Family, Subject};
use trusec_storage::secrets;
use trusec_ui::http::client_info;
use trusec_ui::pages::{self, DevicePage};
use trusec_ui::{LoginSession, PageError, cookies};

/// More than any code with separators needs; longer input is cut, not shown.
const MAX_TYPED: usize = 32;

#[derive(Debug, Deserialize)]
pub struct DeviceQuery {
    #[serde(default)]
    user_code: String,
}

#[derive(Debug, Deserialize)]
pub struct DeviceForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    user_code: String,
}

/// The form, with `typed` shown back and an error if there is one.
fn form_page(
    req: &HttpRequest,
    state: &OAuthState,
    typed: &str,
    error: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    let (csrf, cookie) = cookies::csrf(req, state.ui.secure_cookies);
    let page = DevicePage {
        user_code: typed.chars().take(MAX_TYPED).collect(),
        error: error.map(str::to_owned),
        csrf,
    };
    pages::render(&page, status, cookie.into_iter().collect())
}

pub async fn get(
    req: HttpRequest,
    state: Data<OAuthState>,
    query: web::Query<DeviceQuery>,
) -> HttpResponse {
    form_page(&req, &state, &query.user_code, None, StatusCode::OK)
}

pub async fn post(
    req: HttpRequest,
    state: Data<OAuthState>,
    form: web::Form<DeviceForm>,
) -> Result<HttpResponse, PageError> {
    if !cookies::csrf_ok(&req, state.ui.secure_cookies, &form.csrf_token) {
        return Err(PageError::refused(
            StatusCode::FORBIDDEN,
            "This page expired",
            "Open the page again and enter the code.",
        ));
    }
    let caller = client_info(&req);
    let budget = [Subject::Ip(caller.ip.as_deref())];
    let refusal = || {
        NewAuditEvent::new(
            EventType::RateLimitExceeded,
            Some(&state.env().id),
            Actor::anonymous(),
        )
        .client(&caller)
    };
    state
        .core()
        .reserve(Family::DeviceCode, &budget, refusal)
        .await?;
    let Some(row) = pending(&state, &form.user_code).await? else {
        let wrong = "That code is not valid. Check the code on your device; it may have \
                     expired or been used already.";
        let status = StatusCode::BAD_REQUEST;
        return Ok(form_page(
            &req,
            &state,
            &form.user_code,
            Some(wrong),
            status,
        ));
    };
    state.core().refund(Family::DeviceCode, &budget).await;
    let gone = || {
        PageError::refused(
            StatusCode::BAD_REQUEST,
            "This request is invalid",
            "The application is no longer registered.",
        )
    };
    let client = crate::client_auth::client_of_env(&state, &row.client_id)
        .await?
        .ok_or_else(gone)?;
    let words = crate::resources::descriptions_of(&state, &client, &row.resources, &row.scope)
        .await
        .map_err(|e| PageError::internal(&e))?;
    let authz = AuthzRequest::for_device(&row, words);
    decide::proceed(&req, &state, &client, authz, None).await
}

/// The pending, unexpired grant whose user code was typed, if any.
async fn pending(state: &OAuthState, typed: &str) -> Result<Option<DeviceGrantRow>, PageError> {
    let Some(code) = device_grants::normalise_user_code(typed) else {
        return Ok(None);
    };
    let (env, hash, now) = (
        state.env().id.clone(),
        secrets::hash_secret(&code),
        state.core().clock.now_naive(),
    );
    Ok(state
        .core()
        .db
        .run(move |c| device_grants::find_pending(c, &env, &hash, now))
        .await?)
}

/// The user approved: records it on the grant (if it is still pending and
/// unexpired) and says so.
///
/// # Errors
/// Storage failures.
pub async fn approved(
    state: &OAuthState,
    user_code_hash: &str,
    login: &LoginSession,
) -> Result<HttpResponse, PageError> {
    let decision = Decision::Approve(Approval {
        user_id: login.user.id.clone(),
        auth_time: login.auth_time(),
        session_id: login.session.id.clone(),
        amr: decide::amr_of(login),
    });
    if !record(state, user_code_hash, decision).await? {
        return Ok(no_longer_valid());
    }
    Ok(pages::message(
        StatusCode::OK,
        "You can return to your device",
        "The device is now signed in. You can close this page.",
    ))
}

/// The request cannot be approved (the user denied it, or may not grant
/// its scopes): the grant is denied, and the device will hear
/// `access_denied`.
///
/// # Errors
/// Storage failures.
pub async fn refused(
    state: &OAuthState,
    user_code_hash: &str,
    code: ErrorCode,
    why: &str,
) -> Result<HttpResponse, PageError> {
    if !record(state, user_code_hash, Decision::Deny).await? {
        return Ok(no_longer_valid());
    }
    tracing::info!(error = %code, reason = why, "device authorization denied");
    Ok(pages::message(
        StatusCode::OK,
        "Access denied",
        "The device was not signed in. You can close this page.",
    ))
}

async fn record(
    state: &OAuthState,
    user_code_hash: &str,
    decision: Decision,
) -> Result<bool, PageError> {
    let (env, hash, now) = (
        state.env().id.clone(),
        user_code_hash.to_owned(),
        state.core().clock.now_naive(),
    );
    Ok(state
        .core()
        .db
        .run(move |c| device_grants::decide(c, &env, &hash, &decision, now))
        .await?)
}

fn no_longer_valid() -> HttpResponse {
    pages::message(
        StatusCode::BAD_REQUEST,
        "This code is no longer valid",
        "It expired or was used already. Start again on your device.",
    )
}
