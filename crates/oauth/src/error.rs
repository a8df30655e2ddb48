//! Protocol errors in the RFC 6749 §5.2 shape: `{"error", "error_description"}`.
//!
//! Policy: descriptions say what was wrong in terms of the request, never
//! server internals; a 5xx logs the cause under an `error_id` and answers
//! `server_error` (§5.2 has no 5xx codes; `server_error` is from §4.1.2.1).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use trusec_storage::StorageError;
use trusec_storage::rate_limit::Limited;

#[derive(Debug, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub code: &'static str,
    pub description: String,
    pub status: StatusCode,
    /// RFC 6749 §5.2: a 401 for a client that used HTTP Basic carries a
    /// matching `WWW-Authenticate` challenge.
    pub basic_challenge: bool,
    pub retry_after: Option<Limited>,
}

impl OAuthError {
    fn new(code: &'static str, status: StatusCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            status,
            basic_challenge: false,
            retry_after: None,
        }
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", StatusCode::BAD_REQUEST, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", StatusCode::UNAUTHORIZED, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", StatusCode::BAD_REQUEST, d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new("unauthorized_client", StatusCode::BAD_REQUEST, d)
    }
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_grant_type", StatusCode::BAD_REQUEST, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", StatusCode::BAD_REQUEST, d)
    }
    pub fn invalid_client_metadata(d: impl Into<String>) -> Self {
        Self::new("invalid_client_metadata", StatusCode::BAD_REQUEST, d)
    }
    pub fn invalid_redirect_uri(d: impl Into<String>) -> Self {
        Self::new("invalid_redirect_uri", StatusCode::BAD_REQUEST, d)
    }
    pub fn invalid_token(d: impl Into<String>) -> Self {
        Self::new("invalid_token", StatusCode::UNAUTHORIZED, d)
    }
    pub fn insufficient_scope(d: impl Into<String>) -> Self {
        Self::new("insufficient_scope", StatusCode::FORBIDDEN, d)
    }
    pub fn rate_limited(limited: Limited) -> Self {
        let mut e = Self::new(
            "temporarily_unavailable",
            StatusCode::TOO_MANY_REQUESTS,
            "rate limit exceeded",
        );
        e.retry_after = Some(limited);
        e
    }

    /// Logs an internal failure under a fresh id and answers `server_error`.
    pub fn server_error(error: &(dyn std::error::Error + 'static)) -> Self {
        let error_id = trusec_storage::ids::new_id("err");
        tracing::error!(error_id, error = %trusec_ui::error::ErrorChain(error), "OAuth request failed");
        Self::new(
            "server_error",
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error {error_id}"),
        )
    }

    #[must_use]
    pub fn with_basic_challenge(mut self, basic: bool) -> Self {
        self.basic_challenge = basic;
        self
    }
}

impl From<StorageError> for OAuthError {
    fn from(e: StorageError) -> Self {
        Self::server_error(&e)
    }
}

impl From<Limited> for OAuthError {
    fn from(l: Limited) -> Self {
        Self::rate_limited(l)
    }
}

impl From<crate::jwt::JwtError> for OAuthError {
    fn from(e: crate::jwt::JwtError) -> Self {
        Self::server_error(&e)
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status);
        // RFC 6749 §5.1/§5.2: token responses are never cached.
        resp.insert_header((header::CACHE_CONTROL, "no-store"));
        resp.insert_header((header::PRAGMA, "no-cache"));
        if self.status == StatusCode::UNAUTHORIZED || self.status == StatusCode::FORBIDDEN {
            let challenge = if self.basic_challenge {
                "Basic realm=\"trusec\"".to_owned()
            } else if matches!(self.code, "invalid_token" | "insufficient_scope") {
                // RFC 6750 §3.
                format!(
                    "Bearer error=\"{}\", error_description=\"{}\"",
                    self.code,
                    self.description.replace('"', "'")
                )
            } else {
                String::new()
            };
            if let Ok(v) = HeaderValue::from_str(&challenge)
                && !challenge.is_empty()
            {
                resp.insert_header((header::WWW_AUTHENTICATE, v));
            }
        }
        if let Some(limited) = self.retry_after {
            resp.insert_header((header::RETRY_AFTER, limited.retry_after_secs().to_string()));
        }
        resp.json(serde_json::json!({
            "error": self.code,
            "error_description": self.description,
        }))
    }
}
