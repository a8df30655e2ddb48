//! The authorization code grant (RFC 6749 §4.1.3) with PKCE (RFC 7636).
//! Codes live at most a minute in the ephemeral store and are taken
//! atomically, so each redeems once; a second redemption revokes what the
//! first one issued (§4.1.2).

use crate::OAuthState;
use crate::client_auth::AuthenticatedClient;
use crate::error::OAuthError;
use crate::form::Params;
use crate::issue::{self, Grant};
use crate::scopes::ScopeSet;
use oxide_auth::code_grant::extensions::Pkce;
use oxide_auth::primitives::grant::Value as GrantValue;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::time::Duration;
use trusec_storage::StoreKey;
use trusec_storage::audit::{Actor, EventType, NewAuditEvent};
use trusec_storage::clients::GrantType;
use trusec_storage::{StorageError, secrets, users};

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
}

#[derive(Serialize, Deserialize)]
struct Redeemed {
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

pub async fn exchange(
    state: &OAuthState,
    client: &AuthenticatedClient,
    params: &Params,
) -> Result<serde_json::Value, OAuthError> {
    let code = params.require("code")?;
    let hash = secrets::hash_secret(code);
    let Some(bytes) = state.core().store.take(&StoreKey::code(&hash)).await? else {
        return Err(replayed_or_unknown(state, &hash).await);
    };
    // Mark it used at once, before anything is minted: a replay arriving
    // while this redemption is in flight must still be seen as one.
    let remember = state
        .settings
        .access_token_ttl
        .max(Duration::from_secs(600));
    let pending = Redeemed {
        jti: String::new(),
        exp: 0,
        family: None,
    };
    state
        .core()
        .store
        .put(
            &StoreKey::code_used(&hash),
            &serde_json::to_vec(&pending)?,
            remember,
        )
        .await?;
    let grant: CodeGrant =
        serde_json::from_slice(&bytes).map_err(|e| OAuthError::server_error(&e))?;
    if grant.client_id != client.row.id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    match params.get("redirect_uri") {
        Some(uri) if uri != grant.redirect_uri => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        None if grant.redirect_uri_sent => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri is required: the authorization request had one",
            ));
        }
        _ => {}
    }
    let verifier = params.get("code_verifier");
    match (&grant.pkce, verifier) {
        // RFC 9700 §2.1.1: a verifier without a challenge is a downgrade attempt.
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent but no code_challenge was",
            ));
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required")),
        (Some(encoded), Some(v)) => {
            if !verifier_well_formed(v) {
                return Err(OAuthError::invalid_grant(
                    "code_verifier is malformed (RFC 7636 §4.1)",
                ));
            }
            Pkce::required()
                .verify(
                    Some(GrantValue::private(Some(encoded.clone()))),
                    Some(Cow::Borrowed(v)),
                )
                .map_err(|()| {
                    OAuthError::invalid_grant("code_verifier does not match the code_challenge")
                })?;
        }
        (None, None) => {}
    }
    let env = grant.environment_id.clone();
    let uid = grant.user_id.clone();
    let user = state
        .core()
        .db
        .run(move |conn| users::get(conn, &env, &uid))
        .await
        .map_err(|e| match e {
            StorageError::NotFound => OAuthError::invalid_grant("the user no longer exists"),
            other => other.into(),
        })?;
    let with_refresh = client.row.allows(GrantType::RefreshToken);
    let now = state.core().clock.now_naive();
    let (tokens, refresh_row) = issue::mint(
        state,
        &Grant {
            client: &client.row,
            user: Some(&user),
            scope: grant.scope.clone(),
            refresh_scope: grant.scope.clone(),
            auth_time: Some(grant.auth_time),
            nonce: grant.nonce.clone(),
            session_id: grant.session_id.clone(),
            family: None,
            with_refresh,
        },
        now,
    )?;
    if let Some(row) = refresh_row {
        state
            .core()
            .db
            .run(move |conn| trusec_storage::refresh_tokens::insert(conn, &row))
            .await?;
    }
    let redeemed = Redeemed {
        jti: tokens.jti.clone(),
        exp: now.and_utc().timestamp()
            + i64::try_from(state.settings.access_token_ttl.as_secs()).unwrap_or(0),
        family: tokens.family_id.clone(),
    };
    // Remember what the redemption issued as long as it can be used.
    state
        .core()
        .store
        .put(
            &StoreKey::code_used(&hash),
            &serde_json::to_vec(&redeemed)?,
            remember,
        )
        .await?;
    // A replay that came while we were minting could not revoke what we
    // had not issued yet; it left a flag, and we revoke it ourselves.
    if state
        .core()
        .store
        .get(&StoreKey::code_replayed(&hash))
        .await?
        .is_some()
    {
        issue::revoke_access_token(state, &redeemed.jti, redeemed.exp).await?;
        if let Some(family) = &redeemed.family {
            issue::revoke_family(state, family).await?;
        }
        return Err(OAuthError::invalid_grant(
            "the authorization code was used twice; its tokens are revoked",
        ));
    }
    state
        .core()
        .audit(
            NewAuditEvent::new(
                EventType::OAuthTokenIssued,
                Some(&client.row.environment_id),
                Actor::user(&user.id),
            )
            .user(&user.id)
            .data(serde_json::json!({
                "grant_type": "authorization_code",
                "client_id": client.row.id,
                "scope": tokens.scope,
                "jti": tokens.jti,
            })),
        )
        .await?;
    Ok(tokens.to_json())
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
