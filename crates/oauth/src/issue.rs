//! Minting tokens, finding and revoking them.
//!
//! Access tokens are self-contained JWTs, so revocation is a list: a revoked
//! token's `jti` (and a revoked refresh family's id, carried as `fid`) is
//! kept in the ephemeral store until the longest such token has expired.
//! The database is the record behind those markers (`revoked_access_tokens`,
//! `refresh_tokens.revoked_at`): a token without a marker is checked there
//! (cached briefly), so a marker the store loses revokes nothing back.

use crate::OAuthState;
use crate::crypto::Alg;
use crate::dpop::{Confirmation, Jkt};
use crate::error::OAuthError;
use crate::jwt::{self, AccessClaims, IdTokenInput};
use crate::resources::Audience;
use crate::scopes::ScopeSet;
use chrono::NaiveDateTime;
use serde_json::{Value, json};
use std::time::Duration;
use trusec_storage::StoreKey;
use trusec_storage::access_tokens;
use trusec_storage::cache::Cached;
use trusec_storage::clients::ClientRow;
use trusec_storage::refresh_tokens::{self, FamilyTerms, RefreshRow};
use trusec_storage::users::{self, UserRow};
use trusec_storage::{StorageError, ids, secrets};

pub const REFRESH_PREFIX: &str = "trusec_rt_";
/// Access tokens for this server are signed ES256: fast to sign and verify
/// (a resource chooses its own, [`Audience::alg`]).
pub const ACCESS_TOKEN_ALG: Alg = Alg::Es256;

/// What a token presented for revocation or introspection is. Our refresh
/// tokens carry [`REFRESH_PREFIX`]; anything else can only be one of our
/// access tokens (JWTs). RFC 7009 §2.1 and RFC 7662 §2.1 let a server
/// ignore `token_type_hint`, and the form never lies, so this does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Refresh,
    Access,
}

impl TokenKind {
    pub fn of(token: &str) -> Self {
        if token.starts_with(REFRESH_PREFIX) {
            Self::Refresh
        } else {
            Self::Access
        }
    }
}

/// What a grant resolved to.
pub struct Grant<'a> {
    pub client: &'a ClientRow,
    /// `None` for client_credentials (the client acts for itself).
    pub user: Option<&'a UserRow>,
    /// Whom the access token is for (RFC 8707).
    pub audience: &'a Audience,
    /// The resources the grant was authorized for, which a new refresh
    /// token keeps (RFC 8707 §2.2); empty when no refresh token is minted.
    pub resources: Vec<String>,
    /// The scope of the access token minted now (the audience's part of
    /// the grant).
    pub scope: ScopeSet,
    /// The scope a new refresh token carries: the original grant's, even
    /// when this access token was narrowed (RFC 6749 §6).
    pub refresh_scope: ScopeSet,
    pub auth_time: Option<i64>,
    /// RFC 8176 `amr` of the sign-in (OIDC Core §2); empty when unknown
    /// (client credentials, refresh).
    pub amr: Vec<String>,
    /// The `acr` of the sign-in (OIDC Core §2; [`acr_of`]); `None` when no
    /// user signed in.
    pub acr: Option<String>,
    pub nonce: Option<String>,
    pub session_id: Option<String>,
    /// The refresh family to continue (a rotation keeps its terms), or
    /// `None` to start one (if refresh tokens are issued at all).
    pub family: Option<FamilyTerms>,
    pub with_refresh: bool,
    /// The request asked for `openid` (the access token's scope may not
    /// carry it: a resource's token has only that resource's scopes).
    pub with_id_token: bool,
    /// The DPoP key of the token request's proof (RFC 9449 §5): the access
    /// token is bound to it (`cnf.jkt`, `token_type: DPoP`), and so is a
    /// public client's refresh token.
    pub dpop: Option<&'a Jkt>,
}

/// The `acr` tokens of a grant carry: the value recorded when it was
/// issued (a requested value it met, OIDC Core §5.5.1.1), else our value
/// of the level its `amr` stands for; none when nobody signed in.
pub fn acr_of(recorded: Option<&str>, amr: &[String]) -> Option<String> {
    recorded
        .map(str::to_owned)
        .or_else(|| trusec_storage::assurance::Assurance::of_amr(amr).map(|a| a.acr().to_owned()))
}

