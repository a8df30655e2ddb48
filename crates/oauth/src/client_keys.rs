//! JWT client authentication (RFC 7523 §2.2 and §3, RFC 7521 §4.2, OIDC
//! Core §9): the registered public keys of a `private_key_jwt` client
//! (RFC 7591 §2 `jwks`, checked here to hold public members only) and the
//! verification of its `client_assertion`. [`crate::client_auth`] is the
//! one caller: every endpoint that authenticates clients goes through it.
//! `client_secret_jwt` assertions share the header and claims checks here;
//! their MAC is checked in [`crate::client_mac`].

use crate::client_metadata::{FieldError, bad};
use josekit::jwk::Jwk;
use josekit::jws::{self, JwsVerifier};
use josekit::jwt;
use serde_json::{Map, Value};
use std::time::Duration;
use trusec_storage::clients::{AssertionAlg, AuthMethod, ClientJwks, ClientKeys, ClientRow};

/// RFC 7523 §2.2.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Bound before anything is parsed: an assertion is a few hundred bytes.
pub const MAX_ASSERTION_LEN: usize = 8 * 1024;
/// Clock skew allowed on `exp`, `nbf` and `iat` (RFC 7519 §4.1.4).
pub const LEEWAY_SECONDS: i64 = 30;
const MAX_KEYS: usize = 10;
/// The largest JWK Set, inline or fetched from a `jwks_uri`.
pub const MAX_JWKS_LEN: usize = 32 * 1024;
const MAX_JTI_LEN: usize = 256;
/// Members of a private or symmetric JWK (RFC 7518 §6.2.2, §6.3.2, §6.4;
/// RFC 8037 §2): a client registers only what verifies its signatures.
pub(crate) const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The key metadata of a client, checked against its method: `jwks` or
/// `jwks_uri` (one, RFC 7591 §2) only (and then required) for
/// `private_key_jwt`, an algorithm only of the method's family (HS* for
/// `client_secret_jwt`, whose key is the secret). A `jwks_uri` must be one
/// `outbound` may fetch (https, no literal non-public address); where its
/// name resolves is checked at each fetch.
///
/// # Errors
/// The field that is wrong.
pub fn validate(
    method: AuthMethod,
    jwks: Option<Value>,
    jwks_uri: Option<String>,
    alg: Option<&str>,
    outbound: crate::fetch::OutboundSettings,
) -> Result<ClientKeys, FieldError> {
    let alg = signing_alg(method, alg)?;
    if let Some(uri) = &jwks_uri {
        // RFC 7591 §2: "MUST NOT both be present".
        if jwks.is_some() {
            return Err(bad("jwks_uri", "give jwks or jwks_uri, not both"));
        }
        if method != AuthMethod::PrivateKeyJwt {
            return Err(bad(
                "jwks_uri",
                "only for token_endpoint_auth_method=private_key_jwt",
            ));
        }
        crate::fetch::check_url(uri, outbound).map_err(|e| bad("jwks_uri", e.to_string()))?;
        return Ok(ClientKeys {
            jwks: None,
            jwks_uri,
            token_endpoint_auth_signing_alg: alg,
        });
    }
    let jwks = match (method, jwks) {
        (AuthMethod::PrivateKeyJwt, Some(set)) => Some(public_jwks(set, alg)?),
        (AuthMethod::PrivateKeyJwt, None) => {
            return Err(bad(
                "jwks",
                "private_key_jwt needs the client's public keys (jwks or jwks_uri)",
            ));
        }
        (
            AuthMethod::ClientSecretBasic
            | AuthMethod::ClientSecretPost
            | AuthMethod::ClientSecretJwt
            | AuthMethod::None,
            Some(_),
        ) => {
            return Err(bad(
                "jwks",
                "only for token_endpoint_auth_method=private_key_jwt",
            ));
        }
        (_, None) => None,
    };
    Ok(ClientKeys {
        jwks,
        jwks_uri: None,
        token_endpoint_auth_signing_alg: alg,
    })
}

fn signing_alg(method: AuthMethod, name: Option<&str>) -> Result<Option<AssertionAlg>, FieldError> {
    let field = "token_endpoint_auth_signing_alg";
    let Some(name) = name else { return Ok(None) };
    let alg = AssertionAlg::parse(name).ok_or_else(|| {
        bad(
            field,
            "ES256, PS256, EdDSA or RS256 (private_key_jwt); HS256, HS384 or HS512 (client_secret_jwt)",
        )
    })?;
    if alg.method() == method {
        Ok(Some(alg))
    } else {
        Err(bad(
            field,
            format!("{name} is not an algorithm of {}", method.as_str()),
        ))
    }
}

