//! Errors of the `/v1` API, in the contract's shape:
//! `{"error": {"type", "message", "param"}}` with the matching status.
//!
//! Policy: 4xx messages say what was wrong and name the field; 5xx bodies say
//! only that something failed, with an `error_id` that is logged together
//! with the full error chain. Database text never reaches a client.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use trusec_storage::StorageError;
use trusec_storage::hashing::Busy;
use trusec_storage::rate_limit::Limited;

/// The error shape of `/v1`, the type every error response is built from.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// invalid_request, unauthenticated, forbidden, not_found, conflict,
    /// validation, rate_limited, unavailable, internal_error.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: String,
    /// The field at fault, when there is one.
    pub param: Option<String>,
    /// For 5xx: the id under which the cause was logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    InvalidRequest {
        message: String,
        param: Option<String>,
    },
    #[error("{0}")]
    Unauthenticated(String),
    /// A DPoP request refused (RFC 9449 §7.1): 401 with its `DPoP`
    /// challenge, and a nonce to use when one is required (§9).
    #[error("{message}")]
    DpopRefused {
        message: String,
        challenge: String,
        nonce: Option<String>,
    },
    #[error("{0}")]
    Forbidden(String),
    #[error("{message}")]
    NotFound {
        message: String,
        param: Option<String>,
    },
    #[error("{message}")]
    Conflict {
        message: String,
        param: Option<String>,
    },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{message}")]
    PayloadTooLarge { message: String },
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    #[error("{message}")]
    Validation {
        message: String,
        param: Option<String>,
    },
    #[error("rate limit exceeded")]
    RateLimited(Limited),
    #[error("service unavailable")]
    Unavailable { error_id: String },
    /// Password hashing is at capacity (`trusec_storage::hashing`): try
    /// again after `Retry-After`.
    #[error("the server is busy: {busy}")]
    Busy { error_id: String, busy: Busy },
    #[error("internal error")]
    Internal { error_id: String },
}

impl ApiError {
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param: Some(param.to_owned()),
        }
    }

    pub fn validation(param: &str, message: impl Into<String>) -> Self {
        Self::Validation {
            message: message.into(),
            param: Some(param.to_owned()),
        }
    }

    pub fn not_found(what: &str, param: Option<&str>) -> Self {
        Self::NotFound {
            message: format!("no such {what}"),
            param: param.map(str::to_owned),
        }
    }

    /// Logs an internal error under a fresh id and returns the 500.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        let error_id = trusec_storage::ids::new_id("err");
        tracing::error!(error_id, error = %ErrorChain(error), "internal error");
        Self::Internal { error_id }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. }
            | Self::MethodNotAllowed
            | Self::PayloadTooLarge { .. }
            | Self::UnsupportedMediaType { .. } => "invalid_request",
            Self::Unauthenticated(_) | Self::DpopRefused { .. } => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound { .. } => "not_found",
            Self::Conflict { .. } => "conflict",
            Self::Validation { .. } => "validation",
            Self::RateLimited(_) => "rate_limited",
            Self::Unavailable { .. } | Self::Busy { .. } => "unavailable",
            Self::Internal { .. } => "internal_error",
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            Self::InvalidRequest { param, .. }
            | Self::NotFound { param, .. }
            | Self::Conflict { param, .. }
            | Self::Validation { param, .. } => param.as_deref(),
            _ => None,
        }
    }

    fn error_id(&self) -> Option<&str> {
        match self {
            Self::Unavailable { error_id }
            | Self::Busy { error_id, .. }
            | Self::Internal { error_id } => Some(error_id),
            _ => None,
        }
    }
}

pub use trusec_ui::error::ErrorChain;

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => Self::NotFound {
                message: "not found".into(),
                param: None,
            },
            StorageError::Conflict(constraint) => Self::Conflict {
                message: format!("conflicts with an existing object ({constraint})"),
                param: None,
            },
            StorageError::UserDisabled => Self::Conflict {
                message: "the user is disabled".into(),
                param: Some("user_id".into()),
            },
            StorageError::Unavailable(_) | StorageError::Full => {
                let error_id = trusec_storage::ids::new_id("err");
                tracing::error!(error_id, error = %ErrorChain(&e), "storage unavailable");
                Self::Unavailable { error_id }
            }
            StorageError::Busy(busy) => {
                let error_id = trusec_storage::ids::new_id("err");
                tracing::warn!(error_id, error = %busy, "refused: password hashing at capacity");
                Self::Busy { error_id, busy }
            }
            StorageError::Backend(_) => Self::internal(&e),
        }
    }
}

