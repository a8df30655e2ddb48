//! Errors of the browser-facing handlers: the hosted pages, SAML,
//! `/oauth/authorize` before its `redirect_uri` is trusted, and
//! `/oauth/logout`.
//!
//! Policy: a person reads these, so each renders the message page (with the
//! hosted pages' security headers) in plain words. A refusal (4xx) says what
//! to do next and is not logged as an error. A failure (5xx) logs its whole
//! error chain once, at construction, under a fresh `error_id`, and the page
//! shows that id so an operator can find the log line
//! (`docs/operations.md`). A rate-limit refusal carries `Retry-After`.

use crate::pages::{self, MessagePage};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use std::borrow::Cow;
use trusec_storage::StorageError;
use trusec_storage::hashing::Busy;
use trusec_storage::rate_limit::Limited;

/// What a disabled user is told, only once their password (or passkey)
/// was right, so it says nothing about accounts to a guesser.
pub(crate) const ACCOUNT_DISABLED: &str =
    "This account is disabled. Ask your administrator to enable it again.";

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The request cannot go on; the user can start again or fix it.
    #[error("{title}")]
    Refused {
        status: StatusCode,
        title: Cow<'static, str>,
        message: Cow<'static, str>,
    },
    /// Too many attempts.
    #[error("rate limited")]
    RateLimited(Limited),
    /// Password hashing is at capacity (`trusec_storage::hashing`): try
    /// again after `Retry-After`.
    #[error("busy")]
    Busy { error_id: String, busy: Busy },
    /// Storage is unreachable: try again later.
    #[error("storage unavailable")]
    Unavailable {
        error_id: String,
        message: &'static str,
    },
    /// Anything else that is our fault.
    #[error("internal error")]
    Internal { error_id: String },
}

/// Displays an error with all its sources, for logs.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

/// A fresh error id, logged with the whole chain of `error`.
pub fn log_error(error: &(dyn std::error::Error + 'static), what: &str) -> String {
    let error_id = trusec_storage::ids::new_id("err");
    tracing::error!(error_id, error = %ErrorChain(error), "{what}");
    error_id
}

impl PageError {
    pub fn refused(
        status: StatusCode,
        title: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::Refused {
            status,
            title: title.into(),
            message: message.into(),
        }
    }

    /// A storage failure, with what the user should know about its effect
    /// (e.g. "You may still be signed in. Please try again.").
    pub fn unavailable(error: &(dyn std::error::Error + 'static), message: &'static str) -> Self {
        Self::Unavailable {
            error_id: log_error(error, "hosted page failed: storage unavailable"),
            message,
        }
    }

    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        Self::Internal {
            error_id: log_error(error, "hosted page failed"),
        }
    }

    /// The sign-in (or other interaction) is unknown or has expired.
    pub fn expired() -> Self {
        Self::refused(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired",
            "Go back to the app and start again.",
        )
    }

    /// The CSRF check failed.
    pub fn page_expired() -> Self {
        Self::refused(
            StatusCode::FORBIDDEN,
            "This page expired",
            "Please try again.",
        )
    }

    fn page(&self) -> MessagePage {
        match self {
            Self::Refused { title, message, .. } => MessagePage {
                title: title.to_string(),
                message: message.to_string(),
                is_error: true,
                error_id: None,
            },
            Self::RateLimited(limited) => MessagePage {
                title: "Too many attempts".into(),
                message: format!("Try again in {} seconds.", limited.retry_after_secs()),
                is_error: true,
                error_id: None,
            },
            Self::Busy { error_id, busy } => MessagePage {
                title: "The server is busy".into(),
                message: format!("Please try again in {} seconds.", busy.retry_after_secs),
                is_error: true,
                error_id: Some(error_id.clone()),
            },
            Self::Unavailable { error_id, message } => MessagePage {
                title: "Something went wrong".into(),
                message: (*message).to_owned(),
                is_error: true,
                error_id: Some(error_id.clone()),
            },
            Self::Internal { error_id } => MessagePage {
                title: "Something went wrong".into(),
                message: "Please try again in a moment.".into(),
                is_error: true,
                error_id: Some(error_id.clone()),
            },
        }
    }

    pub fn error_id(&self) -> Option<&str> {
        match self {
            Self::Unavailable { error_id, .. }
            | Self::Busy { error_id, .. }
            | Self::Internal { error_id } => Some(error_id),
            Self::Refused { .. } | Self::RateLimited(_) => None,
        }
    }
}

impl From<StorageError> for PageError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Full => Self::unavailable(
                &e,
                "The server is too busy to start a new sign-in. Please try again in a few minutes.",
            ),
            StorageError::Busy(busy) => {
                let error_id = trusec_storage::ids::new_id("err");
                tracing::warn!(error_id, error = %busy, "refused: password hashing at capacity");
                Self::Busy { error_id, busy }
            }
            StorageError::UserDisabled => {
                Self::refused(StatusCode::FORBIDDEN, "Account disabled", ACCOUNT_DISABLED)
            }
            StorageError::NotFound
            | StorageError::Conflict(_)
            | StorageError::Unavailable(_)
            | StorageError::Backend(_) => Self::unavailable(&e, "Please try again in a moment."),
        }
    }
}

