//! Every key of the ephemeral store, in one place. A [`StoreKey`] can only be
//! made here, so no crate spells a key by hand (`format!` in four crates was
//! a contract between them that neither the compiler nor the import graph
//! could see), and two kinds of state can never collide.

use crate::rate_limit::{Family, Subject};
use crate::refusal::RefusalReason;

/// A key of the ephemeral store (the Redis backend puts its prefix before it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoreKey {
    kind: KeyKind,
    key: String,
}

/// What a key holds: one variant per constructor of [`StoreKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    RateLimit,
    RefusalAudited,
    SessionCache,
    ApiKeyCache,
    ClientCache,
    ApiKeyUsed,
    Code,
    CodeUsed,
    CodeReplayed,
    RevokedJti,
    ClientAssertionUsed,
    DpopProofUsed,
    DpopNonce,
    RevokedFamily,
    AccessTokenStatus,
    RefreshSuccessor,
    Interaction,
    LogoutIntent,
    LogoutHook,
    SamlRequest,
    SamlParticipants,
    SamlSloChain,
    SamlSessionIndex,
    SamlSloRefOf,
    SamlSloRef,
    SamlLogout,
    SecondFactor,
    SecondFactorAttempt,
    PasskeyRegistration,
    PasskeySignIn,
    PasskeySecondFactor,
    EnrolThenContinue,
    ConsoleSignIn,
    ConsoleSession,
}

/// What a bounded store does with a new entry of a kind once it is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Refuse it ([`crate::StorageError::Full`]): new short-lived state that
    /// anyone can make without signing in. The request that wanted it gets
    /// a 503 and can start again later; nothing already promised is lost.
    Refuse,
    /// Store it anyway: revocations, replay and single-use markers, rate
    /// limits and their audit markers (refusing them would fail open), and
    /// state that only a signed-in user or a verified credential creates
    /// (bounded by the rate limits and by its TTL, not by the store).
    Store,
}

impl KeyKind {
    /// The one classification the in-process store's bound follows.
    pub fn when_full(self) -> WhenFull {
        match self {
            // Made by anyone: an `/oauth/authorize` or `/saml/sso` request
            // before sign-in, an RP-initiated `/oauth/logout`, a single
            // logout chain, a console sign-in started.
            Self::Interaction
            | Self::LogoutIntent
            | Self::SamlSloChain
            | Self::ConsoleSignIn
            // A passkey sign-in started from the login page.
            | Self::PasskeySignIn
            // A DPoP nonce is handed to anyone who sends a proof.
            | Self::DpopNonce => WhenFull::Refuse,
            // Refusing these would let a request through that must not
            // pass (a revoked token, a replayed code or message, an
            // unlimited caller) or flood the audit log.
            Self::RateLimit
            | Self::RefusalAudited
            | Self::CodeUsed
            | Self::CodeReplayed
            | Self::RevokedJti
            | Self::ClientAssertionUsed
            | Self::DpopProofUsed
            | Self::RevokedFamily
            | Self::SamlRequest
            | Self::SamlLogout => WhenFull::Store,
            // Only after a credential or a sign-in verified: caches of rows
            // that exist (and their stale markers), codes and refresh
            // successors issued to a signed-in user, a session's logout
            // state.
            Self::SessionCache
            | Self::ApiKeyCache
            | Self::ClientCache
            | Self::ApiKeyUsed
            | Self::AccessTokenStatus
            | Self::Code
            | Self::RefreshSuccessor
            | Self::LogoutHook
            | Self::SamlParticipants
            | Self::SamlSessionIndex
            | Self::SamlSloRefOf
            | Self::SamlSloRef
            // Made only after the right password.
            | Self::SecondFactor
            | Self::SecondFactorAttempt
            | Self::PasskeySecondFactor
            // A passkey being added by a signed-in user.
            | Self::PasskeyRegistration
            // A signed-in user sent to add a second factor first.
            | Self::EnrolThenContinue
            // An administrator's console session, after their sign-in.
            | Self::ConsoleSession => WhenFull::Store,
        }
    }
}

impl StoreKey {
    fn of(kind: KeyKind, key: String) -> Self {
        Self { kind, key }
    }

