//! Validation of a service provider's configuration (`/v1/saml/service-
//! providers`), from its metadata XML ([`crate::sp_metadata`]) or from plain
//! fields, over the current configuration for an update.
//!
//! The rules are the ones the IdP relies on later, so they live next to the
//! code that relies on them: every ACS and SLO endpoint is https (http only
//! on loopback hosts), because assertions and signed logout messages are
//! sent there; there is an HTTP-POST ACS, the only binding assertions go
//! out by; the response, the assertion or both are signed; an SP that
//! wants signed requests has registered the certificate to check them with;
//! and assertions are encrypted only for an SP with an encryption
//! certificate (an RSA one) that has not expired when it is given.

use crate::{profiles, sp_metadata};
use std::collections::BTreeMap;
use trusec_storage::service_providers::{
    AssertionCipher, AttributeMap, AttributeNameFormat, AttributeProfile, Binding, Endpoint,
    NameIdFormat, Released, SpFields, UserAttribute,
};

/// The user attributes an SP may receive, in the contract's order.
pub const ATTRIBUTES: [UserAttribute; 5] = [
    UserAttribute::Email,
    UserAttribute::Name,
    UserAttribute::GivenName,
    UserAttribute::FamilyName,
    UserAttribute::Groups,
];
const MAX_NAME: usize = 256;
const MAX_ENTITY_ID: usize = 1024;
const MAX_ATTRIBUTE_NAME: usize = 256;

/// What a caller asks for; `None` keeps the current value (or the default).
#[derive(Clone, Debug, Default)]
pub struct SpInput {
    pub metadata_xml: Option<String>,
    pub entity_id: Option<String>,
    pub acs_url: Option<String>,
    pub certificate_pem: Option<String>,
    pub name: Option<String>,
    pub name_id_format: Option<String>,
    pub attributes: Option<AttributesInput>,
    pub attribute_profile: Option<String>,
    pub sign_response: Option<bool>,
    pub sign_assertion: Option<bool>,
    pub want_authn_requests_signed: Option<bool>,
    pub encryption_certificate_pem: Option<String>,
    pub encrypt_assertions: Option<bool>,
    /// `aes256-gcm`, `aes128-gcm` or `aes256-cbc`.
    pub assertion_cipher: Option<String>,
}

/// Which attributes to release: a list of our names (released as the
/// profile names them), or our names mapped to how the SP wants them.
#[derive(Clone, Debug)]
pub enum AttributesInput {
    List(Vec<String>),
    Map(BTreeMap<String, MappedInput>),
}

/// How a caller asks for one attribute: a bare `Name` (in the profile's
/// name format), or all of it.
#[derive(Clone, Debug)]
pub enum MappedInput {
    Name(String),
    Full {
        name: String,
        name_format: Option<String>,
        friendly_name: Option<String>,
    },
}

/// Why a configuration is refused, naming the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpConfigError {
    /// Neither metadata nor an entity id and ACS URL: nothing to build on.
    #[error("{message}")]
    Incomplete {
        field: &'static str,
        message: &'static str,
    },
    /// A field that breaks a rule.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> SpConfigError {
    SpConfigError::Invalid {
        field,
        message: message.into(),
    }
}

/// The configuration `input` asks for, over `base` (the current one) for
/// an update, complete with defaults and checked as a whole at `now`.
///
/// # Errors
/// [`SpConfigError`] naming the first field at fault.
pub fn validate(
    input: SpInput,
    base: Option<SpFields>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<SpFields, SpConfigError> {
    let given = given_encryption_field(&input);
    let fields = start(&input, base)?;
    let fields = apply(input, fields)?;
    let fields = check(fields)?;
    if let (Some(field), Some(pem)) = (given, &fields.encryption_certificate_pem) {
        sp_metadata::check_not_expired(pem, now).map_err(|m| invalid(field, m))?;
    }
    Ok(fields)
}

/// The field whose encryption certificate must be current: one given in
/// this request (in `encryption_certificate_pem`, else in the metadata),
/// unless the same request turns encryption off; else `encrypt_assertions`
/// when the request turns encryption on for the certificate on file.
fn given_encryption_field(input: &SpInput) -> Option<&'static str> {
    match input.encrypt_assertions {
        Some(false) => None,
        _ if input.encryption_certificate_pem.is_some() => Some("encryption_certificate_pem"),
        _ if input.metadata_xml.is_some() => Some("metadata_xml"),
        Some(true) => Some("encrypt_assertions"),
        None => None,
    }
}

fn all_attributes() -> AttributeMap {
    ATTRIBUTES
        .iter()
        .map(|a| (*a, Released::basic(a.as_str())))
        .collect()
}

