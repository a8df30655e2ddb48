//! Console sign-in: the console is an OIDC client of its own environment.
//! `/console/login` sends the browser to `/oauth/authorize` (code flow,
//! PKCE S256, `state` and `nonce`); the hosted login and consent do the
//! rest; `/console/callback` redeems the code through the same grant as any
//! client (`trusec_oauth::first_party::redeem_code`) and opens a console
//! session for a member of `trusec-admins` only.

use super::session::{self, ConsoleError, not_an_admin};
use super::{ConsoleState, callback_uri};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use trusec_oauth::OAuthState;
use trusec_oauth::first_party::{Pkce, redeem_code};
use trusec_storage::{StoreKey, admins, clients, secrets, users};
use trusec_ui::{PageError, UiState, cookies, pages};

/// How long a started sign-in may take (the login page included).
const SIGN_IN_TTL: Duration = Duration::from_secs(600);

/// What the callback needs of the sign-in it finishes.
#[derive(Serialize, Deserialize)]
struct Pending {
    verifier: String,
}

fn random() -> Result<String, PageError> {
    secrets::generate_secret("").map_err(|e| PageError::internal(&e))
}

/// `GET /console/login`: starts the authorization request.
pub async fn start(
    ui: web::Data<UiState>,
    console: web::Data<ConsoleState>,
) -> Result<HttpResponse, PageError> {
    let pkce = Pkce::generate().map_err(|e| PageError::internal(&e))?;
    let (state, nonce) = (random()?, random()?);
    let pending = serde_json::to_vec(&Pending {
        verifier: pkce.verifier,
    })
    .map_err(|e| PageError::internal(&e))?;
    ui.core
        .store
        .put(
            &StoreKey::console_sign_in(&secrets::hash_secret(&state)),
            &pending,
            SIGN_IN_TTL,
        )
        .await?;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &console.client_id)
        .append_pair("redirect_uri", &callback_uri(&ui.env))
        .append_pair("scope", "openid email")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let ttl = i64::try_from(SIGN_IN_TTL.as_secs()).unwrap_or(i64::MAX);
    // RFC 6749 §10.12: the state is bound to this browser, so nobody can
    // make another browser finish a sign-in they started.
    let bind = cookies::console(&ui, cookies::CONSOLE_SIGN_IN_COOKIE, &state, ttl);
    Ok(pages::see_other(
        &ui.env.path(&format!("/oauth/authorize?{query}")),
        vec![bind],
    ))
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn failed(message: &'static str) -> PageError {
    PageError::refused(
        StatusCode::BAD_REQUEST,
        "Sign-in to the console failed",
        message,
    )
}

/// `GET /console/callback`: the authorization response (RFC 6749 §4.1.2).
pub async fn callback(
    req: HttpRequest,
    ui: web::Data<UiState>,
    oauth: web::Data<OAuthState>,
    console: web::Data<ConsoleState>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let state = query
        .state
        .as_deref()
        .ok_or_else(|| failed("The response carried no state."))?;
    let bound = cookies::console_value(&req, &ui, cookies::CONSOLE_SIGN_IN_COOKIE);
    if !bound.is_some_and(|b| secrets::constant_time_eq(b.as_bytes(), state.as_bytes())) {
        return Err(failed("This sign-in was started in another browser. Start again.").into());
    }
    let key = StoreKey::console_sign_in(&secrets::hash_secret(state));
    let pending = ui
        .core
        .store
        .take(&key)
        .await?
        .ok_or_else(PageError::expired)?;
    let pending: Pending = serde_json::from_slice(&pending).map_err(|e| PageError::internal(&e))?;
    if query.error.is_some() {
        return Err(failed("The sign-in was cancelled or refused.").into());
    }
    let code = query
        .code
        .as_deref()
        .ok_or_else(|| failed("The response carried no code."))?;
    let client_id = console.client_id.clone();
    let client = ui
        .core
        .db
        .run(move |conn| clients::find(conn, &client_id))
        .await?
        .ok_or_else(|| PageError::internal(&std::io::Error::other("the console client is gone")))?;
    let claims = redeem_code(
        &oauth,
        client,
        code,
        &pending.verifier,
        &callback_uri(&ui.env),
    )
    .await
    .map_err(|e| {
        tracing::warn!(error = %e, "console code redemption refused");
        failed("The sign-in could not be completed. Start again.")
    })?;
    let (env, uid) = (ui.env.id.clone(), claims.sub.clone());
    let user = ui
        .core
        .db
        .run(move |conn| users::find_by_id(conn, &env, &uid))
        .await?
        .ok_or_else(PageError::expired)?;
    if !admins::is_admin_groups(&user.groups)? {
        return Err(not_an_admin().into());
    }
    let cookie = session::start(&ui, &user).await?;
    let clear = cookies::clear_console(&ui, cookies::CONSOLE_SIGN_IN_COOKIE);
    Ok(pages::see_other(
        &ui.env.path("/console/applications"),
        vec![cookie, clear],
    ))
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf_token: String,
}

/// `POST /console/logout`: ends the console session (the hosted login's
/// session is the user's to end at `/logout`).
pub async fn logout(
    req: HttpRequest,
    ui: web::Data<UiState>,
    form: web::Form<LogoutForm>,
) -> Result<HttpResponse, PageError> {
    super::page::check_csrf(&req, ui.secure_cookies, &form.csrf_token)?;
    let clear = session::end(&req, &ui).await?;
    let mut resp = pages::message(
        StatusCode::OK,
        "Signed out of the console",
        "You are signed out of the TruSec console.",
    );
    resp.add_cookie(&clear)
        .map_err(|e| PageError::internal(&e))?;
    Ok(resp)
}
