//! Sealing private keys at rest (AES-256-GCM under the master key, via
//! OpenSSL) and generating signing key pairs (josekit on OpenSSL).

use josekit::jwk::Jwk;
use josekit::jwk::KeyPair;
use josekit::jws::{ES256, EdDSA, JwsSigner, JwsVerifier, RS256};

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error("JOSE: {0}")]
    Jose(#[from] josekit::JoseError),
    #[error(transparent)]
    Sealed(#[from] trusec_storage::sealed::SealError),
    #[error("unsupported algorithm {0}")]
    Algorithm(String),
}

/// JWS algorithms we sign with (stored by name, hence defined in storage).
pub use trusec_storage::signing_keys::Alg;

pub use trusec_storage::sealed::{seal, unseal};

/// A fresh key pair: (private PEM, public JWK with kid, use and alg set).
///
/// # Errors
/// Generation failures.
pub fn generate(alg: Alg, kid: &str) -> Result<(Vec<u8>, Jwk), CryptoError> {
    let pair: Box<dyn KeyPair> = match alg {
        Alg::Es256 => Box::new(ES256.generate_key_pair()?),
        Alg::Rs256 => Box::new(RS256.generate_key_pair(2048)?),
        Alg::EdDsa => Box::new(EdDSA.generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)?),
    };
    let mut jwk = pair.to_jwk_public_key();
    jwk.set_key_id(kid);
    jwk.set_key_use("sig");
    jwk.set_algorithm(alg.as_str());
    Ok((pair.to_pem_private_key(), jwk))
}

/// A signer for a private PEM, carrying its kid.
///
/// # Errors
/// When the PEM does not parse for this algorithm.
pub fn signer(alg: Alg, pem: &[u8], kid: &str) -> Result<Box<dyn JwsSigner>, CryptoError> {
    Ok(match alg {
        Alg::Es256 => {
            let mut s = ES256.signer_from_pem(pem)?;
            s.set_key_id(kid);
            Box::new(s)
        }
        Alg::Rs256 => {
            let mut s = RS256.signer_from_pem(pem)?;
            s.set_key_id(kid);
            Box::new(s)
        }
        Alg::EdDsa => {
            let mut s = EdDSA.signer_from_pem(pem)?;
            s.set_key_id(kid);
            Box::new(s)
        }
    })
}

/// A verifier for a public JWK.
///
/// # Errors
/// When the JWK does not fit the algorithm.
pub fn verifier(alg: Alg, jwk: &Jwk) -> Result<Box<dyn JwsVerifier>, CryptoError> {
    Ok(match alg {
        Alg::Es256 => Box::new(ES256.verifier_from_jwk(jwk)?),
        Alg::Rs256 => Box::new(RS256.verifier_from_jwk(jwk)?),
        Alg::EdDsa => Box::new(EdDSA.verifier_from_jwk(jwk)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies() {
        for &alg in Alg::ALL {
            let (pem, jwk) = generate(alg, "k").unwrap();
            assert_eq!(jwk.key_id(), Some("k"));
            let s = signer(alg, &pem, "k").unwrap();
            let v = verifier(alg, &jwk).unwrap();
            let sig = s.sign(b"msg").unwrap();
            v.verify(b"msg", &sig).unwrap();
            assert!(v.verify(b"other", &sig).is_err());
        }
    }
}