impl From<Limited> for ApiError {
    fn from(l: Limited) -> Self {
        Self::RateLimited(l)
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        Self::internal(&e)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthenticated(_) | Self::DpopRefused { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } | Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = ErrorBody {
            error: ErrorDetail {
                kind: self.kind(),
                message: self.to_string(),
                param: self.param().map(str::to_owned),
                error_id: self.error_id().map(str::to_owned),
            },
        };
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        match self {
            Self::Unauthenticated(_) => {
                // RFC 6750 §3: a 401 names the scheme to use.
                response
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            Self::DpopRefused {
                challenge, nonce, ..
            } => {
                if let Ok(v) = HeaderValue::from_str(challenge) {
                    response.insert_header((header::WWW_AUTHENTICATE, v));
                }
                if let Some(v) = nonce.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
                    response.insert_header((trusec_oauth::dpop::NONCE_HEADER, v));
                }
            }
            Self::RateLimited(limited) => {
                response
                    .insert_header((header::RETRY_AFTER, limited.retry_after_secs().to_string()));
            }
            Self::Busy { busy, .. } => {
                response.insert_header((header::RETRY_AFTER, busy.retry_after_secs.to_string()));
            }
            _ => {}
        }
        response.json(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;
    use std::time::Duration;
    use trusec_storage::rate_limit::Family;

    fn render(e: &ApiError) -> (u16, serde_json::Value) {
        let resp = e.error_response();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().try_into_bytes().unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn every_variant_has_its_status_and_shape() {
        let cases = [
            (
                ApiError::invalid("email", "bad"),
                400,
                "invalid_request",
                Some("email"),
            ),
            (
                ApiError::Unauthenticated("no key".into()),
                401,
                "unauthenticated",
                None,
            ),
            (
                ApiError::Forbidden("public key".into()),
                403,
                "forbidden",
                None,
            ),
            (
                ApiError::not_found("user", Some("id")),
                404,
                "not_found",
                Some("id"),
            ),
            (
                ApiError::Conflict {
                    message: "taken".into(),
                    param: Some("email".into()),
                },
                409,
                "conflict",
                Some("email"),
            ),
            (ApiError::MethodNotAllowed, 405, "invalid_request", None),
            (
                ApiError::PayloadTooLarge {
                    message: "big".into(),
                },
                413,
                "invalid_request",
                None,
            ),
            (
                ApiError::UnsupportedMediaType {
                    message: "json".into(),
                },
                415,
                "invalid_request",
                None,
            ),
            (
                ApiError::validation("password", "short"),
                422,
                "validation",
                Some("password"),
            ),
            (
                ApiError::RateLimited(Limited {
                    family: Family::Management,
                    retry_after: Duration::from_millis(1500),
                }),
                429,
                "rate_limited",
                None,
            ),
            (
                ApiError::Busy {
                    error_id: "err_3".into(),
                    busy: Busy {
                        retry_after_secs: 2,
                    },
                },
                503,
                "unavailable",
                None,
            ),
            (
                ApiError::Unavailable {
                    error_id: "err_1".into(),
                },
                503,
                "unavailable",
                None,
            ),
            (
                ApiError::Internal {
                    error_id: "err_2".into(),
                },
                500,
                "internal_error",
                None,
            ),
        ];
        let mut rendered = Vec::new();
        for (error, status, kind, param) in cases {
            let (got_status, body) = render(&error);
            assert_eq!(got_status, status, "{error:?}");
            assert_eq!(body["error"]["type"], kind);
            assert_eq!(body["error"]["param"].as_str(), param);
            assert!(body["error"]["message"].is_string());
            rendered.push((got_status, body));
        }
        // The whole bodies, messages included: a change to any shows as a diff.
        insta::assert_json_snapshot!(rendered);
    }

    #[test]
    fn headers_for_401_429_and_503_busy() {
        let resp = ApiError::Unauthenticated("x".into()).error_response();
        assert_eq!(resp.headers().get("www-authenticate").unwrap(), "Bearer");
        let resp = ApiError::RateLimited(Limited {
            family: Family::Management,
            retry_after: Duration::from_millis(1500),
        })
        .error_response();
        assert_eq!(resp.headers().get("retry-after").unwrap(), "2");
        let resp = ApiError::from(StorageError::Busy(Busy {
            retry_after_secs: 3,
        }))
        .error_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers().get("retry-after").unwrap(), "3");
    }

    #[test]
    fn server_errors_hide_details_but_carry_an_id() {
        let e = ApiError::from(StorageError::backend(std::io::Error::other(
            "secret db text",
        )));
        let (status, body) = render(&e);
        assert_eq!(status, 500);
        assert!(!body.to_string().contains("secret db text"));
        assert!(
            body["error"]["error_id"]
                .as_str()
                .unwrap()
                .starts_with("err_")
        );
    }
}
