//! DPoP (RFC 9449): the one check of a `DPoP` proof, wherever one arrives —
//! the token endpoint (§5), pushed authorization requests (§10.1), and the
//! resources that accept DPoP-bound tokens (§7: userinfo, `/v1`) — and the
//! JWK thumbprint (RFC 7638) that binds tokens and codes to the proof's key.
//!
//! A proof is checked in the order of §4.3: one header value of bounded
//! size, a compact JWS whose header is `typ: dpop+jwt`, an asymmetric
//! `alg` (never `none`, never HS*), a public `jwk` (no private member) of
//! that algorithm, the signature by that key, then the claims: `jti`,
//! `htm`, `htu` (without query and fragment, normalised), `iat` within the
//! configured window, `ath` where an access token is presented, and a
//! server nonce when the settings ask for one (§8, §9). The `jti` is then
//! claimed once per key ([`claim`]): in the ephemeral store, and in the
//! database when the store cannot answer.
//!
//! Signatures go through josekit's verifiers, picked for the key by
//! [`crate::client_keys::verifier`], the same ones client assertions use.

use crate::OAuthState;
use crate::client_keys;
use crate::error::OAuthError;
use crate::jwt::AccessClaims;
use actix_web::HttpRequest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use trusec_storage::clients::AssertionAlg;
use trusec_storage::single_use::{self, ClaimKind};
use trusec_storage::{StorageError, StoreKey, secrets};
pub use trusec_ui::http::TokenScheme;

/// The request header a proof travels in (§4.1).
pub const HEADER: &str = "DPoP";
/// The response header a server nonce travels in (§8.1).
pub const NONCE_HEADER: &str = "DPoP-Nonce";
/// A proof is a few hundred bytes; an RSA-4096 one under 3 KiB.
pub const MAX_PROOF_LEN: usize = 8 * 1024;
/// The algorithms a proof may be signed with (discovery's
/// `dpop_signing_alg_values_supported`, §5.1): asymmetric only.
pub const ALGS: [&str; 4] = ["ES256", "PS256", "EdDSA", "RS256"];
/// Clock skew allowed on an `iat` in the future (§11.1).
const FUTURE_LEEWAY_SECONDS: u64 = 5;
const MAX_JTI_LEN: usize = 256;
const MAX_NONCE_LEN: usize = 128;
/// A SHA-256 JWK thumbprint in base64url: 43 characters.
const JKT_LEN: usize = 43;

/// DPoP settings (`TRUSEC_DPOP_PROOF_LIFETIME`, `TRUSEC_DPOP_REQUIRE_NONCE`).
#[derive(Clone, Copy, Debug)]
pub struct DpopSettings {
    /// How old a proof's `iat` may be (§11.1: a short window).
    pub proof_lifetime: Duration,
    /// Whether every proof must carry a nonce this server gave (§8, §9).
    pub require_nonce: bool,
}

impl Default for DpopSettings {
    fn default() -> Self {
        Self {
            proof_lifetime: Duration::from_secs(60),
            require_nonce: false,
        }
    }
}

/// A JWK SHA-256 thumbprint (RFC 7638 §3), base64url: what `cnf.jkt`
/// (§6.1), `dpop_jkt` (§10) and bound refresh tokens name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Jkt(String);

impl Jkt {
    /// A thumbprint as a client sends it (`dpop_jkt`): 43 base64url
    /// characters, or `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let well_formed = text.len() == JKT_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `other` is the same key, compared in constant time.
    pub fn matches(&self, other: &Self) -> bool {
        secrets::constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

/// The `cnf` claim of a DPoP-bound access token (RFC 9449 §6.1, RFC 7800).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub jkt: Jkt,
}

/// RFC 7638 §3: SHA-256 over the key's required members in lexicographic
/// order, no whitespace (serde_json writes a `BTreeMap` exactly so).
///
/// # Errors
/// A key that is not an EC, RSA or OKP public key with string members.
pub fn thumbprint(jwk: &Map<String, Value>) -> Result<Jkt, &'static str> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let kty = text("kty").ok_or("the jwk has no kty")?;
    let required: &[&str] = match kty {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return Err("the jwk is no EC, RSA or OKP key"),
    };
    let mut members = BTreeMap::new();
    for name in required {
        members.insert(*name, text(name).ok_or("the jwk lacks a required member")?);
    }
    let canonical = serde_json::to_string(&members).map_err(|_| "the jwk does not serialise")?;
    Ok(Jkt(
        URL_SAFE_NO_PAD.encode(openssl::sha::sha256(canonical.as_bytes()))
    ))
}

/// `ath` (§4.2): base64url of the SHA-256 of the access token's ASCII.
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(openssl::sha::sha256(token.as_bytes()))
}

