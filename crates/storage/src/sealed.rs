//! Sealing secrets at rest (private signing keys, TOTP secrets, the
//! secrets of `client_secret_jwt` clients) with AES-256-GCM under the
//! master key, via OpenSSL: base64(nonce ‖ ciphertext ‖ tag), bound to an
//! associated-data label so a sealed value cannot be moved to another row.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// The associated data of a JWT signing key's sealed private key (`signing_keys.private_key`).
pub fn signing_key_aad(kid: &str) -> Vec<u8> {
    format!("trusec-signing-key:{kid}").into_bytes()
}

/// The associated data of a SAML IdP key's sealed private key (`saml_idp_keys.private_key`).
pub fn saml_idp_key_aad(id: &str) -> Vec<u8> {
    format!("trusec-saml-key:{id}").into_bytes()
}

/// The associated data of a deployment secret (`deployment_secrets.sealed`).
pub fn deployment_secret_aad(name: &str) -> Vec<u8> {
    format!("trusec-deployment-secret:{name}").into_bytes()
}

/// The associated data of a TOTP factor's sealed secret (`user_factors.secret_sealed`).
pub fn totp_secret_aad(factor_id: &str) -> Vec<u8> {
    format!("trusec-totp-secret:{factor_id}").into_bytes()
}

/// The associated data of a `client_secret_jwt` client's sealed secret
/// (`oauth_clients.secret_sealed`).
pub fn client_secret_aad(client_id: &str) -> Vec<u8> {
    format!("trusec-client-secret:{client_id}").into_bytes()
}

/// The master key, for the surfaces that seal and open values at request
/// time (TOTP secrets): cheap to clone, never printed.
#[derive(Clone)]
pub struct SealKey(std::sync::Arc<[u8; 32]>);

impl SealKey {
    pub fn new(key: [u8; 32]) -> Self {
        Self(std::sync::Arc::new(key))
    }

    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error("a sealed value is malformed, or was sealed under another master key")]
    Unseal,
}

/// Encrypts `plain` under `key`, binding it to `aad` (the key id), as
/// base64(nonce ‖ ciphertext ‖ tag).
///
/// # Errors
/// OpenSSL failures.
pub fn seal(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Result<String, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    openssl::rand::rand_bytes(&mut nonce)?;
    let mut tag = [0u8; TAG_LEN];
    let ct = encrypt_aead(
        Cipher::aes_256_gcm(),
        key,
        Some(&nonce),
        aad,
        plain,
        &mut tag,
    )?;
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out.extend_from_slice(&tag);
    Ok(STANDARD.encode(out))
}

/// Reverses [`seal`].
///
/// # Errors
/// `Unseal` when the data is malformed, tampered with, or sealed under
/// another key or `aad`.
pub fn unseal(key: &[u8; 32], aad: &[u8], sealed: &str) -> Result<Vec<u8>, SealError> {
    let raw = STANDARD.decode(sealed).map_err(|_| SealError::Unseal)?;
    if raw.len() < NONCE_LEN + TAG_LEN {
        return Err(SealError::Unseal);
    }
    let (nonce, rest) = raw.split_at(NONCE_LEN);
    let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
    decrypt_aead(Cipher::aes_256_gcm(), key, Some(nonce), aad, ct, tag)
        .map_err(|_| SealError::Unseal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_label() {
        let key = [7u8; 32];
        let sealed = seal(&key, b"kid1", b"private").unwrap();
        assert_eq!(unseal(&key, b"kid1", &sealed).unwrap(), b"private");
        assert!(unseal(&key, b"kid2", &sealed).is_err());
        assert!(unseal(&[8u8; 32], b"kid1", &sealed).is_err());
        assert!(unseal(&key, b"kid1", "garbage").is_err());
    }
}
