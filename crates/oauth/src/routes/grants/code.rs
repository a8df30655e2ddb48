//! The authorization code grant (RFC 6749 §4.1.3) with PKCE (RFC 7636).
//! Codes live at most a minute in the ephemeral store and are taken
//! atomically, so each redeems once; a second redemption revokes what the
//! first one issued (§4.1.2).

use crate::OAuthState;
use crate::client_auth::AuthenticatedClient;
use crate::dpop::Jkt;
use crate::error::OAuthError;
use crate::form::Params;
use crate::issue::{self, Grant, Tokens};
use crate::scopes::ScopeSet;
use oxide_auth::code_grant::extensions::Pkce;
use oxide_auth::primitives::grant::Value as GrantValue;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::time::Duration;
use trusec_storage::StoreKey;
use trusec_storage::audit::{Actor, EventType, NewAuditEvent};
use trusec_storage::clients::GrantType;
use trusec_storage::single_use::{self, ClaimKind};
use trusec_storage::users::UserRow;
use trusec_storage::{StorageError, secrets};

/// What an authorization code stands for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: String,
    pub environment_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    /// Whether the authorization request carried `redirect_uri` (then the
    /// token request must repeat it, §4.1.3).
    pub redirect_uri_sent: bool,
    pub scope: ScopeSet,
    pub nonce: Option<String>,
    /// oxide-auth's encoding of the PKCE challenge.
    pub pkce: Option<String>,
    pub auth_time: i64,
    pub session_id: Option<String>,
    /// The resources the user authorized (RFC 8707 §2.1), as identifiers;
    /// empty in codes of earlier releases (this server itself).
    #[serde(default)]
    pub resources: Vec<String>,
    /// How the user signed in (RFC 8176 values; codes stored before this
    /// field existed were password sign-ins without the claim).
    #[serde(default)]
    pub amr: Vec<String>,
    /// The requested `acr` value the sign-in met (OIDC Core §5.5.1.1), if
    /// the request named one; `None`: ours, from `amr` ([`issue::acr_of`]).
    #[serde(default)]
    pub acr: Option<String>,
    /// RFC 9449 §10: the thumbprint of the DPoP key the code is bound to
    /// (`dpop_jkt` at `/oauth/authorize`, or the proof at `/oauth/par`);
    /// the token request must prove that key.
    #[serde(default)]
    pub dpop_jkt: Option<Jkt>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Redeemed {
    jti: String,
    exp: i64,
    family: Option<String>,
}

