//! Service providers described by their metadata XML (what SaaS apps
//! publish) turned into the fields we store.

use crate::request::refuse_dtd;
use samael::metadata::{EntityDescriptor, IndexedEndpoint, SpSsoDescriptor};
use std::str::FromStr;
use trusec_storage::service_providers::{AssertionCipher, Binding, Endpoint, NameIdFormat};

pub const MAX_METADATA: usize = 256 * 1024;

/// What an SP's metadata says.
#[derive(Debug, Clone)]
pub struct SpDescription {
    pub entity_id: String,
    pub acs: Vec<Endpoint>,
    pub slo: Vec<Endpoint>,
    pub certificate_pem: Option<String>,
    /// The certificate it publishes for encryption, and the content
    /// cipher its `EncryptionMethod`s ask for.
    pub encryption: Option<(String, AssertionCipher)>,
    /// The first format it lists that we issue.
    pub name_id_format: Option<NameIdFormat>,
    pub authn_requests_signed: bool,
    pub name: Option<String>,
}

/// Wraps base64 certificate data as PEM.
pub fn to_pem(b64: &str) -> String {
    let body: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    let lines: Vec<String> = body
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// Checks that a PEM certificate parses.
///
/// # Errors
/// A message for a 422.
pub fn check_certificate(pem: &str) -> Result<(), String> {
    openssl::x509::X509::from_pem(pem.as_bytes())
        .map(|_| ())
        .map_err(|_| "the certificate is not a PEM X.509 certificate".to_owned())
}

/// Checks that a PEM certificate parses and carries an RSA key: the
/// session key of an encrypted assertion is sent by RSA-OAEP, and XML
/// Encryption's EC key agreement is not offered.
///
/// # Errors
/// A message for a 422.
pub fn check_encryption_certificate(pem: &str) -> Result<(), String> {
    let cert = openssl::x509::X509::from_pem(pem.as_bytes())
        .map_err(|_| "the encryption certificate is not a PEM X.509 certificate".to_owned())?;
    let key = cert
        .public_key()
        .map_err(|_| "the encryption certificate's key could not be read".to_owned())?;
    if key.id() == openssl::pkey::Id::RSA {
        Ok(())
    } else {
        Err("the encryption certificate must have an RSA key: assertions are encrypted with              RSA-OAEP key transport, and EC keys are not supported"
            .to_owned())
    }
}

/// Checks that a (parsed) encryption certificate has not expired at `now`:
/// an assertion encrypted to a dead key is one the SP should not be able
/// to open, and a current certificate is what its administrator must give.
///
/// # Errors
/// A message naming the expiry date, for a 422.
pub fn check_not_expired(pem: &str, now: chrono::DateTime<chrono::Utc>) -> Result<(), String> {
    let summary = summarize_certificate(pem)?;
    if summary.not_after < now {
        Err(format!(
            "the encryption certificate expired on {} (notAfter {}): give the SP's current \
             encryption certificate, or turn encrypt_assertions off",
            summary.not_after.format("%Y-%m-%d"),
            summary
                .not_after
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ))
    } else {
        Ok(())
    }
}

/// What an administrator checks of a certificate before trusting it.
#[derive(Debug, Clone)]
pub struct CertificateSummary {
    /// The subject, `CN=…, O=…` (RFC 4514 order is not kept: as printed).
    pub subject: String,
    pub not_before: chrono::DateTime<chrono::Utc>,
    pub not_after: chrono::DateTime<chrono::Utc>,
    /// The public key's size in bits.
    pub key_bits: u32,
}

/// Reads what [`CertificateSummary`] shows from a PEM certificate.
///
/// # Errors
/// A message for a page when it does not parse.
pub fn summarize_certificate(pem: &str) -> Result<CertificateSummary, String> {
    let unreadable = |_| "the certificate could not be read".to_owned();
    let cert = openssl::x509::X509::from_pem(pem.as_bytes()).map_err(unreadable)?;
    let subject = cert
        .subject_name()
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_else(|_| "?".into());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let epoch = openssl::asn1::Asn1Time::from_unix(0).map_err(unreadable)?;
    let time = |t: &openssl::asn1::Asn1TimeRef| {
        let d = epoch.diff(t).map_err(unreadable)?;
        let secs = i64::from(d.days) * 86_400 + i64::from(d.secs);
        chrono::DateTime::from_timestamp(secs, 0).ok_or_else(|| "a date out of range".to_owned())
    };
    Ok(CertificateSummary {
        subject,
        not_before: time(cert.not_before())?,
        not_after: time(cert.not_after())?,
        key_bits: cert.public_key().map_err(unreadable)?.bits(),
    })
}

/// Parses SP metadata.
///
/// # Errors
/// A message naming what is wrong, for a 422.
pub fn parse(xml: &str) -> Result<SpDescription, String> {
    if xml.len() > MAX_METADATA {
        return Err(format!("metadata larger than {MAX_METADATA} bytes"));
    }
    refuse_dtd(xml).map_err(|e| e.to_string())?;
    // samael's error quotes the whole input back: say what was wrong, and
    // log its detail only at debug level.
    let entity = EntityDescriptor::from_str(xml).map_err(|e| {
        tracing::debug!(error = %e, "SP metadata did not parse");
        "not SAML metadata: expected an md:EntityDescriptor element (SAML metadata §2.3.2)"
            .to_owned()
    })?;
    let entity_id = entity
        .entity_id
        .clone()
        .ok_or("the EntityDescriptor has no entityID")?;
    let sp = entity
        .sp_sso_descriptors
        .as_ref()
        .and_then(|d| d.first())
        .ok_or("the metadata has no SPSSODescriptor")?;
    let acs: Vec<Endpoint> = sp
        .assertion_consumer_services
        .iter()
        .map(acs_endpoint)
        .collect();
    if !acs.iter().any(|e| e.binding == Binding::HttpPost) {
        return Err("no AssertionConsumerService with the HTTP-POST binding".into());
    }
    let slo = sp
        .single_logout_services
        .iter()
        .flatten()
        .map(slo_endpoint)
        .collect();
    let certificate_pem = signing_certificate(sp);
    if let Some(pem) = &certificate_pem {
        check_certificate(pem)?;
    }
    let encryption = encryption_key(sp);
    if let Some((pem, _)) = &encryption {
        check_encryption_certificate(pem)?;
    }
    let name_id_format = sp
        .name_id_formats
        .iter()
        .flatten()
        .find_map(|f| NameIdFormat::from_urn(f.trim()));
    Ok(SpDescription {
        entity_id,
        acs,
        slo,
        certificate_pem,
        encryption,
        name_id_format,
        authn_requests_signed: sp.authn_requests_signed.unwrap_or(false),
        name: entity
            .organization
            .as_ref()
            .and_then(|o| o.organization_display_names.as_ref())
            .and_then(|n| n.first())
            .map(|n| n.value.clone()),
    })
}

fn acs_endpoint(e: &IndexedEndpoint) -> Endpoint {
    Endpoint {
        url: e.location.clone(),
        binding: Binding::from_urn(&e.binding),
        index: u16::try_from(e.index).ok(),
        is_default: e.is_default.unwrap_or(false),
        response_url: None,
    }
}

fn slo_endpoint(e: &samael::metadata::Endpoint) -> Endpoint {
    Endpoint {
        url: e.location.clone(),
        binding: Binding::from_urn(&e.binding),
        index: None,
        is_default: false,
        response_url: e.response_location.clone(),
    }
}

/// The first certificate the SP publishes for signing (or for any use).
fn signing_certificate(sp: &SpSsoDescriptor) -> Option<String> {
    sp.key_descriptors
        .iter()
        .flatten()
        .filter(|k| k.key_use.as_deref().is_none_or(|u| u == "signing"))
        .find_map(first_certificate)
        .map(|b64| to_pem(b64))
}

/// The certificate the SP publishes for encryption — a `KeyDescriptor`
/// with `use="encryption"`, else one without `use`, which serves both
/// (SAML metadata §2.4.1.1) — and the cipher its `EncryptionMethod`s ask for.
fn encryption_key(sp: &SpSsoDescriptor) -> Option<(String, AssertionCipher)> {
    let descriptors: Vec<_> = sp.key_descriptors.iter().flatten().collect();
    let with_use = |wanted: Option<&str>| {
        descriptors
            .iter()
            .find(|k| k.key_use.as_deref() == wanted && first_certificate(k).is_some())
    };
    let k = with_use(Some("encryption")).or_else(|| with_use(None))?;
    let methods: Vec<&str> = k
        .encryption_methods
        .iter()
        .flatten()
        .map(|m| m.algorithm.trim())
        .collect();
    Some((to_pem(first_certificate(k)?), cipher_for(&methods)))
}

fn first_certificate(k: &samael::metadata::KeyDescriptor) -> Option<&String> {
    k.key_info
        .x509_data
        .as_ref()
        .and_then(|d| d.certificates.first())
}

/// AES-256-GCM, unless the SP lists content ciphers, none of them GCM, and
/// AES-CBC among them (XML Encryption 1.1 §5.2: an SP that names only CBC
/// may not decrypt GCM). Key-transport algorithms in the list do not
/// count: the session key always goes by RSA-OAEP (`rsa-oaep-mgf1p`, which
/// XML Encryption requires every implementation to support, §5.5.2).
fn cipher_for(methods: &[&str]) -> AssertionCipher {
    const XMLENC: &str = "http://www.w3.org/2001/04/xmlenc#";
    const XMLENC11: &str = "http://www.w3.org/2009/xmlenc11#";
    let gcm = |m: &&str| {
        ["aes128-gcm", "aes192-gcm", "aes256-gcm"]
            .iter()
            .any(|a| *m == format!("{XMLENC11}{a}"))
    };
    let cbc = |m: &&str| {
        ["aes128-cbc", "aes192-cbc", "aes256-cbc"]
            .iter()
            .any(|a| *m == format!("{XMLENC}{a}"))
    };
    if !methods.iter().any(gcm) && methods.iter().any(cbc) {
        AssertionCipher::Aes256Cbc
    } else {
        AssertionCipher::Aes256Gcm
    }
}