/// What the request a proof came with was.
pub struct Expect<'a> {
    /// `htm` (§4.2): the request's method.
    pub method: &'a str,
    /// `htu`: the endpoint's public URL (from the issuer, never the Host
    /// header).
    pub url: &'a str,
    /// At a resource: the access token presented, whose hash `ath` must be.
    pub access_token: Option<&'a str>,
    pub now: i64,
    pub lifetime: Duration,
}

/// A proof whose signature and claims hold, before its `jti` is claimed
/// and its nonce checked.
#[derive(Debug)]
pub struct Proof {
    pub jkt: Jkt,
    jti: String,
    nonce: Option<String>,
}

#[derive(Deserialize)]
struct ProofHeader {
    typ: Option<String>,
    alg: String,
    jwk: Option<Map<String, Value>>,
    crit: Option<serde::de::IgnoredAny>,
}

fn b64_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// §4.3 points 1 to 11 but the nonce and the replay (which need storage).
///
/// # Errors
/// Why the proof is refused (`invalid_dpop_proof`).
pub fn verify(proof: &str, expect: &Expect<'_>) -> Result<Proof, &'static str> {
    if proof.len() > MAX_PROOF_LEN {
        return Err("the DPoP proof is too large");
    }
    let mut parts = proof.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the DPoP proof is no compact JWS");
    };
    let header: ProofHeader = b64_json(header).ok_or("the DPoP proof header is no JSON object")?;
    if !header
        .typ
        .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"))
    {
        return Err("the DPoP proof typ must be dpop+jwt");
    }
    if header.crit.is_some() {
        return Err("the DPoP proof names a critical extension this server does not know");
    }
    let alg =
        asymmetric(&header.alg).ok_or("the DPoP proof alg must be ES256, PS256, EdDSA or RS256")?;
    let jwk = header.jwk.ok_or("the DPoP proof header has no jwk")?;
    if client_keys::PRIVATE_MEMBERS
        .iter()
        .any(|m| jwk.contains_key(*m))
    {
        return Err("the DPoP proof jwk must be a public key");
    }
    let jkt = thumbprint(&jwk)?;
    let key = Jwk::from_map(jwk).map_err(|_| "the DPoP proof jwk is no JWK")?;
    let verifier =
        client_keys::verifier(alg, &key).ok_or("the DPoP proof jwk is no key of its alg")?;
    let signed = proof
        .get(..proof.len() - signature.len() - 1)
        .ok_or("the DPoP proof is no compact JWS")?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| "the DPoP proof signature is not base64url")?;
    verifier
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| "the DPoP proof signature does not verify")?;
    let claims: Map<String, Value> =
        b64_json(payload).ok_or("the DPoP proof claims are no JSON object")?;
    let (jti, nonce) = check_claims(&claims, expect)?;
    Ok(Proof { jkt, jti, nonce })
}

/// The asymmetric algorithms of [`ALGS`]; `none` and HS* are none.
fn asymmetric(name: &str) -> Option<AssertionAlg> {
    match AssertionAlg::parse(name)? {
        a @ (AssertionAlg::Es256
        | AssertionAlg::Ps256
        | AssertionAlg::EdDsa
        | AssertionAlg::Rs256) => Some(a),
        AssertionAlg::Hs256 | AssertionAlg::Hs384 | AssertionAlg::Hs512 => None,
    }
}

/// The claims of §4.2 against the request; the `jti` and `nonce`.
fn check_claims(
    c: &Map<String, Value>,
    expect: &Expect<'_>,
) -> Result<(String, Option<String>), &'static str> {
    let text = |name: &str| c.get(name).and_then(Value::as_str);
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)
        .ok_or("the DPoP proof needs a jti")?;
    if text("htm") != Some(expect.method) {
        return Err("the DPoP proof htm is not this request's method");
    }
    let htu = text("htu").ok_or("the DPoP proof needs an htu")?;
    if normalised(htu).is_none() || normalised(htu) != normalised(expect.url) {
        return Err("the DPoP proof htu is not this request's URL");
    }
    let iat = c
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or("the DPoP proof needs an integer iat")?;
    let window = i64::try_from(expect.lifetime.as_secs()).unwrap_or(i64::MAX);
    if iat < expect.now.saturating_sub(window) {
        return Err("the DPoP proof is too old (iat)");
    }
    if iat > expect.now.saturating_add_unsigned(FUTURE_LEEWAY_SECONDS) {
        return Err("the DPoP proof iat is in the future");
    }
    if let Some(token) = expect.access_token {
        let ath = text("ath").ok_or("the DPoP proof needs ath with an access token")?;
        let want = access_token_hash(token);
        if !secrets::constant_time_eq(ath.as_bytes(), want.as_bytes()) {
            return Err("the DPoP proof ath is not the hash of this access token");
        }
    }
    let nonce = match c.get("nonce") {
        None => None,
        Some(Value::String(n)) if n.len() <= MAX_NONCE_LEN => Some(n.clone()),
        Some(_) => return Err("the DPoP proof nonce is malformed"),
    };
    Ok((jti.to_owned(), nonce))
}

