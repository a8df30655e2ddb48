//! Every key of the ephemeral store, in one place. A [`StoreKey`] can only be
//! made here, so no crate spells a key by hand (`format!` in four crates was
//! a contract between them that neither the compiler nor the import graph
//! could see), and two kinds of state can never collide.

use crate::rate_limit::{Family, Subject};
use crate::refusal::RefusalReason;

/// A key of the ephemeral store (the Redis backend puts its prefix before it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoreKey(String);

impl StoreKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    // Rate limiting (owned by `Core::limit`).

    /// The GCRA arrival time of one budget.
    pub fn rate_limit(family: Family, subject: &Subject<'_>) -> Self {
        Self(format!("rl:{}:{}", family.as_str(), subject.key_part()))
    }

    // Refusals (owned by `Core::refused`).

    /// Set for a minute when a refusal of `reason` from `ip` (an IPv6
    /// address by its /64, as per-IP budgets) was audited, so one that
    /// repeats is audited once.
    pub fn refusal_audited(reason: RefusalReason, ip: Option<&str>) -> Self {
        Self(format!(
            "refused:{}:{}:{}",
            reason.kind().as_str(),
            reason.code(),
            Subject::Ip(ip).key_part()
        ))
    }

    // Read-through caches (see `crate::cache`).

    /// A session verification, by token hash.
    pub fn session_cache(token_hash: &str) -> Self {
        Self(format!("sess:{token_hash}"))
    }

    /// An API key row, by secret hash.
    pub fn api_key_cache(secret_hash: &str) -> Self {
        Self(format!("apikey:{secret_hash}"))
    }

    /// An OAuth client row, by client id.
    pub fn client_cache(client_id: &str) -> Self {
        Self(format!("client:{client_id}"))
    }

    /// Set when an API key's `last_used_at` was written this minute.
    pub fn api_key_used(key_id: &str) -> Self {
        Self(format!("apikey-used:{key_id}"))
    }

    // OAuth.

    /// An authorization code, by hash (single use: taken).
    pub fn code(code_hash: &str) -> Self {
        Self(format!("code:{code_hash}"))
    }

    /// What a redeemed code issued, so a replay can revoke it.
    pub fn code_used(code_hash: &str) -> Self {
        Self(format!("code-used:{code_hash}"))
    }

    /// Set when a redeemed code was presented again.
    pub fn code_replayed(code_hash: &str) -> Self {
        Self(format!("code-replayed:{code_hash}"))
    }

    /// An access token revoked before its expiry, by `jti`.
    pub fn revoked_jti(jti: &str) -> Self {
        Self(format!("revoked-jti:{jti}"))
    }

    /// A refresh-token family revoked (its access tokens die with it).
    pub fn revoked_family(family_id: &str) -> Self {
        Self(format!("revoked-family:{family_id}"))
    }

    /// The one successor of a rotated refresh token, for the leeway retry.
    pub fn refresh_successor(token_hash: &str) -> Self {
        Self(format!("refresh-successor:{token_hash}"))
    }

    // Hosted pages.

    /// A sign-in in progress (login, consent, return).
    pub fn interaction(id: &str) -> Self {
        Self(format!("interaction:{id}"))
    }

    /// Where to go after signing out.
    pub fn logout_intent(id: &str) -> Self {
        Self(format!("logout-intent:{id}"))
    }

    /// The after-logout step a protocol left for a login session
    /// (`trusec_ui::after_logout`).
    pub fn logout_hook(session_id: &str) -> Self {
        Self(format!("logout-hook:{session_id}"))
    }

    // SAML.

    /// An AuthnRequest ID already answered for an SP (replay cache).
    pub fn saml_request(sp_id: &str, request_id: &str) -> Self {
        Self(format!("saml-request:{sp_id}:{request_id}"))
    }

    /// The SPs a login session signed in to.
    pub fn saml_participants(session_id: &str) -> Self {
        Self(format!("saml-participants:{session_id}"))
    }

    /// A single-logout chain in progress.
    pub fn saml_slo_chain(chain_id: &str) -> Self {
        Self(format!("saml-slo-chain:{chain_id}"))
    }

    /// The login session behind an SP's opaque SessionIndex.
    pub fn saml_session_index(sp_id: &str, session_index: &str) -> Self {
        Self(format!("saml-session-index:{sp_id}:{session_index}"))
    }

    /// The cookie-less logout reference of a login session.
    pub fn saml_slo_ref_of(session_id: &str) -> Self {
        Self(format!("saml-slo-ref-of:{session_id}"))
    }

    /// The login session a logout reference names.
    pub fn saml_slo_ref(reference: &str) -> Self {
        Self(format!("saml-slo-ref:{reference}"))
    }

    /// A LogoutRequest ID already handled for an SP (replay cache).
    pub fn saml_logout(sp_id: &str, request_id: &str) -> Self {
        Self(format!("saml-logout:{sp_id}:{request_id}"))
    }
}

impl std::fmt::Display for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_never_collide() {
        // The same id under two kinds gives two keys.
        assert_ne!(StoreKey::code("x"), StoreKey::code_used("x"));
        assert_ne!(
            StoreKey::rate_limit(Family::Login, &Subject::Ip(Some("1.2.3.4"))),
            StoreKey::rate_limit(Family::Token, &Subject::Ip(Some("1.2.3.4")))
        );
        assert_ne!(
            StoreKey::rate_limit(Family::Token, &Subject::Caller("ip:1")),
            StoreKey::rate_limit(Family::Token, &Subject::Ip(Some("1")))
        );
    }
}