fn post_acs(url: String) -> Vec<Endpoint> {
    vec![Endpoint {
        url,
        binding: Binding::HttpPost,
        index: Some(0),
        is_default: true,
        response_url: None,
    }]
}

/// What the fields apply to: the metadata when given, else the current
/// configuration, else a new SP from `entity_id` and `acs_url`.
fn start(input: &SpInput, base: Option<SpFields>) -> Result<SpFields, SpConfigError> {
    if let Some(xml) = &input.metadata_xml {
        let d = sp_metadata::parse(xml).map_err(|m| invalid("metadata_xml", m))?;
        let (encryption_certificate_pem, assertion_cipher) = d
            .encryption
            .map_or((None, AssertionCipher::default()), |(pem, c)| {
                (Some(pem), c)
            });
        return Ok(SpFields {
            name: d.name.clone().unwrap_or_else(|| d.entity_id.clone()),
            entity_id: d.entity_id,
            acs_endpoints: d.acs,
            slo_endpoints: d.slo,
            certificate_pem: d.certificate_pem,
            name_id_format: d.name_id_format.unwrap_or_default(),
            attributes: all_attributes(),
            attribute_profile: AttributeProfile::Basic,
            sign_response: true,
            sign_assertion: true,
            want_authn_requests_signed: d.authn_requests_signed,
            // On by default when the SP publishes an encryption key.
            encrypt_assertions: encryption_certificate_pem.is_some(),
            encryption_certificate_pem,
            assertion_cipher,
        });
    }
    if let Some(base) = base {
        return Ok(base);
    }
    let missing = |field| SpConfigError::Incomplete {
        field,
        message: "give metadata_xml, or entity_id and acs_url",
    };
    let entity_id = input
        .entity_id
        .clone()
        .ok_or_else(|| missing("entity_id"))?;
    let acs_url = input.acs_url.clone().ok_or_else(|| missing("acs_url"))?;
    Ok(SpFields {
        name: entity_id.clone(),
        entity_id,
        acs_endpoints: post_acs(acs_url),
        slo_endpoints: Vec::new(),
        certificate_pem: None,
        name_id_format: NameIdFormat::default(),
        attributes: all_attributes(),
        attribute_profile: AttributeProfile::Basic,
        sign_response: true,
        sign_assertion: true,
        want_authn_requests_signed: false,
        encryption_certificate_pem: None,
        encrypt_assertions: false,
        assertion_cipher: AssertionCipher::default(),
    })
}

/// The plain fields, over what the metadata (or the current SP) says.
fn apply(input: SpInput, mut f: SpFields) -> Result<SpFields, SpConfigError> {
    if input.metadata_xml.is_none() {
        if let Some(e) = input.entity_id {
            f.entity_id = e;
        }
        if let Some(url) = input.acs_url {
            f.acs_endpoints = post_acs(url);
        }
    }
    if let Some(pem) = input.certificate_pem {
        sp_metadata::check_certificate(&pem).map_err(|m| invalid("certificate_pem", m))?;
        f.certificate_pem = Some(pem);
    }
    if let Some(pem) = input.encryption_certificate_pem {
        sp_metadata::check_encryption_certificate(&pem)
            .map_err(|m| invalid("encryption_certificate_pem", m))?;
        f.encryption_certificate_pem = Some(pem);
        // A key given is a key to use, unless the same request says not.
        f.encrypt_assertions = true;
    }
    if let Some(n) = input.name {
        f.name = n;
    }
    if let Some(fmt) = input.name_id_format {
        f.name_id_format = NameIdFormat::from_urn_or_name(fmt.trim()).ok_or_else(|| {
            invalid(
                "name_id_format",
                "must be emailAddress, persistent, transient or unspecified, or its URN",
            )
        })?;
    }
    if let Some(p) = input.attribute_profile {
        let profile = AttributeProfile::parse(p.trim())
            .ok_or_else(|| invalid("attribute_profile", "must be basic, oid or microsoft"))?;
        // A new profile renames what the SP receives (the same attributes);
        // `attributes` in the same request overrides it.
        f.attributes = f
            .attributes
            .keys()
            .map(|a| (*a, profiles::release(profile, *a)))
            .collect();
        f.attribute_profile = profile;
    }
    if let Some(a) = input.attributes {
        f.attributes = attributes(a, f.attribute_profile)?;
    }
    f.sign_response = input.sign_response.unwrap_or(f.sign_response);
    f.sign_assertion = input.sign_assertion.unwrap_or(f.sign_assertion);
    f.want_authn_requests_signed = input
        .want_authn_requests_signed
        .unwrap_or(f.want_authn_requests_signed);
    f.encrypt_assertions = input.encrypt_assertions.unwrap_or(f.encrypt_assertions);
    if let Some(c) = input.assertion_cipher {
        let must = "must be aes256-gcm, aes128-gcm or aes256-cbc";
        f.assertion_cipher =
            AssertionCipher::parse(c.trim()).ok_or_else(|| invalid("assertion_cipher", must))?;
    }
    Ok(f)
}

