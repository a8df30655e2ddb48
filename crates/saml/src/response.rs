//! Building and signing the `Response` (SAML core §3.3.3, profiles §4.1.4):
//! built once from samael's schema types, signed by xmlsec with RSA-SHA256,
//! SHA-256 digests and exclusive C14N — the assertion, the response, or both.

use chrono::{DateTime, TimeDelta, Utc};
use samael::attribute::{Attribute, AttributeValue};
use samael::crypto::{CertificateDer, Crypto, CryptoProvider};
use samael::schema::{
    Assertion, AttributeStatement, AudienceRestriction, AuthnContext, AuthnContextClassRef,
    AuthnStatement, Conditions, Issuer, Response, Status, StatusCode, StatusMessage, Subject,
    SubjectConfirmation, SubjectConfirmationData, SubjectNameID,
};
use samael::signature::{DigestAlgorithm, Signature};
use samael::traits::ToXml;
use std::str::FromStr;
use trusec_storage::service_providers::Released;
use trusec_storage::sessions::AuthMethod;

/// Assertions are valid this long (the issue asks for at most five minutes).
pub const LIFETIME: TimeDelta = TimeDelta::minutes(5);
/// Clock skew tolerated between us and the SP.
pub const SKEW: TimeDelta = TimeDelta::minutes(1);
const PASSWORD_CONTEXT: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";
/// SAML Authn Context §3.4.23: a time-synchronised one-time code (TOTP)
/// on top of the password.
const TIME_SYNC_TOKEN_CONTEXT: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken";

/// The `AuthnContextClassRef` of a sign-in that used `amr`: the password
/// and a TOTP code is `TimeSyncToken`; the password alone, or with a
/// recovery code, `PasswordProtectedTransport` (over TLS). A printed
/// recovery code is no time-synchronised token, and the Authn Context
/// classes (SAML Authn Context §3.4) name none that fits it better, so
/// saying less than was done is the honest choice.
pub fn authn_context_class(amr: &[AuthMethod]) -> &'static str {
    if amr.contains(&AuthMethod::Otp) {
        TIME_SYNC_TOKEN_CONTEXT
    } else {
        PASSWORD_CONTEXT
    }
}
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("XML serialisation failed: {0}")]
    Xml(String),
    #[error("signing failed: {0}")]
    Crypto(String),
}

/// Everything the assertion says.
pub struct AssertionInput<'a> {
    pub idp_entity_id: &'a str,
    pub sp_entity_id: &'a str,
    pub acs_url: &'a str,
    pub in_response_to: Option<&'a str>,
    pub name_id: &'a str,
    pub name_id_format: &'a str,
    pub session_index: &'a str,
    pub auth_instant: DateTime<Utc>,
    /// [`authn_context_class`] of the session.
    pub authn_context: &'a str,
    pub now: DateTime<Utc>,
    /// (how the attribute is named, values).
    pub attributes: Vec<(Released, Vec<String>)>,
}

/// What to sign.
#[derive(Clone, Copy, Debug)]
pub struct Signing {
    pub response: bool,
    pub assertion: bool,
}

fn new_id() -> String {
    // IDs must be NCNames: start with a letter or underscore.
    format!(
        "_{}",
        trusec_storage::ids::new_id("r").trim_start_matches("r_")
    )
}

fn issuer(entity: &str) -> Issuer {
    Issuer {
        value: Some(entity.to_owned()),
        format: Some("urn:oasis:names:tc:SAML:2.0:nameid-format:entity".to_owned()),
        ..Issuer::default()
    }
}

fn template(id: &str, cert: &CertificateDer) -> Signature {
    let mut sig = Signature::template(id, cert);
    for reference in &mut sig.signed_info.reference {
        reference.digest_method.algorithm = DigestAlgorithm::Sha256;
    }
    sig
}

/// A successful response carrying one assertion.
pub fn success(input: &AssertionInput<'_>) -> Response {
    let not_after = input.now + LIFETIME;
    let assertion = Assertion {
        id: new_id(),
        issue_instant: input.now,
        version: "2.0".into(),
        issuer: issuer(input.idp_entity_id),
        signature: None,
        subject: Some(subject(input, not_after)),
        conditions: Some(Conditions {
            not_before: Some(input.now - SKEW),
            not_on_or_after: Some(not_after),
            audience_restrictions: Some(vec![AudienceRestriction {
                audience: vec![input.sp_entity_id.to_owned()],
            }]),
            one_time_use: None,
            proxy_restriction: None,
        }),
        authn_statements: Some(vec![authn_statement(input)]),
        attribute_statements: (!input.attributes.is_empty())
            .then(|| vec![attribute_statement(&input.attributes)]),
    };
    let status = Status {
        status_code: StatusCode {
            value: Some(SUCCESS.into()),
        },
        status_message: None,
        status_detail: None,
    };
    let mut resp = envelope(
        input.idp_entity_id,
        input.acs_url,
        input.in_response_to,
        status,
        input.now,
    );
    resp.assertion = Some(assertion);
    resp
}

