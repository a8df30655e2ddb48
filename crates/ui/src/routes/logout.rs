//! `GET/POST /logout`: asks before signing out (a link alone must not sign
//! anyone out), ends the login session, and returns to the app when a
//! protocol validated where to (a logout intent).

use super::{client_ip, user_agent};
use crate::UiState;
use crate::cookies::{self, SESSION_COOKIE};
use crate::pages::{self, LogoutPage};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use trusec_storage::audit::{Actor, NewAuditEvent};
use trusec_storage::{StorageError, secrets, sessions};

const INTENT_TTL: Duration = Duration::from_secs(600);

/// Where to go after signing out, already validated by the protocol that
/// asked (e.g. a registered `post_logout_redirect_uri`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogoutIntent {
    pub client_name: Option<String>,
    pub return_url: Option<String>,
}

impl LogoutIntent {
    /// Stores the intent; returns its id for `/logout?intent=`.
    ///
    /// # Errors
    /// Store or random-source failures.
    pub async fn save(&self, state: &UiState) -> Result<String, StorageError> {
        let id = secrets::generate_secret("").map_err(StorageError::backend)?;
        state
            .store
            .put(
                &format!("logout-intent:{id}"),
                &serde_json::to_vec(self)?,
                INTENT_TTL,
            )
            .await?;
        Ok(id)
    }

    /// A stored intent; `None` when unknown or expired.
    pub async fn load(state: &UiState, id: &str) -> Option<Self> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        state
            .store
            .get(&format!("logout-intent:{id}"))
            .await
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }
}

#[derive(Debug, Deserialize)]
pub struct LogoutQuery {
    #[serde(default)]
    intent: String,
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    intent: String,
    #[serde(default)]
    decision: String,
}

pub async fn get(
    req: HttpRequest,
    state: web::Data<UiState>,
    query: web::Query<LogoutQuery>,
) -> HttpResponse {
    let intent = LogoutIntent::load(&state, &query.intent).await;
    let (csrf, cookie) = cookies::csrf(&req, state.secure_cookies);
    let page = LogoutPage {
        client_name: intent.and_then(|i| i.client_name),
        csrf,
        intent: query.intent.clone(),
    };
    pages::render(&page, StatusCode::OK, cookie.into_iter().collect())
}

fn still_signed_in(e: &dyn std::error::Error) -> HttpResponse {
    tracing::error!(error = %e, "could not end a session at logout");
    pages::message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Something went wrong",
        "You may still be signed in. Please try again.",
    )
}

pub async fn post(
    req: HttpRequest,
    state: web::Data<UiState>,
    form: web::Form<LogoutForm>,
) -> HttpResponse {
    if !cookies::csrf_ok(&req, &form.csrf_token) {
        return pages::message(
            StatusCode::FORBIDDEN,
            "This page expired",
            "Please try again.",
        );
    }
    let intent = LogoutIntent::load(&state, &form.intent).await;
    if form.decision != "logout" {
        return match intent.and_then(|i| i.return_url) {
            Some(url) => pages::see_other(&url, Vec::new()),
            None => pages::message(
                StatusCode::OK,
                "You are still signed in",
                "Nothing was changed.",
            ),
        };
    }
    // A protocol may need to tell others about this logout (SAML single
    // logout): it left an after-logout step for the session.
    let mut hook: Option<String> = None;
    if let Some(cookie) = req.cookie(SESSION_COOKIE) {
        let hash = secrets::hash_secret(cookie.value());
        let now = state.clock.now_naive();
        let lookup = hash.clone();
        let env = match state
            .db
            .run(move |conn| sessions::environment_of(conn, &lookup))
            .await
        {
            Ok(env) => env,
            Err(e) => return still_signed_in(&e),
        };
        if let Some(env) = env {
            let lookup = hash.clone();
            let env2 = env.clone();
            let revoked = state
                .db
                .run(move |conn| sessions::revoke_by_token_hash(conn, &env2, &lookup, now))
                .await;
            match revoked {
                Ok(Some((row, newly))) => {
                    hook = state
                        .store
                        .take(&format!("logout-hook:{}", row.id))
                        .await
                        .ok()
                        .flatten()
                        .and_then(|b| String::from_utf8(b).ok())
                        .filter(|h| h.starts_with('/') && !h.starts_with("//"));
                    if let Err(e) = state
                        .store
                        .put(
                            &sessions::cache_key(&hash),
                            &sessions::tombstone(&env),
                            sessions::CACHE_TTL,
                        )
                        .await
                    {
                        tracing::error!(error = %e, "could not tombstone a signed-out session");
                    }
                    if newly {
                        let event = NewAuditEvent::new(
                            "user.logout",
                            Some(&env),
                            Actor::user(&row.user_id),
                        )
                        .user(&row.user_id)
                        .client(client_ip(&req), user_agent(&req))
                        .data(serde_json::json!({"session_id": row.id}));
                        if let Err(e) = state.audit(event).await {
                            tracing::error!(error = %e, "could not audit a logout");
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => return still_signed_in(&e),
            }
        }
    }
    let clear = vec![cookies::clear_session(state.secure_cookies)];
    if let Some(hook) = hook {
        let intent: String = url::form_urlencoded::byte_serialize(form.intent.as_bytes()).collect();
        let url = format!("{hook}&intent={intent}");
        return pages::see_other(&url, clear);
    }
    match intent.and_then(|i| i.return_url) {
        Some(url) => pages::see_other(&url, clear),
        None => pages::render(
            &pages::MessagePage {
                title: "You are signed out".into(),
                message: "You can close this window.".into(),
                is_error: false,
            },
            StatusCode::OK,
            clear,
        ),
    }
}
