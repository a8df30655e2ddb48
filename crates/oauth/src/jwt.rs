//! JWTs: access tokens per RFC 9068 and ID tokens per OIDC Core §2, signed
//! with the keyring's current keys; verification of our own access tokens.

use crate::crypto::Alg;
use crate::keys::{KeyError, Keyring};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jws::JwsHeader;
use josekit::jwt::{self, JwtPayload};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::Digest;

/// Longest token we will look at: a larger one is garbage, not a JWT of ours.
pub const MAX_TOKEN_LEN: usize = 8192;

/// The claims of an access token we issued (RFC 9068 §2.2), plus the
/// environment and grant family we need to enforce isolation and revocation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// RFC 8176 authentication methods of the sign-in (RFC 9068 §2.2.1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The assurance level of the sign-in (RFC 9068 §2.2.1, OIDC Core §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// The environment the token lives in (`env_live`, `env_test`).
    pub env: String,
    /// The refresh-token family it was issued with, if any: revoking the
    /// family revokes the access tokens too (RFC 7009 §2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fid: Option<String>,
    /// RFC 9449 §6.1: the DPoP key the token is bound to (`cnf.jkt`); a
    /// resource then accepts it only with a proof of that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<crate::dpop::Confirmation>,
}

impl AccessClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("JOSE: {0}")]
    Jose(#[from] josekit::JoseError),
    #[error("the token is not a valid access token of this server")]
    Invalid,
    #[error("the token has expired")]
    Expired,
}

/// Signs an access token (`typ: at+jwt`, RFC 9068 §2.1).
///
/// # Errors
/// When no current key exists or signing fails.
pub fn sign_access_token(
    ring: &Keyring,
    alg: Alg,
    claims: &AccessClaims,
) -> Result<String, JwtError> {
    let signer = ring.keys().signer(alg)?;
    let payload = serde_json::to_vec(claims).map_err(|_| JwtError::Invalid)?;
    // RFC 7515 §7.1 compact serialisation: the key's ready header, the
    // claims serialised straight from their struct, one signature.
    let mut token = String::with_capacity(
        signer.access_token_header.len()
            + payload.len() * 4 / 3
            + 2 * signer.signer.signature_len()
            + 8,
    );
    token.push_str(&signer.access_token_header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let signature = signer.signer.sign(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
    Ok(token)
}

/// `at_hash`/`c_hash` (OIDC Core §3.1.3.6): the left half of the hash the
/// signing algorithm uses, base64url. Ed25519 pairs with SHA-512.
pub fn half_hash(alg: Alg, value: &str) -> String {
    let digest: Vec<u8> = match alg {
        Alg::Es256 | Alg::Rs256 => sha2::Sha256::digest(value.as_bytes()).to_vec(),
        Alg::EdDsa => sha2::Sha512::digest(value.as_bytes()).to_vec(),
    };
    let half = digest.get(..digest.len() / 2).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(half)
}

/// What goes into an ID token beyond the registered claims.
pub struct IdTokenInput<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub client_id: &'a str,
    pub now: i64,
    pub lifetime_secs: i64,
    pub auth_time: Option<i64>,
    /// RFC 8176 values (OIDC Core §2 `amr`); none is no claim.
    pub amr: &'a [String],
    /// OIDC Core §2 `acr`; none is no claim.
    pub acr: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub access_token: Option<&'a str>,
    pub session_id: Option<&'a str>,
}

/// Signs an ID token (OIDC Core §2) with the client's algorithm.
///
/// # Errors
/// When no current key exists or signing fails.
pub fn sign_id_token(
    ring: &Keyring,
    alg: Alg,
    input: &IdTokenInput<'_>,
) -> Result<String, JwtError> {
    let signer = ring.keys().signer(alg)?;
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(input.issuer));
    claims.insert("sub".into(), json!(input.subject));
    claims.insert("aud".into(), json!(input.client_id));
    claims.insert("azp".into(), json!(input.client_id));
    claims.insert("iat".into(), json!(input.now));
    claims.insert("exp".into(), json!(input.now + input.lifetime_secs));
    if let Some(t) = input.auth_time {
        claims.insert("auth_time".into(), json!(t));
    }
    if !input.amr.is_empty() {
        claims.insert("amr".into(), json!(input.amr));
    }
    if let Some(acr) = input.acr {
        claims.insert("acr".into(), json!(acr));
    }
    if let Some(n) = input.nonce {
        claims.insert("nonce".into(), json!(n));
    }
    if let Some(at) = input.access_token {
        claims.insert("at_hash".into(), json!(half_hash(alg, at)));
    }
    if let Some(sid) = input.session_id {
        claims.insert("sid".into(), json!(sid));
    }
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id(&signer.kid);
    Ok(jwt::encode_with_signer(
        &JwtPayload::from_map(claims)?,
        &header,
        signer.signer.as_ref(),
    )?)
}