/// §4.3 point 9 (RFC 3986 §6.2.2 and §6.2.3): the URL without query and
/// fragment, its scheme and host in lower case, a default port dropped,
/// an empty path `/`, dot segments removed; only http(s).
fn normalised(url: &str) -> Option<String> {
    let mut url = url::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    Some(url.into())
}

/// The proof of a request, if it has one: at most one `DPoP` header
/// (§4.3 point 1).
///
/// # Errors
/// Several headers, or one that is not visible ASCII.
pub fn proof_of(req: &HttpRequest) -> Result<Option<&str>, &'static str> {
    let mut values = req.headers().get_all(HEADER);
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err("send one DPoP header, not several"),
        (Some(one), None) => one
            .to_str()
            .map(Some)
            .map_err(|_| "the DPoP header is not visible ASCII"),
    }
}

/// Why a proof was refused, for the caller to answer in its own shape
/// (the token endpoint: 400; a resource: 401 with a `DPoP` challenge).
#[derive(Debug)]
pub enum Refusal {
    /// `invalid_dpop_proof`.
    Invalid(&'static str),
    /// `use_dpop_nonce` (§8, §9), with the nonce to use.
    UseNonce(String),
    /// Our failure (the store and the database both).
    Storage(StorageError),
}

impl From<StorageError> for Refusal {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

impl Refusal {
    /// As the token and PAR endpoints answer (§5.1: 400).
    pub fn at_token_endpoint(self) -> OAuthError {
        match self {
            Self::Invalid(why) => OAuthError::invalid_dpop_proof(why),
            Self::UseNonce(nonce) => OAuthError::use_dpop_nonce(nonce),
            Self::Storage(e) => e.into(),
        }
    }

