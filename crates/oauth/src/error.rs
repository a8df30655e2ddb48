//! Protocol errors in the RFC 6749 §5.2 shape: `{"error", "error_description"}`.
//!
//! Policy:
//! - `error` is an [`ErrorCode`], and the HTTP status follows from it: 400,
//!   except `invalid_client` and `invalid_token` (401), `insufficient_scope`
//!   (403), `server_error` (500) and `temporarily_unavailable` (429 for a
//!   rate limit, 503 when password hashing is at capacity; both with
//!   `Retry-After`).
//! - Descriptions say what was wrong in terms of the request, never server
//!   internals.
//! - A failure of ours is made by [`OAuthError::server_error`], which logs
//!   the whole error chain once, at construction, under a fresh `error_id`;
//!   the answer is `server_error` with only that id in its description (§5.2
//!   has no 5xx code; `server_error` is from §4.1.2.1). Whoever converts the
//!   error further reuses the id ([`OAuthError::error_id`]) instead of
//!   logging it again.
//! - Every error response is `Cache-Control: no-store` (§5.1). A 401 for a
//!   client that authenticated with HTTP Basic carries a `Basic` challenge
//!   (§5.2); `invalid_token` and `insufficient_scope` carry a `Bearer` one
//!   (RFC 6750 §3).
//! - `/oauth/authorize` sends the same codes back to the client as redirect
//!   parameters (§4.1.2.1) or shows them as a page; that is the endpoint's
//!   business, not this type's.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use trusec_storage::StorageError;
use trusec_storage::hashing::Busy;
use trusec_storage::rate_limit::Limited;

/// The `error` codes this server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// RFC 6749 §4.1.2.1 and §5.2; RFC 6750 §3.1.
    InvalidRequest,
    /// RFC 6749 §5.2.
    InvalidClient,
    /// RFC 6749 §5.2.
    InvalidGrant,
    /// RFC 6749 §4.1.2.1 and §5.2.
    UnauthorizedClient,
    /// RFC 6749 §5.2.
    UnsupportedGrantType,
    /// RFC 6749 §4.1.2.1 and §5.2.
    InvalidScope,
    /// RFC 6749 §4.1.2.1.
    AccessDenied,
    /// RFC 6749 §4.1.2.1.
    UnsupportedResponseType,
    /// RFC 6749 §4.1.2.1.
    ServerError,
    /// RFC 6749 §4.1.2.1.
    TemporarilyUnavailable,
    /// OIDC Core §3.1.2.6.
    LoginRequired,
    /// OIDC Core §3.1.2.6.
    ConsentRequired,
    /// OIDC Core §3.1.2.6: `prompt=none`, and the request needs the user
    /// (a step-up to an essential `acr`).
    InteractionRequired,
    /// OpenID Connect Core Unmet Authentication Requirements 1.0 §3: an
    /// essential `acr` the user cannot reach (no second factor).
    UnmetAuthenticationRequirements,
    /// OIDC Core §3.1.2.6.
    RequestNotSupported,
    /// OIDC Core §3.1.2.6.
    RequestUriNotSupported,
    /// RFC 6750 §3.1.
    InvalidToken,
    /// RFC 6750 §3.1.
    InsufficientScope,
    /// RFC 7591 §3.2.2.
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2.
    InvalidClientMetadata,
    /// RFC 8707 §2: a `resource` that is unknown, malformed or not allowed.
    InvalidTarget,
    /// RFC 8628 §3.5: the user has not decided yet; poll again.
    AuthorizationPending,
    /// RFC 8628 §3.5: polling too fast; the interval grew by 5 seconds.
    SlowDown,
    /// RFC 8628 §3.5: the device code expired.
    ExpiredToken,
    /// RFC 9449 §5 and §7.1: the DPoP proof is missing, invalid, or of
    /// another key than the token or code is bound to.
    InvalidDpopProof,
    /// RFC 9449 §8 and §9: send a proof with the nonce in `DPoP-Nonce`.
    UseDpopNonce,
}

