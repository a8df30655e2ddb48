//! The typed values a service provider row holds: its NameID format, the
//! user attributes it receives and under which names, and its endpoints
//! with their bindings. Each is parsed once, when the row loads; a stored
//! value that does not parse is an error of that query, never a default.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

crate::text_enum! {
    /// The NameID formats the IdP issues (SAML core §8.3), stored by their
    /// short name and shown as their URN ([`NameIdFormat::urn`]).
    #[derive(Default)]
    pub enum NameIdFormat as "NameID format" {
        /// The user's email address: the default.
        #[default]
        EmailAddress = "emailAddress",
        /// Opaque and stable, different for every SP (core §8.3.7).
        Persistent = "persistent",
        /// Opaque, for one login session only (core §8.3.8).
        Transient = "transient",
        /// The TruSec user id.
        Unspecified = "unspecified",
    }
}

impl NameIdFormat {
    /// The format's URN, as assertions and metadata carry it.
    pub const fn urn(self) -> &'static str {
        match self {
            Self::EmailAddress => "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
            Self::Persistent => "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
            Self::Transient => "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
            Self::Unspecified => "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
        }
    }

    /// The format with this URN.
    pub fn from_urn(urn: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| f.urn() == urn)
    }

    /// The format a caller names: its URN (what an SP's documentation
    /// gives) or its short name.
    pub fn from_urn_or_name(s: &str) -> Option<Self> {
        Self::from_urn(s).or_else(|| Self::parse(s))
    }
}

crate::text_enum! {
    /// A user attribute an SP may receive, by our name for it.
    #[derive(PartialOrd, Ord)]
    pub enum UserAttribute as "user attribute" {
        Email = "email",
        FamilyName = "family_name",
        GivenName = "given_name",
        Groups = "groups",
        Name = "name",
        /// `subject-id` (OASIS SAML V2.0 Subject Identifier Attributes
        /// profile §3.3): the user, the same for every SP, scoped.
        SubjectId = "subject_id",
        /// `pairwise-id` (same profile, §3.4): the user, different for
        /// every SP, scoped.
        PairwiseId = "pairwise_id",
    }
}

crate::text_enum! {
    /// An attribute `NameFormat` (SAML core §8.2).
    pub enum AttributeNameFormat as "attribute name format" {
        Basic = "basic",
        Uri = "uri",
        Unspecified = "unspecified",
    }
}

impl AttributeNameFormat {
    pub const fn urn(self) -> &'static str {
        match self {
            Self::Basic => "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
            Self::Uri => "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
            Self::Unspecified => "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified",
        }
    }
}

crate::text_enum! {
    /// Which names an SP's attributes are released under, picked by an
    /// admin instead of typing URNs.
    #[derive(Default)]
    pub enum AttributeProfile as "attribute profile" {
        /// Our own names (`email`, `name`, …), basic name format.
        #[default]
        Basic = "basic",
        /// The `urn:oid:` names of inetOrgPerson and eduPerson (the
        /// REFEDS / Shibboleth attribute map), URI name format, with
        /// `FriendlyName`s.
        Oid = "oid",
        /// The claim URIs of Microsoft's identity products, URI name format.
        Microsoft = "microsoft",
    }
}

crate::text_enum! {
    /// The content cipher of an SP's encrypted assertions (XML Encryption
    /// 1.1 §5.2). AES-256-GCM unless the SP's metadata asks for CBC and
    /// not GCM, or the administrator chose another.
    #[derive(Default)]
    pub enum AssertionCipher as "assertion cipher" {
        /// `http://www.w3.org/2009/xmlenc11#aes256-gcm`.
        #[default]
        Aes256Gcm = "aes256-gcm",
        /// `http://www.w3.org/2009/xmlenc11#aes128-gcm`.
        Aes128Gcm = "aes128-gcm",
        /// `http://www.w3.org/2001/04/xmlenc#aes256-cbc`.
        Aes256Cbc = "aes256-cbc",
    }
}

impl AssertionCipher {
    /// The algorithm's URI, as metadata and `xenc:EncryptionMethod` name it.
    pub const fn uri(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "http://www.w3.org/2009/xmlenc11#aes256-gcm",
            Self::Aes128Gcm => "http://www.w3.org/2009/xmlenc11#aes128-gcm",
            Self::Aes256Cbc => "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
        }
    }

    /// What an administrator reads.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "AES-256-GCM",
            Self::Aes128Gcm => "AES-128-GCM",
            Self::Aes256Cbc => "AES-256-CBC",
        }
    }
}

