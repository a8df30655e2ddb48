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
use crate::dpop::Jkt;
use crate::error::OAuthError;
use crate::form::Params;
use crate::issue::{self, Grant, Tokens};
use crate::resources;
use crate::scopes::{self, ScopeSet};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;
use trusec_storage::StoreKey;
use trusec_storage::audit::{Actor, EventType, NewAuditEvent};
use trusec_storage::refresh_tokens::{self, RefreshRow};
use trusec_storage::secrets;

#[derive(Serialize, Deserialize)]
struct Successor {
    /// The `scope` parameter of the request that minted it: only an
    /// identical request gets the same answer.
    scope_param: Option<String>,
    /// Its `resource` parameters (RFC 8707 §2.2), for the same reason.
    #[serde(default)]
    resource_param: Vec<String>,
    tokens: Tokens,
}

/// A refresh request: the token as presented and the `scope` parameter.
struct Presented<'a> {
    token: &'a str,
    hash: String,
    scope_param: Option<&'a str>,
    resource_param: &'a [String],
}

fn sealing_key(token: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"trusec refresh successor v1\0");
    h.update(token.as_bytes());
    h.finalize().into()
}

fn leeway(client: &AuthenticatedClient) -> Duration {
    Duration::from_secs(u64::try_from(client.row.refresh_token_leeway_seconds).unwrap_or(0))
}

pub async fn exchange(
    state: &OAuthState,
    client: &AuthenticatedClient,
    params: &Params,
    dpop: Option<&Jkt>,
) -> Result<serde_json::Value, OAuthError> {
    let token = params.require("refresh_token")?;
    let presented = Presented {
        token,
        hash: secrets::hash_secret(token),
        scope_param: params.get("scope"),
        resource_param: params.all("resource"),
    };
    let now = state.core().clock.now_naive();
    let row = live_row(state, client, token, now).await?;
    check_dpop_binding(&row, dpop)?;
    if let Some(rotated_at) = row.rotated_at {
        return retry_or_reuse(state, client, &row, &presented, now - rotated_at).await;
    }
    let (tokens, successor) =
        mint_successor(state, client, &row, params, &presented, dpop, now).await?;
    if let Some(winner) = share_successor(state, client, &row, &presented, &tokens).await? {
        return Ok(winner.to_json());
    }
    let old_id = row.id.clone();
    let won = state
        .core()
        .db
        .run(move |conn| refresh_tokens::rotate(conn, &old_id, &successor, now))
        .await?;
    if !won {
        // Another request rotated it first, outside any leeway.
        return Err(reuse_detected(state, client, &row).await);
    }
    let event = family_event(EventType::OAuthTokenRefreshed, &row).data(serde_json::json!({
        "client_id": client.row.id,
        "family_id": row.family_id,
        "scope": tokens.scope,
        "jti": tokens.jti,
    }));
    state.core().audit(event).await?;
    Ok(tokens.to_json())
}

/// The presented token's row, if this client may use it now.
async fn live_row(
    state: &OAuthState,
    client: &AuthenticatedClient,
    token: &str,
    now: chrono::NaiveDateTime,
) -> Result<RefreshRow, OAuthError> {
    let row = issue::find_refresh_token(state, token)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the refresh token is invalid"))?;
    // §6: the token is bound to the client it was issued to.
    if row.client_id != client.row.id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if row.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant(
            "the refresh token has been revoked",
        ));
    }
    if row.expires_at <= now {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    // Contract: a family has an absolute lifetime that rotation does not
    // extend; past it the grant is invalid (RFC 6749 §5.2 `invalid_grant`:
    // the refresh token is expired).
    if row.family_expiry(state.settings.refresh_family_lifetime()) <= now {
        return Err(OAuthError::invalid_grant(
            "the refresh token's family has reached its absolute lifetime; sign in again",
        ));
    }
    Ok(row)
}

/// RFC 9449 §5: a refresh token bound to a DPoP key (a public client's)
/// is used only with a proof of that key.
fn check_dpop_binding(row: &RefreshRow, dpop: Option<&Jkt>) -> Result<(), OAuthError> {
    let Some(bound) = row.dpop_jkt.as_deref() else {
        return Ok(());
    };
    match dpop {
        Some(key) if secrets::constant_time_eq(key.as_str().as_bytes(), bound.as_bytes()) => Ok(()),
        Some(_) => Err(OAuthError::invalid_dpop_proof(
            "the refresh token is bound to another DPoP key",
        )),
        None => Err(OAuthError::invalid_dpop_proof(
            "the refresh token is DPoP-bound: send a DPoP proof of its key",
        )),
    }
}

/// A rotated token again: the same successor for an identical retry
/// inside the client's leeway, else a reuse.
async fn retry_or_reuse(
    state: &OAuthState,
    client: &AuthenticatedClient,
    row: &RefreshRow,
    presented: &Presented<'_>,
    since_rotation: chrono::TimeDelta,
) -> Result<serde_json::Value, OAuthError> {
    let within = since_rotation
        .to_std()
        .is_ok_and(|age| age <= leeway(client));
    if within && let Some(tokens) = cached_successor(state, presented).await? {
        return Ok(tokens.to_json());
    }
    Err(reuse_detected(state, client, row).await)
}

