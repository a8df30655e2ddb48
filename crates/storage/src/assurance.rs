//! Authentication assurance (issue 14, step-up): the levels a sign-in can
//! reach, derived in one place from how the user authenticated
//! ([`crate::sessions::AuthMethod`]), and every wire name a level has —
//! the OIDC `acr` values (OIDC Core §2, §3.1.2.1, §5.5.1.1) and the SAML
//! `AuthnContextClassRef`s (SAML Authn Context §3.4) that OAuth and SAML
//! request and assert. A new kind of factor (a passkey) is one
//! `AuthMethod` variant with its [`Factor`]; the levels follow.

use crate::sessions::AuthMethod;
use serde::{Deserialize, Serialize};

/// What kind of evidence a method is (NIST SP 800-63B §5: something you
/// know, something you have).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Factor {
    Knowledge,
    Possession,
}

impl AuthMethod {
    /// The kind of factor the method proves.
    pub const fn factor(self) -> Factor {
        match self {
            Self::Pwd => Factor::Knowledge,
            // A code from the app on the user's phone, or one of the codes
            // printed for them: both are something the user holds.
            // A passkey too: the key on the device (or synced between the
            // user's devices). Its user verification (a PIN or a
            // biometric on the authenticator) is not counted as a second
            // kind: RFC 8176 has no value that says which it was.
            Self::Otp | Self::RecoveryCode | Self::Hwk | Self::Swk => Factor::Possession,
        }
    }
}

/// An assurance level. Declared weakest first: the derived order is the
/// order of strength (`SingleFactor < MultiFactor`), which comparisons of
/// a session's level with a requested one use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assurance {
    /// One factor (today: the password).
    SingleFactor,
    /// Two different kinds of factor (the password and a code).
    MultiFactor,
}

/// Our `acr` for a single-factor sign-in.
pub const ACR_SINGLE_FACTOR: &str = "urn:trusec:acr:sfa";
/// Our `acr` for a multi-factor sign-in.
pub const ACR_MULTI_FACTOR: &str = "urn:trusec:acr:mfa";
/// OpenID PAPE 1.0 §4.1 "multi-factor" policy, the `acr` Auth0 and others
/// use to ask for MFA.
pub const ACR_PAPE_MULTI_FACTOR: &str =
    "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
/// The REFEDS MFA Profile's identifier, an `acr` and a SAML class alike.
pub const REFEDS_MFA: &str = "https://refeds.org/profile/mfa";

impl Assurance {
    pub const ALL: [Self; 2] = [Self::SingleFactor, Self::MultiFactor];

    /// The level of a sign-in that used `methods`: multi-factor when they
    /// are of more than one kind of [`Factor`]; `None` when nobody signed in
    /// (a session the API made). The one derivation of a level.
    pub fn of(methods: &[AuthMethod]) -> Option<Self> {
        let mut kinds: Vec<Factor> = methods.iter().map(|m| m.factor()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        match kinds.len() {
            0 => None,
            1 => Some(Self::SingleFactor),
            _ => Some(Self::MultiFactor),
        }
    }

    /// The level RFC 8176 `amr` values stand for, as a grant recorded them
    /// from [`crate::sessions::SessionRow::amr_values`] (which adds `mfa`
    /// exactly when [`Assurance::of`] is multi-factor).
    pub fn of_amr(amr: &[String]) -> Option<Self> {
        if amr.iter().any(|v| v == "mfa") {
            Some(Self::MultiFactor)
        } else if amr.is_empty() {
            None
        } else {
            Some(Self::SingleFactor)
        }
    }

    /// Our `acr` value of the level (`acr_values_supported`).
    pub const fn acr(self) -> &'static str {
        match self {
            Self::SingleFactor => ACR_SINGLE_FACTOR,
            Self::MultiFactor => ACR_MULTI_FACTOR,
        }
    }

    /// The level an `acr` value asks for: ours, or a standard alias of
    /// multi-factor. Any other value is unknown (`None`).
    pub fn from_acr(value: &str) -> Option<Self> {
        match value {
            ACR_SINGLE_FACTOR => Some(Self::SingleFactor),
            ACR_MULTI_FACTOR | ACR_PAPE_MULTI_FACTOR | REFEDS_MFA => Some(Self::MultiFactor),
            _ => None,
        }
    }

    /// Every `acr` value a request may name (discovery).
    pub const ACR_VALUES: [&'static str; 4] = [
        ACR_SINGLE_FACTOR,
        ACR_MULTI_FACTOR,
        ACR_PAPE_MULTI_FACTOR,
        REFEDS_MFA,
    ];
}

/// A SAML `AuthnContextClassRef` we can assert (SAML Authn Context §3.4).
/// Declared weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AuthnContextClass {
    /// §3.4 `unspecified`: what a sign-in without a password and without
    /// a class of its own (a passkey alone) is asserted as.
    Unspecified,
    /// §3.4.19: a password over TLS.
    PasswordProtectedTransport,
    /// §3.4.23: a time-synchronised one-time code (TOTP) on top of the
    /// password.
    TimeSyncToken,
    /// §3.4.10: two factors, one of them a mobile device.
    MobileTwoFactorContract,
    /// The REFEDS MFA Profile: two different kinds of factor.
    RefedsMfa,
}

