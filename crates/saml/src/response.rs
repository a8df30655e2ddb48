//! Building and signing the `Response` (SAML core §3.3.3, profiles §4.1.4):
//! built once from samael's schema types, signed by xmlsec with RSA-SHA256,
//! SHA-256 digests and exclusive C14N — the assertion, the response, or both
//! — and, for an SP with an encryption key, the signed assertion encrypted
//! into an `EncryptedAssertion` (core §2.3.4) by xmlsec before the response
//! around it is signed.

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
use trusec_storage::assurance::AuthnContextClass;
use trusec_storage::service_providers::{AssertionCipher, Released};
use trusec_storage::sessions::AuthMethod;
use trusec_xmlsec_io::{Cipher, EncryptError, Target};

/// Assertions are valid this long (the issue asks for at most five minutes).
pub const LIFETIME: TimeDelta = TimeDelta::minutes(5);
/// Clock skew tolerated between us and the SP.
pub const SKEW: TimeDelta = TimeDelta::minutes(1);
/// The `AuthnContextClassRef` of a sign-in that used `amr` when the SP
/// asked for none ([`AuthnContextClass::default_for`]).
pub fn authn_context_class(amr: &[AuthMethod]) -> &'static str {
    AuthnContextClass::default_for(amr).uri()
}
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
const RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";

/// Why no assertion is sent (SAML core §3.2.2.2, second-level codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// `IsPassive`, and the user would have to interact.
    NoPassive,
    /// The `RequestedAuthnContext` cannot be met.
    NoAuthnContext,
}

impl Failure {
    /// The top-level code: the SP asked for what cannot be given without
    /// the user (`Responder`, as the IdP cannot act passively), or for a
    /// context we cannot assert (`Requester`).
    const fn top(self) -> &'static str {
        match self {
            Self::NoPassive => RESPONDER,
            Self::NoAuthnContext => REQUESTER,
        }
    }

    pub const fn second(self) -> &'static str {
        match self {
            Self::NoPassive => "urn:oasis:names:tc:SAML:2.0:status:NoPassive",
            Self::NoAuthnContext => "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext",
        }
    }

    const fn message(self) -> &'static str {
        match self {
            Self::NoPassive => "The user must sign in, and IsPassive forbids asking.",
            Self::NoAuthnContext => "The requested authentication context cannot be met.",
        }
    }
}

/// A `Response` to sign, with the second-level status code samael's
/// schema has no field for (core §3.2.2.2: nested in the top-level one).
pub struct Outgoing {
    pub response: Response,
    nested_status: Option<&'static str>,
}