/// A JWK Set of public signature keys, each usable by some algorithm of
/// `private_key_jwt` (the registered one when there is one).
///
/// # Errors
/// What is wrong with the set.
pub fn public_jwks(set: Value, alg: Option<AssertionAlg>) -> Result<ClientJwks, FieldError> {
    let field = "jwks";
    if serde_json::to_vec(&set).map_or(usize::MAX, |v| v.len()) > MAX_JWKS_LEN {
        return Err(bad(field, format!("at most {MAX_JWKS_LEN} bytes")));
    }
    let parsed: ClientJwks = serde_json::from_value(set)
        .map_err(|_| bad(field, "a JWK Set: {\"keys\": [ ... ]} (RFC 7517 §5)"))?;
    if parsed.keys.is_empty() || parsed.keys.len() > MAX_KEYS {
        return Err(bad(field, format!("1 to {MAX_KEYS} keys")));
    }
    for key in &parsed.keys {
        if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| key.contains_key(**m)) {
            return Err(bad(
                field,
                format!("public keys only: a key has the private member {member}"),
            ));
        }
        let jwk = Jwk::from_map(key.clone()).map_err(|e| bad(field, format!("a key: {e}")))?;
        let usable = algorithms(alg).iter().any(|a| verifier(*a, &jwk).is_some());
        if !usable {
            return Err(bad(
                field,
                "a key is no RSA (2048 bits or more), P-256 or Ed25519 public signature key",
            ));
        }
    }
    if parsed.keys.len() > 1 {
        let mut kids: Vec<_> = parsed.keys.iter().map(|k| k.get("kid")).collect();
        let named = kids.iter().all(|k| k.is_some_and(Value::is_string));
        kids.sort_by_key(|k| k.map(Value::to_string));
        kids.dedup();
        if !named || kids.len() != parsed.keys.len() {
            return Err(bad(field, "several keys need distinct kid values"));
        }
    }
    Ok(parsed)
}

/// The asymmetric algorithms, or only the registered one.
fn algorithms(registered: Option<AssertionAlg>) -> Vec<AssertionAlg> {
    match registered {
        Some(a) => vec![a],
        None => vec![
            AssertionAlg::Es256,
            AssertionAlg::Ps256,
            AssertionAlg::EdDsa,
            AssertionAlg::Rs256,
        ],
    }
}

/// The verifier of `alg` for a public key, if the key is one of that
/// algorithm (RSA keys under 2048 bits are refused, RFC 7518 §3.3).
pub(crate) fn verifier(alg: AssertionAlg, jwk: &Jwk) -> Option<Box<dyn JwsVerifier>> {
    let rsa_ok = || {
        jwk.parameter("n")
            .and_then(Value::as_str)
            .is_some_and(|n| n.len() >= 342)
    };
    match alg {
        AssertionAlg::Es256 => jws::ES256
            .verifier_from_jwk(jwk)
            .ok()
            .map(|v| Box::new(v) as Box<dyn JwsVerifier>),
        AssertionAlg::EdDsa => jws::EdDSA
            .verifier_from_jwk(jwk)
            .ok()
            .filter(|_| jwk.curve() == Some("Ed25519"))
            .map(|v| Box::new(v) as Box<dyn JwsVerifier>),
        AssertionAlg::Ps256 => jws::PS256
            .verifier_from_jwk(jwk)
            .ok()
            .filter(|_| rsa_ok())
            .map(|v| Box::new(v) as Box<dyn JwsVerifier>),
        AssertionAlg::Rs256 => jws::RS256
            .verifier_from_jwk(jwk)
            .ok()
            .filter(|_| rsa_ok())
            .map(|v| Box::new(v) as Box<dyn JwsVerifier>),
        // Symmetric: never from a registered (public) key.
        AssertionAlg::Hs256 | AssertionAlg::Hs384 | AssertionAlg::Hs512 => None,
    }
}

/// What an assertion says about itself before it is verified: only which
/// client's keys to try (the verified claims must name it again).
pub struct Unverified {
    pub issuer: String,
}

fn b64_json(part: &str) -> Option<Map<String, Value>> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Reads the claimed `iss` of an assertion, size-bounded first.
///
/// # Errors
/// Why the assertion is no well-formed JWT.
pub fn peek(assertion: &str) -> Result<Unverified, &'static str> {
    if assertion.len() > MAX_ASSERTION_LEN {
        return Err("client_assertion is too large");
    }
    let mut parts = assertion.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("client_assertion is no compact JWS");
    };
    let issuer = b64_json(payload)
        .and_then(|c| c.get("iss").and_then(Value::as_str).map(str::to_owned))
        .ok_or("client_assertion has no iss")?;
    Ok(Unverified { issuer })
}

/// What a verified assertion leaves to do: make its `jti` single use until
/// it expires.
pub struct Verified {
    pub jti: String,
    pub replay_ttl: Duration,
}

/// The checks of one assertion, from the endpoint that received it.
pub struct Expect<'a> {
    /// The issuer and the endpoint URL: `aud` must contain one (RFC 7523
    /// §3 point 3).
    pub audiences: [&'a str; 2],
    pub now: i64,
    pub max_lifetime: Duration,
}

/// Verifies `assertion` for `client`: algorithm of its method (and its
/// registered one), signature by one of its keys, then the claims of
/// RFC 7523 §3.
///
/// # Errors
/// Why it is refused (the caller answers `invalid_client`).
pub fn verify(
    client: &ClientRow,
    assertion: &str,
    expect: &Expect<'_>,
) -> Result<Verified, &'static str> {
    verify_with(client, client.jwks.as_deref(), assertion, expect)
}

