//! Errors of the SAML endpoints, and the one place a refusal is audited.
//!
//! Policy: a protocol message we will not act on (unknown SP, unregistered
//! ACS, a bad or missing signature, a replay, the wrong destination, a stale
//! or malformed message, …) is a [`Refusal`]. It travels as
//! [`SamlError::Refused`] together with what it was about: the flow, and the
//! issuer and the SP once they are known ([`About`]). Every handler's outcome
//! passes through [`audited`], which records each refusal once as
//! `saml.request.refused` with its reason code, the SP and the caller (a
//! refusal that repeats from one address within a minute is counted in
//! metrics, not audited again: `Core::refused`); the
//! browser then gets the error page (400) naming what was refused. Nothing
//! else audits a refusal.
//!
//! Everything else is a [`PageError`] of the hosted pages, rendered the same
//! way: an expired sign-in is a plain refusal page (not audited: nobody sent
//! us anything wrong), and storage failures and our own faults (signing,
//! rendering) log their whole chain once under an `error_id` that the page
//! shows. Database text never reaches the page.

use crate::SamlState;
use crate::xml_work::Busy;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use trusec_storage::StorageError;
use trusec_storage::audit::{Actor, EventType, NewAuditEvent};
use trusec_storage::refusal::RefusalReason;
use trusec_storage::service_providers::ServiceProviderRow;
use trusec_ui::PageError;

/// Why a message is refused (shown on the error page and audited).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("the message is missing")]
    Missing,
    #[error("the message is too large")]
    TooLarge,
    #[error("the message is not valid base64")]
    Encoding,
    #[error("the message does not inflate")]
    Deflate,
    #[error("the message contains a DTD, which is never accepted")]
    Dtd,
    #[error("the message is not a valid SAML request: {0}")]
    Malformed(String),
    #[error("the issuer is not a registered service provider")]
    UnknownIssuer,
    #[error("the assertion consumer service is not registered for this service provider")]
    UnregisteredAcs,
    #[error("the request must be signed")]
    Unsigned,
    #[error("the request signature does not verify")]
    BadSignature,
    #[error("the request is too old or from the future")]
    Stale,
    #[error("the request was sent to another destination")]
    WrongDestination,
    #[error("this request was already used")]
    Replayed,
    #[error("the RelayState is longer than 80 bytes")]
    RelayStateTooLong,
    /// A signature of another shape than SAML's profile of XML Signature
    /// (`signature_policy`): it is never handed to xmlsec.
    #[error("the signature is not one SAML allows ({0})")]
    SignaturePolicy(&'static str),
    /// The signed message names another issuer than the SP it was checked for.
    #[error("the signed message names another issuer")]
    IssuerMismatch,
    /// The SP gets encrypted assertions and its encryption certificate has
    /// expired since it was registered (the date, `YYYY-MM-DD`): nothing is
    /// encrypted to a dead key, nor sent in the clear instead.
    #[error(
        "the service provider's encryption certificate expired on {0}; its administrator must \
         register the current one"
    )]
    EncryptionCertificateExpired(String),
}

impl Refusal {
    /// A short code for the audit log (`docs/saml.md` lists them).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::TooLarge => "too_large",
            Self::Encoding => "encoding",
            Self::Deflate => "deflate",
            Self::Dtd => "dtd",
            Self::Malformed(_) => "malformed",
            Self::UnknownIssuer => "unknown_issuer",
            Self::UnregisteredAcs => "unregistered_acs",
            Self::Unsigned => "unsigned",
            Self::BadSignature => "bad_signature",
            Self::Stale => "stale",
            Self::WrongDestination => "wrong_destination",
            Self::Replayed => "replayed",
            Self::RelayStateTooLong => "relay_state_too_long",
            Self::SignaturePolicy(_) => "signature_policy",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::EncryptionCertificateExpired(_) => "encryption_certificate_expired",
        }
    }
}

/// Which exchange a refused message belonged to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// `/saml/sso`: an AuthnRequest, or an IdP-initiated sign-in.
    SignIn,
    /// `/saml/slo`: a LogoutRequest or LogoutResponse.
    SignOut,
}

