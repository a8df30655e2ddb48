//! `GET/POST /login`: email and password, CSRF-protected, audited, with
//! failed attempts limited per account and client IP (and looser ceilings per
//! account and per IP; a successful sign-in is not counted). The error never says whether the
//! email exists, and an unknown email costs the same Argon2 time as a wrong
//! password ([`trusec_storage::Core::verify_password`]).

use crate::UiState;
use crate::cookies;
use crate::error::{ACCOUNT_DISABLED, PageError, set_retry_after};
use crate::http::client_info;
use crate::interaction::Interaction;
use crate::login_session::{LIFETIME_SECS, LoginSession};
use crate::pages::{self, LoginPage, MessagePage};
use crate::routes::second_factor;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use trusec_storage::audit::{Actor, ClientInfo, EventType, NewAuditEvent};
use trusec_storage::rate_limit::{Family, Limited, Subject};
use trusec_storage::sessions::AuthMethod;
use trusec_storage::users::{self, UserRow};

const WRONG: &str = "Incorrect email or password.";

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    interaction: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    interaction: String,
}

/// One sign-in attempt, parsed: who asks, where, for which app.
pub(super) struct Attempt {
    pub(super) interaction: Option<Interaction>,
    pub(super) environment: String,
    /// Normalised, for the per-account limit and the lookup.
    pub(super) email: String,
    pub(super) client: ClientInfo,
}

impl Attempt {
    pub(super) fn client_name(&self) -> Option<String> {
        self.interaction
            .as_ref()
            .and_then(|i| i.client_name.clone())
    }

    pub(super) fn client_id(&self) -> Option<&str> {
        self.interaction
            .as_ref()
            .and_then(|i| i.client_id.as_deref())
    }

    /// The form again, keeping what was typed (but never the password).
    fn page(&self, form: &LoginForm, error: &str) -> LoginPage {
        LoginPage {
            client_name: self.client_name(),
            email: form.email.chars().take(254).collect(),
            error: Some(error.to_owned()),
            csrf: String::new(),
            interaction: form.interaction.clone(),
            passkeys: true,
        }
    }

    /// The budgets a failed attempt counts against (`Family::multiplier`):
    /// tight per account and address, so failures from one address never
    /// lock out another; a looser ceiling per account, against guessing
    /// spread over many addresses; and one per address, against one address
    /// trying many accounts. The first exhausted one is what the 429 reports.
    pub(super) fn budgets(&self) -> [Subject<'_>; 3] {
        let ip = self.client.ip.as_deref();
        [
            Subject::AccountAtIp {
                environment: &self.environment,
                email: &self.email,
                ip,
            },
            Subject::Account {
                environment: &self.environment,
                email: &self.email,
            },
            Subject::Ip(ip),
        ]
    }

    pub(super) fn event(&self, event_type: EventType, actor: Actor) -> NewAuditEvent {
        NewAuditEvent::new(event_type, Some(&self.environment), actor).client(&self.client)
    }
}

pub(super) fn form_page(
    req: &HttpRequest,
    state: &UiState,
    status: StatusCode,
    page: LoginPage,
) -> HttpResponse {
    let (csrf, cookie) = cookies::csrf(req, state.secure_cookies);
    let passkeys = page.passkeys && crate::passkey::available(state);
    pages::render(
        &LoginPage {
            csrf,
            passkeys,
            ..page
        },
        status,
        cookie.into_iter().collect(),
    )
}

/// The interaction an id names; an empty id is a sign-in of our own.
pub(super) async fn interaction(
    state: &UiState,
    id: &str,
) -> Result<Option<Interaction>, PageError> {
    if id.is_empty() {
        return Ok(None);
    }
    match Interaction::load(&state.core.store, &state.env, id).await? {
        Some(i) => Ok(Some(i)),
        None => Err(PageError::expired()),
    }
}