/// Stores a grant and returns its code.
///
/// # Errors
/// Store or random-source failures.
pub async fn store(state: &OAuthState, grant: &CodeGrant) -> Result<String, StorageError> {
    let code = secrets::generate_secret("").map_err(StorageError::backend)?;
    let bytes = serde_json::to_vec(grant)?;
    state
        .core()
        .store
        .put(
            &StoreKey::code(&secrets::hash_secret(&code)),
            &bytes,
            state.settings.code_ttl,
        )
        .await?;
    Ok(code)
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
fn verifier_well_formed(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// How long a redeemed code is remembered: as long as what it issued can
/// be used, so that a replay can still revoke it (§4.1.2).
fn remember_for(state: &OAuthState) -> Duration {
    state
        .settings
        .access_token_ttl
        .max(Duration::from_secs(600))
}

pub async fn exchange(
    state: &OAuthState,
    client: &AuthenticatedClient,
    params: &Params,
    dpop: Option<&Jkt>,
) -> Result<serde_json::Value, OAuthError> {
    let hash = secrets::hash_secret(params.require("code")?);
    let grant = redeem(state, &hash, client).await?;
    check_binding(&grant, client, params)?;
    check_pkce(&grant, params.get("code_verifier"))?;
    check_dpop_binding(&grant, dpop)?;
    let user = issue::grant_user(state, &grant.environment_id, &grant.user_id).await?;
    let (tokens, redeemed) = issue(state, client, params, &grant, &user, dpop).await?;
    refuse_if_replayed(state, &hash, &redeemed).await?;
    audit_issued(state, client, &user, &tokens, GrantType::AuthorizationCode).await?;
    Ok(tokens.to_json())
}

/// Takes the code (once: the store's take is atomic) and marks it used at
/// once, before anything is minted: a replay arriving while this
/// redemption is in flight must still be seen as one. A code presented by
/// another client is refused without being consumed, so nobody who learns
/// a code can burn it for the client it was issued to.
async fn redeem(
    state: &OAuthState,
    hash: &str,
    client: &AuthenticatedClient,
) -> Result<CodeGrant, OAuthError> {
    let key = StoreKey::code(hash);
    if let Some(bytes) = state.core().store.get(&key).await?
        && serde_json::from_slice::<CodeGrant>(&bytes)?.client_id != client.row.id
    {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    let Some(bytes) = state.core().store.take(&key).await? else {
        return Err(replayed_or_unknown(state, hash).await);
    };
    // The database is the authority on single use: a Redis that failed over
    // to a replica missing the take above would hand the code out again.
    let (claimed, now) = (hash.to_owned(), state.core().clock.now_naive());
    let until = now + chrono::TimeDelta::from_std(remember_for(state)).unwrap_or_default();
    let first = state
        .core()
        .db
        .run(move |c| single_use::claim(c, ClaimKind::AuthorizationCode, &claimed, until, now))
        .await?;
    if !first {
        return Err(replayed_or_unknown(state, hash).await);
    }
    let pending = Redeemed {
        jti: String::new(),
        exp: 0,
        family: None,
    };
    state
        .core()
        .store
        .put(
            &StoreKey::code_used(hash),
            &serde_json::to_vec(&pending)?,
            remember_for(state),
        )
        .await?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// §4.1.3: the code is bound to its client and to the redirect URI of the
/// authorization request.
fn check_binding(
    grant: &CodeGrant,
    client: &AuthenticatedClient,
    params: &Params,
) -> Result<(), OAuthError> {
    if grant.client_id != client.row.id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    match params.get("redirect_uri") {
        Some(uri) if uri != grant.redirect_uri => Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        )),
        None if grant.redirect_uri_sent => Err(OAuthError::invalid_grant(
            "redirect_uri is required: the authorization request had one",
        )),
        _ => Ok(()),
    }
}

/// RFC 7636 §4.6: the verifier must match the challenge of the request.
fn check_pkce(grant: &CodeGrant, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (&grant.pkce, verifier) {
        (None, None) => Ok(()),
        // RFC 9700 §2.1.1: a verifier without a challenge is a downgrade attempt.
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "code_verifier sent but no code_challenge was",
        )),
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is required")),
        (Some(_), Some(v)) if !verifier_well_formed(v) => Err(OAuthError::invalid_grant(
            "code_verifier is malformed (RFC 7636 §4.1)",
        )),
        (Some(encoded), Some(v)) => Pkce::required()
            .verify(
                Some(GrantValue::private(Some(encoded.clone()))),
                Some(Cow::Borrowed(v)),
            )
            .map_err(|()| {
                OAuthError::invalid_grant("code_verifier does not match the code_challenge")
            }),
    }
}

/// RFC 9449 §10: a code bound to a key (`dpop_jkt`) is redeemed only
/// with a proof of that key.
fn check_dpop_binding(grant: &CodeGrant, dpop: Option<&Jkt>) -> Result<(), OAuthError> {
    match (&grant.dpop_jkt, dpop) {
        (None, _) => Ok(()),
        (Some(bound), Some(key)) if bound.matches(key) => Ok(()),
        (Some(_), Some(_)) => Err(OAuthError::invalid_dpop_proof(
            "the DPoP proof's key is not the one the authorization request named (dpop_jkt)",
        )),
        (Some(_), None) => Err(OAuthError::invalid_dpop_proof(
            "the code is bound to a DPoP key: send a DPoP proof of it",
        )),
    }
}

