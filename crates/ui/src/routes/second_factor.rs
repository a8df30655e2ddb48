//! `POST /second-factor`: the step after the right password for a user with
//! a second factor (OAuth and SAML alike: both sign in through `/login`).
//! `GET /second-factor?interaction=…` is the same step for a user who is
//! signed in already, when a protocol asks for more assurance than the
//! session has (step-up, [`crate::step_up`]): only the missing factor is
//! asked for, and the session itself gains it.
//!
//! The right password leaves a pending sign-in in the ephemeral store (five
//! minutes, five codes), named by a 256-bit token that the form carries;
//! the session starts only after a TOTP code or a recovery code is
//! accepted ([`trusec_storage::mfa::check_code`], which also refuses a
//! replayed code). Wrong codes count against the same sign-in budgets as
//! wrong passwords (`Family::Login`, per account and address, per account,
//! per address), and each is audited as `user.mfa.failed`.

use crate::UiState;
use crate::cookies;
use crate::error::{PageError, set_retry_after};
use crate::http::client_info;
use crate::login_session::LoginSession;
use crate::pages::{self, MessagePage, SecondFactorPage};
use crate::routes::login::{self, Attempt};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use trusec_storage::audit::{Actor, EventType};
use trusec_storage::mfa::{self, CodeCheck};
use trusec_storage::passkeys;
use trusec_storage::rate_limit::Family;
use trusec_storage::sessions::{self, AuthMethod};
use trusec_storage::users::{self, UserRow};
use trusec_storage::{StorageError, StoreKey, secrets};

/// How long the second step waits after the password.
const TTL: Duration = Duration::from_secs(300);
/// Wrong codes before the password must be typed again.
const ATTEMPTS: u8 = 5;

/// A sign-in whose password was right, waiting for its second factor.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    environment_id: String,
    user_id: String,
    /// Normalised, for the sign-in budgets.
    email: String,
    /// The interaction it continues (empty: a sign-in of our own).
    interaction: String,
    /// Step-up: the login session that gains the factor (the browser's
    /// own, checked again when the code comes); `None`: a new sign-in.
    #[serde(default)]
    step_up_session: Option<String>,
    /// Whether the user has a passkey to offer at this step.
    #[serde(default)]
    passkeys: bool,
}

#[derive(Debug, Deserialize)]
pub struct StepUpQuery {
    #[serde(default)]
    interaction: String,
}

#[derive(Debug, Deserialize)]
pub struct FactorForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    code: String,
    /// A passkey's answer (JSON) instead of a code.
    #[serde(default)]
    credential: String,
}

#[derive(Debug, Deserialize)]
pub struct PasskeyOptionsForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    token: String,
}

/// What was given at this step: a code, or a passkey's answer.
#[derive(Clone, Copy, Debug)]
enum Given {
    Code(CodeCheck),
    /// The method a verified assertion proves, or `None`: refused.
    Passkey(Option<AuthMethod>),
}

impl Given {
    fn accepted(self) -> Option<AuthMethod> {
        match self {
            // The method the session records: a recovery code is no TOTP
            // code (SAML tells SPs which, `saml::response::authn_context_class`).
            Self::Code(CodeCheck::Totp) => Some(AuthMethod::Otp),
            Self::Code(CodeCheck::RecoveryCode { .. }) => Some(AuthMethod::RecoveryCode),
            Self::Code(CodeCheck::Replayed | CodeCheck::Wrong) => None,
            Self::Passkey(method) => method,
        }
    }

    /// For the audit log.
    fn as_str(self) -> &'static str {
        match self {
            Self::Code(check) => check.as_str(),
            Self::Passkey(Some(_)) => "passkey",
            Self::Passkey(None) => "passkey_refused",
        }
    }
}

/// Whether `user` must give a second factor after the password (and can
/// give one to step up).
pub(crate) async fn required(state: &UiState, user: &UserRow) -> Result<bool, PageError> {
    let (env, user_id) = (user.environment_id.clone(), user.id.clone());
    Ok(state
        .core
        .db
        .run(move |conn| mfa::has_factor(conn, &env, &user_id))
        .await?)
}

/// Parks the sign-in and asks for the code.
pub(super) async fn ask(
    req: &HttpRequest,
    state: &UiState,
    attempt: &Attempt,
    user: &UserRow,
    step_up_session: Option<String>,
) -> Result<HttpResponse, PageError> {
    let token = secrets::generate_secret("").map_err(|e| PageError::internal(&e))?;
    let (env, user_id) = (user.environment_id.clone(), user.id.clone());
    let passkeys = crate::passkey::available(state)
        && state
            .core
            .db
            .run(move |conn| passkeys::any(conn, &env, &user_id))
            .await?;
    let pending = Pending {
        passkeys,
        step_up_session,
        environment_id: attempt.environment.clone(),
        user_id: user.id.clone(),
        email: attempt.email.clone(),
        interaction: attempt
            .interaction
            .as_ref()
            .map(|i| i.id.clone())
            .unwrap_or_default(),
    };
    save(state, &token, &pending).await?;
    Ok(page(
        req,
        state,
        StatusCode::OK,
        (attempt, passkeys),
        token,
        None,
    ))
}

