//! `/account/security`: the signed-in user adds an authenticator app
//! (RFC 6238 TOTP, a QR code made here as SVG and the key to type),
//! confirms it with a first code and gets ten recovery codes, shown once;
//! or removes it with a code from it (or a recovery code).
//!
//! Every form is CSRF-protected and needs the login session; every wrong
//! code counts against the sign-in budgets (`Family::Login`), as at
//! sign-in, so a borrowed session cannot guess its way to removing the
//! factor.

use crate::UiState;
use crate::cookies;
use crate::error::PageError;
use crate::http::client_info;
use crate::login_session::LoginSession;
use crate::pages::{self, AccountSecurityPage, PasskeyLine, RecoveryCodesPage, TotpEnrolPage};
use crate::routes::login::Attempt;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde::Deserialize;
use trusec_storage::StorageError;
use trusec_storage::audit::{Actor, EventType};
use trusec_storage::clock::rfc3339;
use trusec_storage::mfa::{self, CodeCheck, FactorKind, TotpSecret};
use trusec_storage::rate_limit::{Family, Limited};
use trusec_storage::users;

#[derive(Debug, Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    code: String,
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
}

impl CsrfForm {
    pub(super) fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

/// `?interaction=`: the MFA policy sent the user here from a sign-in
/// ([`crate::Interaction::enrol_url`]).
#[derive(Debug, Deserialize)]
pub struct GetQuery {
    #[serde(default)]
    interaction: String,
}

pub async fn get(
    req: HttpRequest,
    state: web::Data<UiState>,
    query: web::Query<GetQuery>,
) -> Result<HttpResponse, PageError> {
    let Some(login) = LoginSession::from_request(&req, &state).await? else {
        return Ok(sign_in_first(&state));
    };
    if !query.interaction.is_empty() {
        crate::step_up::remember_continue(&state, &login, &query.interaction).await?;
    }
    overview(&req, &state, &login, StatusCode::OK, None).await
}

/// Starts an enrolment: a new pending secret, shown as a QR code and a key.
pub async fn start(
    req: HttpRequest,
    state: web::Data<UiState>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let Some(login) = signed_in(&req, &state, &form.csrf_token).await? else {
        return Err(PageError::page_expired());
    };
    let (env, user_id) = (login.user.environment_id.clone(), login.user.id.clone());
    let (key, now) = (state.seal_key.clone(), state.core.clock.now_naive());
    let started = state
        .core
        .db
        .run(move |conn| mfa::start_totp(conn, &env, &user_id, &key, now))
        .await;
    match started {
        Ok((_, secret)) => enrol_page(&req, &state, &login, &secret, StatusCode::OK, None),
        Err(StorageError::Conflict(_)) => {
            let error = "You already have an authenticator app. Remove it first.";
            overview(&req, &state, &login, StatusCode::CONFLICT, Some(error)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Confirms the pending enrolment with its first code; shows the recovery
/// codes once. A wrong code changes nothing.
pub async fn confirm(
    req: HttpRequest,
    state: web::Data<UiState>,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, PageError> {
    let Some(login) = signed_in(&req, &state, &form.csrf_token).await? else {
        return Err(PageError::page_expired());
    };
    let (env, user_id) = (login.user.environment_id.clone(), login.user.id.clone());
    let Some(factor) = state
        .core
        .db
        .run(move |conn| mfa::pending(conn, &env, &user_id, FactorKind::Totp))
        .await?
    else {
        let error = "That setup expired. Start again.";
        return overview(&req, &state, &login, StatusCode::BAD_REQUEST, Some(error)).await;
    };
    let secret =
        TotpSecret::unseal(&state.seal_key, &factor).map_err(|e| PageError::internal(&e))?;
    let attempt = attempt(&req, &state, &login);
    if let Err(limited) = reserve(&state, &attempt).await {
        return Err(PageError::RateLimited(limited));
    }
    let now = state.core.clock.now_naive();
    let unix = u64::try_from(now.and_utc().timestamp()).unwrap_or_default();
    let step = secret
        .step_of(form.code.trim(), unix)
        .map_err(|e| PageError::internal(&e))?;
    let Some(step) = step else {
        let error = "That code is not right. Check the time on your phone and try again.";
        return enrol_page(
            &req,
            &state,
            &login,
            &secret,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(error),
        );
    };
    let (codes, hashes) = mfa::new_recovery_codes()?;
    let confirmed = state
        .core
        .db
        .run(move |conn| mfa::confirm(conn, &factor, step, &hashes, now))
        .await?;
    if !confirmed {
        let error = "That setup was finished or replaced in another window.";
        return overview(&req, &state, &login, StatusCode::CONFLICT, Some(error)).await;
    }
    state.core.refund(Family::Login, &attempt.budgets()).await;
    let event = attempt
        .event(EventType::UserMfaEnrolled, Actor::user(&login.user.id))
        .user(&login.user.id)
        .data(serde_json::json!({"kind": FactorKind::Totp, "recovery_codes": codes.len()}));
    state.core.audit(event).await?;
    let page = RecoveryCodesPage {
        codes,
        account_url: state.env.path("/account/security"),
        waiting: crate::step_up::waiting(&state, &login).await?,
    };
    Ok(pages::render(&page, StatusCode::OK, Vec::new()))
}

/// Removes the authenticator app (and with it the recovery codes), given a
/// code from it or a recovery code.
pub async fn remove(
    req: HttpRequest,
    state: web::Data<UiState>,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, PageError> {
    let Some(login) = signed_in(&req, &state, &form.csrf_token).await? else {
        return Err(PageError::page_expired());
    };
    let attempt = attempt(&req, &state, &login);
    if let Err(limited) = reserve(&state, &attempt).await {
        return Err(PageError::RateLimited(limited));
    }
    let (env, user_id) = (login.user.environment_id.clone(), login.user.id.clone());
    let (key, now, code) = (
        state.seal_key.clone(),
        state.core.clock.now_naive(),
        form.code.trim().to_owned(),
    );
    let removed = state
        .core
        .db
        .run(move |conn| {
            let check = mfa::check_code(conn, &key, &env, &user_id, &code, now)?;
            if !check.accepted() {
                return Ok((check, None));
            }
            let factor = mfa::confirmed(conn, &env, &user_id, FactorKind::Totp)?
                .ok_or(StorageError::NotFound)?;
            mfa::remove(conn, &env, &user_id, &factor.id).map(|f| (check, Some(f)))
        })
        .await;
    let (check, factor) = match removed {
        Ok(done) => done,
        Err(StorageError::NotFound) => {
            let error = "You have no authenticator app.";
            return overview(&req, &state, &login, StatusCode::NOT_FOUND, Some(error)).await;
        }
        Err(e) => return Err(e.into()),
    };
    let Some(factor) = factor else {
        let failed = attempt
            .event(EventType::UserMfaFailed, Actor::user(&login.user.id))
            .failed()
            .user(&login.user.id)
            .data(serde_json::json!({"method": check.as_str(), "purpose": "remove"}));
        state.core.audit(failed).await?;
        let error = match check {
            CodeCheck::Replayed => "That code was already used. Wait for the next one.",
            CodeCheck::Wrong | CodeCheck::Totp | CodeCheck::RecoveryCode { .. } => {
                "That code is not right. Nothing was changed."
            }
        };
        return overview(
            &req,
            &state,
            &login,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(error),
        )
        .await;
    };
    state.core.refund(Family::Login, &attempt.budgets()).await;
    let event = attempt
        .event(EventType::UserMfaRemoved, Actor::user(&login.user.id))
        .user(&login.user.id)
        .data(serde_json::json!({"factor_id": factor.id, "kind": factor.kind}));
    state.core.audit(event).await?;
    Ok(pages::see_other(
        &state.env.path("/account/security"),
        Vec::new(),
    ))
}

/// The login session of a form post whose CSRF token is right.
pub(super) async fn signed_in(
    req: &HttpRequest,
    state: &UiState,
    csrf: &str,
) -> Result<Option<LoginSession>, PageError> {
    if !cookies::csrf_ok(req, state.secure_cookies, csrf) {
        return Ok(None);
    }
    Ok(LoginSession::from_request(req, state).await?)
}

fn sign_in_first(state: &UiState) -> HttpResponse {
    pages::see_other(&state.env.path("/login"), Vec::new())
}

/// The sign-in budgets of this user at this address (as at `/login`).
pub(super) fn attempt(req: &HttpRequest, state: &UiState, login: &LoginSession) -> Attempt {
    Attempt {
        interaction: None,
        environment: state.env.id.clone(),
        email: users::normalize_email(&login.user.email),
        client: client_info(req),
    }
}

async fn reserve(state: &UiState, attempt: &Attempt) -> Result<(), Limited> {
    let refusal = || attempt.event(EventType::RateLimitExceeded, Actor::anonymous());
    state
        .core
        .reserve(Family::Login, &attempt.budgets(), refusal)
        .await
}

pub(super) async fn overview(
    req: &HttpRequest,
    state: &UiState,
    login: &LoginSession,
    status: StatusCode,
    error: Option<&str>,
) -> Result<HttpResponse, PageError> {
    let (env, user_id) = (login.user.environment_id.clone(), login.user.id.clone());
    let (totp, left, passkeys) = state
        .core
        .db
        .run(move |conn| {
            Ok((
                mfa::confirmed(conn, &env, &user_id, FactorKind::Totp)?,
                mfa::recovery_codes_left(conn, &env, &user_id)?,
                trusec_storage::passkeys::list(conn, &env, &user_id)?,
            ))
        })
        .await?;
    let (csrf, cookie) = cookies::csrf(req, state.secure_cookies);
    let page = AccountSecurityPage {
        email: login.user.email.clone(),
        totp: totp.map(|f| {
            (
                rfc3339(f.confirmed_at.unwrap_or(f.created_at)),
                f.last_used_at.map(rfc3339),
            )
        }),
        recovery_codes_left: left,
        passkeys: passkeys
            .into_iter()
            .map(|p| PasskeyLine {
                id: p.id,
                name: p.name,
                added: rfc3339(p.created_at),
                last_used: p.last_used_at.map(rfc3339),
            })
            .collect(),
        passkeys_on: crate::passkey::available(state),
        error: error.map(str::to_owned),
        csrf,
        waiting: crate::step_up::waiting(state, login).await?,
    };
    Ok(pages::render(&page, status, cookie.into_iter().collect()))
}

fn enrol_page(
    req: &HttpRequest,
    state: &UiState,
    login: &LoginSession,
    secret: &TotpSecret,
    status: StatusCode,
    error: Option<&str>,
) -> Result<HttpResponse, PageError> {
    let issuer = state.env.name.clone();
    let url = secret
        .otpauth_url(&format!("TruSec {issuer}"), &login.user.email)
        .map_err(|e| PageError::internal(&e))?;
    let svg = qrcode::QrCode::new(url.as_bytes())
        .map_err(|e| PageError::internal(&e))?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .build();
    let key = secret.base32().map_err(|e| PageError::internal(&e))?;
    let (csrf, cookie) = cookies::csrf(req, state.secure_cookies);
    let page = TotpEnrolPage {
        qr_data_url: format!(
            "data:image/svg+xml;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(svg)
        ),
        manual_key: group(&key),
        error: error.map(str::to_owned),
        csrf,
    };
    Ok(pages::render(&page, status, cookie.into_iter().collect()))
}

/// `ABCDEFGH…` as `ABCD EFGH …`, easier to type.
fn group(key: &str) -> String {
    key.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_grouped_by_four() {
        assert_eq!(super::group("ABCDEFGHIJ"), "ABCD EFGH IJ");
    }
}