/// The refusal of an assertion whose `kid` (and `alg`) no key of the set
/// fits: for keys from a `jwks_uri`, a sign they may have rotated.
pub const NO_FITTING_KEY: &str = "no registered key of the client fits the assertion's kid and alg";

/// [`verify`] with the client's keys given: inline, or fetched from its
/// `jwks_uri` ([`crate::remote_jwks`]).
///
/// # Errors
/// Why it is refused (the caller answers `invalid_client`).
pub fn verify_with(
    client: &ClientRow,
    keys: Option<&ClientJwks>,
    assertion: &str,
    expect: &Expect<'_>,
) -> Result<Verified, &'static str> {
    let (alg, header) = assertion_alg(client, assertion)?;
    let kid = header.claim("kid").and_then(Value::as_str);
    let verifier = key_for(keys, alg, kid)?;
    let (payload, _) = jwt::decode_with_verifier(assertion, verifier.as_ref())
        .map_err(|_| "client_assertion signature does not verify")?;
    claims(client, payload.claims_set(), expect)
}

/// The assertion's `alg` (and its header), if it is one of the client's
/// method (an HS alg only for `client_secret_jwt`, an asymmetric one only
/// for `private_key_jwt`; never `none`) and its registered one.
///
/// # Errors
/// Why it is refused.
pub(crate) fn assertion_alg(
    client: &ClientRow,
    assertion: &str,
) -> Result<(AssertionAlg, Box<dyn josekit::JoseHeader>), &'static str> {
    let header = jwt::decode_header(assertion).map_err(|_| "client_assertion header")?;
    let alg = header
        .claim("alg")
        .and_then(Value::as_str)
        .and_then(AssertionAlg::parse)
        .ok_or("client_assertion alg is not accepted")?;
    if alg.method() != client.token_endpoint_auth_method {
        return Err("client_assertion alg does not fit the client's token_endpoint_auth_method");
    }
    if client
        .token_endpoint_auth_signing_alg
        .is_some_and(|registered| registered != alg)
    {
        return Err("client_assertion alg is not the registered token_endpoint_auth_signing_alg");
    }
    Ok((alg, header))
}

/// The verifier of the one registered key the assertion names (by `kid`),
/// or of the only key of that algorithm when it names none.
fn key_for(
    keys: Option<&ClientJwks>,
    alg: AssertionAlg,
    kid: Option<&str>,
) -> Result<Box<dyn JwsVerifier>, &'static str> {
    let keys = keys.ok_or("the client has no registered keys")?;
    let mut fitting = keys
        .keys
        .iter()
        .filter(|k| kid.is_none_or(|kid| k.get("kid").and_then(Value::as_str) == Some(kid)))
        .filter_map(|k| Jwk::from_map(k.clone()).ok())
        .filter_map(|k| verifier(alg, &k));
    match (fitting.next(), fitting.next()) {
        (Some(v), None) => Ok(v),
        (None, _) => Err(NO_FITTING_KEY),
        (Some(_), Some(_)) => Err("several registered keys fit: name one with kid"),
    }
}

/// RFC 7523 §3: the claims of a verified assertion.
pub(crate) fn claims(
    client: &ClientRow,
    c: &Map<String, Value>,
    expect: &Expect<'_>,
) -> Result<Verified, &'static str> {
    let text = |name: &str| c.get(name).and_then(Value::as_str);
    let time = |name: &str| c.get(name).and_then(Value::as_i64);
    // RFC 7523 §3 points 1 and 2 (client authentication: both the client).
    if text("iss") != Some(client.id.as_str()) || text("sub") != Some(client.id.as_str()) {
        return Err("client_assertion iss and sub must be the client_id");
    }
    let aud_fits = |v: &Value| v.as_str().is_some_and(|a| expect.audiences.contains(&a));
    let aud_ok = match c.get("aud") {
        Some(Value::Array(list)) => list.iter().any(aud_fits),
        Some(one) => aud_fits(one),
        None => false,
    };
    if !aud_ok {
        return Err("client_assertion aud must be the issuer or this endpoint's URL");
    }
    let (now, leeway) = (expect.now, LEEWAY_SECONDS);
    let max = i64::try_from(expect.max_lifetime.as_secs()).unwrap_or(i64::MAX);
    let exp = time("exp").ok_or("client_assertion exp is required")?;
    if exp <= now - leeway {
        return Err("client_assertion has expired");
    }
    if exp > now.saturating_add(max).saturating_add(leeway) {
        return Err("client_assertion exp is too far ahead");
    }
    if time("nbf").is_some_and(|nbf| nbf > now + leeway) {
        return Err("client_assertion is not valid yet (nbf)");
    }
    if c.contains_key("iat") && time("iat").is_none_or(|iat| iat > now + leeway) {
        return Err("client_assertion iat is in the future");
    }
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)
        .ok_or("client_assertion jti is required")?;
    let ttl = u64::try_from(exp - now + leeway).unwrap_or(1).max(1);
    Ok(Verified {
        jti: jti.to_owned(),
        replay_ttl: Duration::from_secs(ttl),
    })
}