/// The successor pair, with the original grant's scope and resources on
/// the refresh token and, if asked, a narrower scope on the access token
/// (§6: never a wider one), for one of the grant's resources (RFC 8707
/// §2.2), carrying that resource's part of the scope.
async fn mint_successor(
    state: &OAuthState,
    client: &AuthenticatedClient,
    row: &RefreshRow,
    params: &Params,
    presented: &Presented<'_>,
    dpop: Option<&Jkt>,
    now: chrono::NaiveDateTime,
) -> Result<(Tokens, RefreshRow), OAuthError> {
    let granted = ScopeSet::parse(&row.scope).map_err(|e| OAuthError::server_error(&e))?;
    let bound = row.resources.as_ref().map_or(&[][..], |r| r.as_slice());
    let requested = presented.scope_param.map(scopes::parse).transpose()?;
    let audience =
        resources::for_token(state, &client.row, params, Some(bound), requested.as_ref()).await?;
    let asked = match requested {
        Some(requested) => {
            scopes::check_allowed(&requested, &granted)?;
            resources::check_scopes(&requested, std::slice::from_ref(&audience))?;
            requested
        }
        None => granted.clone(),
    };
    let scope = audience.token_scope(&asked);
    let user = match &row.user_id {
        Some(uid) => Some(issue::grant_user(state, &row.environment_id, uid).await?),
        None => None,
    };
    // The sign-in's methods, as the first tokens had them (OIDC Core
    // §12.2); rows written before they were kept have none.
    let amr = row.amr.as_ref().map(|a| a.0.clone()).unwrap_or_default();
    let (tokens, successor) = issue::mint(
        state,
        &Grant {
            client: &client.row,
            user: user.as_ref(),
            audience: &audience,
            resources: bound.to_vec(),
            scope,
            refresh_scope: granted,
            auth_time: row.auth_time.map(|t| t.and_utc().timestamp()),
            amr: amr.clone(),
            acr: issue::acr_of(row.acr.as_deref(), &amr),
            nonce: None,
            session_id: row.session_id.clone(),
            family: Some(row.family_terms(state.settings.refresh_family_lifetime())),
            with_refresh: true,
            with_id_token: asked.contains("openid"),
            dpop,
        },
        now,
    )?;
    let successor = successor
        .ok_or_else(|| OAuthError::server_error(&std::io::Error::other("no successor minted")))?;
    Ok((tokens, successor))
}

/// With a leeway, offers this successor to identical retries. First writer
/// wins: a concurrent duplicate that got there first has its successor
/// returned instead (`Some`); `None` means ours stands.
async fn share_successor(
    state: &OAuthState,
    client: &AuthenticatedClient,
    row: &RefreshRow,
    presented: &Presented<'_>,
    tokens: &Tokens,
) -> Result<Option<Tokens>, OAuthError> {
    let leeway = leeway(client);
    if leeway.is_zero() {
        return Ok(None);
    }
    let successor = serde_json::to_vec(&Successor {
        scope_param: presented.scope_param.map(str::to_owned),
        resource_param: presented.resource_param.to_vec(),
        tokens: tokens.clone(),
    })?;
    let sealed = crypto::seal(
        &sealing_key(presented.token),
        presented.hash.as_bytes(),
        &successor,
    )
    .map_err(|e| OAuthError::server_error(&e))?;
    let ours = state
        .core()
        .store
        .put_if_absent(
            &StoreKey::refresh_successor(&presented.hash),
            sealed.as_bytes(),
            leeway,
        )
        .await?;
    if ours {
        return Ok(None);
    }
    match cached_successor(state, presented).await? {
        Some(winner) => Ok(Some(winner)),
        None => Err(reuse_detected(state, client, row).await),
    }
}

async fn cached_successor(
    state: &OAuthState,
    presented: &Presented<'_>,
) -> Result<Option<Tokens>, OAuthError> {
    let Some(sealed) = state
        .core()
        .store
        .get(&StoreKey::refresh_successor(&presented.hash))
        .await?
    else {
        return Ok(None);
    };
    let Ok(text) = std::str::from_utf8(&sealed) else {
        return Ok(None);
    };
    let key = sealing_key(presented.token);
    let Ok(plain) = crypto::unseal(&key, presented.hash.as_bytes(), text) else {
        return Ok(None);
    };
    let successor: Successor = serde_json::from_slice(&plain)?;
    let same = successor.scope_param.as_deref() == presented.scope_param
        && successor.resource_param == presented.resource_param;
    Ok(same.then_some(successor.tokens))
}

/// An audit event about a refresh family, by its user if it has one.
fn family_event(event_type: EventType, row: &RefreshRow) -> NewAuditEvent {
    let actor = row
        .user_id
        .as_deref()
        .map_or_else(Actor::anonymous, Actor::user);
    let event = NewAuditEvent::new(event_type, Some(&row.environment_id), actor);
    match &row.user_id {
        Some(uid) => event.user(uid),
        None => event,
    }
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
    let event = family_event(EventType::OAuthRefreshTokenReuseDetected, row)
        .failed()
        .data(serde_json::json!({"client_id": client.row.id, "family_id": row.family_id}));
    if let Err(e) = state.core().audit(event).await {
        return e.into();
    }
    OAuthError::invalid_grant("the refresh token was already used; its whole family is revoked")
}