/// How one attribute is released: its `Name`, `NameFormat` and
/// `FriendlyName`. Stored (and shown) as the bare `Name` when basic without
/// a friendly name — the shape earlier releases wrote and read — else as
/// an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released {
    pub name: String,
    pub name_format: AttributeNameFormat,
    pub friendly_name: Option<String>,
}

impl Released {
    pub fn basic(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            name_format: AttributeNameFormat::Basic,
            friendly_name: None,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ReleasedShape {
    Bare(String),
    Full {
        name: String,
        name_format: AttributeNameFormat,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        friendly_name: Option<String>,
    },
}

impl Serialize for Released {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.name_format, &self.friendly_name) {
            (AttributeNameFormat::Basic, None) => ReleasedShape::Bare(self.name.clone()),
            (format, friendly) => ReleasedShape::Full {
                name: self.name.clone(),
                name_format: format,
                friendly_name: friendly.clone(),
            },
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Released {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match ReleasedShape::deserialize(d)? {
            ReleasedShape::Bare(name) => Self::basic(&name),
            ReleasedShape::Full {
                name,
                name_format,
                friendly_name,
            } => Self {
                name,
                name_format,
                friendly_name,
            },
        })
    }
}

/// The attributes an SP receives: our name → how it is released.
pub type AttributeMap = BTreeMap<UserAttribute, Released>;

/// A SAML binding (bindings §3), as its URN. Assertions go out by
/// HTTP-POST and logout messages by HTTP-Redirect; any other binding an SP
/// publishes is kept as published and never used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Binding {
    HttpPost,
    HttpRedirect,
    Other(String),
}

impl Binding {
    pub const HTTP_POST: &'static str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
    pub const HTTP_REDIRECT: &'static str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";

    pub fn urn(&self) -> &str {
        match self {
            Self::HttpPost => Self::HTTP_POST,
            Self::HttpRedirect => Self::HTTP_REDIRECT,
            Self::Other(urn) => urn,
        }
    }

    pub fn from_urn(urn: &str) -> Self {
        match urn {
            Self::HTTP_POST => Self::HttpPost,
            Self::HTTP_REDIRECT => Self::HttpRedirect,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl Serialize for Binding {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.urn())
    }
}

impl<'de> Deserialize<'de> for Binding {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let urn = <std::borrow::Cow<'de, str> as Deserialize>::deserialize(d)?;
        Ok(Self::from_urn(&urn))
    }
}

/// An assertion consumer service or single-logout endpoint of an SP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Endpoint {
    pub url: String,
    /// The binding's URN.
    #[schema(value_type = String)]
    pub binding: Binding,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u16>,
    #[serde(default)]
    pub is_default: bool,
    /// For single logout: where responses go, when not to `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_id_formats_parse_from_urn_and_short_name() {
        for f in NameIdFormat::ALL {
            assert_eq!(NameIdFormat::from_urn_or_name(f.urn()), Some(*f));
            assert_eq!(NameIdFormat::from_urn_or_name(f.as_str()), Some(*f));
        }
        assert_eq!(
            NameIdFormat::from_urn_or_name("urn:oasis:names:tc:SAML:2.0:nameid-format:transient"),
            Some(NameIdFormat::Transient)
        );
        assert_eq!(NameIdFormat::from_urn_or_name("x509SubjectName"), None);
        assert_eq!(NameIdFormat::default(), NameIdFormat::EmailAddress);
    }

    #[test]
    fn endpoints_and_attributes_keep_their_json_shape() -> Result<(), serde_json::Error> {
        let stored = r#"[{"url":"https://sp/acs","binding":"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST","index":0,"is_default":true},{"url":"https://sp/art","binding":"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact"}]"#;
        let endpoints: Vec<Endpoint> = serde_json::from_str(stored)?;
        assert_eq!(
            endpoints.first().map(|e| &e.binding),
            Some(&Binding::HttpPost)
        );
        assert!(matches!(
            endpoints.get(1).map(|e| &e.binding),
            Some(Binding::Other(_))
        ));
        let again = serde_json::to_string(&endpoints)?;
        assert_eq!(
            again,
            stored.replace(
                r#""binding":"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact"}"#,
                r#""binding":"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact","is_default":false}"#
            )
        );
        let map: AttributeMap = serde_json::from_str(r#"{"groups":"memberOf","email":"mail"}"#)?;
        assert_eq!(
            map.get(&UserAttribute::Groups),
            Some(&Released::basic("memberOf"))
        );
        assert_eq!(
            serde_json::to_string(&map)?,
            r#"{"email":"mail","groups":"memberOf"}"#
        );
        assert!(serde_json::from_str::<AttributeMap>(r#"{"ssn":"x"}"#).is_err());
        Ok(())
    }
}