    pub fn as_str(&self) -> &str {
        &self.key
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    // Rate limiting (owned by `Core::limit`).

    /// The GCRA arrival time of one budget.
    pub fn rate_limit(family: Family, subject: &Subject<'_>) -> Self {
        Self::of(
            KeyKind::RateLimit,
            format!("rl:{}:{}", family.as_str(), subject.key_part()),
        )
    }

    // Refusals (owned by `Core::refused`).

    /// Set for a minute when a refusal of `reason` from `ip` (an IPv6
    /// address by its /64, as per-IP budgets) was audited, so one that
    /// repeats is audited once.
    pub fn refusal_audited(reason: RefusalReason, ip: Option<&str>) -> Self {
        Self::of(
            KeyKind::RefusalAudited,
            format!(
                "refused:{}:{}:{}",
                reason.kind().as_str(),
                reason.code(),
                Subject::Ip(ip).key_part()
            ),
        )
    }

    // Read-through caches (see `crate::cache`).

    /// A session verification, by token hash.
    pub fn session_cache(token_hash: &str) -> Self {
        Self::of(KeyKind::SessionCache, format!("sess:{token_hash}"))
    }

    /// An API key row, by secret hash.
    pub fn api_key_cache(secret_hash: &str) -> Self {
        Self::of(KeyKind::ApiKeyCache, format!("apikey:{secret_hash}"))
    }

    /// An OAuth client row, by client id.
    pub fn client_cache(client_id: &str) -> Self {
        Self::of(KeyKind::ClientCache, format!("client:{client_id}"))
    }

    /// Set when an API key's `last_used_at` was written this minute.
    pub fn api_key_used(key_id: &str) -> Self {
        Self::of(KeyKind::ApiKeyUsed, format!("apikey-used:{key_id}"))
    }

    // OAuth.

    /// An authorization code, by hash (single use: taken).
    pub fn code(code_hash: &str) -> Self {
        Self::of(KeyKind::Code, format!("code:{code_hash}"))
    }

    /// What a redeemed code issued, so a replay can revoke it.
    pub fn code_used(code_hash: &str) -> Self {
        Self::of(KeyKind::CodeUsed, format!("code-used:{code_hash}"))
    }

    /// Set when a redeemed code was presented again.
    pub fn code_replayed(code_hash: &str) -> Self {
        Self::of(KeyKind::CodeReplayed, format!("code-replayed:{code_hash}"))
    }

    /// A client assertion's `jti`, used once until it expires (RFC 7523
    /// §3 point 7). Per client: one client's `jti` cannot block another's.
    /// The `jti` is hashed, so its length and characters are ours.
    pub fn client_assertion_used(client_id: &str, jti: &str) -> Self {
        Self::of(
            KeyKind::ClientAssertionUsed,
            format!(
                "client-assertion-used:{client_id}:{}",
                crate::secrets::hash_secret(jti)
            ),
        )
    }

    /// A DPoP proof used once (RFC 9449 §11.1), by the SHA-256 of its
    /// key's thumbprint and its `jti`, for as long as its `iat` could pass.
    pub fn dpop_proof_used(hash: &str) -> Self {
        Self::of(KeyKind::DpopProofUsed, format!("dpop-jti:{hash}"))
    }

    /// A server-provided DPoP nonce (RFC 9449 §8), by its SHA-256.
    pub fn dpop_nonce(hash: &str) -> Self {
        Self::of(KeyKind::DpopNonce, format!("dpop-nonce:{hash}"))
    }

    /// An access token revoked before its expiry, by `jti`.
    pub fn revoked_jti(jti: &str) -> Self {
        Self::of(KeyKind::RevokedJti, format!("revoked-jti:{jti}"))
    }

    /// A refresh-token family revoked (its access tokens die with it).
    pub fn revoked_family(family_id: &str) -> Self {
        Self::of(
            KeyKind::RevokedFamily,
            format!("revoked-family:{family_id}"),
        )
    }

    /// Whether an access token (a JWT whose signature verified) is revoked,
    /// as the database answered (`crate::cache::Cached::access_token`).
    pub fn access_token_status(jti: &str) -> Self {
        Self::of(KeyKind::AccessTokenStatus, format!("token-status:{jti}"))
    }

    /// The one successor of a rotated refresh token, for the leeway retry.
    pub fn refresh_successor(token_hash: &str) -> Self {
        Self::of(
            KeyKind::RefreshSuccessor,
            format!("refresh-successor:{token_hash}"),
        )
    }

    // Hosted pages.

    /// A sign-in in progress (login, consent, return).
    pub fn interaction(id: &str) -> Self {
        Self::of(KeyKind::Interaction, format!("interaction:{id}"))
    }

    /// A sign-in whose password was right, waiting for its second factor
    /// (by the hash of the token its form carries).
    pub fn second_factor(token_hash: &str) -> Self {
        Self::of(KeyKind::SecondFactor, format!("second-factor:{token_hash}"))
    }

    /// Attempt `n` (1-based) at a pending second factor's code: each check
    /// of a code first takes a free slot set-if-absent, so concurrent posts
    /// cannot check more codes than there are slots.
    pub fn second_factor_attempt(token_hash: &str, n: u8) -> Self {
        Self::of(
            KeyKind::SecondFactorAttempt,
            format!("second-factor-attempt:{token_hash}:{n}"),
        )
    }

    /// A passkey registration in progress (`webauthn-rs` ceremony state, by
    /// the hash of the token the account page's script carries), taken once.
    pub fn passkey_registration(token_hash: &str) -> Self {
        Self::of(
            KeyKind::PasskeyRegistration,
            format!("passkey-registration:{token_hash}"),
        )
    }

    /// A passkey sign-in from the login page in progress (discoverable:
    /// the authenticator names the account), taken once.
    pub fn passkey_sign_in(token_hash: &str) -> Self {
        Self::of(
            KeyKind::PasskeySignIn,
            format!("passkey-sign-in:{token_hash}"),
        )
    }

    /// A passkey asked for at the second-factor step, by the hash of the
    /// pending sign-in's token, taken once.
    pub fn passkey_second_factor(token_hash: &str) -> Self {
        Self::of(
            KeyKind::PasskeySecondFactor,
            format!("passkey-second-factor:{token_hash}"),
        )
    }

    /// The interaction a login session goes on with once its user has
    /// added the second factor the MFA policy requires.
    pub fn enrol_then_continue(session_hash: &str) -> Self {
        Self::of(
            KeyKind::EnrolThenContinue,
            format!("enrol-then-continue:{session_hash}"),
        )
    }

    /// Where to go after signing out.
    pub fn logout_intent(id: &str) -> Self {
        Self::of(KeyKind::LogoutIntent, format!("logout-intent:{id}"))
    }

    /// The after-logout step a protocol left for a login session
    /// (`trusec_ui::after_logout`).
    pub fn logout_hook(session_id: &str) -> Self {
        Self::of(KeyKind::LogoutHook, format!("logout-hook:{session_id}"))
    }

    // SAML.

    /// An AuthnRequest ID already answered for an SP (replay cache).
    pub fn saml_request(sp_id: &str, request_id: &str) -> Self {
        Self::of(
            KeyKind::SamlRequest,
            format!("saml-request:{sp_id}:{request_id}"),
        )
    }

    /// The SPs a login session signed in to.
    pub fn saml_participants(session_id: &str) -> Self {
        Self::of(
            KeyKind::SamlParticipants,
            format!("saml-participants:{session_id}"),
        )
    }

    /// A single-logout chain in progress.
    pub fn saml_slo_chain(chain_id: &str) -> Self {
        Self::of(KeyKind::SamlSloChain, format!("saml-slo-chain:{chain_id}"))
    }

    /// The login session behind an SP's opaque SessionIndex.
    pub fn saml_session_index(sp_id: &str, session_index: &str) -> Self {
        Self::of(
            KeyKind::SamlSessionIndex,
            format!("saml-session-index:{sp_id}:{session_index}"),
        )
    }

    /// The cookie-less logout reference of a login session.
    pub fn saml_slo_ref_of(session_id: &str) -> Self {
        Self::of(
            KeyKind::SamlSloRefOf,
            format!("saml-slo-ref-of:{session_id}"),
        )
    }

    /// The login session a logout reference names.
    pub fn saml_slo_ref(reference: &str) -> Self {
        Self::of(KeyKind::SamlSloRef, format!("saml-slo-ref:{reference}"))
    }

    /// A LogoutRequest ID already handled for an SP (replay cache).
    pub fn saml_logout(sp_id: &str, request_id: &str) -> Self {
        Self::of(
            KeyKind::SamlLogout,
            format!("saml-logout:{sp_id}:{request_id}"),
        )
    }

    // The admin console.

    /// A console sign-in in progress: its PKCE verifier and nonce, by the
    /// `state` parameter sent to `/oauth/authorize` (taken on return).
    pub fn console_sign_in(state: &str) -> Self {
        Self::of(KeyKind::ConsoleSignIn, format!("console-sign-in:{state}"))
    }

    /// An administrator's console session, by the hash of its cookie.
    pub fn console_session(token_hash: &str) -> Self {
        Self::of(
            KeyKind::ConsoleSession,
            format!("console-session:{token_hash}"),
        )
    }
}

impl std::fmt::Display for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key)
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