fn attributes(
    input: AttributesInput,
    profile: AttributeProfile,
) -> Result<AttributeMap, SpConfigError> {
    let asked: Vec<(String, Option<MappedInput>)> = match input {
        AttributesInput::List(names) => names.into_iter().map(|n| (n, None)).collect(),
        AttributesInput::Map(m) => m.into_iter().map(|(k, v)| (k, Some(v))).collect(),
    };
    let mut map = AttributeMap::new();
    for (ours, theirs) in asked {
        let Some(attribute) = UserAttribute::parse(&ours) else {
            let names: Vec<&str> = UserAttribute::ALL.iter().map(|a| a.as_str()).collect();
            return Err(invalid(
                "attributes",
                format!("unknown attribute {ours}; use one of {}", names.join(", ")),
            ));
        };
        let released = match theirs {
            None => profiles::release(profile, attribute),
            Some(MappedInput::Name(name)) => Released {
                name,
                name_format: profiles::name_format(profile),
                friendly_name: None,
            },
            Some(MappedInput::Full {
                name,
                name_format,
                friendly_name,
            }) => Released {
                name,
                name_format: match name_format {
                    None => profiles::name_format(profile),
                    Some(f) => AttributeNameFormat::parse(f.trim()).ok_or_else(|| {
                        invalid(
                            "attributes",
                            "name_format must be basic, uri or unspecified",
                        )
                    })?,
                },
                friendly_name,
            },
        };
        let too_long = |s: &str| s.trim().is_empty() || s.len() > MAX_ATTRIBUTE_NAME;
        if too_long(&released.name) || released.friendly_name.as_deref().is_some_and(too_long) {
            return Err(invalid(
                "attributes",
                "attribute names are 1 to 256 characters",
            ));
        }
        map.insert(attribute, released);
    }
    Ok(map)
}

/// An endpoint we send assertions or logout messages to: https, or http
/// on a loopback host (development).
fn check_url(field: &'static str, url: &str) -> Result<(), SpConfigError> {
    let parsed = url::Url::parse(url).map_err(|_| invalid(field, "must be an absolute URL"))?;
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback) {
        Ok(())
    } else {
        Err(invalid(
            field,
            "must be https (http only on loopback hosts)",
        ))
    }
}

