//! `client_secret_jwt` (RFC 7523 §2.2, OIDC Core §9): a client assertion
//! MACed with HS256, HS384 or HS512 under the octets of the client secret,
//! which the client keeps sealed under the master key for that
//! (`storage::clients::open_mac_secret`). Header and claims are checked as
//! for `private_key_jwt` ([`crate::client_keys`]: an asymmetric `alg` or
//! `none` is refused there); the MAC is computed by OpenSSL and compared by
//! OpenSSL's constant-time `CRYPTO_memcmp`. josekit parses the JWS, but its
//! own HMAC verifier compares with `!=`, which would tell an attacker how
//! many leading bytes of a forged MAC were right, so it is not used.

use crate::client_keys::{self, Expect, Verified};
use josekit::JoseError;
use josekit::jws::{self, JwsAlgorithm, JwsVerifier};
use josekit::jwt;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use trusec_storage::clients::{AssertionAlg, ClientRow};

/// Verifies a `client_secret_jwt` assertion of `client` with its secret.
///
/// # Errors
/// Why it is refused (the caller answers `invalid_client`).
pub fn verify(
    client: &ClientRow,
    assertion: &str,
    secret: &[u8],
    expect: &Expect<'_>,
) -> Result<Verified, &'static str> {
    let (alg, _) = client_keys::assertion_alg(client, assertion)?;
    let verifier = MacVerifier::new(alg, secret)?;
    let (payload, _) = jwt::decode_with_verifier(assertion, &verifier)
        .map_err(|_| "client_assertion MAC does not verify")?;
    client_keys::claims(client, payload.claims_set(), expect)
}

/// An HMAC JWS verifier (RFC 7518 §3.2) whose comparison is constant-time.
#[derive(Clone)]
struct MacVerifier {
    alg: jws::alg::hmac::HmacJwsAlgorithm,
    digest: MessageDigest,
    key: PKey<Private>,
}

impl MacVerifier {
    fn new(alg: AssertionAlg, secret: &[u8]) -> Result<Self, &'static str> {
        let (alg, digest) = match alg {
            AssertionAlg::Hs256 => (jws::HS256, MessageDigest::sha256()),
            AssertionAlg::Hs384 => (jws::HS384, MessageDigest::sha384()),
            AssertionAlg::Hs512 => (jws::HS512, MessageDigest::sha512()),
            // Never with the secret: `assertion_alg` refused these for a
            // client_secret_jwt client already.
            AssertionAlg::Es256
            | AssertionAlg::Ps256
            | AssertionAlg::EdDsa
            | AssertionAlg::Rs256 => {
                return Err(
                    "client_assertion alg does not fit the client's token_endpoint_auth_method",
                );
            }
        };
        let key = PKey::hmac(secret).map_err(|_| "client_assertion MAC does not verify")?;
        Ok(Self { alg, digest, key })
    }
}

impl std::fmt::Debug for MacVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MacVerifier")
            .field("alg", &self.alg.name())
            .finish_non_exhaustive()
    }
}

impl JwsVerifier for MacVerifier {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        &self.alg
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), JoseError> {
        let refused = || JoseError::InvalidSignature(Mismatch.into());
        let mut signer = Signer::new(self.digest, &self.key)
            .map_err(|e| JoseError::InvalidSignature(e.into()))?;
        signer
            .update(message)
            .map_err(|e| JoseError::InvalidSignature(e.into()))?;
        let expected = signer
            .sign_to_vec()
            .map_err(|e| JoseError::InvalidSignature(e.into()))?;
        // `memcmp::eq` needs equal lengths (the length of a MAC is public).
        if expected.len() == signature.len() && openssl::memcmp::eq(&expected, signature) {
            Ok(())
        } else {
            Err(refused())
        }
    }

    fn box_clone(&self) -> Box<dyn JwsVerifier> {
        Box::new(self.clone())
    }
}

/// The MAC was not the one the secret gives.
#[derive(Debug, thiserror::Error)]
#[error("the MAC does not match")]
struct Mismatch;

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(alg: AssertionAlg, key: &[u8], msg: &[u8]) -> Vec<u8> {
        let v = MacVerifier::new(alg, key).unwrap();
        let mut s = Signer::new(v.digest, &v.key).unwrap();
        s.update(msg).unwrap();
        s.sign_to_vec().unwrap()
    }

    #[test]
    fn the_mac_verifies_only_with_the_same_key_alg_and_length() {
        for alg in [
            AssertionAlg::Hs256,
            AssertionAlg::Hs384,
            AssertionAlg::Hs512,
        ] {
            let v = MacVerifier::new(alg, b"secret").unwrap();
            let good = mac(alg, b"secret", b"m");
            assert!(v.verify(b"m", &good).is_ok());
            assert!(v.verify(b"n", &good).is_err());
            assert!(v.verify(b"m", &mac(alg, b"other", b"m")).is_err());
            assert!(v.verify(b"m", good.get(..good.len() - 1).unwrap()).is_err());
            assert!(v.verify(b"m", &[]).is_err());
        }
        assert!(MacVerifier::new(AssertionAlg::Es256, b"secret").is_err());
    }
}