/// The subject: NameID, and bearer confirmation for this ACS and request
/// (profiles §4.1.4.2).
fn subject(input: &AssertionInput<'_>, not_after: DateTime<Utc>) -> Subject {
    Subject {
        name_id: Some(SubjectNameID {
            format: Some(input.name_id_format.to_owned()),
            value: input.name_id.to_owned(),
        }),
        subject_confirmations: Some(vec![SubjectConfirmation {
            method: Some("urn:oasis:names:tc:SAML:2.0:cm:bearer".into()),
            name_id: None,
            subject_confirmation_data: Some(SubjectConfirmationData {
                not_before: None,
                not_on_or_after: Some(not_after),
                recipient: Some(input.acs_url.to_owned()),
                in_response_to: input.in_response_to.map(str::to_owned),
                address: None,
                content: None,
            }),
        }]),
    }
}

fn authn_statement(input: &AssertionInput<'_>) -> AuthnStatement {
    AuthnStatement {
        authn_instant: Some(input.auth_instant),
        session_index: Some(input.session_index.to_owned()),
        session_not_on_or_after: None,
        subject_locality: None,
        authn_context: Some(AuthnContext {
            value: Some(AuthnContextClassRef {
                value: Some(input.authn_context.into()),
            }),
        }),
    }
}

fn attribute_statement(attributes: &[(Released, Vec<String>)]) -> AttributeStatement {
    AttributeStatement {
        attributes: attributes
            .iter()
            .map(|(released, values)| Attribute {
                friendly_name: released.friendly_name.clone(),
                name: Some(released.name.clone()),
                name_format: Some(released.name_format.urn().into()),
                values: values
                    .iter()
                    .map(|v| AttributeValue {
                        attribute_type: Some("xs:string".into()),
                        value: Some(v.clone()),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// A response with `status` and no assertion yet.
fn envelope(
    idp_entity_id: &str,
    acs_url: &str,
    in_response_to: Option<&str>,
    status: Status,
    now: DateTime<Utc>,
) -> Response {
    Response {
        id: new_id(),
        in_response_to: in_response_to.map(str::to_owned),
        version: "2.0".into(),
        issue_instant: now,
        destination: Some(acs_url.to_owned()),
        consent: None,
        issuer: Some(issuer(idp_entity_id)),
        signature: None,
        status: Some(status),
        encrypted_assertion: None,
        assertion: None,
    }
}

/// A response reporting a failure (e.g. `IsPassive` without a session).
pub fn failure(
    idp_entity_id: &str,
    acs_url: &str,
    in_response_to: Option<&str>,
    status: &str,
    message: &str,
    now: DateTime<Utc>,
) -> Response {
    let status = Status {
        status_code: StatusCode {
            value: Some(status.to_owned()),
        },
        status_message: Some(StatusMessage {
            value: Some(message.to_owned()),
        }),
        status_detail: None,
    };
    envelope(idp_entity_id, acs_url, in_response_to, status, now)
}

fn xml(resp: &Response) -> Result<String, SignError> {
    resp.to_string()
        .map_err(|e| SignError::Xml(format!("{e:?}")))
}

/// Signs as configured and returns the XML. xmlsec signs the first
/// `ds:Signature` template in document order, so the assertion is signed
/// first, then (if asked) the response around it.
///
/// # Errors
/// Serialisation or signing failures.
pub fn sign(
    mut resp: Response,
    signing: Signing,
    cert_der: &[u8],
    key_der: &[u8],
) -> Result<String, SignError> {
    let cert = CertificateDer::from(cert_der.to_vec());
    let mut out = xml(&resp)?;
    if signing.assertion
        && let Some(a) = resp.assertion.as_mut()
    {
        a.signature = Some(template(&a.id, &cert));
        out =
            Crypto::sign_xml(xml(&resp)?, key_der).map_err(|e| SignError::Crypto(e.to_string()))?;
    }
    if signing.response || resp.assertion.is_none() {
        let mut signed = Response::from_str(&out).map_err(|e| SignError::Xml(e.to_string()))?;
        signed.signature = Some(template(&signed.id, &cert));
        out = Crypto::sign_xml(xml(&signed)?, key_der)
            .map_err(|e| SignError::Crypto(e.to_string()))?;
    }
    Ok(out)
}

/// An enveloped-signature template for the element with this `ID`, as
/// XML (RSA-SHA256, SHA-256 digest, exclusive C14N, the certificate in
/// `KeyInfo`), to place where the schema puts `ds:Signature`: right after
/// the message's `Issuer` (SAML core §3.2.1, §5.4).
///
/// # Errors
/// Serialisation failures.
pub fn signature_template(id: &str, cert_der: &[u8]) -> Result<String, SignError> {
    template(id, &CertificateDer::from(cert_der.to_vec()))
        .to_string()
        .map_err(|e| SignError::Xml(e.to_string()))
}

/// Fills in the signature template of a protocol message (a logout
/// message for the HTTP-POST binding) through xmlsec.
///
/// # Errors
/// Signing failures.
pub fn sign_message(xml: &str, key_der: &[u8]) -> Result<String, SignError> {
    Crypto::sign_xml(xml, key_der).map_err(|e| SignError::Crypto(e.to_string()))
}
