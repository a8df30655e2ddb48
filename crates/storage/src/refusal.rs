//! Why an anonymous request was refused, as [`crate::Core::refused`] counts
//! and audits it: a closed kind and a reason code fixed at compile time.
//!
//! A refusal costs an attacker nothing, so each one must not cost us an
//! audit row: the same address, reason and minute is audited once (a
//! set-if-absent key, `StoreKey::refusal_audited`) and every refusal is
//! counted in `trusec_refusals_total{kind, reason}`. The reason is a
//! `&'static str` taken from an enum's code (`Family::as_str`, the SAML
//! `Refusal::code`), never request text, so neither the label set nor the
//! key space can grow with what a client sends.

use crate::rate_limit::Family;

/// What refused the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefusalKind {
    /// A rate limit (`rate_limit.exceeded`); the reason is the family.
    RateLimit,
    /// A SAML message (`saml.request.refused`); the reason is its code.
    SamlRequest,
}

impl RefusalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimit => "rate_limit",
            Self::SamlRequest => "saml_request",
        }
    }
}

/// A refusal's kind and reason code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RefusalReason {
    kind: RefusalKind,
    code: &'static str,
}

impl RefusalReason {
    /// A rate limit of `family` refused the request.
    pub fn rate_limit(family: Family) -> Self {
        Self {
            kind: RefusalKind::RateLimit,
            code: family.as_str(),
        }
    }

    /// A SAML message was refused for `code` (the SAML crate's
    /// `Refusal::code`, one of a closed set).
    pub fn saml_request(code: &'static str) -> Self {
        Self {
            kind: RefusalKind::SamlRequest,
            code,
        }
    }

    pub fn kind(self) -> RefusalKind {
        self.kind
    }

    pub fn code(self) -> &'static str {
        self.code
    }
}
