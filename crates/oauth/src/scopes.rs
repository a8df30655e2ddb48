//! Scopes: the ones this server knows, parsing request parameters into a
//! [`ScopeSet`], and the rules for requests.

use crate::error::OAuthError;
pub use trusec_storage::scopes::ScopeSet;

/// The identity scopes: OIDC Core's `openid`, `profile` and `email`
/// (§5.4) and `offline_access` (§11), plus our `groups`. They describe a
/// user, so client credentials never grant them. The management-API scopes
/// (`read:users`, …) are not listed here: they are made from
/// [`MANAGEMENT_RESOURCES`].
pub const OIDC: [&str; 5] = ["openid", "profile", "email", OFFLINE_ACCESS, "groups"];

/// OIDC Core §11: a refresh token that outlives the sign-in session.
pub const OFFLINE_ACCESS: &str = "offline_access";
/// Management resources an access token may reach. API keys, clients and
/// signing keys are not among them: an OAuth token must never mint the
/// credentials that outrank it.
pub const MANAGEMENT_RESOURCES: [&str; 5] = [
    "users",
    "sessions",
    "audit_events",
    "service_providers",
    "policies",
];
/// Users who may delegate management scopes to an app belong to this group.
pub const ADMIN_GROUP: &str = "trusec-admins";

/// Whether a scope grants access to the management API (a resource's
/// `read:orders` does not: resources may not take this server's scopes).
pub fn is_management(scope: &str) -> bool {
    !OIDC.contains(&scope) && is_supported(scope)
}

/// Every scope a client may be allowed.
pub fn supported() -> Vec<String> {
    let mut all: Vec<String> = OIDC.iter().map(|s| (*s).to_owned()).collect();
    for r in MANAGEMENT_RESOURCES {
        all.push(format!("read:{r}"));
        all.push(format!("write:{r}"));
    }
    all
}

/// Whether a client may be allowed this scope: an identity scope or
/// `read:`/`write:` of a management resource.
pub fn is_supported(scope: &str) -> bool {
    OIDC.contains(&scope)
        || scope.split_once(':').is_some_and(|(verb, r)| {
            matches!(verb, "read" | "write") && MANAGEMENT_RESOURCES.contains(&r)
        })
}

/// Parses a space-separated scope parameter (RFC 6749 §3.3) into distinct
/// tokens in request order.
///
/// # Errors
/// `invalid_scope` for characters §3.3 forbids.
pub fn parse(text: &str) -> Result<ScopeSet, OAuthError> {
    ScopeSet::parse(text).map_err(|e| OAuthError::invalid_scope(format!("malformed scope: {e}")))
}

/// Checks that every requested scope is one the client may ask for.
///
/// # Errors
/// `invalid_scope` naming the first one it may not.
pub fn check_allowed(requested: &ScopeSet, allowed: &ScopeSet) -> Result<(), OAuthError> {
    match requested.first_not_in(allowed) {
        Some(s) => Err(OAuthError::invalid_scope(format!(
            "scope {s} is not allowed for this client"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks() {
        assert_eq!(
            parse("openid  email openid").unwrap().as_slice(),
            ["openid", "email"]
        );
        assert!(parse("bad\"scope").is_err());
        assert!(check_allowed(&parse("openid").unwrap(), &parse("openid email").unwrap()).is_ok());
        assert_eq!(
            check_allowed(&parse("admin").unwrap(), &parse("openid").unwrap())
                .unwrap_err()
                .code,
            crate::error::ErrorCode::InvalidScope
        );
        assert!(
            is_supported("read:users") && !is_supported("read:everything") && is_supported("email")
        );
    }
}
