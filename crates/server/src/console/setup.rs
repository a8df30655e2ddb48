//! `GET/POST /console/setup?token=…`: a single-use setup link creates an
//! administrator's account (a user in `trusec-admins`). `trusec serve`
//! prints one while the live environment has no administrator
//! ([`first_run_link`]); `trusec admins add EMAIL` prints one bound to that
//! address. The link works only from a loopback address unless
//! `TRUSEC_SETUP_ALLOW_REMOTE` says otherwise, for 30 minutes, once: the
//! token is taken in the transaction that creates the account.

use super::page::check_csrf;
use super::session::ConsoleError;
use crate::api::v1::users::{email_taken, password_hash};
use crate::error::ApiError;
use crate::state::AppState;
use crate::validate;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use diesel::Connection;
use serde::Deserialize;
use trusec_storage::audit::{Actor, ClientInfo, EventType, NewAuditEvent};
use trusec_storage::rate_limit::Family;
use trusec_storage::users::{self, NewUser};
use trusec_storage::{StorageError, admins};
use trusec_ui::{PageError, UiState, cookies, pages};

#[derive(Template)]
#[template(path = "console/setup.html")]
struct SetupPage {
    token: String,
    /// The address the link is bound to, if any (then not editable).
    bound_email: Option<String>,
    email: String,
    name: String,
    error: Option<FieldMessage>,
    csrf: String,
    env_name: String,
    is_live: bool,
}

struct FieldMessage {
    field: String,
    message: String,
}

/// Prints nothing and returns `None` when `env` has an administrator;
/// otherwise makes a fresh first-run link (replacing earlier ones) and
/// returns its URL.
///
/// # Errors
/// Storage failures.
pub async fn first_run_link(state: &AppState) -> Result<Option<String>, StorageError> {
    let Some(live) = state.environments.iter().find(|e| e.env().is_live()) else {
        return Ok(None);
    };
    let env_id = live.env().id.clone();
    let now = state.core.clock.now_naive();
    let token = state
        .core
        .db
        .run(move |conn| {
            if admins::any_admin(conn, &env_id)? {
                return Ok(None);
            }
            admins::create_setup_token(conn, &env_id, None, now).map(Some)
        })
        .await?;
    Ok(token.map(|t| setup_url(live.env(), &t)))
}

/// The setup link of `token` in `env`.
pub fn setup_url(env: &trusec_ui::Environment, token: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .finish();
    env.url(&format!("/console/setup?{query}"))
}

/// Setup links are for the machine's own operator unless the settings say
/// otherwise: the client address (through trusted proxies) must be loopback.
/// A request with forwarding headers that the trusted-proxy list did not
/// believe (the resolved address is the peer's own) comes through a proxy
/// we do not know, whose loopback address says nothing of the client: a
/// same-host nginx with `TRUSEC_TRUSTED_PROXIES` unset must not make every
/// visitor local.
fn check_origin(req: &HttpRequest, state: &AppState) -> Result<(), PageError> {
    if state.settings.setup_allow_remote {
        return Ok(());
    }
    let client = trusec_ui::http::client_info(req)
        .ip
        .and_then(|ip| ip.parse::<std::net::IpAddr>().ok());
    let headers = req.headers();
    let forwarded =
        headers.contains_key(header::FORWARDED) || headers.contains_key(header::X_FORWARDED_FOR);
    let relayed_by_unknown_proxy = forwarded && client == req.peer_addr().map(|a| a.ip());
    if client.is_some_and(|ip| ip.is_loopback()) && !relayed_by_unknown_proxy {
        Ok(())
    } else {
        Err(PageError::refused(
            StatusCode::FORBIDDEN,
            "Setup links work on this machine only",
            "Open the link from the server itself (http://127.0.0.1…), or start TruSec with TRUSEC_SETUP_ALLOW_REMOTE=true.",
        ))
    }
}

fn unusable() -> PageError {
    PageError::refused(
        StatusCode::BAD_REQUEST,
        "This setup link cannot be used",
        "It has expired (links work for 30 minutes) or was used already. Ask for a new one: restart `trusec serve`, or run `trusec admins add EMAIL`.",
    )
}

/// [`unusable`] as the management layer's error (shown as that page).
fn link_gone() -> ApiError {
    ApiError::InvalidRequest {
        message: "This setup link has expired (links work for 30 minutes) or was used already. Ask for a new one: restart `trusec serve`, or run `trusec admins add EMAIL`.".into(),
        param: Some("token".into()),
    }
}

#[derive(Debug, Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

