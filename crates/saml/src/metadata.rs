//! The IdP's metadata (SAML metadata §2.4.3, `IDPSSODescriptor`).

/// Escapes text for an XML attribute or element.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

use trusec_storage::service_providers::{Binding, NameIdFormat};

const BINDING_REDIRECT: &str = Binding::HTTP_REDIRECT;
const BINDING_POST: &str = Binding::HTTP_POST;
const NAMEID_EMAIL: &str = NameIdFormat::EmailAddress.urn();
const NAMEID_PERSISTENT: &str = NameIdFormat::Persistent.urn();
const NAMEID_UNSPECIFIED: &str = NameIdFormat::Unspecified.urn();

/// The metadata document, certificates first (current, then any next one
/// announced ahead of a rotation).
pub fn document(
    entity_id: &str,
    issuer: &str,
    certificates_pem: &[String],
    want_requests_signed: bool,
) -> String {
    unsigned_with(
        entity_id,
        issuer,
        certificates_pem,
        want_requests_signed,
        None,
    )
}

/// The metadata document signed with the IdP key (SAML metadata §3.1), for
/// SPs that require signed metadata: `GET /saml/metadata?signed=true`.
///
/// # Errors
/// Serialisation or signing failures.
pub fn signed_document(
    entity_id: &str,
    issuer: &str,
    certificates_pem: &[String],
    certificate_der: &[u8],
    private_der: &[u8],
) -> Result<String, crate::response::SignError> {
    use crate::response::SignError;
    use samael::crypto::{CertificateDer, Crypto, CryptoProvider};
    use samael::traits::ToXml;
    let id = format!(
        "_{}",
        trusec_storage::ids::new_id("m").trim_start_matches("m_")
    );
    let mut signature = samael::signature::Signature::template(
        &id,
        &CertificateDer::from(certificate_der.to_vec()),
    );
    for r in &mut signature.signed_info.reference {
        r.digest_method.algorithm = samael::signature::DigestAlgorithm::Sha256;
    }
    let signature_xml = signature
        .to_string()
        .map_err(|e| SignError::Xml(format!("{e:?}")))?;
    let doc = unsigned_with(
        entity_id,
        issuer,
        certificates_pem,
        false,
        Some((&id, &signature_xml)),
    );
    Crypto::sign_xml(doc, private_der).map_err(|e| SignError::Crypto(e.to_string()))
}

fn unsigned_with(
    entity_id: &str,
    issuer: &str,
    certificates_pem: &[String],
    want_requests_signed: bool,
    signature: Option<(&str, &str)>,
) -> String {
    let keys: String = certificates_pem
        .iter()
        .map(|pem| {
            format!(
                "    <md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\n",
                crate::idp_key::pem_body(pem)
            )
        })
        .collect();
    let sso = xml_escape(&format!("{issuer}/saml/sso"));
    let slo = xml_escape(&format!("{issuer}/saml/slo"));
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity}"{id_attr}>
{signature}  <md:IDPSSODescriptor WantAuthnRequestsSigned="{want}" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
{keys}    <md:SingleLogoutService Binding="{BINDING_REDIRECT}" Location="{slo}"/>
    <md:SingleLogoutService Binding="{BINDING_POST}" Location="{slo}"/>
    <md:NameIDFormat>{NAMEID_EMAIL}</md:NameIDFormat>
    <md:NameIDFormat>{NAMEID_PERSISTENT}</md:NameIDFormat>
    <md:NameIDFormat>{NAMEID_UNSPECIFIED}</md:NameIDFormat>
    <md:SingleSignOnService Binding="{BINDING_REDIRECT}" Location="{sso}"/>
    <md:SingleSignOnService Binding="{BINDING_POST}" Location="{sso}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
"#,
        entity = xml_escape(entity_id),
        want = want_requests_signed,
        id_attr = signature
            .map(|(id, _)| format!(" ID=\"{id}\""))
            .unwrap_or_default(),
        signature = signature
            .map(|(_, xml)| format!("  {xml}\n"))
            .unwrap_or_default(),
    )
}
