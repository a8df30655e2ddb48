//! Passkeys on `/account/security`: the signed-in user adds one (named),
//! renames or removes one. Every form is CSRF-protected and needs the
//! login session.
//!
//! Adding is a WebAuthn registration (Level 3 §7.1) through `webauthn-rs`:
//! `POST /account/security/passkeys/options` parks the ceremony for this
//! user and session and gives the page's script its options (the user's
//! passkeys excluded, §5.4 `excludeCredentials`); the script submits the
//! authenticator's answer to `POST /account/security/passkeys`. A first
//! second factor comes with ten recovery codes, shown once, as for an
//! authenticator app.

use crate::UiState;
use crate::error::PageError;
use crate::login_session::LoginSession;
use crate::pages::{self, RecoveryCodesPage};
use crate::passkey;
use crate::routes::account::{self, CsrfForm};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use trusec_storage::StorageError;
use trusec_storage::StoreKey;
use trusec_storage::audit::{Actor, EventType};
use trusec_storage::mfa;
use trusec_storage::passkeys::{self, PasskeyName};
use webauthn_rs::prelude::PasskeyRegistration;

/// A registration waiting for the authenticator: for this user, from this
/// login session only.
#[derive(Serialize, Deserialize)]
struct Ceremony {
    environment_id: String,
    user_id: String,
    session_id: String,
    state: PasskeyRegistration,
}

#[derive(Debug, Deserialize)]
pub struct AddForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    credential: String,
}

#[derive(Debug, Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    passkey_id: String,
    #[serde(default)]
    name: String,
}

const BAD_NAME: &str = "Give the passkey a name of 1 to 64 characters.";

/// `POST /account/security/passkeys/options`: a registration challenge.
pub async fn options(
    req: HttpRequest,
    state: web::Data<UiState>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let Some(login) = account::signed_in(&req, &state, form.csrf_token()).await? else {
        return Err(PageError::page_expired());
    };
    let rp = passkey::relying_party(&state)?;
    let (env, user_id) = (login.user.environment_id.clone(), login.user.id.clone());
    let existing = state
        .core
        .db
        .run(move |conn| passkeys::list(conn, &env, &user_id))
        .await?;
    if existing.len() >= passkeys::MAX_PER_USER {
        return Err(PageError::refused(
            StatusCode::CONFLICT,
            "Too many passkeys",
            "Remove a passkey before adding another.",
        ));
    }
    let exclude = existing
        .iter()
        .map(|p| p.passkey.cred_id().clone())
        .collect();
    let user = &login.user;
    let display = user.name.as_deref().unwrap_or(&user.email);
    let (options, registration) = rp
        .start_passkey_registration(
            passkeys::user_handle(&user.id),
            &user.email,
            display,
            Some(exclude),
        )
        .map_err(|e| PageError::internal(&e))?;
    let options = passkey::prefer_discoverable(&options);
    let (token, key) = passkey::new_token(StoreKey::passkey_registration)?;
    let ceremony = Ceremony {
        environment_id: state.env.id.clone(),
        user_id: user.id.clone(),
        session_id: login.session.id.clone(),
        state: registration,
    };
    passkey::park(&state, &key, &ceremony).await?;
    Ok(passkey::options(&token, &options))
}

/// The signed-in user of a form that names a passkey, and the name; or
/// the account page saying the name is wrong.
///
/// # Errors
/// `page_expired` without a session or with a bad CSRF token.
async fn signed_in_naming(
    req: &HttpRequest,
    state: &UiState,
    csrf: &str,
    name: &str,
) -> Result<Result<(LoginSession, PasskeyName), HttpResponse>, PageError> {
    let Some(login) = account::signed_in(req, state, csrf).await? else {
        return Err(PageError::page_expired());
    };
    match PasskeyName::parse(name) {
        Some(name) => Ok(Ok((login, name))),
        None => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(Err(account::overview(
                req,
                state,
                &login,
                status,
                Some(BAD_NAME),
            )
            .await?))
        }
    }
}

