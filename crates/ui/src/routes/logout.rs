//! `GET/POST /logout`: asks before signing out (a link alone must not sign
//! anyone out), ends the login session, and returns to the app when a
//! protocol validated where to (a logout intent).

use crate::cookies;
use crate::error::PageError;
use crate::http::client_info;
use crate::pages::{self, LogoutPage, MessagePage};
use crate::{UiState, after_logout};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use trusec_storage::audit::{Actor, ClientInfo, EventType, NewAuditEvent};
use trusec_storage::refresh_tokens::RevocationReason;
use trusec_storage::sessions::SessionRow;
use trusec_storage::{StorageError, StoreKey, secrets, sessions};

const INTENT_TTL: Duration = Duration::from_secs(600);

/// Where to go after signing out, already validated by the protocol that
/// asked (e.g. a registered `post_logout_redirect_uri`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogoutIntent {
    pub client_name: Option<String>,
    pub return_url: Option<String>,
    /// The environment whose client it was validated for: only that
    /// environment's logout page follows it.
    #[serde(default)]
    pub environment_id: String,
}

impl LogoutIntent {
    /// Stores the intent; returns its id for `/logout?intent=`.
    ///
    /// # Errors
    /// Store or random-source failures.
    pub async fn save(&self, state: &UiState) -> Result<String, StorageError> {
        let id = secrets::generate_secret("").map_err(StorageError::backend)?;
        state
            .core
            .store
            .put(
                &StoreKey::logout_intent(&id),
                &serde_json::to_vec(self)?,
                INTENT_TTL,
            )
            .await?;
        Ok(id)
    }

    /// A stored intent of `state`'s environment; `None` when unknown,
    /// expired or another environment's.
    pub async fn load(state: &UiState, id: &str) -> Option<Self> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        state
            .core
            .store
            .get(&StoreKey::logout_intent(id))
            .await
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice::<Self>(&b).ok())
            .filter(|i| i.environment_id == state.env.id)
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

const STILL_SIGNED_IN: &str = "You may still be signed in. Please try again.";

pub async fn post(
    req: HttpRequest,
    state: web::Data<UiState>,
    form: web::Form<LogoutForm>,
) -> Result<HttpResponse, PageError> {
    if !cookies::csrf_ok(&req, state.secure_cookies, &form.csrf_token) {
        return Err(PageError::page_expired());
    }
    let intent = LogoutIntent::load(&state, &form.intent).await;
    if form.decision != "logout" {
        return Ok(match intent.and_then(|i| i.return_url) {
            Some(url) => pages::see_other(&url, Vec::new()),
            None => pages::render(
                &MessagePage::info("You are still signed in", "Nothing was changed."),
                StatusCode::OK,
                Vec::new(),
            ),
        });
    }
    let ended = match cookies::session_token(&req, &state) {
        Some(token) => end_session(&state, &token, &client_info(&req))
            .await
            .map_err(|e| PageError::unavailable(&e, STILL_SIGNED_IN))?,
        None => None,
    };
    let clear = vec![cookies::clear_session(&state)];
    // A protocol may need to tell others about this logout (SAML single
    // logout): it registered an after-logout step for the session.
    let step = match &ended {
        Some(row) => after_logout::take(&state.core.store, &row.id).await,
        None => None,
    };
    if let Some(step) = step {
        let intent: String = url::form_urlencoded::byte_serialize(form.intent.as_bytes()).collect();
        return Ok(pages::see_other(&format!("{step}&intent={intent}"), clear));
    }
    Ok(match intent.and_then(|i| i.return_url) {
        Some(url) => pages::see_other(&url, clear),
        None => pages::render(
            &MessagePage::info("You are signed out", "You can close this window."),
            StatusCode::OK,
            clear,
        ),
    })
}

/// Revokes the session behind a cookie token (every instance stops
/// accepting it at once) and audits the logout; the ended session, if the
/// token named one.
async fn end_session(
    state: &UiState,
    token: &str,
    client: &ClientInfo,
) -> Result<Option<SessionRow>, StorageError> {
    let hash = secrets::hash_secret(token);
    let now = state.core.clock.now_naive();
    // Only a session of the environment this endpoint serves.
    let (lookup, env) = (hash.clone(), state.env.id.clone());
    let revoked = state
        .core
        .db
        .run(move |conn| sessions::revoke_by_token_hash(conn, &env, &lookup, now))
        .await?;
    let Some(ended) = revoked else {
        return Ok(None);
    };
    let row = ended.session;
    state.core.forget_sessions([hash.as_str()]).await?;
    let event = || {
        NewAuditEvent::new(
            EventType::UserLogout,
            Some(&row.environment_id),
            Actor::user(&row.user_id),
        )
        .user(&row.user_id)
        .client(client)
    };
    // The session's refresh tokens ended with it (contract), and so do
    // their access tokens.
    state
        .core
        .refresh_families_revoked(&ended.refresh, RevocationReason::SessionEnded, event())
        .await?;
    if ended.newly
        && let Err(e) = state
            .core
            .audit(event().data(serde_json::json!({"session_id": row.id})))
            .await
    {
        tracing::error!(error = %e, "could not audit a logout");
    }
    Ok(Some(row))
}
