//! What every console page shares: the layout (environment switcher, the
//! environment marked in colour and words, the signed-in administrator),
//! the CSRF check, rendering with the console's CSP, and how a management
//! error (`ApiError`, from the decide functions shared with `/v1`) becomes
//! a page.

use super::Admin;
use super::session::ConsoleError;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use trusec_ui::{PageError, cookies, pages};

/// The hosted pages' CSP, plus our own script (the copy buttons) and
/// `form-action 'self'`: every console form posts to the console.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; \
                       base-uri 'none'";

/// One environment in the switcher.
pub struct EnvLink {
    pub name: String,
    pub href: String,
    pub current: bool,
    pub is_live: bool,
}

/// The frame of every signed-in page.
pub struct Layout {
    pub env_name: String,
    pub is_live: bool,
    pub environments: Vec<EnvLink>,
    pub admin_email: String,
    pub csrf: String,
    /// The console's root in this environment (`/console`, `/env/NAME/console`).
    pub base: String,
}

impl Layout {
    /// The layout for `admin`, and the CSRF cookie to set if the browser
    /// had none.
    pub fn of(
        req: &HttpRequest,
        state: &AppState,
        admin: &Admin,
    ) -> (Self, Option<actix_web::cookie::Cookie<'static>>) {
        let (csrf, cookie) = cookies::csrf(req, admin.ui.secure_cookies);
        let env = &admin.ui.env;
        let environments = state
            .environments
            .iter()
            .map(|e| EnvLink {
                name: e.env().name.clone(),
                href: e.env().path("/console"),
                current: e.env().id == env.id,
                is_live: e.env().is_live(),
            })
            .collect();
        (
            Self {
                env_name: env.name.clone(),
                is_live: env.is_live(),
                environments,
                admin_email: admin.user.email.clone(),
                csrf,
                base: env.path("/console"),
            },
            cookie,
        )
    }
}

/// A form whose only field is its CSRF token (a button that acts).
#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf_token: String,
}

/// A field error, shown next to its field.
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// The message for `field`, if the error is about it.
pub fn error_for<'a>(error: Option<&'a FieldError>, field: &str) -> Option<&'a str> {
    error
        .filter(|e| e.field == field)
        .map(|e| e.message.as_str())
}

/// A typed form field: trimmed, and `None` when left empty.
pub fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// A management error about one field, for the form to show next to it;
/// anything else is a page of its own.
///
/// # Errors
/// The error as a page when it is not about a field.
pub fn field_error(e: ApiError) -> Result<FieldError, ConsoleError> {
    match e {
        ApiError::Validation { message, param }
        | ApiError::InvalidRequest { message, param }
        | ApiError::Conflict { message, param } => Ok(FieldError {
            field: param.unwrap_or_default(),
            message,
        }),
        other => Err(other.into()),
    }
}

/// The first `limit` rows of one of the administrator's environment's
/// listings (`list` is a repository's cursor listing).
///
/// # Errors
/// Storage failures.
pub async fn first_page<R, F>(admin: &Admin, limit: i64, list: F) -> Result<Vec<R>, ConsoleError>
where
    F: FnOnce(
            &mut trusec_storage::db::DbConnection,
            &str,
            &trusec_storage::PageRequest,
        ) -> Result<trusec_storage::Page<R>, trusec_storage::StorageError>
        + Send
        + 'static,
    R: Send + 'static,
{
    let env = admin.ui.env.id.clone();
    let page = trusec_storage::PageRequest { limit, after: None };
    let rows = admin
        .ui
        .core
        .db
        .run(move |conn| list(conn, &env, &page))
        .await?;
    Ok(rows.data)
}

/// Refuses a form whose CSRF token does not match the browser's cookie.
///
/// # Errors
/// `PageError::page_expired` (403).
pub fn check_csrf(req: &HttpRequest, secure: bool, posted: &str) -> Result<(), PageError> {
    if cookies::csrf_ok(req, secure, posted) {
        Ok(())
    } else {
        Err(PageError::page_expired())
    }
}

/// Renders a console page with its headers (the hosted pages', with the
/// console's CSP).
pub fn render(
    template: &impl Template,
    status: StatusCode,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> HttpResponse {
    let mut resp = pages::render(template, status, cookie.into_iter().collect());
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CSP),
    );
    resp
}

/// A management error shown as a page. Field errors never get here: the
/// forms show them next to their field.
impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        let refused = |status, title: &'static str, message: String| {
            Self::Page(PageError::refused(status, title, message))
        };
        match e {
            ApiError::InvalidRequest { message, .. }
            | ApiError::Validation { message, .. }
            | ApiError::PayloadTooLarge { message }
            | ApiError::UnsupportedMediaType { message } => refused(
                StatusCode::BAD_REQUEST,
                "This request cannot be done",
                message,
            ),
            ApiError::Unauthenticated(message)
            | ApiError::Forbidden(message)
            | ApiError::DpopRefused { message, .. } => {
                refused(StatusCode::FORBIDDEN, "Not allowed", message)
            }
            ApiError::NotFound { message, .. } => {
                refused(StatusCode::NOT_FOUND, "Not found", message)
            }
            ApiError::Conflict { message, .. } => {
                refused(StatusCode::CONFLICT, "This cannot be done", message)
            }
            ApiError::MethodNotAllowed => refused(
                StatusCode::METHOD_NOT_ALLOWED,
                "Not allowed",
                "This page does not take that method.".into(),
            ),
            ApiError::RateLimited(limited) => Self::Page(PageError::RateLimited(limited)),
            // Already logged under this id.
            ApiError::Unavailable { error_id } => Self::Page(PageError::Unavailable {
                error_id,
                message: "Nothing was changed. Please try again.",
            }),
            ApiError::Busy { error_id, busy } => Self::Page(PageError::Busy { error_id, busy }),
            ApiError::Internal { error_id } => Self::Page(PageError::Internal { error_id }),
        }
    }
}