impl From<Limited> for PageError {
    fn from(l: Limited) -> Self {
        Self::RateLimited(l)
    }
}

/// Sets `Retry-After` (the one rule: [`Limited::retry_after_secs`]).
pub fn set_retry_after(resp: &mut HttpResponse, limited: &Limited) {
    retry_after_secs(resp, limited.retry_after_secs());
}

fn retry_after_secs(resp: &mut HttpResponse, secs: u64) {
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Refused { status, .. } => *status,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } | Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = pages::render(&self.page(), self.status_code(), Vec::new());
        match self {
            Self::RateLimited(limited) => set_retry_after(&mut resp, limited),
            Self::Busy { busy, .. } => retry_after_secs(&mut resp, busy.retry_after_secs),
            Self::Refused { .. } | Self::Unavailable { .. } | Self::Internal { .. } => {}
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn failures_show_their_error_id_and_refusals_do_not() {
        let e = PageError::from(StorageError::unavailable(std::io::Error::other(
            "secret db text",
        )));
        let id = e.error_id().unwrap().to_owned();
        let resp = e.error_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(resp.headers().get("content-security-policy").is_some());
        let body = String::from_utf8(resp.into_body().try_into_bytes().unwrap().to_vec()).unwrap();
        assert!(body.contains(&id));
        assert!(!body.contains("secret db text"));

        let resp = PageError::expired().error_response();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body = String::from_utf8(resp.into_body().try_into_bytes().unwrap().to_vec()).unwrap();
        assert!(!body.contains("err_"));
    }

    #[test]
    fn the_page_and_the_log_line_share_the_error_id_and_only_the_log_has_the_cause() {
        let captured = trusec_testdb::log::CapturedLog::default();
        let e = tracing::subscriber::with_default(captured.subscriber(), || {
            PageError::from(StorageError::unavailable(std::io::Error::other(
                "connection refused by db.internal",
            )))
        });
        let id = e.error_id().unwrap().to_owned();
        let log = captured.text();
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(
            log.contains(&id) && log.contains("connection refused by db.internal"),
            "{log}"
        );
        let body = e.error_response().into_body().try_into_bytes().unwrap();
        let page = String::from_utf8(body.to_vec()).unwrap();
        assert!(page.contains(&id));
        assert!(!page.contains("db.internal"));
    }

    #[test]
    fn rate_limits_carry_retry_after_rounded_up() {
        let resp = PageError::RateLimited(Limited {
            family: trusec_storage::rate_limit::Family::Login,
            retry_after: std::time::Duration::from_millis(1500),
        })
        .error_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers().get("retry-after").unwrap(), "2");
    }

    #[test]
    fn a_busy_hashing_pool_is_a_503_page_with_retry_after() {
        let e = PageError::from(StorageError::Busy(Busy {
            retry_after_secs: 3,
        }));
        let id = e.error_id().unwrap().to_owned();
        let resp = e.error_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers().get("retry-after").unwrap(), "3");
        let body = String::from_utf8(resp.into_body().try_into_bytes().unwrap().to_vec()).unwrap();
        assert!(body.contains(&id) && body.contains("3 seconds"));
    }
}
