//! Client authentication at the token, revocation and introspection
//! endpoints: `client_secret_basic`, `client_secret_post`,
//! `private_key_jwt` (a signed `client_assertion`, RFC 7523 §2.2, checked
//! in [`crate::client_keys`]), `client_secret_jwt` (one MACed with the
//! secret, [`crate::client_mac`]), or `none` for public clients (RFC 6749
//! §2.3), each client only with the method it registered
//! ([`ClientRow::accepts`], RFC 7591 §2). Secrets are 256-bit random, so
//! they are checked as SHA-256 in constant time: no slow hash on the hot
//! path.

use crate::OAuthState;
use crate::client_keys::{self, ASSERTION_TYPE, Expect};
use crate::error::OAuthError;
use crate::form::Params;
use actix_web::HttpRequest;
use secrecy::ExposeSecret as _;
use std::sync::Arc;
use trusec_storage::StoreKey;
use trusec_storage::cache::Cached;
use trusec_storage::clients::{self, AuthMethod, ClientRow, ClientType, MacSecret};
use trusec_storage::secrets;
use trusec_storage::single_use::{self, ClaimKind};
use trusec_ui::http::Authorization;

pub const SECRET_PREFIX: &str = "trusec_cs_";

/// The client and how it proved who it is.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub row: Arc<ClientRow>,
    pub used_basic: bool,
}

/// The endpoint a client authenticates at: its URL is an accepted `aud`
/// of a client assertion (RFC 7523 §3 point 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Token,
    Introspection,
    Revocation,
    /// RFC 8628 §3.1: the client authenticates as at the token endpoint.
    DeviceAuthorization,
    /// RFC 9126 §2: likewise; the issuer or this URL is the `aud`.
    Par,
}

impl Endpoint {
    /// The endpoint's public URL under `issuer` (a client assertion's
    /// `aud`, a DPoP proof's `htu`).
    pub fn url(self, issuer: &str) -> String {
        format!("{issuer}{}", self.path())
    }

    fn path(self) -> &'static str {
        match self {
            Self::Token => "/oauth/token",
            Self::Introspection => "/oauth/introspect",
            Self::Revocation => "/oauth/revoke",
            Self::DeviceAuthorization => "/oauth/device_authorization",
            Self::Par => "/oauth/par",
        }
    }
}

struct Presented {
    client_id: String,
    secret: Option<String>,
    basic: bool,
}

/// A `client_assertion` (RFC 7521 §4.2), size-bounded and with the client
/// it claims to come from.
struct AssertionPresented {
    client_id: String,
    assertion: String,
}

/// The assertion of this request, if it carries one; alone (RFC 6749 §2.3:
/// one method per request).
fn assertion(req: &HttpRequest, params: &Params) -> Result<Option<AssertionPresented>, OAuthError> {
    let (kind, assertion) = (
        params.get("client_assertion_type"),
        params.get("client_assertion"),
    );
    if kind.is_none() && assertion.is_none() {
        return Ok(None);
    }
    if params.get("client_secret").is_some()
        || !matches!(
            Authorization::of(req),
            Authorization::Missing | Authorization::Bearer(_)
        )
    {
        return Err(OAuthError::invalid_request(
            "use one client authentication method, not two",
        ));
    }
    if kind != Some(ASSERTION_TYPE) {
        return Err(OAuthError::invalid_client(format!(
            "client_assertion_type must be {ASSERTION_TYPE}"
        )));
    }
    let assertion =
        assertion.ok_or_else(|| OAuthError::invalid_request("client_assertion is missing"))?;
    let claimed = client_keys::peek(assertion).map_err(OAuthError::invalid_client)?;
    // RFC 7521 §4.2: client_id is optional, and names the same client.
    if params
        .get("client_id")
        .is_some_and(|id| id != claimed.issuer)
    {
        return Err(OAuthError::invalid_client(
            "client_id differs from the client_assertion's iss",
        ));
    }
    Ok(Some(AssertionPresented {
        client_id: claimed.issuer,
        assertion: assertion.to_owned(),
    }))
}