/// Mints the tokens, stores the refresh token (when the client may
/// refresh), and remembers what the code issued. The device grant issues
/// through here too: the same tokens as the code flow.
pub(crate) async fn issue(
    state: &OAuthState,
    client: &AuthenticatedClient,
    params: &Params,
    grant: &CodeGrant,
    user: &UserRow,
    dpop: Option<&Jkt>,
) -> Result<(Tokens, Redeemed), OAuthError> {
    // RFC 8707 §2.2: the access token is for one of the authorized
    // resources (the one named, else the first), with its part of the scope.
    let audience =
        crate::resources::for_token(state, &client.row, params, Some(&grant.resources), None)
            .await?;
    let now = state.core().clock.now_naive();
    let (tokens, refresh_row) = issue::mint(
        state,
        &Grant {
            client: &client.row,
            user: Some(user),
            audience: &audience,
            resources: grant.resources.clone(),
            scope: audience.token_scope(&grant.scope),
            refresh_scope: grant.scope.clone(),
            auth_time: Some(grant.auth_time),
            amr: grant.amr.clone(),
            acr: issue::acr_of(grant.acr.as_deref(), &grant.amr),
            nonce: grant.nonce.clone(),
            session_id: grant.session_id.clone(),
            family: None,
            with_refresh: client.row.allows(GrantType::RefreshToken),
            with_id_token: grant.scope.contains("openid"),
            dpop,
        },
        now,
    )?;
    if let Some(row) = refresh_row {
        let started = state
            .core()
            .db
            .run(move |conn| trusec_storage::refresh_tokens::start_family(conn, &row))
            .await?;
        // Signed out between the authorization and this redemption: a
        // refresh token of that sign-in would outlive it (contract).
        if !started {
            return Err(OAuthError::invalid_grant(
                "the sign-in that authorized this code has ended",
            ));
        }
    }
    let redeemed = Redeemed {
        jti: tokens.jti.clone(),
        exp: now.and_utc().timestamp()
            + i64::try_from(state.settings.access_token_ttl.as_secs()).unwrap_or(0),
        family: tokens.family_id.clone(),
    };
    Ok((tokens, redeemed))
}

/// Records what the redemption issued for as long as it can be used. A
/// replay that came while we were minting could not revoke what we had not
/// issued yet; it left a flag, and we revoke it ourselves.
async fn refuse_if_replayed(
    state: &OAuthState,
    hash: &str,
    redeemed: &Redeemed,
) -> Result<(), OAuthError> {
    let store = &state.core().store;
    store
        .put(
            &StoreKey::code_used(hash),
            &serde_json::to_vec(redeemed)?,
            remember_for(state),
        )
        .await?;
    if store.get(&StoreKey::code_replayed(hash)).await?.is_none() {
        return Ok(());
    }
    issue::revoke_access_token(state, &redeemed.jti, redeemed.exp).await?;
    if let Some(family) = &redeemed.family {
        issue::revoke_family(state, family).await?;
    }
    Err(OAuthError::invalid_grant(
        "the authorization code was used twice; its tokens are revoked",
    ))
}

/// `oauth.token.issued` for a grant made by a user.
pub(crate) async fn audit_issued(
    state: &OAuthState,
    client: &AuthenticatedClient,
    user: &UserRow,
    tokens: &Tokens,
    grant_type: GrantType,
) -> Result<(), OAuthError> {
    let event = NewAuditEvent::new(
        EventType::OAuthTokenIssued,
        Some(&client.row.environment_id),
        Actor::user(&user.id),
    )
    .user(&user.id)
    .data(serde_json::json!({
        "grant_type": grant_type,
        "client_id": client.row.id,
        "scope": tokens.scope,
        "jti": tokens.jti,
    }));
    Ok(state.core().audit(event).await?)
}

/// A code that is not (or no longer) there: if it was redeemed before, this
/// is a replay, and everything the first redemption issued is revoked.
async fn replayed_or_unknown(state: &OAuthState, hash: &str) -> OAuthError {
    let used = match state.core().store.get(&StoreKey::code_used(hash)).await {
        Ok(u) => u.and_then(|b| serde_json::from_slice::<Redeemed>(&b).ok()),
        Err(e) => return e.into(),
    };
    let Some(used) = used else {
        return OAuthError::invalid_grant("the authorization code is invalid or expired");
    };
    if let Err(e) = state
        .core()
        .store
        .put(
            &StoreKey::code_replayed(hash),
            b"1",
            Duration::from_secs(600),
        )
        .await
    {
        return e.into();
    }
    if !used.jti.is_empty()
        && let Err(e) = issue::revoke_access_token(state, &used.jti, used.exp).await
    {
        return e;
    }
    if let Some(family) = &used.family
        && let Err(e) = issue::revoke_family(state, family).await
    {
        return e;
    }
    tracing::warn!("authorization code replayed; revoked the tokens it issued");
    OAuthError::invalid_grant(
        "the authorization code was already used; the tokens issued with it are revoked",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_format() {
        assert!(verifier_well_formed(&"a".repeat(43)));
        assert!(!verifier_well_formed(&"a".repeat(42)));
        assert!(!verifier_well_formed(&"a".repeat(129)));
        assert!(!verifier_well_formed(&format!("{}+", "a".repeat(43))));
    }
}
