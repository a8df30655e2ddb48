//! The attribute profiles an admin picks for an SP: which `Name`,
//! `NameFormat` and `FriendlyName` each of our attributes is released
//! under, so nobody types URNs.
//!
//! - basic: our own names, basic name format (SAML core §8.2.2);
//! - oid: the LDAP / eduPerson object identifiers as `urn:oid:` names in
//!   the URI name format with their `FriendlyName`s (the MACE-Dir SAML
//!   attribute profile, as Shibboleth's stock attribute map expects);
//! - microsoft: the claim type URIs of AD FS / Entra ID, URI name format.
//!
//! `subject-id` and `pairwise-id` have one name in every profile: the
//! OASIS SAML V2.0 Subject Identifier Attributes profile (§3.3.1, §3.4.1)
//! fixes the `Name` and requires the URI name format.

use trusec_storage::service_providers::{
    AttributeNameFormat, AttributeProfile, Released, UserAttribute,
};

const SUBJECT_ID: &str = "urn:oasis:names:tc:SAML:attribute:subject-id";
const PAIRWISE_ID: &str = "urn:oasis:names:tc:SAML:attribute:pairwise-id";

fn uri(name: &str, friendly: &str) -> Released {
    Released {
        name: name.to_owned(),
        name_format: AttributeNameFormat::Uri,
        friendly_name: Some(friendly.to_owned()),
    }
}

fn claim(name: &str) -> Released {
    Released {
        name: name.to_owned(),
        name_format: AttributeNameFormat::Uri,
        friendly_name: None,
    }
}

/// How `attribute` is released under `profile`.
pub fn release(profile: AttributeProfile, attribute: UserAttribute) -> Released {
    match (profile, attribute) {
        (_, UserAttribute::SubjectId) => uri(SUBJECT_ID, "subject-id"),
        (_, UserAttribute::PairwiseId) => uri(PAIRWISE_ID, "pairwise-id"),
        (AttributeProfile::Basic, a) => Released::basic(a.as_str()),
        (AttributeProfile::Oid, UserAttribute::Email) => {
            uri("urn:oid:0.9.2342.19200300.100.1.3", "mail")
        }
        (AttributeProfile::Oid, UserAttribute::Name) => {
            uri("urn:oid:2.16.840.1.113730.3.1.241", "displayName")
        }
        (AttributeProfile::Oid, UserAttribute::GivenName) => uri("urn:oid:2.5.4.42", "givenName"),
        (AttributeProfile::Oid, UserAttribute::FamilyName) => uri("urn:oid:2.5.4.4", "sn"),
        (AttributeProfile::Oid, UserAttribute::Groups) => {
            uri("urn:oid:1.3.6.1.4.1.5923.1.5.1.1", "isMemberOf")
        }
        (AttributeProfile::Microsoft, UserAttribute::Email) => {
            claim("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress")
        }
        (AttributeProfile::Microsoft, UserAttribute::Name) => {
            claim("http://schemas.microsoft.com/identity/claims/displayname")
        }
        (AttributeProfile::Microsoft, UserAttribute::GivenName) => {
            claim("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname")
        }
        (AttributeProfile::Microsoft, UserAttribute::FamilyName) => {
            claim("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname")
        }
        (AttributeProfile::Microsoft, UserAttribute::Groups) => {
            claim("http://schemas.microsoft.com/ws/2008/06/identity/claims/groups")
        }
    }
}

/// The `NameFormat` a name given bare in a mapping is released under:
/// the profile's.
pub const fn name_format(profile: AttributeProfile) -> AttributeNameFormat {
    match profile {
        AttributeProfile::Basic => AttributeNameFormat::Basic,
        AttributeProfile::Oid | AttributeProfile::Microsoft => AttributeNameFormat::Uri,
    }
}