/// `POST /account/security/passkeys`: the authenticator's answer.
pub async fn add(
    req: HttpRequest,
    state: web::Data<UiState>,
    form: web::Form<AddForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let (login, name) = match signed_in_naming(&req, &state, &form.csrf_token, &form.name).await? {
        Ok(both) => both,
        Err(page) => return Ok(page),
    };
    let rp = passkey::relying_party(&state)?;
    let key = passkey::key_of(&form.token, StoreKey::passkey_registration);
    let ceremony: Option<Ceremony> = passkey::take(&state, key).await?;
    let ceremony = ceremony.filter(|c| {
        c.environment_id == state.env.id
            && c.user_id == login.user.id
            && c.session_id == login.session.id
    });
    let registered = ceremony.and_then(|c| {
        let answer = passkey::attestation(&form.credential)?;
        rp.finish_passkey_registration(&answer, &c.state).ok()
    });
    let Some(registered) = registered else {
        let error = "That passkey could not be added. Nothing was changed; please try again.";
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return account::overview(&req, &state, &login, status, Some(error)).await;
    };
    let (codes, hashes) = mfa::new_recovery_codes()?;
    let (env, user_id) = (login.user.environment_id.clone(), login.user.id.clone());
    let now = state.core.clock.now_naive();
    let added = state
        .core
        .db
        .run(move |conn| {
            passkeys::insert_with_recovery_codes(
                conn, &env, &user_id, registered, &name, &hashes, now,
            )
        })
        .await;
    let (row, codes_given) = match added {
        Ok(done) => done,
        Err(StorageError::Conflict(_)) => {
            let error = "That passkey is registered already, or you have too many.";
            let status = StatusCode::CONFLICT;
            return account::overview(&req, &state, &login, status, Some(error)).await;
        }
        Err(e) => return Err(e.into()),
    };
    let attempt = account::attempt(&req, &state, &login);
    let recovery_codes = if codes_given { codes.len() } else { 0 };
    let event = attempt
        .event(EventType::UserMfaEnrolled, Actor::user(&login.user.id))
        .user(&login.user.id)
        .data(serde_json::json!({
            "kind": "passkey",
            "passkey_id": row.id,
            "recovery_codes": recovery_codes,
        }));
    state.core.audit(event).await?;
    if codes_given {
        let page = RecoveryCodesPage {
            codes,
            account_url: state.env.path("/account/security"),
            waiting: crate::step_up::waiting(&state, &login).await?,
        };
        return Ok(pages::render(&page, StatusCode::OK, Vec::new()));
    }
    Ok(back(&state))
}

/// `POST /account/security/passkeys/rename`.
pub async fn rename(
    req: HttpRequest,
    state: web::Data<UiState>,
    form: web::Form<ChangeForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let (login, name) = match signed_in_naming(&req, &state, &form.csrf_token, &form.name).await? {
        Ok(both) => both,
        Err(page) => return Ok(page),
    };
    let (env, user_id) = (login.user.environment_id.clone(), login.user.id.clone());
    let id = form.passkey_id;
    match state
        .core
        .db
        .run(move |conn| passkeys::rename(conn, &env, &user_id, &id, &name))
        .await
    {
        Ok(()) => Ok(back(&state)),
        Err(StorageError::NotFound) => not_found(&req, &state, &login).await,
        Err(e) => Err(e.into()),
    }
}

/// `POST /account/security/passkeys/remove`: audited `user.mfa.removed`.
/// The last way into an account without a password is kept.
pub async fn remove(
    req: HttpRequest,
    state: web::Data<UiState>,
    form: web::Form<ChangeForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let Some(login) = account::signed_in(&req, &state, &form.csrf_token).await? else {
        return Err(PageError::page_expired());
    };
    let (env, user_id) = (login.user.environment_id.clone(), login.user.id.clone());
    let id = form.passkey_id;
    let row = match state
        .core
        .db
        .run(move |conn| passkeys::remove(conn, &env, &user_id, &id))
        .await
    {
        Ok(row) => row,
        Err(StorageError::NotFound) => return not_found(&req, &state, &login).await,
        Err(StorageError::Conflict(_)) => {
            let error = "This passkey is the only way into your account. Add another first.";
            let status = StatusCode::CONFLICT;
            return account::overview(&req, &state, &login, status, Some(error)).await;
        }
        Err(e) => return Err(e.into()),
    };
    let event = account::attempt(&req, &state, &login)
        .event(EventType::UserMfaRemoved, Actor::user(&login.user.id))
        .user(&login.user.id)
        .data(serde_json::json!({"kind": "passkey", "passkey_id": row.id}));
    state.core.audit(event).await?;
    Ok(back(&state))
}

async fn not_found(
    req: &HttpRequest,
    state: &UiState,
    login: &LoginSession,
) -> Result<HttpResponse, PageError> {
    let error = "You have no such passkey.";
    account::overview(req, state, login, StatusCode::NOT_FOUND, Some(error)).await
}

fn back(state: &UiState) -> HttpResponse {
    pages::see_other(&state.env.path("/account/security"), Vec::new())
}
