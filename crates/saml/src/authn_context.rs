//! `RequestedAuthnContext` (SAML core §3.3.2.2.1): which of our
//! `AuthnContextClassRef`s (`trusec_storage::assurance::AuthnContextClass`,
//! ordered weakest first) an AuthnRequest accepts, and which one a session
//! can be asserted as.

use samael::schema::{AuthnContextComparison, RequestedAuthnContext};
use serde::{Deserialize, Serialize};
use trusec_storage::assurance::{Assurance, AuthnContextClass};
use trusec_storage::sessions::AuthMethod;

/// Most class references read from one request.
const MAX_CLASSES: usize = 16;

/// The classes an SP accepts, best first: the ones it named (in its
/// order) for `exact`, else every class of ours the comparison allows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted(Vec<AuthnContextClass>);

/// The request asks for nothing we can assert (core §3.3.2.2.1: the
/// responder "MUST" then answer `NoAuthnContext`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

/// What the SP accepts; `None` when it did not ask (our default class).
/// Declaration references (`AuthnContextDeclRef`) are not supported: a
/// request of those alone cannot be met.
///
/// # Errors
/// [`Unsatisfiable`] when no class of ours fits.
pub fn accepted(
    requested: Option<&RequestedAuthnContext>,
) -> Result<Option<Accepted>, Unsatisfiable> {
    let Some(requested) = requested else {
        return Ok(None);
    };
    let named: Vec<AuthnContextClass> = requested
        .authn_context_class_refs
        .iter()
        .flatten()
        .take(MAX_CLASSES)
        .filter_map(|r| r.value.as_deref())
        .filter_map(|uri| AuthnContextClass::from_uri(uri.trim()))
        .collect();
    let (Some(weakest), Some(strongest)) = (
        named.iter().map(|c| c.level()).min(),
        named.iter().map(|c| c.level()).max(),
    ) else {
        return Err(Unsatisfiable);
    };
    // §3.3.2.2.1: absent means exact.
    let comparison = requested
        .comparison
        .clone()
        .unwrap_or(AuthnContextComparison::Exact);
    let ours = AuthnContextClass::ALL.into_iter();
    let classes: Vec<AuthnContextClass> = match comparison {
        AuthnContextComparison::Exact => named,
        // "at least as strong as one of" them.
        AuthnContextComparison::Minimum => ours.filter(|c| c.level() >= weakest).rev().collect(),
        // "stronger than any one of" them.
        AuthnContextComparison::Better => ours.filter(|c| c.level() > weakest).rev().collect(),
        // "as strong as possible without exceeding ... at least one of" them.
        AuthnContextComparison::Maximum => ours.filter(|c| c.level() <= strongest).rev().collect(),
    };
    if classes.is_empty() {
        return Err(Unsatisfiable);
    }
    Ok(Some(Accepted(classes)))
}

impl Accepted {
    /// The class to assert for a sign-in with `methods`: the first
    /// accepted one it is true of.
    pub fn class_for(&self, methods: &[AuthMethod]) -> Option<AuthnContextClass> {
        self.0.iter().copied().find(|c| c.satisfied_by(methods))
    }

    /// The lowest level any accepted class needs: what a step-up aims at.
    pub fn level(&self) -> Option<Assurance> {
        self.0.iter().map(|c| c.level()).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AuthMethod::{Otp, Pwd, RecoveryCode};
    use AuthnContextClass::{PasswordProtectedTransport, RefedsMfa, TimeSyncToken};
    use samael::schema::AuthnContextClassRef;

    fn request(
        classes: &[&str],
        comparison: Option<AuthnContextComparison>,
    ) -> RequestedAuthnContext {
        RequestedAuthnContext {
            authn_context_class_refs: Some(
                classes
                    .iter()
                    .map(|c| AuthnContextClassRef {
                        value: Some((*c).to_owned()),
                    })
                    .collect(),
            ),
            authn_context_decl_refs: None,
            comparison,
        }
    }

    #[test]
    fn comparisons_pick_our_classes() {
        assert_eq!(accepted(None), Ok(None));
        let refeds = request(&[RefedsMfa.uri()], None);
        let exact = accepted(Some(&refeds)).unwrap().unwrap();
        assert_eq!(exact.level(), Some(Assurance::MultiFactor));
        assert_eq!(exact.class_for(&[Pwd]), None);
        assert_eq!(exact.class_for(&[Pwd, RecoveryCode]), Some(RefedsMfa));
        let unknown = request(&["urn:example:retina-scan"], None);
        assert_eq!(accepted(Some(&unknown)), Err(Unsatisfiable));
        let minimum = request(
            &[PasswordProtectedTransport.uri(), "urn:example:other"],
            Some(AuthnContextComparison::Minimum),
        );
        let minimum = accepted(Some(&minimum)).unwrap().unwrap();
        assert_eq!(minimum.level(), Some(Assurance::SingleFactor));
        assert_eq!(minimum.class_for(&[Pwd]), Some(PasswordProtectedTransport));
        assert_eq!(
            minimum.class_for(&[Pwd, Otp]),
            Some(RefedsMfa),
            "the strongest true one"
        );
        let better = request(&[TimeSyncToken.uri()], Some(AuthnContextComparison::Better));
        assert_eq!(
            accepted(Some(&better)),
            Err(Unsatisfiable),
            "nothing beats MFA here"
        );
        let maximum = request(
            &[PasswordProtectedTransport.uri()],
            Some(AuthnContextComparison::Maximum),
        );
        let maximum = accepted(Some(&maximum)).unwrap().unwrap();
        assert_eq!(
            maximum.class_for(&[Pwd, Otp]),
            Some(PasswordProtectedTransport)
        );
    }
}