impl From<Response> for Outgoing {
    fn from(response: Response) -> Self {
        Self {
            response,
            nested_status: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("XML serialisation failed: {0}")]
    Xml(String),
    #[error("signing failed: {0}")]
    Crypto(String),
    #[error("encrypting the assertion failed: {0}")]
    Encrypt(#[from] EncryptError),
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

/// Whom to encrypt the assertion for, and with which content cipher.
#[derive(Clone, Debug)]
pub struct Encryption {
    /// The SP's encryption certificate, PEM (an RSA key, checked at import).
    pub certificate_pem: String,
    pub cipher: AssertionCipher,
}

impl Encryption {
    /// The SP's encryption, when it has a certificate and it is on.
    pub fn of(sp: &trusec_storage::service_providers::ServiceProviderRow) -> Option<Self> {
        sp.encryption_certificate_pem
            .as_ref()
            .filter(|_| sp.encrypt_assertions)
            .map(|pem| Self {
                certificate_pem: pem.clone(),
                cipher: sp.assertion_cipher,
            })
    }

    /// The expiry date (`YYYY-MM-DD`) of the certificate when it has
    /// expired at `now`: an assertion is then refused rather than
    /// encrypted to a dead key (`Refusal::EncryptionCertificateExpired`).
    ///
    /// # Errors
    /// A certificate that no longer parses (it did at import).
    pub fn expired_on(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Option<String>, String> {
        let not_after = crate::sp_metadata::summarize_certificate(&self.certificate_pem)?.not_after;
        Ok((not_after < now).then(|| not_after.format("%Y-%m-%d").to_string()))
    }
}

const fn cipher(c: AssertionCipher) -> Cipher {
    match c {
        AssertionCipher::Aes256Gcm => Cipher::Aes256Gcm,
        AssertionCipher::Aes128Gcm => Cipher::Aes128Gcm,
        AssertionCipher::Aes256Cbc => Cipher::Aes256Cbc,
    }
}

/// The response's `saml:Assertion`, replaced by
/// `<saml2:EncryptedAssertion><xenc:EncryptedData>…` (xmlsec's work).
const ASSERTION: Target<'static> = Target {
    namespace: "urn:oasis:names:tc:SAML:2.0:assertion",
    element: "Assertion",
    prefix: "saml2",
    wrapper: "EncryptedAssertion",
};

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

/// A response reporting a failure, with its two status codes.
pub fn failure(
    idp_entity_id: &str,
    acs_url: &str,
    in_response_to: Option<&str>,
    failure: Failure,
    now: DateTime<Utc>,
) -> Outgoing {
    let status = Status {
        status_code: StatusCode {
            value: Some(failure.top().to_owned()),
        },
        status_message: Some(StatusMessage {
            value: Some(failure.message().to_owned()),
        }),
        status_detail: None,
    };
    Outgoing {
        response: envelope(idp_entity_id, acs_url, in_response_to, status, now),
        nested_status: Some(failure.second()),
    }
}

/// The response as XML, with its second-level status code (if any) put
/// inside the top-level one, before anything is signed.
fn xml(resp: &Response, nested_status: Option<&str>) -> Result<String, SignError> {
    let out = resp
        .to_string()
        .map_err(|e| SignError::Xml(format!("{e:?}")))?;
    let (Some(nested), Some(top)) = (
        nested_status,
        resp.status
            .as_ref()
            .and_then(|s| s.status_code.value.as_deref()),
    ) else {
        return Ok(out);
    };
    let empty = format!(r#"<saml2p:StatusCode Value="{top}"/>"#);
    if !out.contains(&empty) {
        return Err(SignError::Xml("no top-level StatusCode to nest in".into()));
    }
    let nested = format!(
        r#"<saml2p:StatusCode Value="{top}"><saml2p:StatusCode Value="{nested}"/></saml2p:StatusCode>"#
    );
    Ok(out.replacen(&empty, &nested, 1))
}

/// Signs as configured, encrypts the assertion when asked, and returns the
/// XML. xmlsec signs the first `ds:Signature` template in document order,
/// so the assertion is signed first; then the response gets its template
/// (before the assertion in document order); then the signed assertion is
/// encrypted; and last the response is signed, so its signature covers the
/// `EncryptedAssertion` the SP receives (SAML core §6.2: sign, then
/// encrypt; the outer signature over what is sent).
///
/// # Errors
/// Serialisation, signing or encryption failures.
pub fn sign(
    outgoing: impl Into<Outgoing>,
    signing: Signing,
    encryption: Option<&Encryption>,
    cert_der: &[u8],
    key_der: &[u8],
) -> Result<String, SignError> {
    let Outgoing {
        response: mut resp,
        nested_status,
    } = outgoing.into();
    let cert = CertificateDer::from(cert_der.to_vec());
    // Only a failure has a nested status, and a failure has no assertion:
    // it is always signed as a whole below, where the code goes in.
    let mut out = xml(&resp, None)?;
    if signing.assertion
        && let Some(a) = resp.assertion.as_mut()
    {
        a.signature = Some(template(&a.id, &cert));
        out = Crypto::sign_xml(xml(&resp, None)?, key_der)
            .map_err(|e| SignError::Crypto(e.to_string()))?;
    }
    let sign_response = signing.response || resp.assertion.is_none();
    if sign_response {
        let mut signed = Response::from_str(&out).map_err(|e| SignError::Xml(e.to_string()))?;
        signed.signature = Some(template(&signed.id, &cert));
        out = xml(&signed, nested_status)?;
    }
    if let Some(e) = encryption
        && resp.assertion.is_some()
    {
        out = trusec_xmlsec_io::encrypt_element(
            &out,
            &ASSERTION,
            e.certificate_pem.as_bytes(),
            cipher(e.cipher),
        )?;
    }
    if sign_response {
        out = Crypto::sign_xml(out, key_der).map_err(|e| SignError::Crypto(e.to_string()))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::state;
    use trusec_testdb::TestDb;

    fn input(now: DateTime<Utc>) -> AssertionInput<'static> {
        AssertionInput {
            idp_entity_id: "https://idp.test/saml/metadata",
            sp_entity_id: "https://sp.test",
            acs_url: "https://sp.test/acs",
            in_response_to: None,
            name_id: "ada@example.com",
            name_id_format: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
            session_index: "_s",
            auth_instant: now,
            authn_context: AuthnContextClass::PasswordProtectedTransport.uri(),
            now,
            attributes: vec![(Released::basic("email"), vec!["ada@example.com".into()])],
        }
    }

    fn ec_certificate() -> String {
        use openssl::{asn1::Asn1Time, ec, hash::MessageDigest, nid::Nid, pkey::PKey, x509};
        let group = ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(ec::EcKey::generate(&group).unwrap()).unwrap();
        let mut cert = x509::X509::builder().unwrap();
        cert.set_pubkey(&key).unwrap();
        cert.set_not_before(Asn1Time::days_from_now(0).unwrap().as_ref())
            .unwrap();
        cert.set_not_after(Asn1Time::days_from_now(1).unwrap().as_ref())
            .unwrap();
        cert.sign(&key, MessageDigest::sha256()).unwrap();
        String::from_utf8(cert.build().to_pem().unwrap()).unwrap()
    }

    /// The assertion leaves only as ciphertext, by the cipher asked for,
    /// inside the signed response; a certificate without an RSA key is a
    /// typed error, not a crash.
    #[tokio::test]
    async fn the_assertion_goes_out_encrypted_inside_the_signed_response() {
        let test_db = TestDb::sqlite();
        let state = state(&test_db).await;
        let key = state.keys.current();
        let now = state.core().clock.now();
        let signing = Signing {
            response: true,
            assertion: true,
        };
        for c in AssertionCipher::ALL {
            let enc = Encryption {
                certificate_pem: key.certificate_pem.clone(),
                cipher: *c,
            };
            let key = key.clone();
            let xml = state
                .xml
                .run(move || {
                    sign(
                        success(&input(now)),
                        signing,
                        Some(&enc),
                        &key.certificate_der,
                        &key.private_der,
                    )
                })
                .await
                .unwrap()
                .unwrap();
            assert!(xml.contains("<saml2:EncryptedAssertion"), "{xml}");
            assert!(!xml.contains("<saml2:Assertion"), "{xml}");
            assert!(!xml.contains("ada@example.com"), "{xml}");
            assert!(xml.contains(c.uri()), "{xml}");
            assert!(xml.contains(trusec_xmlsec_io::KEY_TRANSPORT), "{xml}");
            assert_eq!(xml.matches("<ds:SignatureValue>").count(), 1, "{xml}");
        }
        let ec = Encryption {
            certificate_pem: ec_certificate(),
            cipher: AssertionCipher::Aes256Gcm,
        };
        let refused = state
            .xml
            .run(move || {
                sign(
                    success(&input(now)),
                    signing,
                    Some(&ec),
                    &key.certificate_der,
                    &key.private_der,
                )
            })
            .await
            .unwrap();
        assert!(matches!(refused, Err(SignError::Encrypt(_))), "{refused:?}");
    }
}