impl AuthnContextClass {
    pub const ALL: [Self; 5] = [
        Self::Unspecified,
        Self::PasswordProtectedTransport,
        Self::TimeSyncToken,
        Self::MobileTwoFactorContract,
        Self::RefedsMfa,
    ];

    pub const fn uri(self) -> &'static str {
        match self {
            Self::Unspecified => "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified",
            Self::PasswordProtectedTransport => {
                "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
            }
            Self::TimeSyncToken => "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken",
            Self::MobileTwoFactorContract => {
                "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract"
            }
            Self::RefedsMfa => REFEDS_MFA,
        }
    }

    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.uri() == uri)
    }

    /// The level the class stands for (what a step-up must reach).
    pub const fn level(self) -> Assurance {
        match self {
            Self::Unspecified | Self::PasswordProtectedTransport => Assurance::SingleFactor,
            Self::TimeSyncToken | Self::MobileTwoFactorContract | Self::RefedsMfa => {
                Assurance::MultiFactor
            }
        }
    }

    /// Whether a sign-in with `methods` may be asserted as this class. A
    /// recovery code is no time-synchronised token, so `TimeSyncToken`
    /// and `MobileTwoFactorContract` need the app's code itself.
    pub fn satisfied_by(self, methods: &[AuthMethod]) -> bool {
        let has = |m| methods.contains(&m);
        match self {
            Self::Unspecified => !methods.is_empty(),
            Self::PasswordProtectedTransport => has(AuthMethod::Pwd),
            Self::TimeSyncToken | Self::MobileTwoFactorContract => {
                has(AuthMethod::Pwd) && has(AuthMethod::Otp)
            }
            Self::RefedsMfa => Assurance::of(methods) == Some(Assurance::MultiFactor),
        }
    }

    /// The class asserted when the SP asked for none: the most specific
    /// true one. The password and a TOTP code is `TimeSyncToken`; the
    /// password alone, or with a recovery code or a passkey (which no
    /// Authn Context class describes better), `PasswordProtectedTransport`;
    /// a passkey alone, `unspecified`.
    pub fn default_for(methods: &[AuthMethod]) -> Self {
        if Self::TimeSyncToken.satisfied_by(methods) {
            Self::TimeSyncToken
        } else if Self::PasswordProtectedTransport.satisfied_by(methods) {
            Self::PasswordProtectedTransport
        } else {
            Self::Unspecified
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AuthMethod::{Hwk, Otp, Pwd, RecoveryCode, Swk};

    #[test]
    fn levels_come_from_the_kinds_of_factor() {
        assert_eq!(Assurance::of(&[]), None);
        assert_eq!(Assurance::of(&[Pwd]), Some(Assurance::SingleFactor));
        assert_eq!(Assurance::of(&[Pwd, Otp]), Some(Assurance::MultiFactor));
        assert_eq!(
            Assurance::of(&[Pwd, RecoveryCode]),
            Some(Assurance::MultiFactor)
        );
        assert_eq!(
            Assurance::of(&[Otp, RecoveryCode]),
            Some(Assurance::SingleFactor),
            "two things held are one kind of factor"
        );
        assert_eq!(Assurance::of(&[Pwd, Hwk]), Some(Assurance::MultiFactor));
        assert_eq!(Assurance::of(&[Swk]), Some(Assurance::SingleFactor));
        assert_eq!(
            Assurance::of(&[Swk, Otp]),
            Some(Assurance::SingleFactor),
            "a passkey and a code are both something held"
        );
        assert!(Assurance::SingleFactor < Assurance::MultiFactor);
        for level in Assurance::ALL {
            assert_eq!(Assurance::from_acr(level.acr()), Some(level));
        }
        assert_eq!(
            Assurance::from_acr(REFEDS_MFA),
            Some(Assurance::MultiFactor)
        );
        assert_eq!(Assurance::from_acr("0"), None);
        let amr = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(Assurance::of_amr(&amr(&[])), None);
        assert_eq!(
            Assurance::of_amr(&amr(&["pwd"])),
            Some(Assurance::SingleFactor)
        );
        assert_eq!(
            Assurance::of_amr(&amr(&["otp", "pwd", "mfa"])),
            Some(Assurance::MultiFactor)
        );
    }

    #[test]
    fn saml_classes_are_asserted_only_when_true() {
        for class in AuthnContextClass::ALL {
            assert_eq!(AuthnContextClass::from_uri(class.uri()), Some(class));
        }
        assert!(!AuthnContextClass::TimeSyncToken.satisfied_by(&[Pwd, RecoveryCode]));
        assert!(AuthnContextClass::RefedsMfa.satisfied_by(&[Pwd, RecoveryCode]));
        assert!(!AuthnContextClass::RefedsMfa.satisfied_by(&[Pwd]));
        assert_eq!(
            AuthnContextClass::default_for(&[Pwd, Otp]),
            AuthnContextClass::TimeSyncToken
        );
        assert_eq!(
            AuthnContextClass::default_for(&[Pwd, RecoveryCode]),
            AuthnContextClass::PasswordProtectedTransport
        );
        assert!(AuthnContextClass::RefedsMfa.satisfied_by(&[Pwd, Hwk]));
        assert!(!AuthnContextClass::PasswordProtectedTransport.satisfied_by(&[Swk]));
        assert_eq!(
            AuthnContextClass::default_for(&[Swk]),
            AuthnContextClass::Unspecified
        );
    }
}