/// Checks the signature of a token we issued (any of our published keys) and
/// returns its header type and claims, without judging expiry.
///
/// # Errors
/// `Invalid` for anything that is not a well-formed token signed by us.
pub async fn verify_signature(
    ring: &Keyring,
    token: &str,
) -> Result<(Option<String>, Map<String, Value>), JwtError> {
    if token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
        return Err(JwtError::Invalid);
    }
    let header = jwt::decode_header(token).map_err(|_| JwtError::Invalid)?;
    let kid = header
        .claim("kid")
        .and_then(Value::as_str)
        .ok_or(JwtError::Invalid)?
        .to_owned();
    let typ = header
        .claim("typ")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let verifier = ring.verifier(&kid).await.ok_or(JwtError::Invalid)?;
    let (payload, _) =
        jwt::decode_with_verifier(token, verifier.as_ref()).map_err(|_| JwtError::Invalid)?;
    Ok((typ, payload.claims_set().clone()))
}

/// The `iss` a compact JWT claims, unverified: it only chooses whose keys
/// will verify the token (which then must name that issuer again).
pub fn claimed_issuer(token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let mut parts = token.split('.');
    let (_, payload) = (parts.next()?, parts.next()?);
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// The JOSE header of an access token of ours (RFC 9068 §2.1).
#[derive(Deserialize)]
struct AccessTokenHeader {
    alg: String,
    kid: String,
    typ: Option<String>,
    /// RFC 7515 §4.1.11: we understand no extension, so a token naming one
    /// is not ours.
    crit: Option<serde::de::IgnoredAny>,
}

fn b64_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Invalid)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Invalid)
}

/// Verifies an access token of ours: signature, `typ`, issuer and expiry.
/// Revocation is the caller's to check (it needs the ephemeral store).
///
/// The compact form is taken apart once: the header and claims are decoded
/// straight into their structs, and the one signature is checked over the
/// bytes as sent (RFC 7515 §5.2).
///
/// # Errors
/// `Invalid` or `Expired`.
pub async fn verify_access_token(
    ring: &Keyring,
    issuer: &str,
    now: i64,
    token: &str,
) -> Result<AccessClaims, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Invalid);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Invalid);
    };
    let header: AccessTokenHeader = b64_json(header)?;
    // RFC 9068 §4: the typ header must be at+jwt, so an ID token can never
    // be replayed as an access token.
    let typ_ok = header.typ.is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok || header.crit.is_some() {
        return Err(JwtError::Invalid);
    }
    let verifier = ring.verifier(&header.kid).await.ok_or(JwtError::Invalid)?;
    // RFC 8725 §3.1: the algorithm is the key's, never the token's choice.
    if header.alg != verifier.algorithm().name() {
        return Err(JwtError::Invalid);
    }
    let signed = token
        .get(..token.len() - signature.len() - 1)
        .ok_or(JwtError::Invalid)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| JwtError::Invalid)?;
    verifier
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| JwtError::Invalid)?;
    let claims: AccessClaims = b64_json(payload)?;
    if claims.iss != issuer {
        return Err(JwtError::Invalid);
    }
    if claims.exp <= now {
        return Err(JwtError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_hash_matches_the_oidc_example() {
        // OIDC Core A.3: at_hash of this access token with RS256.
        assert_eq!(
            half_hash(Alg::Rs256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