impl ErrorCode {
    pub const ALL: [Self; 26] = [
        Self::InvalidRequest,
        Self::InvalidClient,
        Self::InvalidGrant,
        Self::UnauthorizedClient,
        Self::UnsupportedGrantType,
        Self::InvalidScope,
        Self::AccessDenied,
        Self::UnsupportedResponseType,
        Self::ServerError,
        Self::TemporarilyUnavailable,
        Self::LoginRequired,
        Self::ConsentRequired,
        Self::InteractionRequired,
        Self::UnmetAuthenticationRequirements,
        Self::RequestNotSupported,
        Self::RequestUriNotSupported,
        Self::InvalidToken,
        Self::InsufficientScope,
        Self::InvalidRedirectUri,
        Self::InvalidClientMetadata,
        Self::InvalidTarget,
        Self::AuthorizationPending,
        Self::SlowDown,
        Self::ExpiredToken,
        Self::InvalidDpopProof,
        Self::UseDpopNonce,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::UnmetAuthenticationRequirements => "unmet_authentication_requirements",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidTarget => "invalid_target",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
        }
    }

    /// The status of a JSON error with this code (see the module policy).
    pub fn status(self) -> StatusCode {
        match self {
            // RFC 6749 §5.2, RFC 6750 §3.1.
            Self::InvalidClient | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            // RFC 6750 §3.1.
            Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            // Only ever a rate limit here (RFC 6585 §4).
            Self::TemporarilyUnavailable => StatusCode::TOO_MANY_REQUESTS,
            // RFC 6749 §5.2: 400 unless specified otherwise. The codes of
            // §4.1.2.1 and OIDC Core §3.1.2.6 travel in a redirect; if one is
            // ever rendered as JSON, it is a bad request too.
            Self::InvalidRequest
            | Self::InvalidGrant
            | Self::UnauthorizedClient
            | Self::UnsupportedGrantType
            | Self::InvalidScope
            | Self::AccessDenied
            | Self::UnsupportedResponseType
            | Self::LoginRequired
            | Self::ConsentRequired
            | Self::InteractionRequired
            | Self::UnmetAuthenticationRequirements
            | Self::RequestNotSupported
            | Self::RequestUriNotSupported
            | Self::InvalidRedirectUri
            | Self::InvalidClientMetadata
            | Self::InvalidTarget
            // RFC 8628 §3.5: token-endpoint errors of RFC 6749 §5.2.
            | Self::AuthorizationPending
            | Self::SlowDown
            | Self::ExpiredToken
            // RFC 9449 §5.1 and §8 at the token endpoint; a resource
            // answers 401 (§7.1, [`OAuthError::at_dpop_resource`]).
            | Self::InvalidDpopProof
            | Self::UseDpopNonce => StatusCode::BAD_REQUEST,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    /// RFC 6749 §5.2: a 401 for a client that used HTTP Basic carries a
    /// matching `WWW-Authenticate` challenge.
    pub basic_challenge: bool,
    /// RFC 6750 §3.1: the request carried no usable credentials, so the
    /// `Bearer` challenge carries no error code (see [`Self::token_required`]).
    no_credentials: bool,
    pub retry_after: Option<Limited>,
    /// For `temporarily_unavailable` because password hashing is at
    /// capacity: a 503 with its `Retry-After`.
    busy: Option<Busy>,
    /// For `server_error`: the id its cause was logged under.
    error_id: Option<String>,
    /// RFC 9449 §7.1: answered by a resource to a DPoP request: 401 with
    /// a `DPoP` challenge.
    dpop_resource: bool,
    /// RFC 9449 §8.1: the nonce a `use_dpop_nonce` error hands out, in
    /// `DPoP-Nonce`.
    dpop_nonce: Option<String>,
}

impl OAuthError {
    pub(crate) fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            basic_challenge: false,
            no_credentials: false,
            retry_after: None,
            busy: None,
            error_id: None,
            dpop_resource: false,
            dpop_nonce: None,
        }
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, d)
    }
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnsupportedGrantType, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidTarget, d)
    }
    pub fn invalid_client_metadata(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClientMetadata, d)
    }
    pub fn invalid_redirect_uri(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRedirectUri, d)
    }
    /// A 401 for a request that carried no token, or tried an
    /// authentication method this endpoint does not take: RFC 6750 §3.1 says
    /// its challenge SHOULD NOT include an error code or other error
    /// information, so the header is a bare `Bearer realm`; the JSON body
    /// still says `invalid_token` for clients that read it.
    pub fn token_required(d: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorCode::InvalidToken, d);
        e.no_credentials = true;
        e
    }

    pub fn invalid_token(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidToken, d)
    }
    pub fn insufficient_scope(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InsufficientScope, d)
    }
    pub fn invalid_dpop_proof(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidDpopProof, d)
    }

    /// RFC 9449 §8: a proof without (or with an unknown) server nonce;
    /// `nonce` goes out in `DPoP-Nonce`.
    pub fn use_dpop_nonce(nonce: String) -> Self {
        let mut e = Self::new(
            ErrorCode::UseDpopNonce,
            "the DPoP proof must carry the nonce in the DPoP-Nonce header",
        );
        e.dpop_nonce = Some(nonce);
        e
    }

    /// The same error as a resource answers a DPoP request (RFC 9449
    /// §7.1): 401 for a proof or token refused, with a `DPoP` challenge.
    #[must_use]
    pub fn at_dpop_resource(mut self) -> Self {
        self.dpop_resource = true;
        self
    }

    /// Whether this error is answered with a `DPoP` challenge.
    pub fn is_dpop_challenge(&self) -> bool {
        self.dpop_resource
    }

    /// The nonce a `use_dpop_nonce` error hands out.
    pub fn dpop_nonce(&self) -> Option<&str> {
        self.dpop_nonce.as_deref()
    }

    pub fn rate_limited(limited: Limited) -> Self {
        let mut e = Self::new(ErrorCode::TemporarilyUnavailable, "rate limit exceeded");
        e.retry_after = Some(limited);
        e
    }

    /// RFC 6749 §4.1.2.1 `temporarily_unavailable`: every password-hashing
    /// thread is busy and the queue is full (`trusec_storage::hashing`).
    pub fn busy(busy: Busy) -> Self {
        let mut e = Self::new(
            ErrorCode::TemporarilyUnavailable,
            "the server is busy; try again later",
        );
        e.busy = Some(busy);
        e
    }

    /// Logs an internal failure with its whole chain under a fresh id and
    /// answers `server_error`.
    pub fn server_error(error: &(dyn std::error::Error + 'static)) -> Self {
        let error_id = trusec_ui::error::log_error(error, "OAuth request failed");
        let mut e = Self::new(ErrorCode::ServerError, format!("internal error {error_id}"));
        e.error_id = Some(error_id);
        e
    }

    /// The id a `server_error`'s cause was logged under.
    pub fn error_id(&self) -> Option<&str> {
        self.error_id.as_deref()
    }

    pub fn status(&self) -> StatusCode {
        let dpop_refusal = matches!(
            self.code,
            ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce
        );
        match self.busy {
            Some(_) => StatusCode::SERVICE_UNAVAILABLE,
            None if self.dpop_resource && dpop_refusal => StatusCode::UNAUTHORIZED,
            None => self.code.status(),
        }
    }

    #[must_use]
    pub fn with_basic_challenge(mut self, basic: bool) -> Self {
        self.basic_challenge = basic;
        self
    }

    /// The `WWW-Authenticate` value this error carries, if any.
    pub fn challenge(&self) -> Option<String> {
        if self.dpop_resource {
            return Some(self.dpop_challenge());
        }
        match self.code {
            // RFC 6749 §5.2: the scheme the client tried.
            ErrorCode::InvalidClient => self
                .basic_challenge
                .then(|| "Basic realm=\"trusec\"".to_owned()),
            // RFC 6750 §3.1: nothing was presented, so no error is named.
            ErrorCode::InvalidToken if self.no_credentials => {
                Some("Bearer realm=\"trusec\"".to_owned())
            }
            // RFC 6750 §3.
            ErrorCode::InvalidToken | ErrorCode::InsufficientScope => Some(format!(
                "Bearer error=\"{}\", error_description=\"{}\"",
                self.code,
                self.description.replace(['"', '\\'], "'")
            )),
            ErrorCode::InvalidRequest
            | ErrorCode::InvalidGrant
            | ErrorCode::UnauthorizedClient
            | ErrorCode::UnsupportedGrantType
            | ErrorCode::InvalidScope
            | ErrorCode::AccessDenied
            | ErrorCode::UnsupportedResponseType
            | ErrorCode::ServerError
            | ErrorCode::TemporarilyUnavailable
            | ErrorCode::LoginRequired
            | ErrorCode::ConsentRequired
            | ErrorCode::InteractionRequired
            | ErrorCode::UnmetAuthenticationRequirements
            | ErrorCode::RequestNotSupported
            | ErrorCode::RequestUriNotSupported
            | ErrorCode::InvalidRedirectUri
            | ErrorCode::InvalidClientMetadata
            | ErrorCode::InvalidTarget
            | ErrorCode::AuthorizationPending
            | ErrorCode::SlowDown
            | ErrorCode::ExpiredToken
            | ErrorCode::InvalidDpopProof
            | ErrorCode::UseDpopNonce => None,
        }
    }

    /// RFC 9449 §7.1: `DPoP` with the error and the accepted algorithms.
    fn dpop_challenge(&self) -> String {
        let algs = crate::dpop::ALGS.join(" ");
        if self.no_credentials {
            return format!("DPoP algs=\"{algs}\"");
        }
        format!(
            "DPoP error=\"{}\", error_description=\"{}\", algs=\"{algs}\"",
            self.code,
            self.description.replace(['"', '\\'], "'")
        )
    }
}