    /// As a resource answers (§7.1: 401, `WWW-Authenticate: DPoP`).
    pub fn at_resource(self) -> OAuthError {
        self.at_token_endpoint().at_dpop_resource()
    }
}

/// Checks the request's proof, if it has one, for `url` (and, at a
/// resource, the `access_token` presented): signature and claims
/// ([`verify`]), the server nonce when one is required, and the `jti`
/// used once. The key's thumbprint, or `None` without a proof.
///
/// # Errors
/// [`Refusal`].
pub async fn check(
    state: &OAuthState,
    req: &HttpRequest,
    url: &str,
    access_token: Option<&str>,
) -> Result<Option<Jkt>, Refusal> {
    let Some(proof) = proof_of(req).map_err(Refusal::Invalid)? else {
        return Ok(None);
    };
    let settings = state.settings.dpop;
    let expect = Expect {
        method: req.method().as_str(),
        url,
        access_token,
        now: state.now_secs(),
        lifetime: settings.proof_lifetime,
    };
    let proof = verify(proof, &expect).map_err(Refusal::Invalid)?;
    if settings.require_nonce && !nonce_is_ours(state, proof.nonce.as_deref()).await? {
        return Err(Refusal::UseNonce(new_nonce(state).await?));
    }
    if !claim(state, &proof).await? {
        return Err(Refusal::Invalid("the DPoP proof was used before (jti)"));
    }
    Ok(Some(proof.jkt))
}

/// A resource's refusal of a token as the client presented it (§7.1): a
/// `DPoP` request hears a `DPoP` challenge, a `Bearer` one RFC 6750's.
pub fn as_presented(scheme: TokenScheme) -> impl Fn(OAuthError) -> OAuthError {
    move |e| match scheme {
        TokenScheme::Dpop => e.at_dpop_resource(),
        TokenScheme::Bearer => e,
    }
}

/// A resource's check of how an access token it verified was presented
/// (§7): a DPoP-bound token only as `DPoP` with a proof of its key for
/// this request (`htm`, `htu` = `url`, `ath` of the token); an unbound
/// one only as `Bearer`.
///
/// # Errors
/// `invalid_token` or `invalid_dpop_proof` (401 with a `DPoP` challenge).
pub async fn check_presented(
    state: &OAuthState,
    req: &HttpRequest,
    url: &str,
    (scheme, token): (TokenScheme, &str),
    claims: &AccessClaims,
) -> Result<(), OAuthError> {
    let cnf = match (scheme, &claims.cnf) {
        (TokenScheme::Bearer, None) => return Ok(()),
        // §7.2: a bound token is no bearer token.
        (TokenScheme::Bearer, Some(_)) => {
            return Err(OAuthError::invalid_token(
                "the access token is DPoP-bound: send it as Authorization: DPoP with a DPoP proof",
            )
            .at_dpop_resource());
        }
        (TokenScheme::Dpop, None) => {
            return Err(OAuthError::invalid_token(
                "the access token is not DPoP-bound: send it as Authorization: Bearer",
            )
            .at_dpop_resource());
        }
        (TokenScheme::Dpop, Some(cnf)) => cnf,
    };
    match check(state, req, url, Some(token))
        .await
        .map_err(Refusal::at_resource)?
    {
        Some(key) if key.matches(&cnf.jkt) => Ok(()),
        Some(_) => Err(OAuthError::invalid_dpop_proof(
            "the DPoP proof is signed by another key than the token is bound to",
        )
        .at_dpop_resource()),
        None => Err(
            OAuthError::invalid_dpop_proof("a DPoP-bound access token needs a DPoP proof")
                .at_dpop_resource(),
        ),
    }
}

/// §11.1: a proof is used once. Its `jti` (per key) is remembered for the
/// whole window its `iat` could still pass in: first in the ephemeral
/// store (a replay seen by any instance sharing it is refused without a
/// database write), then in the database (`storage::single_use`), which is
/// the authority — a Redis flush or a failover to a replica that missed
/// the write cannot let a proof be used twice (docs/operations.md).
async fn claim(state: &OAuthState, proof: &Proof) -> Result<bool, StorageError> {
    let hash = secrets::hash_secret(&format!("{}.{}", proof.jkt.as_str(), proof.jti));
    let ttl = state.settings.dpop.proof_lifetime + Duration::from_secs(FUTURE_LEEWAY_SECONDS + 1);
    let core = state.core();
    match core
        .store
        .put_if_absent(&StoreKey::dpop_proof_used(&hash), b"1", ttl)
        .await
    {
        Ok(false) => return Ok(false),
        // The database decides alone while the store cannot answer.
        Ok(true) | Err(StorageError::Unavailable(_)) => {}
        Err(e) => return Err(e),
    }
    let now = core.clock.now_naive();
    let until = now + chrono::TimeDelta::from_std(ttl).unwrap_or_default();
    core.db
        .run(move |c| single_use::claim(c, ClaimKind::DpopProof, &hash, until, now))
        .await
}

async fn nonce_is_ours(state: &OAuthState, nonce: Option<&str>) -> Result<bool, StorageError> {
    let Some(nonce) = nonce else { return Ok(false) };
    let key = StoreKey::dpop_nonce(&secrets::hash_secret(nonce));
    Ok(state.core().store.get(&key).await?.is_some())
}

/// A fresh server nonce (§8.1), valid for the proof lifetime on every
/// instance sharing the store.
async fn new_nonce(state: &OAuthState) -> Result<String, StorageError> {
    let nonce = secrets::generate_secret("").map_err(StorageError::backend)?;
    let key = StoreKey::dpop_nonce(&secrets::hash_secret(&nonce));
    state
        .core()
        .store
        .put(&key, b"1", state.settings.dpop.proof_lifetime)
        .await?;
    Ok(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_thumbprint_is_rfc_7638_s_example() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let Value::Object(map) = jwk else { panic!() };
        assert_eq!(
            thumbprint(&map).unwrap().as_str(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn htu_is_compared_without_query_and_fragment_and_normalised() {
        let same = [
            (
                "https://as.example/oauth/token",
                "https://as.example/oauth/token",
            ),
            (
                "https://as.example/oauth/token?x=1#f",
                "https://as.example/oauth/token",
            ),
            (
                "HTTPS://AS.example:443/oauth/token",
                "https://as.example/oauth/token",
            ),
            (
                "https://as.example/a/../oauth/token",
                "https://as.example/oauth/token",
            ),
            ("https://as.example", "https://as.example/"),
        ];
        for (a, b) in same {
            assert_eq!(normalised(a), normalised(b), "{a} vs {b}");
        }
        for (a, b) in [
            (
                "https://as.example/oauth/token",
                "http://as.example/oauth/token",
            ),
            (
                "https://as.example/oauth/token",
                "https://as.example:8443/oauth/token",
            ),
            (
                "https://as.example/oauth/token",
                "https://as.example/oauth/token/",
            ),
        ] {
            assert_ne!(normalised(a), normalised(b), "{a} vs {b}");
        }
        assert_eq!(normalised("ftp://as.example/"), None);
        assert_eq!(normalised("https://user@as.example/"), None);
    }

    #[test]
    fn thumbprints_parse_only_in_their_shape() {
        assert!(Jkt::parse("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs").is_some());
        assert!(Jkt::parse("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9X").is_none());
        assert!(Jkt::parse("NzbLsXh8uDCcd+6MNwXF4W_7noWXFZAfHkxZsRGC9Xs").is_none());
    }
}
