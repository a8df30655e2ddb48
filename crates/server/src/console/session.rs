//! The console session: a 256-bit token in the console cookie
//! (`__Host-trusec_console` over https), the record behind its hash in the
//! ephemeral store. Every request re-reads the user, so an administrator
//! removed from `trusec-admins` (or deleted) loses the console at once.

use crate::extract::Acting;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use trusec_storage::audit::Actor;
use trusec_storage::users::{self, UserRow};
use trusec_storage::{StorageError, StoreKey, admins, secrets};
use trusec_ui::{PageError, UiState, cookies};

/// How long a console session lasts, however active (a working day).
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    user_id: String,
    environment_id: String,
}

/// Starts a console session for `user` and returns its cookie.
///
/// # Errors
/// The random source or the store failed.
pub async fn start(
    ui: &UiState,
    user: &UserRow,
) -> Result<actix_web::cookie::Cookie<'static>, PageError> {
    let token = secrets::generate_secret("").map_err(|e| PageError::internal(&e))?;
    let record = Record {
        user_id: user.id.clone(),
        environment_id: ui.env.id.clone(),
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| PageError::internal(&e))?;
    ui.core
        .store
        .put(
            &StoreKey::console_session(&secrets::hash_secret(&token)),
            &bytes,
            SESSION_TTL,
        )
        .await?;
    let max_age = i64::try_from(SESSION_TTL.as_secs()).unwrap_or(i64::MAX);
    Ok(cookies::console(
        ui,
        cookies::CONSOLE_COOKIE,
        &token,
        max_age,
    ))
}

/// Ends this browser's console session (if any) and returns the cookie
/// that removes it.
///
/// # Errors
/// The store failed.
pub async fn end(
    req: &HttpRequest,
    ui: &UiState,
) -> Result<actix_web::cookie::Cookie<'static>, PageError> {
    if let Some(token) = cookies::console_value(req, ui, cookies::CONSOLE_COOKIE) {
        ui.core
            .store
            .delete(&[StoreKey::console_session(&secrets::hash_secret(&token))])
            .await?;
    }
    Ok(cookies::clear_console(ui, cookies::CONSOLE_COOKIE))
}

/// A signed-in administrator of the environment whose console was asked
/// for. Without a session the browser is sent to sign in; a user who is no
/// longer an administrator is refused.
#[derive(Clone, Debug)]
pub struct Admin {
    pub user: UserRow,
    pub ui: UiState,
    pub acting: Acting,
}

impl Admin {
    /// `path` in this console's environment.
    pub fn path(&self, path: &str) -> String {
        self.ui.env.path(path)
    }
}

/// Why a console page was not shown.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No console session: sign in first (a redirect to this path).
    #[error("sign-in required")]
    SignIn(String),
    #[error(transparent)]
    Page(#[from] PageError),
}

impl From<StorageError> for ConsoleError {
    fn from(e: StorageError) -> Self {
        Self::Page(e.into())
    }
}

impl From<trusec_saml::SamlError> for ConsoleError {
    fn from(e: trusec_saml::SamlError) -> Self {
        match e {
            trusec_saml::SamlError::Page(p) => Self::Page(p),
            trusec_saml::SamlError::Refused(r) => Self::Page(PageError::refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "The service provider cannot be tested",
                r.to_string(),
            )),
        }
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn(_) => StatusCode::SEE_OTHER,
            Self::Page(p) => p.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::SignIn(to) => trusec_ui::pages::see_other(to, Vec::new()),
            Self::Page(p) => p.error_response(),
        }
    }
}

/// The refusal of a signed-in user who is not an administrator here.
pub fn not_an_admin() -> PageError {
    PageError::refused(
        StatusCode::FORBIDDEN,
        "You are not an administrator",
        "The console is open to members of the trusec-admins group of this environment only.",
    )
}

impl FromRequest for Admin {
    type Error = ConsoleError;
    type Future = LocalBoxFuture<'static, Result<Self, ConsoleError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { load(&req).await })
    }
}

async fn load(req: &HttpRequest) -> Result<Admin, ConsoleError> {
    let missing = || PageError::internal(&std::io::Error::other("console state missing"));
    let ui = req
        .app_data::<web::Data<UiState>>()
        .ok_or_else(missing)?
        .get_ref()
        .clone();
    let sign_in = || ConsoleError::SignIn(ui.env.path("/console/login"));
    let token = cookies::console_value(req, &ui, cookies::CONSOLE_COOKIE).ok_or_else(sign_in)?;
    let key = StoreKey::console_session(&secrets::hash_secret(&token));
    let bytes = ui.core.store.get(&key).await?.ok_or_else(sign_in)?;
    let record: Record = serde_json::from_slice(&bytes).map_err(|e| PageError::internal(&e))?;
    // A session of another environment's console never opens this one.
    if record.environment_id != ui.env.id {
        return Err(sign_in());
    }
    let (env, uid) = (ui.env.id.clone(), record.user_id.clone());
    let user = ui
        .core
        .db
        .run(move |conn| users::find_by_id(conn, &env, &uid))
        .await?
        .ok_or_else(sign_in)?;
    if !admins::is_admin_groups(&user.groups)? {
        return Err(not_an_admin().into());
    }
    let acting = Acting {
        environment: ui.env.id.clone(),
        actor: Actor::user(&user.id),
        client: trusec_ui::http::client_info(req),
    };
    Ok(Admin { user, ui, acting })
}