impl Flow {
    fn title(self) -> &'static str {
        match self {
            Self::SignIn => "Single sign-on failed",
            Self::SignOut => "Sign-out failed",
        }
    }

    fn subject(self) -> &'static str {
        match self {
            Self::SignIn => "The request",
            Self::SignOut => "The sign-out request",
        }
    }

    /// The `message` of the audit event.
    fn audit_name(self) -> &'static str {
        match self {
            Self::SignIn => "authn_request",
            Self::SignOut => "logout",
        }
    }
}

/// What the message being handled is about, as far as it is known yet: the
/// flow, then the issuer it names, then the SP registered under it. A
/// refusal made from it carries all of that into the audit.
#[derive(Clone, Debug)]
pub struct About {
    flow: Flow,
    issuer: Option<String>,
    sp: Option<(String, String)>,
}

impl About {
    pub fn sign_in() -> Self {
        Self {
            flow: Flow::SignIn,
            issuer: None,
            sp: None,
        }
    }

    pub fn sign_out() -> Self {
        Self {
            flow: Flow::SignOut,
            issuer: None,
            sp: None,
        }
    }

    #[must_use]
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.issuer = Some(issuer.to_owned());
        self
    }

    #[must_use]
    pub fn sp(mut self, sp: &ServiceProviderRow) -> Self {
        self.sp = Some((sp.id.clone(), sp.environment_id.clone()));
        self
    }

    /// `refusal`, about this.
    pub fn refuse(&self, refusal: Refusal) -> SamlError {
        SamlError::Refused(Box::new(Refused {
            about: self.clone(),
            refusal,
        }))
    }
}

/// A refused message and what it was about.
#[derive(Debug, thiserror::Error)]
#[error("{} refused: {refusal}", about.flow.audit_name())]
pub struct Refused {
    pub about: About,
    pub refusal: Refusal,
}

#[derive(Debug, thiserror::Error)]
pub enum SamlError {
    /// A message we will not act on: audited by [`audited`], then a 400 page.
    #[error(transparent)]
    Refused(Box<Refused>),
    /// Anything else, rendered as the hosted pages render it.
    #[error(transparent)]
    Page(PageError),
}

impl SamlError {
    /// A plain 400 page that is not a refusal of a message (an expired
    /// sign-in, a missing parameter): nothing to audit.
    pub fn page(flow: Flow, message: &'static str) -> Self {
        Self::Page(PageError::refused(
            StatusCode::BAD_REQUEST,
            flow.title(),
            message,
        ))
    }

    /// Our own fault (signing, rendering): logged under an `error_id`.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        Self::Page(PageError::internal(error))
    }
}

/// `?` on a check that returns a bare [`Refusal`].
pub trait RefuseAs<T> {
    /// The refusal, about `about`.
    ///
    /// # Errors
    /// [`SamlError::Refused`] when `self` is a refusal.
    fn refused(self, about: &About) -> Result<T, SamlError>;
}

impl<T> RefuseAs<T> for Result<T, Refusal> {
    fn refused(self, about: &About) -> Result<T, SamlError> {
        self.map_err(|r| about.refuse(r))
    }
}

impl From<PageError> for SamlError {
    fn from(e: PageError) -> Self {
        Self::Page(e)
    }
}

impl From<Busy> for SamlError {
    /// The XML pool turned the message away: a 503 page, logged once.
    fn from(e: Busy) -> Self {
        Self::Page(PageError::Unavailable {
            error_id: trusec_ui::error::log_error(&e, "SAML message turned away"),
            message: "The server is busy. Please try again in a moment.",
        })
    }
}

impl From<StorageError> for SamlError {
    fn from(e: StorageError) -> Self {
        Self::Page(PageError::from(e))
    }
}