/// `GET /second-factor?interaction=…`: step-up of the browser's session
/// (a protocol sent it here, [`Interaction::second_factor_url`]).
pub async fn get(
    req: HttpRequest,
    state: web::Data<UiState>,
    query: web::Query<StepUpQuery>,
) -> Result<HttpResponse, PageError> {
    let Some(interaction) = login::interaction(&state, &query.interaction).await? else {
        return Err(PageError::expired());
    };
    let Some(signed_in) = LoginSession::from_request(&req, &state).await? else {
        // Nobody to step up: the whole sign-in, which asks for every factor.
        return Ok(pages::see_other(&interaction.login_url(), Vec::new()));
    };
    let user = signed_in.user;
    if !required(&state, &user).await? {
        return Err(PageError::refused(
            StatusCode::FORBIDDEN,
            "A second factor is needed",
            "This application asks for two-step verification, and your account has none. Add an authenticator app on your account's security page.",
        ));
    }
    let attempt = Attempt {
        environment: state.env.id.clone(),
        interaction: Some(interaction),
        email: users::normalize_email(&user.email),
        client: client_info(&req),
    };
    ask(&req, &state, &attempt, &user, Some(signed_in.session.id)).await
}

pub async fn post(
    req: HttpRequest,
    state: web::Data<UiState>,
    form: web::Form<FactorForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let Some(pending) = load(&state, &form.token).await? else {
        return Err(expired());
    };
    let attempt = Attempt {
        interaction: login::interaction(&state, &pending.interaction).await?,
        environment: pending.environment_id.clone(),
        email: pending.email.clone(),
        client: client_info(&req),
    };
    if !cookies::csrf_ok(&req, state.secure_cookies, &form.csrf_token) {
        let error = Some("Your session expired. Please try again.".to_owned());
        return Ok(page(
            &req,
            &state,
            StatusCode::FORBIDDEN,
            (&attempt, pending.passkeys),
            form.token,
            error,
        ));
    }
    let budgets = attempt.budgets();
    let refusal = || attempt.event(EventType::RateLimitExceeded, Actor::anonymous());
    if let Err(limited) = state.core.reserve(Family::Login, &budgets, refusal).await {
        let error = Some(login::too_many_message(&limited));
        let mut resp = page(
            &req,
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            (&attempt, pending.passkeys),
            form.token,
            error,
        );
        set_retry_after(&mut resp, &limited);
        return Ok(resp);
    }
    let Some(attempt_no) = take_attempt(&state, &form.token).await? else {
        forget(&state, &form.token).await?;
        return Err(too_many_codes());
    };
    let user = user(&state, &pending).await?;
    let given = if form.credential.is_empty() {
        Given::Code(check(&state, &user, form.code).await?)
    } else {
        Given::Passkey(passkey_check(&state, &user, &form.token, &form.credential).await?)
    };
    audit(&state, &attempt, &user, given).await?;
    let Some(second) = given.accepted() else {
        let last = attempt_no == ATTEMPTS;
        let offer = (&attempt, pending.passkeys);
        return wrong_code(&req, &state, offer, form.token, last, given).await;
    };
    state.core.refund(Family::Login, &budgets).await;
    forget(&state, &form.token).await?;
    match pending.step_up_session {
        None => login::signed_in(&state, attempt, &user, vec![AuthMethod::Pwd, second]).await,
        Some(session) => stepped_up(&req, &state, attempt, &session, second).await,
    }
}

/// The session that asked for the step-up gains `second` and goes back
/// to the protocol. It must still be this browser's: a token carried to
/// another browser steps nothing up.
async fn stepped_up(
    req: &HttpRequest,
    state: &UiState,
    attempt: Attempt,
    session_id: &str,
    second: AuthMethod,
) -> Result<HttpResponse, PageError> {
    let current = LoginSession::from_request(req, state).await?;
    let Some(current) = current.filter(|l| l.session.id == session_id) else {
        return Err(expired());
    };
    let (env, id) = (state.env.id.clone(), current.session.id.clone());
    let now = state.core.clock.now_naive();
    state
        .core
        .db
        .run(move |conn| sessions::step_up(conn, &env, &id, &[second], now))
        .await?
        .ok_or_else(expired)?;
    // `/v1/sessions/verify` caches rows: every instance must see the new
    // methods at once.
    state
        .core
        .forget_sessions([current.session.token_hash.as_str()])
        .await?;
    match attempt.interaction {
        Some(i) => Ok(pages::see_other(&i.return_to, Vec::new())),
        None => Ok(pages::render(
            &MessagePage::info(
                "Verified",
                format!("Two-step verification done for {}.", current.user.email),
            ),
            StatusCode::OK,
            Vec::new(),
        )),
    }
}

