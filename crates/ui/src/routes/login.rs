//! `GET/POST /login`: email and password, CSRF-protected, rate limited per
//! client IP and per account, audited. The error never says whether the
//! email exists, and an unknown email costs the same Argon2 time as a wrong
//! password.

use super::{client_ip, user_agent};
use crate::UiState;
use crate::cookies;
use crate::interaction::Interaction;
use crate::login_session::{LIFETIME_SECS, LoginSession};
use crate::pages::{self, LoginPage};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use std::sync::OnceLock;
use trusec_storage::audit::{Actor, NewAuditEvent};
use trusec_storage::users::{self, UserRow};
use trusec_storage::{ids, secrets};

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

fn form_page(
    req: &HttpRequest,
    state: &UiState,
    status: StatusCode,
    page: LoginPage,
) -> HttpResponse {
    let (csrf, cookie) = cookies::csrf(req, state.secure_cookies);
    pages::render(
        &LoginPage { csrf, ..page },
        status,
        cookie.into_iter().collect(),
    )
}

pub async fn get(
    req: HttpRequest,
    state: web::Data<UiState>,
    query: web::Query<LoginQuery>,
) -> HttpResponse {
    let interaction = match &query.interaction {
        Some(id) => match Interaction::load(&state.store, id).await {
            Ok(Some(i)) => Some(i),
            Ok(None) => return expired(),
            Err(e) => return unavailable(&e),
        },
        None => None,
    };
    form_page(
        &req,
        &state,
        StatusCode::OK,
        LoginPage {
            client_name: interaction.as_ref().and_then(|i| i.client_name.clone()),
            email: interaction
                .as_ref()
                .and_then(|i| i.login_hint.clone())
                .unwrap_or_default(),
            error: None,
            csrf: String::new(),
            interaction: interaction.map(|i| i.id).unwrap_or_default(),
        },
    )
}

fn expired() -> HttpResponse {
    pages::message(
        StatusCode::BAD_REQUEST,
        "This sign-in has expired",
        "Go back to the app and start again.",
    )
}

fn unavailable(e: &dyn std::error::Error) -> HttpResponse {
    tracing::error!(error = %e, "hosted page storage failure");
    pages::message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Something went wrong",
        "Please try again in a moment.",
    )
}

/// A hash to verify against when the email is unknown, so both paths cost
/// one Argon2 verification.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| secrets::hash_password("decoy password for timing").unwrap_or_default())
}

async fn verify(state: &UiState, password: String, hash: Option<String>) -> bool {
    let Ok(_permit) = state.hashing.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        let phc = hash.as_deref().unwrap_or_else(|| decoy_hash());
        secrets::verify_password(&password, phc)
    })
    .await
    .unwrap_or(false)
}

pub async fn post(
    req: HttpRequest,
    state: web::Data<UiState>,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let interaction = if form.interaction.is_empty() {
        None
    } else {
        match Interaction::load(&state.store, &form.interaction).await {
            Ok(Some(i)) => Some(i),
            Ok(None) => return expired(),
            Err(e) => return unavailable(&e),
        }
    };
    let page = |error: &str| LoginPage {
        client_name: interaction.as_ref().and_then(|i| i.client_name.clone()),
        email: form.email.chars().take(254).collect(),
        error: Some(error.to_owned()),
        csrf: String::new(),
        interaction: form.interaction.clone(),
    };
    if !cookies::csrf_ok(&req, &form.csrf_token) {
        return form_page(
            &req,
            &state,
            StatusCode::FORBIDDEN,
            page("Your session expired. Please try again."),
        );
    }
    let env = interaction
        .as_ref()
        .map_or_else(|| ids::ENV_LIVE.to_owned(), |i| i.environment_id.clone());
    let ip = client_ip(&req);
    let ua = user_agent(&req);
    let email = users::normalize_email(&form.email);
    for key in [
        format!("rl:login-ip:{}", ip.as_deref().unwrap_or("unknown")),
        format!("rl:login-account:{env}:{email}"),
    ] {
        if let Some(retry_after) = state.limited(&key).await {
            let event = NewAuditEvent::new("rate_limit.exceeded", Some(&env), Actor::anonymous())
                .failed()
                .client(ip.clone(), ua.clone())
                .data(serde_json::json!({"family": "login"}));
            if let Err(e) = state.audit(event).await {
                tracing::warn!(error = %e, "could not audit a login rate limit");
            }
            let secs = retry_after.as_secs().max(1);
            let mut resp = form_page(
                &req,
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                page(&format!("Too many attempts. Try again in {secs} seconds.")),
            );
            if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, v);
            }
            return resp;
        }
    }
    let lookup_env = env.clone();
    let lookup_email = form.email.clone();
    let user: Option<UserRow> =
        if email.is_empty() || email.len() > 254 || form.password.len() > 1024 {
            None
        } else {
            match state
                .db
                .run(move |conn| users::find_by_email(conn, &lookup_env, &lookup_email))
                .await
            {
                Ok(u) => u,
                Err(e) => return unavailable(&e),
            }
        };
    let ok = verify(
        &state,
        form.password.clone(),
        user.as_ref().and_then(|u| u.password_hash.clone()),
    )
    .await;
    let client_id = interaction.as_ref().and_then(|i| i.client_id.clone());
    let (Some(user), true) = (user.clone(), ok) else {
        let mut event = NewAuditEvent::new("user.login.failed", Some(&env), Actor::anonymous())
            .failed()
            .client(ip.clone(), ua.clone())
            .data(serde_json::json!({"client_id": client_id}));
        if let Some(u) = &user {
            event = event.user(&u.id);
        }
        if let Err(e) = state.audit(event).await {
            return unavailable(&e);
        }
        return form_page(&req, &state, StatusCode::UNAUTHORIZED, page(WRONG));
    };
    let now = state.clock.now_naive();
    let metadata = serde_json::json!({"kind": "login", "ip": ip, "user_agent": ua});
    let (token, session) = match LoginSession::start(&state, &user, metadata, now).await {
        Ok(s) => s,
        Err(e) => return unavailable(&e),
    };
    let event = NewAuditEvent::new("user.login.succeeded", Some(&env), Actor::user(&user.id))
        .user(&user.id)
        .client(ip, ua)
        .data(serde_json::json!({"client_id": client_id, "session_id": session.id}));
    if let Err(e) = state.audit(event).await {
        return unavailable(&e);
    }
    let cookie = cookies::session(&token, state.secure_cookies, LIFETIME_SECS);
    match interaction {
        Some(mut i) => {
            i.logged_in_session = Some(session.id.clone());
            if let Err(e) = i.save(&state.store).await {
                return unavailable(&e);
            }
            pages::see_other(&i.return_to, vec![cookie])
        }
        None => pages::render(
            &pages::MessagePage {
                title: "You are signed in".into(),
                message: format!("Signed in as {}.", user.email),
                is_error: false,
            },
            StatusCode::OK,
            vec![cookie],
        ),
    }
}