/// A token response (RFC 6749 §5.1) and what was minted for it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub expires_in: u64,
    pub scope: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub jti: String,
    pub family_id: Option<String>,
    /// The access token is DPoP-bound (RFC 9449 §5.1: `token_type: DPoP`).
    #[serde(default)]
    pub dpop_bound: bool,
}

impl Tokens {
    pub fn to_json(&self) -> Value {
        let token_type = if self.dpop_bound { "DPoP" } else { "Bearer" };
        let mut body = json!({
            "access_token": self.access_token,
            "token_type": token_type,
            "expires_in": self.expires_in,
            "scope": self.scope,
        });
        if let Some(obj) = body.as_object_mut() {
            if let Some(rt) = &self.refresh_token {
                obj.insert("refresh_token".into(), json!(rt));
            }
            if let Some(it) = &self.id_token {
                obj.insert("id_token".into(), json!(it));
            }
        }
        body
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Grant<'_> {
    /// Whom the tokens are about: the user, or the client acting for itself.
    fn subject(&self) -> &str {
        self.user.map_or(self.client.id.as_str(), |u| u.id.as_str())
    }

    /// The refresh family the tokens belong to, if refresh tokens are
    /// issued: the one continued, or a new one, bound to the sign-in
    /// session unless `offline_access` was granted (OIDC Core §11).
    fn family(&self, state: &OAuthState, now: NaiveDateTime) -> Option<FamilyTerms> {
        self.with_refresh.then(|| {
            self.family.clone().unwrap_or_else(|| {
                FamilyTerms::start(
                    ids::new_id(ids::TOKEN_FAMILY),
                    now,
                    state.settings.refresh_family_lifetime(),
                    self.refresh_scope.contains(crate::scopes::OFFLINE_ACCESS),
                    self.session_id.as_deref(),
                )
            })
        })
    }
}

/// Mints the tokens of a grant. The refresh row (if any) is returned for the
/// caller to store, alone or as a rotation.
///
/// # Errors
/// Signing or random-source failures.
pub fn mint(
    state: &OAuthState,
    grant: &Grant<'_>,
    now: NaiveDateTime,
) -> Result<(Tokens, Option<RefreshRow>), OAuthError> {
    let family = grant.family(state, now);
    let family_id = family.as_ref().map(|f| f.id.clone());
    let lifetime = grant.audience.lifetime(state.settings.access_token_ttl);
    let claims = access_claims(state, grant, family_id.clone(), lifetime, now);
    let access_token = jwt::sign_access_token(&state.keyring, grant.audience.alg(), &claims)?;
    let id_token = id_token(state, grant, &access_token, now)?;
    let (refresh_token, row) = match &family {
        Some(family) => {
            let (token, row) = refresh_token(state, grant, family, now)?;
            (Some(token), Some(row))
        }
        None => (None, None),
    };
    Ok((
        Tokens {
            access_token,
            expires_in: lifetime.as_secs(),
            scope: claims.scope,
            refresh_token,
            id_token,
            jti: claims.jti,
            family_id,
            dpop_bound: claims.cnf.is_some(),
        },
        row,
    ))
}

/// RFC 9068 §2.2, plus our environment and refresh family; `aud` is the
/// audience's identifier (RFC 8707 §2).
fn access_claims(
    state: &OAuthState,
    grant: &Grant<'_>,
    family: Option<String>,
    lifetime: Duration,
    now: NaiveDateTime,
) -> AccessClaims {
    let settings = &state.settings;
    let iat = now.and_utc().timestamp();
    AccessClaims {
        iss: settings.issuer.clone(),
        sub: grant.subject().to_owned(),
        aud: grant.audience.identifier(&settings.issuer).to_owned(),
        exp: iat + secs(lifetime),
        iat,
        jti: ids::new_id("at"),
        client_id: grant.client.id.clone(),
        scope: grant.scope.to_string(),
        auth_time: grant.auth_time,
        amr: grant.amr.clone(),
        acr: grant.acr.clone(),
        env: grant.client.environment_id.clone(),
        fid: family,
        cnf: grant.dpop.map(|jkt| Confirmation { jkt: jkt.clone() }),
    }
}

/// OIDC Core §2: an ID token when a user granted `openid`, signed with the
/// client's algorithm.
fn id_token(
    state: &OAuthState,
    grant: &Grant<'_>,
    access_token: &str,
    now: NaiveDateTime,
) -> Result<Option<String>, OAuthError> {
    if grant.user.is_none() || !grant.with_id_token {
        return Ok(None);
    }
    let settings = &state.settings;
    let input = IdTokenInput {
        issuer: &settings.issuer,
        subject: grant.subject(),
        client_id: &grant.client.id,
        now: now.and_utc().timestamp(),
        lifetime_secs: secs(settings.id_token_ttl),
        auth_time: grant.auth_time,
        amr: &grant.amr,
        acr: grant.acr.as_deref(),
        nonce: grant.nonce.as_deref(),
        access_token: Some(access_token),
        session_id: grant.session_id.as_deref(),
    };
    let alg = grant.client.id_token_signed_response_alg;
    Ok(Some(jwt::sign_id_token(&state.keyring, alg, &input)?))
}

/// A fresh refresh token of `family` and the row that keeps its hash. It
/// expires after the idle lifetime, but never after its family.
fn refresh_token(
    state: &OAuthState,
    grant: &Grant<'_>,
    family: &FamilyTerms,
    now: NaiveDateTime,
) -> Result<(String, RefreshRow), OAuthError> {
    let idle = chrono::TimeDelta::from_std(state.settings.refresh_token_ttl)
        .unwrap_or(chrono::TimeDelta::MAX);
    let token =
        secrets::generate_secret(REFRESH_PREFIX).map_err(|e| OAuthError::server_error(&e))?;
    let row = RefreshRow {
        id: ids::new_id(ids::REFRESH_TOKEN),
        environment_id: grant.client.environment_id.clone(),
        family_id: family.id.clone(),
        client_id: grant.client.id.clone(),
        user_id: grant.user.map(|u| u.id.clone()),
        token_hash: secrets::hash_secret(&token),
        scope: grant.refresh_scope.to_string(),
        auth_time: grant
            .auth_time
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map(|t| t.naive_utc()),
        session_id: grant.session_id.clone(),
        created_at: now,
        expires_at: now
            .checked_add_signed(idle)
            .map_or(family.expires_at, |t| t.min(family.expires_at)),
        rotated_at: None,
        revoked_at: None,
        offline_access: family.offline_access,
        session_bound: family.session_bound,
        family_expires_at: Some(family.expires_at),
        resources: Some(trusec_storage::sql_types::Json(grant.resources.clone())),
        amr: Some(trusec_storage::sql_types::Json(grant.amr.clone())),
        acr: grant.acr.clone(),
        // RFC 9449 §5: a public client's refresh token is bound to the
        // key; a confidential client's is bound to its authentication.
        dpop_jkt: grant
            .dpop
            .filter(|_| grant.client.is_public())
            .map(|jkt| jkt.as_str().to_owned()),
    };
    Ok((token, row))
}

/// The stored row of a refresh token of this endpoint's environment,
/// whatever its state: another environment's token is none here.
///
/// # Errors
/// Database failures.
pub async fn find_refresh_token(
    state: &OAuthState,
    token: &str,
) -> Result<Option<RefreshRow>, OAuthError> {
    let hash = secrets::hash_secret(token);
    let row = state
        .core()
        .db
        .run(move |conn| refresh_tokens::find_by_hash(conn, &hash))
        .await?;
    Ok(row.filter(|r| r.environment_id == state.env().id))
}

/// The user a grant was made for, if they still exist and are enabled:
/// the one check every user-bound grant (code, refresh, device code) makes.
///
/// # Errors
/// `invalid_grant` when the user is gone or disabled; database failures.
pub async fn grant_user(state: &OAuthState, env: &str, id: &str) -> Result<UserRow, OAuthError> {
    let (env, id) = (env.to_owned(), id.to_owned());
    state
        .core()
        .db
        .run(move |conn| users::get(conn, &env, &id))
        .await
        .map_err(|e| match e {
            StorageError::NotFound => OAuthError::invalid_grant("the user no longer exists"),
            other => other.into(),
        })
        .and_then(|user| match user.disabled_at {
            // RFC 6749 §5.2: the grant was issued to a resource owner who
            // may no longer be granted anything.
            Some(_) => Err(OAuthError::invalid_grant("the user is disabled")),
            None => Ok(user),
        })
}

/// Remembers a revoked access token until it expires: in the database
/// (the record), then as a marker in the store (fast, and seen by instances
/// of the previous release), and marks its cached status stale.
///
/// # Errors
/// Storage failures (the revocation must not be reported done otherwise).
pub async fn revoke_access_token(
    state: &OAuthState,
    jti: &str,
    exp: i64,
) -> Result<(), OAuthError> {
    let remaining = u64::try_from(exp - state.now_secs()).unwrap_or(0);
    if remaining == 0 {
        return Ok(());
    }
    let core = state.core();
    let now = core.clock.now_naive();
    let expires_at = chrono::DateTime::from_timestamp(exp, 0).map_or(now, |t| t.naive_utc());
    let record = jti.to_owned();
    core.db
        .run(move |conn| access_tokens::revoke(conn, &record, expires_at, now))
        .await?;
    core.store
        .put(
            &StoreKey::revoked_jti(jti),
            b"1",
            Duration::from_secs(remaining),
        )
        .await?;
    core.store.invalidate(&[Cached::access_token(jti)]).await?;
    Ok(())
}

/// Revokes a whole refresh family: its refresh tokens in the database and
/// every access token issued with it (RFC 7009 §2.1, RFC 9700 §4.14.2).
///
/// # Errors
/// Storage failures.
pub async fn revoke_family(state: &OAuthState, family: &str) -> Result<usize, OAuthError> {
    let now = state.core().clock.now_naive();
    let fam = family.to_owned();
    let n = state
        .core()
        .db
        .run(move |conn| refresh_tokens::revoke_family(conn, &fam, now))
        .await?;
    state
        .core()
        .forget_refresh_families(&[family.to_owned()])
        .await?;
    Ok(n)
}

/// A live access token of ours for this server itself (`aud` = the
/// issuer): what `/v1` and userinfo accept.
///
/// # Errors
/// `invalid_token` otherwise.
pub async fn verify_own_access_token(
    state: &OAuthState,
    token: &str,
) -> Result<AccessClaims, OAuthError> {
    let claims = verify_live_access_token(state, token).await?;
    if claims.aud == state.settings.issuer {
        Ok(claims)
    } else {
        Err(OAuthError::invalid_token(
            "the token is for another audience (RFC 8707)",
        ))
    }
}

/// A live access token of ours, for any audience: valid signature, not
/// expired, not revoked, and its client still registered.
///
/// # Errors
/// `invalid_token` otherwise (with the reason in the description).
pub async fn verify_live_access_token(
    state: &OAuthState,
    token: &str,
) -> Result<AccessClaims, OAuthError> {
    let claims = jwt::verify_access_token(
        &state.keyring,
        &state.settings.issuer,
        state.now_secs(),
        token,
    )
    .await
    .map_err(|e| OAuthError::invalid_token(e.to_string()))?;
    if state
        .core()
        .access_token_revoked(&claims.jti, claims.fid.as_deref())
        .await?
    {
        return Err(OAuthError::invalid_token("the token has been revoked"));
    }
    // A deleted client's tokens stop working at once, wherever they are
    // presented: the row comes from the read-through cache, which the
    // deletion marks stale on every instance (`storage::cache`).
    // A metadata document's client whose document is gone or refused now is
    // no client either.
    match crate::client_auth::cached_client(state, &claims.client_id).await {
        Ok(Some(client)) if client.environment_id == claims.env => Ok(claims),
        Err(e) if e.code == crate::error::ErrorCode::ServerError => Err(e),
        Ok(_) | Err(_) => Err(OAuthError::invalid_token(
            "the client this token was issued to no longer exists",
        )),
    }
}