/// A code that was not accepted: the form again saying why, or, after the
/// last attempt, the password again.
async fn wrong_code(
    req: &HttpRequest,
    state: &UiState,
    offer: (&Attempt, bool),
    token: String,
    last: bool,
    given: Given,
) -> Result<HttpResponse, PageError> {
    if last {
        forget(state, &token).await?;
        return Err(too_many_codes());
    }
    let error = Some(
        match given {
            Given::Code(CodeCheck::Replayed) => {
                "That code was already used. Wait for the next one."
            }
            Given::Code(CodeCheck::Wrong | CodeCheck::Totp | CodeCheck::RecoveryCode { .. }) => {
                "That code is not right. Check the time on your phone, or use a recovery code."
            }
            Given::Passkey(_) => "That passkey was not accepted. Try again, or use a code.",
        }
        .to_owned(),
    );
    Ok(page(
        req,
        state,
        StatusCode::UNAUTHORIZED,
        offer,
        token,
        error,
    ))
}

/// The second-factor page; `passkeys`: whether to offer the user's
/// passkey beside the code.
fn page(
    req: &HttpRequest,
    state: &UiState,
    status: StatusCode,
    (attempt, passkeys): (&Attempt, bool),
    token: String,
    error: Option<String>,
) -> HttpResponse {
    let (csrf, cookie) = cookies::csrf(req, state.secure_cookies);
    let page = SecondFactorPage {
        client_name: attempt.client_name(),
        error,
        csrf,
        token,
        passkey: passkeys,
    };
    pages::render(&page, status, cookie.into_iter().collect())
}

fn too_many_codes() -> PageError {
    PageError::refused(
        StatusCode::UNAUTHORIZED,
        "Too many wrong codes",
        "Sign in again with your password.",
    )
}

/// Takes the next of the pending sign-in's [`ATTEMPTS`] code checks, each
/// a set-if-absent slot in the store, so that concurrent posts share the
/// same five; `None` once all are taken. Returns the slot's number.
async fn take_attempt(state: &UiState, token: &str) -> Result<Option<u8>, PageError> {
    let hash = secrets::hash_secret(token);
    for n in 1..=ATTEMPTS {
        let key = StoreKey::second_factor_attempt(&hash, n);
        if state.core.store.put_if_absent(&key, b"1", TTL).await? {
            return Ok(Some(n));
        }
    }
    Ok(None)
}

fn expired() -> PageError {
    PageError::refused(
        StatusCode::BAD_REQUEST,
        "This sign-in has expired",
        "Sign in again with your password.",
    )
}

/// The pending sign-in's user, still in its environment.
async fn user(state: &UiState, pending: &Pending) -> Result<UserRow, PageError> {
    let (env, user_id) = (pending.environment_id.clone(), pending.user_id.clone());
    match state
        .core
        .db
        .run(move |conn| users::get(conn, &env, &user_id))
        .await
    {
        Ok(user) => Ok(user),
        // Deleted since the password was typed.
        Err(StorageError::NotFound) => Err(expired()),
        Err(e) => Err(e.into()),
    }
}

/// `POST /second-factor/passkey/options`: a challenge for the pending
/// sign-in's user's passkeys, parked under the pending sign-in's token
/// (WebAuthn §7.2: the allow list names them, so no other account's
/// passkey can answer).
pub async fn passkey_options(
    req: HttpRequest,
    state: web::Data<UiState>,
    form: web::Form<PasskeyOptionsForm>,
) -> Result<HttpResponse, PageError> {
    if !cookies::csrf_ok(&req, state.secure_cookies, &form.csrf_token) {
        return Err(PageError::page_expired());
    }
    let Some(pending) = load(&state, &form.token).await? else {
        return Err(expired());
    };
    let rp = crate::passkey::relying_party(&state)?;
    let (env, user_id) = (pending.environment_id.clone(), pending.user_id.clone());
    let rows = state
        .core
        .db
        .run(move |conn| passkeys::list(conn, &env, &user_id))
        .await?;
    if rows.is_empty() {
        return Err(PageError::refused(
            StatusCode::NOT_FOUND,
            "No passkey",
            "Your account has no passkey. Use a code instead.",
        ));
    }
    let keys: Vec<_> = rows.into_iter().map(|r| r.passkey.0).collect();
    let (options, ceremony) = rp
        .start_passkey_authentication(&keys)
        .map_err(|e| PageError::internal(&e))?;
    let key = StoreKey::passkey_second_factor(&secrets::hash_secret(&form.token));
    crate::passkey::park(&state, &key, &ceremony).await?;
    Ok(crate::passkey::options(&form.token, &options))
}

