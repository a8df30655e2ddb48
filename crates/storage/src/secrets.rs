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

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
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
    generate_secret_of(prefix, SECRET_SYMBOLS)
}

/// [`generate_secret`] with `count` random symbols (about 5.95 bits each):
/// a secret that is also an HS512 key is at least 64 bytes long (RFC 7518
/// §3.2).
///
/// # Errors
/// When the OS random source fails.
pub fn generate_secret_of(prefix: &str, count: usize) -> Result<String, SecretError> {
    let mut out = String::with_capacity(prefix.len() + count);
    out.push_str(prefix);
    let mut symbols = 0;
    let mut buf = [0u8; 64];
    while symbols < count {
        random_bytes(&mut buf)?;
        // Rejection sampling keeps every symbol uniform: 248 = 4 · 62.
        for b in buf.iter().copied().filter(|b| *b < 248) {
            if symbols == count {
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

/// The OWASP parameters every password hash is made with (m = 19 MiB, t = 2,
/// p = 1, 32-byte output).
fn params() -> Result<Params, SecretError> {
    Params::new(19 * 1024, 2, 1, None).map_err(|e| SecretError::Hash(e.to_string()))
}

/// One thread's Argon2 working memory (19 MiB at the OWASP parameters),
/// made on its first hash and reused for every later one, so that a fixed
/// set of hashing threads bounds the memory passwords can take whatever the
/// load (`crate::hashing`). Nothing big is allocated per hash.
#[derive(Default)]
pub struct HashMemory {
    blocks: Vec<Block>,
}

impl std::fmt::Debug for HashMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashMemory")
            .field("blocks", &self.blocks.len())
            .finish()
    }
}

impl HashMemory {
    /// The first `params.block_count()` blocks, growing the memory once
    /// if it is smaller (a fresh thread, or a stored hash made with more
    /// memory than ours, which [`verify_password_with`] refuses first).
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let count = params.block_count();
        if self.blocks.len() < count {
            self.blocks.resize(count, Block::new());
        }
        self.blocks.get_mut(..count).unwrap_or_default()
    }
}

/// Hashes a password with Argon2id (PHC string). CPU- and memory-heavy: call
/// it off the async runtime, and bound how many run at once.
///
/// # Errors
/// When hashing fails (e.g. the random source for the salt).
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    hash_password_with(&mut HashMemory::default(), password)
}

/// [`hash_password`] in `memory` (a hashing thread's own).
///
/// # Errors
/// As [`hash_password`].
pub fn hash_password_with(memory: &mut HashMemory, password: &str) -> Result<String, SecretError> {
    let params = params()?;
    let mut salt = [0u8; argon2::RECOMMENDED_SALT_LEN];
    random_bytes(&mut salt)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon2
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt,
            &mut out,
            memory.blocks(&params),
        )
        .map_err(|e| SecretError::Hash(e.to_string()))?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| SecretError::Hash(e.to_string()))?,
        salt: Some(Salt::new(&salt).map_err(|e| SecretError::Hash(e.to_string()))?),
        hash: Some(Output::new(&out).map_err(|e| SecretError::Hash(e.to_string()))?),
    };
    Ok(hash.to_string())
}

/// Checks a password against a stored PHC string; a malformed hash is a mismatch.
pub fn verify_password(password: &str, phc: &str) -> bool {
    verify_password_with(&mut HashMemory::default(), password, phc)
}

/// [`verify_password`] in `memory` (a hashing thread's own). Only Argon2id
/// hashes with at most our memory cost verify: every stored hash is one we
/// made ([`hash_password_with`]), and a bigger cost would let a stored
/// string decide how much memory a sign-in takes.
pub fn verify_password_with(memory: &mut HashMemory, password: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected), Ok(ours)) = (&hash.salt, &hash.hash, params()) else {
        return false;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if hash.algorithm != argon2::ARGON2ID_IDENT || params.m_cost() > ours.m_cost() {
        return false;
    }
    let Ok(version) = hash.version.map_or(Ok(Version::V0x13), Version::try_from) else {
        return false;
    };
    let mut out = [0u8; Output::MAX_LENGTH];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let argon2 = Argon2::new(Algorithm::Argon2id, version, params.clone());
    argon2
        .hash_password_into_with_memory(password.as_bytes(), salt, out, memory.blocks(&params))
        .is_ok()
        && constant_time_eq(out, expected.as_bytes())
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

    #[test]
    fn one_memory_serves_hashes_and_verifications_alike() {
        let mut memory = HashMemory::default();
        let phc = hash_password_with(&mut memory, "correct horse").unwrap();
        // The same PHC string another Argon2 implementation reads.
        use argon2::PasswordVerifier;
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(verify_password_with(&mut memory, "correct horse", &phc));
        assert!(!verify_password_with(&mut memory, "wrong horse", &phc));
        // A hash of the crate's own making verifies here too.
        use argon2::PasswordHasher;
        let theirs = Argon2::default()
            .hash_password(b"battery staple")
            .unwrap()
            .to_string();
        assert!(verify_password_with(&mut memory, "battery staple", &theirs));
    }

    #[test]
    fn a_hash_asking_for_more_memory_than_ours_does_not_verify() {
        use argon2::PasswordHasher;
        let params = Params::new(64 * 1024, 1, 1, None).unwrap();
        let big = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"pw")
            .unwrap()
            .to_string();
        assert!(!verify_password_with(
            &mut HashMemory::default(),
            "pw",
            &big
        ));
    }
}