/// The rules on the whole configuration.
fn check(mut f: SpFields) -> Result<SpFields, SpConfigError> {
    f.name = f.name.trim().to_owned();
    if f.name.is_empty() || f.name.chars().count() > MAX_NAME {
        return Err(invalid("name", "must be 1 to 256 characters"));
    }
    if f.entity_id.trim().is_empty() || f.entity_id.len() > MAX_ENTITY_ID {
        return Err(invalid("entity_id", "must be 1 to 1024 characters"));
    }
    for e in &f.acs_endpoints {
        check_url("acs_url", &e.url)?;
    }
    // Signed LogoutRequests and responses go there: the same rule.
    for e in &f.slo_endpoints {
        check_url("metadata_xml", &e.url)?;
        if let Some(r) = &e.response_url {
            check_url("metadata_xml", r)?;
        }
    }
    if !f
        .acs_endpoints
        .iter()
        .any(|e| e.binding == Binding::HttpPost)
    {
        return Err(invalid(
            "acs_url",
            "an HTTP-POST assertion consumer service is required",
        ));
    }
    if !f.sign_response && !f.sign_assertion {
        return Err(invalid(
            "sign_assertion",
            "sign the response, the assertion, or both",
        ));
    }
    if f.want_authn_requests_signed && f.certificate_pem.is_none() {
        return Err(invalid(
            "certificate_pem",
            "signed requests need the SP's signing certificate",
        ));
    }
    if f.encrypt_assertions && f.encryption_certificate_pem.is_none() {
        return Err(invalid(
            "encrypt_assertions",
            "assertions can only be encrypted for an SP with an encryption certificate \
             (a metadata KeyDescriptor use=\"encryption\", or encryption_certificate_pem)",
        ));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`super::validate`] at a fixed time (2026-12-06).
    fn validate(input: SpInput, base: Option<SpFields>) -> Result<SpFields, SpConfigError> {
        let now = chrono::DateTime::from_timestamp(1_796_515_200, 0).unwrap_or_default();
        super::validate(input, base, now)
    }

    fn plain(entity_id: &str, acs_url: &str) -> SpInput {
        SpInput {
            entity_id: Some(entity_id.into()),
            acs_url: Some(acs_url.into()),
            ..SpInput::default()
        }
    }

    fn field_of(e: SpConfigError) -> &'static str {
        match e {
            SpConfigError::Incomplete { field, .. } | SpConfigError::Invalid { field, .. } => field,
        }
    }

    /// A PEM RSA certificate valid until `not_after` (Unix time).
    fn certificate_until(not_after: i64) -> String {
        use openssl::{asn1::Asn1Time, hash::MessageDigest, pkey::PKey, rsa::Rsa, x509};
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut cert = x509::X509::builder().unwrap();
        cert.set_pubkey(&key).unwrap();
        let from = Asn1Time::from_unix(not_after - 86_400 * 400).unwrap();
        cert.set_not_before(&from).unwrap();
        cert.set_not_after(&Asn1Time::from_unix(not_after).unwrap())
            .unwrap();
        cert.sign(&key, MessageDigest::sha256()).unwrap();
        String::from_utf8(cert.build().to_pem().unwrap()).unwrap()
    }

    #[test]
    fn an_expired_encryption_certificate_is_refused_only_when_given_for_use() {
        // A day before the fixed now of `validate`.
        let expired = certificate_until(1_796_515_200 - 86_400);
        let with = |encrypt: Option<bool>| SpInput {
            encryption_certificate_pem: Some(expired.clone()),
            encrypt_assertions: encrypt,
            ..plain("https://sp", "https://sp/acs")
        };
        let refused = validate(with(None), None).unwrap_err();
        assert_eq!(field_of(refused.clone()), "encryption_certificate_pem");
        assert!(
            refused.to_string().contains("expired on 2026-12-05"),
            "{refused}"
        );
        let kept = validate(with(Some(false)), None).unwrap();
        assert!(!kept.encrypt_assertions);
        let on = SpInput {
            encrypt_assertions: Some(true),
            ..SpInput::default()
        };
        let refused = validate(on, Some(kept.clone())).unwrap_err();
        assert_eq!(field_of(refused), "encrypt_assertions");
        let renamed = SpInput {
            name: Some("Renamed".into()),
            ..SpInput::default()
        };
        assert!(validate(renamed, Some(kept)).is_ok());
        // Current: encrypted.
        let current = SpInput {
            encryption_certificate_pem: Some(certificate_until(1_796_515_200 + 86_400)),
            ..plain("https://sp", "https://sp/acs")
        };
        assert!(validate(current, None).unwrap().encrypt_assertions);
    }

    #[test]
    fn a_plain_sp_gets_the_defaults() -> Result<(), SpConfigError> {
        let f = validate(plain("https://sp", "https://sp/acs"), None)?;
        assert_eq!(f.name, "https://sp");
        assert_eq!(f.acs_endpoints, post_acs("https://sp/acs".into()));
        assert_eq!(f.name_id_format, NameIdFormat::EmailAddress);
        assert_eq!(f.attributes.len(), ATTRIBUTES.len());
        assert!(f.sign_response && f.sign_assertion && !f.want_authn_requests_signed);
        Ok(())
    }

    #[test]
    fn an_update_keeps_what_it_does_not_name() -> Result<(), SpConfigError> {
        let base = validate(plain("https://sp", "https://sp/acs"), None)?;
        let input = SpInput {
            name: Some("  CRM ".into()),
            sign_response: Some(false),
            attributes: Some(AttributesInput::Map(BTreeMap::from([(
                "email".to_owned(),
                MappedInput::Name("mail".to_owned()),
            )]))),
            ..SpInput::default()
        };
        let f = validate(input, Some(base))?;
        assert_eq!(
            (f.name.as_str(), f.entity_id.as_str()),
            ("CRM", "https://sp")
        );
        assert!(!f.sign_response && f.sign_assertion);
        assert_eq!(
            f.attributes.get(&UserAttribute::Email),
            Some(&Released::basic("mail"))
        );
        Ok(())
    }

    #[test]
    fn a_profile_renames_the_attributes_and_a_mapping_overrides_it() -> Result<(), SpConfigError> {
        let base = validate(plain("https://sp", "https://sp/acs"), None)?;
        let oid = SpInput {
            attribute_profile: Some("oid".into()),
            ..SpInput::default()
        };
        let f = validate(oid, Some(base.clone()))?;
        assert_eq!(f.attribute_profile, AttributeProfile::Oid);
        assert_eq!(f.attributes.len(), ATTRIBUTES.len());
        let mail = f.attributes.get(&UserAttribute::Email);
        assert_eq!(
            mail.map(|r| (r.name.as_str(), r.name_format, r.friendly_name.as_deref())),
            Some((
                "urn:oid:0.9.2342.19200300.100.1.3",
                AttributeNameFormat::Uri,
                Some("mail")
            ))
        );
        let custom = SpInput {
            attribute_profile: Some("microsoft".into()),
            attributes: Some(AttributesInput::Map(BTreeMap::from([
                ("email".to_owned(), MappedInput::Name("urn:x:mail".into())),
                (
                    "pairwise_id".to_owned(),
                    MappedInput::Full {
                        name: "pid".into(),
                        name_format: Some("basic".into()),
                        friendly_name: None,
                    },
                ),
            ]))),
            ..SpInput::default()
        };
        let f = validate(custom, Some(base.clone()))?;
        assert_eq!(f.attributes.len(), 2);
        assert_eq!(
            f.attributes
                .get(&UserAttribute::Email)
                .map(|r| r.name_format),
            Some(AttributeNameFormat::Uri),
            "a bare name takes the profile's name format"
        );
        assert_eq!(
            f.attributes.get(&UserAttribute::PairwiseId),
            Some(&Released::basic("pid"))
        );
        let bad = SpInput {
            attribute_profile: Some("ldap".into()),
            ..SpInput::default()
        };
        assert_eq!(
            field_of(validate(bad, Some(base)).unwrap_err()),
            "attribute_profile"
        );
        Ok(())
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases = [
            (SpInput::default(), "entity_id"),
            (
                SpInput {
                    entity_id: Some("https://sp".into()),
                    ..SpInput::default()
                },
                "acs_url",
            ),
            (plain("https://sp", "http://sp/acs"), "acs_url"),
            (
                SpInput {
                    name: Some("SP".into()),
                    ..plain(" ", "https://sp/acs")
                },
                "entity_id",
            ),
            (
                SpInput {
                    attributes: Some(AttributesInput::List(vec!["ssn".into()])),
                    ..plain("https://sp", "https://sp/acs")
                },
                "attributes",
            ),
            (
                SpInput {
                    name_id_format: Some("x509".into()),
                    ..plain("https://sp", "https://sp/acs")
                },
                "name_id_format",
            ),
            (
                SpInput {
                    sign_response: Some(false),
                    sign_assertion: Some(false),
                    ..plain("https://sp", "https://sp/acs")
                },
                "sign_assertion",
            ),
            (
                SpInput {
                    want_authn_requests_signed: Some(true),
                    ..plain("https://sp", "https://sp/acs")
                },
                "certificate_pem",
            ),
            (
                SpInput {
                    certificate_pem: Some("not a certificate".into()),
                    ..plain("https://sp", "https://sp/acs")
                },
                "certificate_pem",
            ),
            (
                SpInput {
                    metadata_xml: Some("<not-metadata/>".into()),
                    ..SpInput::default()
                },
                "metadata_xml",
            ),
        ];
        for (input, field) in cases {
            let refused = validate(input.clone(), None);
            assert_eq!(refused.map_err(field_of).err(), Some(field), "{input:?}");
        }
        assert!(matches!(
            validate(SpInput::default(), None),
            Err(SpConfigError::Incomplete { .. })
        ));
    }

    #[test]
    fn name_id_formats_are_taken_by_urn_or_short_name() -> Result<(), SpConfigError> {
        for (given, format) in [
            ("persistent", NameIdFormat::Persistent),
            ("transient", NameIdFormat::Transient),
            (
                "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
                NameIdFormat::Transient,
            ),
            (
                "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
                NameIdFormat::EmailAddress,
            ),
            (
                "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
                NameIdFormat::Unspecified,
            ),
        ] {
            let input = SpInput {
                name_id_format: Some(given.into()),
                ..plain("https://sp", "https://sp/acs")
            };
            assert_eq!(validate(input, None)?.name_id_format, format, "{given}");
        }
        Ok(())
    }

    #[test]
    fn loopback_http_is_allowed_for_development() {
        assert!(check_url("acs_url", "http://127.0.0.1:3000/acs").is_ok());
        assert!(check_url("acs_url", "http://localhost/acs").is_ok());
        assert!(check_url("acs_url", "http://example.com/acs").is_err());
        assert!(check_url("acs_url", "/acs").is_err());
    }
}