/// A passkey's answer for the pending sign-in's user: the method it
/// proves, or `None` (no challenge waiting, a malformed answer, another
/// account's passkey, another origin, a bad signature).
async fn passkey_check(
    state: &UiState,
    user: &UserRow,
    token: &str,
    credential: &str,
) -> Result<Option<AuthMethod>, PageError> {
    let key = crate::passkey::key_of(token, StoreKey::passkey_second_factor);
    let ceremony: Option<webauthn_rs::prelude::PasskeyAuthentication> =
        crate::passkey::take(state, key).await?;
    let (Some(ceremony), Some(credential)) = (ceremony, crate::passkey::assertion(credential))
    else {
        return Ok(None);
    };
    let rp = crate::passkey::relying_party(state)?;
    let Ok(result) = rp.finish_passkey_authentication(&credential, &ceremony) else {
        return Ok(None);
    };
    let (env, raw) = (user.environment_id.clone(), result.cred_id().to_vec());
    let row = state
        .core
        .db
        .run(move |conn| passkeys::find_by_credential(conn, &env, &raw))
        .await?
        .filter(|r| r.user_id == user.id);
    let Some(row) = row else {
        return Ok(None);
    };
    let method = crate::passkey::method(&result);
    crate::passkey::used(state, row, &result).await?;
    Ok(Some(method))
}

/// The code against the user's factors ([`mfa::check_code`]).
async fn check(state: &UiState, user: &UserRow, code: String) -> Result<CodeCheck, PageError> {
    let (env, user_id) = (user.environment_id.clone(), user.id.clone());
    let key = state.seal_key.clone();
    let now = state.core.clock.now_naive();
    Ok(state
        .core
        .db
        .run(move |conn| mfa::check_code(conn, &key, &env, &user_id, code.trim(), now))
        .await?)
}

/// `user.mfa.succeeded` (and `user.mfa.recovery_code_used`) or
/// `user.mfa.failed`, with the method or the reason.
async fn audit(
    state: &UiState,
    attempt: &Attempt,
    user: &UserRow,
    given: Given,
) -> Result<(), PageError> {
    let data = serde_json::json!({"client_id": attempt.client_id(), "method": given.as_str()});
    let event = if given.accepted().is_some() {
        attempt.event(EventType::UserMfaSucceeded, Actor::user(&user.id))
    } else {
        attempt
            .event(EventType::UserMfaFailed, Actor::anonymous())
            .failed()
    };
    state.core.audit(event.user(&user.id).data(data)).await?;
    match given {
        Given::Code(CodeCheck::RecoveryCode { left }) => {
            let used = attempt
                .event(EventType::UserMfaRecoveryCodeUsed, Actor::user(&user.id))
                .user(&user.id)
                .data(serde_json::json!({"remaining": left}));
            Ok(state.core.audit(used).await?)
        }
        Given::Code(CodeCheck::Totp | CodeCheck::Replayed | CodeCheck::Wrong)
        | Given::Passkey(_) => Ok(()),
    }
}

async fn save(state: &UiState, token: &str, pending: &Pending) -> Result<(), PageError> {
    let key = StoreKey::second_factor(&secrets::hash_secret(token));
    let bytes = serde_json::to_vec(pending).map_err(|e| PageError::internal(&e))?;
    Ok(state.core.store.put(&key, &bytes, TTL).await?)
}

/// The pending sign-in a token names, in this environment; a malformed,
/// unknown or expired token, or another environment's, is none.
async fn load(state: &UiState, token: &str) -> Result<Option<Pending>, PageError> {
    if token.is_empty() || token.len() > 64 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Ok(None);
    }
    let key = StoreKey::second_factor(&secrets::hash_secret(token));
    Ok(state
        .core
        .store
        .get(&key)
        .await?
        .and_then(|bytes| serde_json::from_slice::<Pending>(&bytes).ok())
        .filter(|p| p.environment_id == state.env.id))
}

/// Ends the pending sign-in. Its attempt slots stay until they expire with
/// it: a post that loaded the pending sign-in before this must still find
/// them taken.
async fn forget(state: &UiState, token: &str) -> Result<(), PageError> {
    let key = StoreKey::second_factor(&secrets::hash_secret(token));
    Ok(state.core.store.delete(&[key]).await?)
}