impl From<StorageError> for OAuthError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Busy(busy) => Self::busy(busy),
            StorageError::UserDisabled => Self::invalid_grant("the user is disabled"),
            StorageError::NotFound
            | StorageError::Conflict(_)
            | StorageError::Unavailable(_)
            | StorageError::Backend(_)
            | StorageError::Full => Self::server_error(&e),
        }
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

impl From<serde_json::Error> for OAuthError {
    fn from(e: serde_json::Error) -> Self {
        Self::server_error(&e)
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status());
        // RFC 6749 §5.1/§5.2: token responses are never cached.
        resp.insert_header((header::CACHE_CONTROL, "no-store"));
        resp.insert_header((header::PRAGMA, "no-cache"));
        if let Some(v) = self
            .challenge()
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            resp.insert_header((header::WWW_AUTHENTICATE, v));
        }
        if let Some(limited) = self.retry_after {
            resp.insert_header((header::RETRY_AFTER, limited.retry_after_secs().to_string()));
        }
        if let Some(busy) = self.busy {
            resp.insert_header((header::RETRY_AFTER, busy.retry_after_secs.to_string()));
        }
        if let Some(v) = self
            .dpop_nonce
            .as_deref()
            .and_then(|n| HeaderValue::from_str(n).ok())
        {
            resp.insert_header((crate::dpop::NONCE_HEADER, v));
        }
        resp.json(serde_json::json!({
            "error": self.code.as_str(),
            "error_description": self.description,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;
    use serde_json::{Value, json};
    use std::time::Duration;
    use trusec_storage::rate_limit::Family;

    fn render(e: &OAuthError) -> Value {
        let resp = e.error_response();
        let mut shape = json!({"status": resp.status().as_u16()});
        for name in ["www-authenticate", "retry-after", "cache-control"] {
            if let Some(v) = resp.headers().get(name) {
                shape[name] = json!(v.to_str().unwrap());
            }
        }
        let bytes = resp.into_body().try_into_bytes().unwrap();
        shape["body"] = serde_json::from_slice(&bytes).unwrap();
        shape
    }

    #[test]
    fn every_code_has_its_status_and_shape() {
        let mut rendered = Vec::new();
        for code in ErrorCode::ALL {
            let e = match code {
                ErrorCode::ServerError => {
                    let e = OAuthError::server_error(&std::io::Error::other("secret db text"));
                    let id = e.error_id().unwrap().to_owned();
                    assert!(id.starts_with("err_") && e.description.contains(&id));
                    OAuthError::new(code, e.description.replace(&id, "err_ID"))
                }
                ErrorCode::TemporarilyUnavailable => OAuthError::rate_limited(Limited {
                    family: Family::Token,
                    retry_after: Duration::from_millis(1500),
                }),
                ErrorCode::InvalidClient => {
                    OAuthError::new(code, "bad \"secret\"").with_basic_challenge(true)
                }
                _ => OAuthError::new(code, format!("why \"{code}\"")),
            };
            let shape = render(&e);
            assert_eq!(shape["status"], code.status().as_u16(), "{code}");
            assert_eq!(shape["body"]["error"], code.as_str());
            assert_eq!(shape["cache-control"], "no-store");
            rendered.push(shape);
        }
        insta::assert_json_snapshot!(rendered);
    }

    #[test]
    fn a_busy_hashing_pool_is_temporarily_unavailable_with_503_and_retry_after() {
        let shape = render(&OAuthError::from(StorageError::Busy(Busy {
            retry_after_secs: 4,
        })));
        assert_eq!(shape["status"], 503);
        assert_eq!(shape["retry-after"], "4");
        assert_eq!(shape["body"]["error"], "temporarily_unavailable");
    }

    /// RFC 6750 §3.1: no credentials, no error code in the challenge; a
    /// token that was presented and refused names `invalid_token`.
    #[test]
    fn a_missing_token_gets_a_bare_bearer_challenge() {
        let missing = render(&OAuthError::token_required("an access token is required"));
        assert_eq!(missing["status"], 401);
        assert_eq!(missing["www-authenticate"], "Bearer realm=\"trusec\"");
        assert_eq!(missing["body"]["error"], "invalid_token");
        let refused = render(&OAuthError::invalid_token("expired"));
        assert!(
            refused["www-authenticate"]
                .as_str()
                .unwrap()
                .starts_with("Bearer error=\"invalid_token\"")
        );
    }

    #[test]
    fn basic_challenge_only_when_basic_was_used() {
        let without = render(&OAuthError::invalid_client("unknown client"));
        assert!(without.get("www-authenticate").is_none());
        let server = OAuthError::server_error(&std::io::Error::other("secret db text"));
        assert!(!render(&server).to_string().contains("secret db text"));
    }
}
