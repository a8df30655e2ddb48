//! Secrets: generation, storage hashes and comparison.
//!
//! Two kinds of secret, two kinds of hash:
//! - **Generated secrets** (API keys, session tokens, client secrets) carry 256
//!   bits from the OS CSPRNG. Nobody can guess or brute-force such a value, so a
//!   slow KDF would add nothing but latency to every request; SHA-256 is a
//!   one-way function whose preimage resistance is all that is needed, and it
//!   lets us find the row by an indexed lookup on the hash.
//! - **Passwords** are chosen by people and low in entropy, so they get
//!   Argon2id with the OWASP parameters (m = 19 MiB, t = 2, p = 1).

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 43 symbols of base62 carry 43 · log2(62) ≈ 256.03 bits.
const SECRET_SYMBOLS: usize = 43;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the operating system's random source failed")]
    Random(#[from] getrandom::Error),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Fills `buf` from the OS CSPRNG.
///
/// # Errors
/// When the OS random source fails.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), SecretError> {
    getrandom::fill(buf)?;
    Ok(())
}

/// A 256-bit random secret in base62 (alphanumeric, so it survives copy and
/// paste, URLs and shells), behind `prefix`.
///
/// # Errors
/// When the OS random source fails.
pub fn generate_secret(prefix: &str) -> Result<String, SecretError> {
    let mut out = String::with_capacity(prefix.len() + SECRET_SYMBOLS);
    out.push_str(prefix);
    let mut symbols = 0;
    let mut buf = [0u8; 64];
    while symbols < SECRET_SYMBOLS {
        random_bytes(&mut buf)?;
        // Rejection sampling keeps every symbol uniform: 248 = 4 · 62.
        for b in buf.iter().copied().filter(|b| *b < 248) {
            if symbols == SECRET_SYMBOLS {
                break;
            }
            if let Some(c) = ALPHABET.get(usize::from(b % 62)) {
                out.push(char::from(*c));
                symbols += 1;
            }
        }
    }
    Ok(out)
}

/// HMAC-SHA-256 (RFC 2104) of the concatenation of `parts` under `key`
/// (OpenSSL's; never hand-rolled).
///
/// # Errors
/// OpenSSL failures.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let key = openssl::pkey::PKey::hmac(key)?;
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)?;
    for part in parts {
        signer.update(part)?;
    }
    signer.sign_to_vec()
}

/// SHA-256 of a generated secret, hex-encoded: what the database stores.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time equality for secrets and their hashes.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn argon2() -> Result<Argon2<'static>, SecretError> {
    let params =
        Params::new(19 * 1024, 2, 1, None).map_err(|e| SecretError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password with Argon2id (PHC string). CPU- and memory-heavy: call
/// it off the async runtime, and bound how many run at once.
///
/// # Errors
/// When hashing fails (e.g. the random source for the salt).
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    argon2()?
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// Checks a password against a stored PHC string; a malformed hash is a mismatch.
pub fn verify_password(password: &str, phc: &str) -> bool {
    argon2().is_ok_and(|a| a.verify_password(password.as_bytes(), phc).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_unique_and_alphanumeric() {
        let a = generate_secret("trusec_sk_").unwrap();
        let b = generate_secret("trusec_sk_").unwrap();
        assert_ne!(a, b);
        let body = a.strip_prefix("trusec_sk_").unwrap();
        assert_eq!(body.len(), SECRET_SYMBOLS);
        assert!(body.bytes().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn secret_hash_is_sha256_hex() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(constant_time_eq(b"x", b"x"));
        assert!(!constant_time_eq(b"x", b"y"));
    }

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong horse", &phc));
        assert!(!verify_password("correct horse", "not a hash"));
    }
}