/// `GET /console/setup`: the form, for an unexpired link.
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    ui: web::Data<UiState>,
    query: web::Query<SetupQuery>,
) -> Result<HttpResponse, PageError> {
    check_origin(&req, &state)?;
    // Anonymous and reading a token: limited per address like the other
    // anonymous protocol entries (`TRUSEC_RATE_LIMIT_AUTHORIZE`).
    trusec_ui::http::limit_per_ip(&ui.core, &req, Family::Authorize).await?;
    let (env, token, now) = (
        ui.env.id.clone(),
        query.token.clone(),
        ui.core.clock.now_naive(),
    );
    let link = ui
        .core
        .db
        .run(move |conn| admins::find_setup_token(conn, &env, &token, now))
        .await?
        .ok_or_else(unusable)?;
    let (csrf, cookie) = cookies::csrf(&req, ui.secure_cookies);
    let page = SetupPage {
        token: query.token.clone(),
        email: link.email.clone().unwrap_or_default(),
        bound_email: link.email,
        name: String::new(),
        error: None,
        csrf,
        env_name: ui.env.name.clone(),
        is_live: ui.env.is_live(),
    };
    Ok(super::page::render(&page, StatusCode::OK, cookie))
}

#[derive(Debug, Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

/// `POST /console/setup`: creates the administrator and uses up the link,
/// then sends the browser to sign in to the console.
pub async fn post(
    req: HttpRequest,
    state: web::Data<AppState>,
    ui: web::Data<UiState>,
    form: web::Form<SetupForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_origin(&req, &state)?;
    trusec_ui::http::limit_per_ip(&ui.core, &req, Family::Authorize).await?;
    check_csrf(&req, ui.secure_cookies, &form.csrf_token)?;
    let form = form.into_inner();
    match create_admin(&state, &ui, &form, trusec_ui::http::client_info(&req)).await {
        Ok(()) => Ok(pages::see_other(&ui.env.path("/console/login"), Vec::new())),
        Err(ApiError::Validation { message, param } | ApiError::Conflict { message, param }) => {
            let (csrf, cookie) = cookies::csrf(&req, ui.secure_cookies);
            let page = SetupPage {
                token: form.token,
                bound_email: None,
                email: form.email,
                name: form.name,
                error: Some(FieldMessage {
                    field: param.unwrap_or_default(),
                    message,
                }),
                csrf,
                env_name: ui.env.name.clone(),
                is_live: ui.env.is_live(),
            };
            Ok(super::page::render(
                &page,
                StatusCode::UNPROCESSABLE_ENTITY,
                cookie,
            ))
        }
        Err(other) => Err(other.into()),
    }
}

/// Validates the form, then in one transaction takes the link (refused if
/// it is gone or bound to another address) and inserts the user in
/// `trusec-admins`; audited as `user.created` by the new user.
async fn create_admin(
    state: &AppState,
    ui: &UiState,
    form: &SetupForm,
    client: ClientInfo,
) -> Result<(), ApiError> {
    let email = validate::email("email", &form.email)?;
    let (env, token, now) = (
        ui.env.id.clone(),
        form.token.clone(),
        ui.core.clock.now_naive(),
    );
    let link = ui
        .core
        .db
        .run(move |conn| admins::find_setup_token(conn, &env, &token, now))
        .await?
        .ok_or_else(link_gone)?;
    if link
        .email
        .is_some_and(|bound| users::normalize_email(&bound) != users::normalize_email(&email))
    {
        return Err(ApiError::validation(
            "email",
            "this setup link is for another email address",
        ));
    }
    let name = validate::name(
        "name",
        Some(form.name.clone()).filter(|n| !n.trim().is_empty()),
    )?;
    let hash = password_hash(state, &ui.env.id, form.password.clone()).await?;
    let (env, token, now) = (
        ui.env.id.clone(),
        form.token.clone(),
        ui.core.clock.now_naive(),
    );
    let new = NewUser {
        environment_id: env.clone(),
        email,
        password_hash: Some(hash),
        name,
        given_name: None,
        family_name: None,
        groups: vec![admins::ADMIN_GROUP.to_owned()],
        metadata: serde_json::json!({}),
    };
    let row = ui
        .core
        .db
        .run(move |conn| {
            conn.transaction(|conn| {
                // Gone since it was read: used by a concurrent request.
                if admins::take_setup_token(conn, &env, &token, now)?.is_none() {
                    return Ok(None);
                }
                users::insert(conn, new, now).map(Some)
            })
        })
        .await
        .map_err(email_taken)?
        .ok_or_else(link_gone)?;
    let event = NewAuditEvent::new(EventType::UserCreated, Some(&ui.env.id), Actor::user(&row.id))
        .client(&client)
        .user(&row.id)
        .data(serde_json::json!({"email": row.email, "groups": [admins::ADMIN_GROUP], "via": "setup_link"}));
    state.core.audit(event).await?;
    Ok(())
}