impl ResponseError for SamlError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Refused(_) => StatusCode::BAD_REQUEST,
            Self::Page(page) => page.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Refused(refused) => {
                let flow = refused.about.flow;
                PageError::refused(
                    StatusCode::BAD_REQUEST,
                    flow.title(),
                    format!("{} was refused: {}.", flow.subject(), refused.refusal),
                )
                .error_response()
            }
            Self::Page(page) => page.error_response(),
        }
    }
}

/// Records the refusal `outcome` carries, if any, as `saml.request.refused`
/// (this is the only place), and hands the outcome on to be rendered.
/// Through `Core::refused`: counted every time, audited once per client
/// address, reason and minute, so a flood of bad messages cannot flood the
/// audit chain. A refusal whose audit cannot be written is still refused.
pub async fn audited(
    state: &SamlState,
    http: &HttpRequest,
    outcome: Result<HttpResponse, SamlError>,
) -> Result<HttpResponse, SamlError> {
    if let Err(SamlError::Refused(refused)) = &outcome {
        let about = &refused.about;
        let (sp_id, env) = match &about.sp {
            Some((id, env)) => (Some(id.as_str()), Some(env.as_str())),
            None => (None, None),
        };
        let event = NewAuditEvent::new(EventType::SamlRequestRefused, env, Actor::anonymous())
            .failed()
            .client(&trusec_ui::http::client_info(http))
            .data(serde_json::json!({
                "reason": refused.refusal.code(),
                "message": about.flow.audit_name(),
                "issuer": about.issuer,
                "sp_id": sp_id,
            }));
        state
            .core()
            .refused(RefusalReason::saml_request(refused.refusal.code()), event)
            .await;
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body(resp: HttpResponse) -> String {
        String::from_utf8(resp.into_body().try_into_bytes().unwrap().to_vec()).unwrap()
    }

    #[test]
    fn every_variant_renders_its_page() {
        let refused = About::sign_in()
            .issuer("https://sp")
            .refuse(Refusal::Replayed);
        assert_eq!(refused.status_code(), StatusCode::BAD_REQUEST);
        let resp = refused.error_response();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(resp.headers().get("content-security-policy").is_some());
        let html = body(resp);
        assert!(html.contains("Single sign-on failed"), "{html}");
        assert!(html.contains("The request was refused: this request was already used."));

        let html = body(About::sign_out().refuse(Refusal::Unsigned).error_response());
        assert!(html.contains("Sign-out failed"), "{html}");
        assert!(html.contains("The sign-out request was refused: the request must be signed."));

        let page = SamlError::page(Flow::SignIn, "This sign-in request is corrupt.");
        assert_eq!(page.status_code(), StatusCode::BAD_REQUEST);
        let html = body(page.error_response());
        assert!(html.contains("This sign-in request is corrupt.") && !html.contains("err_"));

        let failed = SamlError::from(StorageError::unavailable(std::io::Error::other(
            "secret db text",
        )));
        assert_eq!(failed.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        let html = body(failed.error_response());
        assert!(
            html.contains("err_") && !html.contains("secret db text"),
            "{html}"
        );

        let internal = SamlError::internal(&std::io::Error::other("xmlsec said no"));
        assert_eq!(internal.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        let html = body(internal.error_response());
        assert!(html.contains("err_") && !html.contains("xmlsec"), "{html}");
    }

    #[test]
    fn every_refusal_has_its_own_code() {
        let all = [
            Refusal::Missing,
            Refusal::TooLarge,
            Refusal::Encoding,
            Refusal::Deflate,
            Refusal::Dtd,
            Refusal::Malformed(String::new()),
            Refusal::UnknownIssuer,
            Refusal::UnregisteredAcs,
            Refusal::Unsigned,
            Refusal::BadSignature,
            Refusal::Stale,
            Refusal::WrongDestination,
            Refusal::Replayed,
            Refusal::RelayStateTooLong,
            Refusal::SignaturePolicy(""),
            Refusal::IssuerMismatch,
        ];
        let codes: std::collections::BTreeSet<&str> = all.iter().map(Refusal::code).collect();
        assert_eq!(codes.len(), all.len());
    }
}