impl Presented {
    /// The RFC 7591 §2 name of the method this request used.
    fn method(&self) -> AuthMethod {
        match (self.basic, &self.secret) {
            (true, _) => AuthMethod::ClientSecretBasic,
            (false, Some(_)) => AuthMethod::ClientSecretPost,
            (false, None) => AuthMethod::None,
        }
    }
}

fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn presented(req: &HttpRequest, params: &Params) -> Result<Presented, OAuthError> {
    let malformed =
        || OAuthError::invalid_client("malformed Basic credentials").with_basic_challenge(true);
    match Authorization::of(req) {
        Authorization::Basic { user, password } => {
            // RFC 6749 §2.3: one method per request.
            if params.get("client_secret").is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not two",
                ));
            }
            // §2.3.1: both parts are form-urlencoded before Basic encoding.
            let (id, secret) = (form_decode(&user), form_decode(&password));
            if params.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the Basic credentials",
                ));
            }
            Ok(Presented {
                client_id: id,
                secret: Some(secret),
                basic: true,
            })
        }
        Authorization::MalformedBasic => Err(malformed()),
        // A bearer or other header is not client authentication here.
        Authorization::Missing
        | Authorization::Bearer(_)
        | Authorization::Dpop(_)
        | Authorization::Other => Ok(Presented {
            client_id: params
                .get("client_id")
                .ok_or_else(|| OAuthError::invalid_client("client authentication required"))?
                .to_owned(),
            secret: params.get("client_secret").map(str::to_owned),
            basic: false,
        }),
    }
}

/// Authenticates the client making this request at `endpoint`.
///
/// # Errors
/// `invalid_client` (401) for an unknown client, wrong secret or refused
/// assertion, with a Basic challenge when Basic was used.
pub async fn authenticate(
    state: &OAuthState,
    req: &HttpRequest,
    params: &Params,
    endpoint: Endpoint,
) -> Result<AuthenticatedClient, OAuthError> {
    if let Some(a) = assertion(req, params)? {
        return by_assertion(state, a, endpoint).await;
    }
    let p = presented(req, params)?;
    let fail = |msg: &str| OAuthError::invalid_client(msg).with_basic_challenge(p.basic);
    if !plausible_id(state, &p.client_id) {
        return Err(fail("unknown client"));
    }
    let row = cached_client(state, &p.client_id)
        .await?
        .ok_or_else(|| fail("unknown client"))?;
    match (&row.secret_hash, &p.secret) {
        // A public client authenticates with nothing (`none`).
        (None, None) => {}
        (None, Some(_)) => return Err(fail("public clients have no secret")),
        (Some(_), None) => return Err(fail("client authentication required")),
        (Some(stored), Some(secret)) => {
            let presented_hash = secrets::hash_secret(secret);
            if !secrets::constant_time_eq(stored.as_bytes(), presented_hash.as_bytes()) {
                return Err(fail("invalid client credentials"));
            }
        }
    }
    // Checked after the secret, so a guess learns nothing from the method:
    // a client authenticates only as it registered (RFC 7591 §2), and a
    // wrong method is `invalid_client` (RFC 6749 §5.2).
    if !row.accepts(p.method()) {
        return Err(fail(
            "this client is registered for another token_endpoint_auth_method",
        ));
    }
    Ok(AuthenticatedClient {
        row,
        used_basic: p.basic,
    })
}

