//! The refresh token grant (RFC 6749 §6) with rotation: every use returns a
//! new refresh token, and presenting a rotated one revokes the whole family
//! (RFC 9700 §4.14.2) — unless the client opted into a leeway
//! (`refresh_token_leeway_seconds`, 0..=60): inside it, a duplicate of the
//! same request gets the *same* successor pair, so parallel tabs and
//! retried calls don't log users out. The successor is kept only for the
//! leeway, encrypted under a key derived from the presented token, so the
//! store alone can never hand it out.

use crate::OAuthState;
use crate::client_auth::AuthenticatedClient;
use crate::crypto;
use crate::error::OAuthError;
use crate::form::Params;
use crate::issue::{self, Grant, Tokens};
use crate::scopes::{self, ScopeSet};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;
use trusec_storage::StoreKey;
use trusec_storage::audit::{Actor, EventType, NewAuditEvent};
use trusec_storage::refresh_tokens::{self, RefreshRow};
use trusec_storage::{StorageError, secrets, users};

#[derive(Serialize, Deserialize)]
struct Successor {
    /// The `scope` parameter of the request that minted it: only an
    /// identical request gets the same answer.
    scope_param: Option<String>,
    tokens: Tokens,
}

fn sealing_key(token: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"trusec refresh successor v1\0");
    h.update(token.as_bytes());
    h.finalize().into()
}

pub async fn exchange(
    state: &OAuthState,
    client: &AuthenticatedClient,
    params: &Params,
) -> Result<serde_json::Value, OAuthError> {
    let token = params.require("refresh_token")?;
    let hash = secrets::hash_secret(token);
    let lookup = hash.clone();
    let row = state
        .core()
        .db
        .run(move |conn| refresh_tokens::find_by_hash(conn, &lookup))
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the refresh token is invalid"))?;
    // §6: the token is bound to the client it was issued to.
    if row.client_id != client.row.id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    let now = state.core().clock.now_naive();
    if row.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant(
            "the refresh token has been revoked",
        ));
    }
    if row.expires_at <= now {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    let leeway =
        Duration::from_secs(u64::try_from(client.row.refresh_token_leeway_seconds).unwrap_or(0));
    let scope_param = params.get("scope").map(str::to_owned);
    if let Some(rotated_at) = row.rotated_at {
        let within = (now - rotated_at).to_std().is_ok_and(|age| age <= leeway);
        if within
            && let Some(tokens) =
                cached_successor(state, token, &hash, scope_param.as_deref()).await?
        {
            return Ok(tokens.to_json());
        }
        return Err(reuse_detected(state, client, &row).await);
    }
    let granted = ScopeSet::parse(&row.scope).map_err(|e| OAuthError::server_error(&e))?;
    // §6: a narrower scope may be asked for, never a wider one.
    let scope = match &scope_param {
        Some(text) => {
            let requested = scopes::parse(text)?;
            scopes::check_allowed(&requested, &granted)?;
            requested
        }
        None => granted.clone(),
    };
    let user = match &row.user_id {
        Some(uid) => {
            let (env, uid) = (row.environment_id.clone(), uid.clone());
            Some(
                state
                    .core()
                    .db
                    .run(move |conn| users::get(conn, &env, &uid))
                    .await
                    .map_err(|e| match e {
                        StorageError::NotFound => {
                            OAuthError::invalid_grant("the user no longer exists")
                        }
                        other => other.into(),
                    })?,
            )
        }
        None => None,
    };
    let (tokens, successor_row) = issue::mint(
        state,
        &Grant {
            client: &client.row,
            user: user.as_ref(),
            scope,
            refresh_scope: granted,
            auth_time: row.auth_time.map(|t| t.and_utc().timestamp()),
            nonce: None,
            session_id: row.session_id.clone(),
            family: Some(row.family_id.clone()),
            with_refresh: true,
        },
        now,
    )?;
    let successor_row = successor_row
        .ok_or_else(|| OAuthError::server_error(&std::io::Error::other("no successor minted")))?;
    if !leeway.is_zero() {
        // First writer wins: a concurrent duplicate finds this successor
        // instead of minting its own.
        let sealed = crypto::seal(
            &sealing_key(token),
            hash.as_bytes(),
            &serde_json::to_vec(&Successor {
                scope_param: scope_param.clone(),
                tokens: tokens.clone(),
            })?,
        )
        .map_err(|e| OAuthError::server_error(&e))?;
        if !state
            .core()
            .store
            .put_if_absent(
                &StoreKey::refresh_successor(&hash),
                sealed.as_bytes(),
                leeway,
            )
            .await?
        {
            return match cached_successor(state, token, &hash, scope_param.as_deref()).await? {
                Some(winner) => Ok(winner.to_json()),
                None => Err(reuse_detected(state, client, &row).await),
            };
        }
    }
    let old_id = row.id.clone();
    let won = state
        .core()
        .db
        .run(move |conn| refresh_tokens::rotate(conn, &old_id, &successor_row, now))
        .await?;
    if !won {
        // Another request rotated it first, outside any leeway.
        return Err(reuse_detected(state, client, &row).await);
    }
    let actor = row
        .user_id
        .as_deref()
        .map_or_else(Actor::anonymous, Actor::user);
    let mut event = NewAuditEvent::new(
        EventType::OAuthTokenRefreshed,
        Some(&row.environment_id),
        actor,
    )
    .data(serde_json::json!({
        "client_id": client.row.id,
        "family_id": row.family_id,
        "scope": tokens.scope,
        "jti": tokens.jti,
    }));
    if let Some(uid) = &row.user_id {
        event = event.user(uid);
    }
    state.core().audit(event).await?;
    Ok(tokens.to_json())
}

async fn cached_successor(
    state: &OAuthState,
    token: &str,
    hash: &str,
    scope_param: Option<&str>,
) -> Result<Option<Tokens>, OAuthError> {
    let Some(sealed) = state
        .core()
        .store
        .get(&StoreKey::refresh_successor(hash))
        .await?
    else {
        return Ok(None);
    };
    let Ok(text) = std::str::from_utf8(&sealed) else {
        return Ok(None);
    };
    let Ok(plain) = crypto::unseal(&sealing_key(token), hash.as_bytes(), text) else {
        return Ok(None);
    };
    let successor: Successor = serde_json::from_slice(&plain)?;
    Ok((successor.scope_param.as_deref() == scope_param).then_some(successor.tokens))
}

/// A rotated refresh token came back: someone holds a copy. Revoke the whole
/// family (and its access tokens) and audit it.
async fn reuse_detected(
    state: &OAuthState,
    client: &AuthenticatedClient,
    row: &RefreshRow,
) -> OAuthError {
    if let Err(e) = issue::revoke_family(state, &row.family_id).await {
        return e;
    }
    let actor = row
        .user_id
        .as_deref()
        .map_or_else(Actor::anonymous, Actor::user);
    let mut event = NewAuditEvent::new(
        EventType::OAuthRefreshTokenReuseDetected,
        Some(&row.environment_id),
        actor,
    )
    .failed()
    .data(serde_json::json!({"client_id": client.row.id, "family_id": row.family_id}));
    if let Some(uid) = &row.user_id {
        event = event.user(uid);
    }
    if let Err(e) = state.core().audit(event).await {
        return e.into();
    }
    OAuthError::invalid_grant("the refresh token was already used; its whole family is revoked")
}