pub async fn get(
    req: HttpRequest,
    state: web::Data<UiState>,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, PageError> {
    let interaction = interaction(&state, query.interaction.as_deref().unwrap_or("")).await?;
    let page = LoginPage {
        client_name: interaction.as_ref().and_then(|i| i.client_name.clone()),
        email: interaction
            .as_ref()
            .and_then(|i| i.login_hint.clone())
            .unwrap_or_default(),
        error: None,
        csrf: String::new(),
        interaction: interaction.map(|i| i.id).unwrap_or_default(),
        passkeys: true,
    };
    Ok(form_page(&req, &state, StatusCode::OK, page))
}

pub async fn post(
    req: HttpRequest,
    state: web::Data<UiState>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let interaction = interaction(&state, &form.interaction).await?;
    let attempt = Attempt {
        // The environment this endpoint serves (an interaction of another
        // one does not load here).
        environment: state.env.id.clone(),
        interaction,
        email: users::normalize_email(&form.email),
        client: client_info(&req),
    };
    if !cookies::csrf_ok(&req, state.secure_cookies, &form.csrf_token) {
        let page = attempt.page(&form, "Your session expired. Please try again.");
        return Ok(form_page(&req, &state, StatusCode::FORBIDDEN, page));
    }
    let budgets = attempt.budgets();
    let refusal = || attempt.event(EventType::RateLimitExceeded, Actor::anonymous());
    if let Err(limited) = state.core.reserve(Family::Login, &budgets, refusal).await {
        return Ok(too_many(&req, &state, &attempt, &form, &limited));
    }
    let user = find_user(&state, &attempt, &form).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let verified = match state
        .core
        .verify_password(form.password.clone(), hash)
        .await
    {
        Ok(verified) => verified,
        Err(e) => {
            // Not an attempt (no password was checked, e.g. the hashing
            // queue is full): it must not count against the account.
            state.core.refund(Family::Login, &budgets).await;
            return Err(e.into());
        }
    };
    match user {
        Some(user) if verified => {
            // Only failures count: the right password gives its step back.
            state.core.refund(Family::Login, &budgets).await;
            if user.disabled_at.is_some() {
                return disabled(&req, &state, &attempt, &form, &user).await;
            }
            if second_factor::required(&state, &user).await? {
                return second_factor::ask(&req, &state, &attempt, &user, None).await;
            }
            signed_in(&state, attempt, &user, vec![AuthMethod::Pwd]).await
        }
        user => {
            failed(&state, &attempt, user.as_ref()).await?;
            let page = attempt.page(&form, WRONG);
            Ok(form_page(&req, &state, StatusCode::UNAUTHORIZED, page))
        }
    }
}

/// "Too many attempts", in words and in `Retry-After`.
pub(super) fn too_many_message(limited: &Limited) -> String {
    format!(
        "Too many attempts. Try again in {} seconds.",
        limited.retry_after_secs()
    )
}

fn too_many(
    req: &HttpRequest,
    state: &UiState,
    attempt: &Attempt,
    form: &LoginForm,
    limited: &Limited,
) -> HttpResponse {
    let page = attempt.page(form, &too_many_message(limited));
    let mut resp = form_page(req, state, StatusCode::TOO_MANY_REQUESTS, page);
    set_retry_after(&mut resp, limited);
    resp
}

async fn find_user(
    state: &UiState,
    attempt: &Attempt,
    form: &LoginForm,
) -> Result<Option<UserRow>, PageError> {
    if attempt.email.is_empty() || attempt.email.len() > 254 || form.password.len() > 1024 {
        return Ok(None);
    }
    let env = attempt.environment.clone();
    let email = form.email.clone();
    Ok(state
        .core
        .db
        .run(move |conn| users::find_by_email(conn, &env, &email))
        .await?)
}

/// The right password of a disabled user: refused, and audited as a failed
/// sign-in with its reason (sessions::insert would refuse it anyway).
async fn disabled(
    req: &HttpRequest,
    state: &UiState,
    attempt: &Attempt,
    form: &LoginForm,
    user: &UserRow,
) -> Result<HttpResponse, PageError> {
    let event = attempt
        .event(EventType::UserLoginFailed, Actor::anonymous())
        .failed()
        .user(&user.id)
        .data(serde_json::json!({"client_id": attempt.client_id(), "reason": "user_disabled"}));
    state.core.audit(event).await?;
    let page = attempt.page(form, ACCOUNT_DISABLED);
    Ok(form_page(req, state, StatusCode::FORBIDDEN, page))
}

async fn failed(
    state: &UiState,
    attempt: &Attempt,
    user: Option<&UserRow>,
) -> Result<(), PageError> {
    let mut event = attempt
        .event(EventType::UserLoginFailed, Actor::anonymous())
        .failed()
        .data(serde_json::json!({"client_id": attempt.client_id()}));
    if let Some(u) = user {
        event = event.user(&u.id);
    }
    Ok(state.core.audit(event).await?)
}

/// Every factor asked for was given: the login session starts, and the
/// browser goes back to the protocol (or sees that it is signed in).
pub(super) async fn signed_in(
    state: &UiState,
    attempt: Attempt,
    user: &UserRow,
    amr: Vec<AuthMethod>,
) -> Result<HttpResponse, PageError> {
    let now = state.core.clock.now_naive();
    let metadata = serde_json::json!({
        "kind": "login",
        "ip": attempt.client.ip,
        "user_agent": attempt.client.user_agent,
    });
    let (token, session) = LoginSession::start(state, user, metadata, amr, now).await?;
    let event = attempt
        .event(EventType::UserLoginSucceeded, Actor::user(&user.id))
        .user(&user.id)
        .data(serde_json::json!({
            "client_id": attempt.client_id(),
            "session_id": session.id,
            "amr": session.amr_values(),
        }));
    state.core.audit(event).await?;
    let cookie = cookies::session(state, &token, LIFETIME_SECS);
    match attempt.interaction {
        Some(mut i) => {
            i.logged_in_session = Some(session.id.clone());
            i.save(&state.core.store).await?;
            Ok(pages::see_other(&i.return_to, vec![cookie]))
        }
        None => Ok(pages::render(
            &MessagePage::info("You are signed in", format!("Signed in as {}.", user.email)),
            StatusCode::OK,
            vec![cookie],
        )),
    }
}
