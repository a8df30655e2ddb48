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
    }
}

/// The attributes an SP receives: our name → the attribute `Name` it wants.
pub type AttributeMap = BTreeMap<UserAttribute, String>;

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
            map.get(&UserAttribute::Groups).map(String::as_str),
            Some("memberOf")
        );
        assert_eq!(
            serde_json::to_string(&map)?,
            r#"{"email":"mail","groups":"memberOf"}"#
        );
        assert!(serde_json::from_str::<AttributeMap>(r#"{"ssn":"x"}"#).is_err());
        Ok(())
    }
}