/// `private_key_jwt` or `client_secret_jwt`: the assertion verified
/// against the client's keys or secret, then its `jti` recorded until it
/// expires, atomically, so a replay within its lifetime fails however many
/// instances share the store.
async fn by_assertion(
    state: &OAuthState,
    a: AssertionPresented,
    endpoint: Endpoint,
) -> Result<AuthenticatedClient, OAuthError> {
    let fail = |msg: &str| OAuthError::invalid_client(msg);
    if !plausible_id(state, &a.client_id) {
        return Err(fail("unknown client"));
    }
    let row = cached_client(state, &a.client_id)
        .await?
        .ok_or_else(|| fail("unknown client"))?;
    let method = row.token_endpoint_auth_method;
    if !matches!(
        method,
        AuthMethod::PrivateKeyJwt | AuthMethod::ClientSecretJwt
    ) || !row.accepts(method)
    {
        return Err(fail(
            "this client is registered for another token_endpoint_auth_method",
        ));
    }
    let settings = &state.settings;
    let endpoint_url = endpoint.url(&settings.issuer);
    let expect = Expect {
        audiences: [settings.issuer.as_str(), endpoint_url.as_str()],
        now: state.now_secs(),
        max_lifetime: settings.client_assertion_max_lifetime,
    };
    let verified = match method {
        AuthMethod::ClientSecretJwt => {
            let secret = mac_secret_of(state, &row.id)
                .await?
                .ok_or_else(|| fail("the client's secret predates client_secret_jwt: rotate it"))?;
            crate::client_mac::verify(&row, &a.assertion, secret.expose_secret(), &expect)
                .map_err(fail)?
        }
        AuthMethod::PrivateKeyJwt
        | AuthMethod::ClientSecretBasic
        | AuthMethod::ClientSecretPost
        | AuthMethod::None => match &row.jwks_uri {
            Some(uri) => {
                crate::remote_jwks::verify(state, &row, uri, &a.assertion, &expect).await?
            }
            None => client_keys::verify(&row, &a.assertion, &expect).map_err(fail)?,
        },
    };
    claim_jti(state, &row.id, &verified).await?;
    Ok(AuthenticatedClient {
        row,
        used_basic: false,
    })
}

/// The opened secret of a `client_secret_jwt` client, from the database
/// (the cache never holds it).
async fn mac_secret_of(
    state: &OAuthState,
    id: &str,
) -> Result<Option<secrecy::SecretBox<[u8]>>, OAuthError> {
    let (key, env, id) = (
        state.ui.seal_key.clone(),
        state.env().id.clone(),
        id.to_owned(),
    );
    Ok(state
        .core()
        .db
        .run(move |c| clients::open_mac_secret(c, &key, &env, &id))
        .await?)
}

/// Makes the assertion's `jti` single use until it expires (RFC 7523 §3
/// point 7): first in the store (a replay is refused without a database
/// write), then in the database, the authority, so a flushed or failed
/// over Redis cannot let an assertion be replayed.
async fn claim_jti(
    state: &OAuthState,
    client_id: &str,
    verified: &client_keys::Verified,
) -> Result<(), OAuthError> {
    let replayed = || OAuthError::invalid_client("client_assertion jti was already used");
    let first = state
        .core()
        .store
        .put_if_absent(
            &StoreKey::client_assertion_used(client_id, &verified.jti),
            b"1",
            verified.replay_ttl,
        )
        .await?;
    if !first {
        return Err(replayed());
    }
    let hash = secrets::hash_secret(&format!("{client_id}\n{}", verified.jti));
    let now = state.core().clock.now_naive();
    let until = now + chrono::TimeDelta::from_std(verified.replay_ttl).unwrap_or_default();
    let first = state
        .core()
        .db
        .run(move |c| single_use::claim(c, ClaimKind::ClientAssertion, &hash, until, now))
        .await?;
    if first { Ok(()) } else { Err(replayed()) }
}

/// The secret (shown once) and its hash for a client that authenticates
/// with one; none for a public or `private_key_jwt` client, which has
/// nothing to keep secret here. A `client_secret_jwt` client's is long
/// enough to be an HS512 key (RFC 7518 §3.2).
///
/// # Errors
/// When the random source fails.
pub fn secret_for(
    valid: &crate::client_metadata::ValidClient,
) -> Result<Option<(String, String)>, OAuthError> {
    match (valid.client_type, valid.token_endpoint_auth_method) {
        (ClientType::Public, _)
        | (ClientType::Confidential, AuthMethod::PrivateKeyJwt | AuthMethod::None) => Ok(None),
        (
            ClientType::Confidential,
            method @ (AuthMethod::ClientSecretBasic
            | AuthMethod::ClientSecretPost
            | AuthMethod::ClientSecretJwt),
        ) => new_secret(method).map(Some),
    }
}

/// Random symbols of a secret that is also an HS512 key: 86 give 96 bytes
/// with the prefix, and about 512 bits.
const MAC_SECRET_SYMBOLS: usize = 86;

/// A fresh client secret (shown once) and its stored hash, for a client
/// that authenticates with `method`.
///
/// # Errors
/// When the random source fails.
pub fn new_secret(method: AuthMethod) -> Result<(String, String), OAuthError> {
    let secret = match method {
        AuthMethod::ClientSecretJwt => {
            secrets::generate_secret_of(SECRET_PREFIX, MAC_SECRET_SYMBOLS)
        }
        AuthMethod::ClientSecretBasic
        | AuthMethod::ClientSecretPost
        | AuthMethod::PrivateKeyJwt
        | AuthMethod::None => secrets::generate_secret(SECRET_PREFIX),
    }
    .map_err(|e| OAuthError::server_error(&e))?;
    let hash = secrets::hash_secret(&secret);
    Ok((secret, hash))
}

/// The sealed copy of `secret` a client of `method` keeps: only a
/// `client_secret_jwt` client, whose assertions are MACed with it (OIDC
/// Core §9); never any other.
pub fn mac_secret(
    method: AuthMethod,
    secret: &str,
    key: &trusec_storage::sealed::SealKey,
) -> Option<MacSecret> {
    match method {
        AuthMethod::ClientSecretJwt => Some(MacSecret {
            key: key.clone(),
            secret: secret.into(),
        }),
        AuthMethod::ClientSecretBasic
        | AuthMethod::ClientSecretPost
        | AuthMethod::PrivateKeyJwt
        | AuthMethod::None => None,
    }
}

/// A registered client's id (`client_…`, well under 64), or a client ID
/// metadata document's URL: anything longer is no client, unlooked-up.
fn plausible_id(state: &OAuthState, id: &str) -> bool {
    let max = if crate::client_document::names_a_document(state, id) {
        crate::client_document::MAX_ID_LEN
    } else {
        64
    };
    !id.is_empty() && id.len() <= max
}

/// The client row of this endpoint's environment, from the cache or the
/// database: the token endpoint's hot path should not pay a database round
/// trip per request. Changes and deletions through the management API mark
/// the entry stale at once ([`forget_client`]), on every instance sharing
/// Redis. A client of another environment is no client here (contract).
/// A `client_id` that is a metadata document's URL is the client that
/// document describes ([`crate::client_document`]).
///
/// # Errors
/// Database failures; `invalid_client` for a metadata document that
/// cannot be fetched or is refused.
pub async fn cached_client(
    state: &OAuthState,
    id: &str,
) -> Result<Option<Arc<ClientRow>>, OAuthError> {
    if let Some(row) = crate::client_document::resolve(state, id).await? {
        return Ok(Some(Arc::new(row)));
    }
    let row = state.core().client(id).await?;
    Ok(row.filter(|c| c.environment_id == state.env().id))
}

/// The client with this id in this endpoint's environment, from the
/// database (the pages that name a client are not the hot path).
///
/// # Errors
/// Database failures.
pub async fn client_of_env(
    state: &OAuthState,
    id: &str,
) -> Result<Option<ClientRow>, trusec_storage::StorageError> {
    let lookup = id.to_owned();
    let row = state
        .core()
        .db
        .run(move |conn| clients::find(conn, &lookup))
        .await?;
    Ok(row.filter(|c| c.environment_id == state.env().id))
}

/// Marks a client stale in the cache after it changed or was deleted.
///
/// # Errors
/// Store failures: the caller reports them, since a stale client would
/// keep authenticating for up to a minute.
pub async fn forget_client(
    core: &trusec_storage::Core,
    id: &str,
) -> Result<(), trusec_storage::StorageError> {
    core.store.invalidate(&[Cached::client(id)]).await
}
