//! Incoming SAML protocol messages: decoding the HTTP-Redirect (DEFLATE +
//! base64 + query signature) and HTTP-POST (base64, embedded signature)
//! bindings with hard limits, and refusing what must never be parsed.
//!
//! SAML parsing is an attack surface: the encoded message is capped before
//! decoding, inflation stops at a fixed size (a DEFLATE bomb cannot eat
//! memory), and DTDs are refused outright (XXE, entity expansion).

use crate::error::Refusal;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::hash::MessageDigest;
use openssl::sign::Verifier;
use openssl::x509::X509;
use std::io::Read;

/// Largest encoded message accepted.
pub const MAX_ENCODED: usize = 64 * 1024;
/// Largest XML a message may inflate to.
pub const MAX_XML: u64 = 256 * 1024;
pub const SIG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

/// Refuses documents with a DTD (`<!DOCTYPE`, `<!ENTITY`).
///
/// # Errors
/// `Dtd` when one is present.
pub fn refuse_dtd(xml: &str) -> Result<(), Refusal> {
    let upper = xml.to_ascii_uppercase();
    if upper.contains("<!DOCTYPE") || upper.contains("<!ENTITY") {
        return Err(Refusal::Dtd);
    }
    Ok(())
}

/// The query signature of an HTTP-Redirect message (bindings §3.4.4.1).
#[derive(Debug, Clone)]
pub struct RedirectSignature {
    pub sig_alg: String,
    pub signature: Vec<u8>,
    /// `SAMLRequest=…&RelayState=…&SigAlg=…` exactly as sent (still URL-encoded).
    pub signed_octets: String,
}

/// A decoded message.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub xml: String,
    pub relay_state: Option<String>,
    pub redirect_signature: Option<RedirectSignature>,
}

fn decode_b64(value: &str) -> Result<Vec<u8>, Refusal> {
    if value.len() > MAX_ENCODED {
        return Err(Refusal::TooLarge);
    }
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(compact).map_err(|_| Refusal::Encoding)
}

fn to_xml(bytes: Vec<u8>) -> Result<String, Refusal> {
    let xml = String::from_utf8(bytes).map_err(|_| Refusal::Malformed("not UTF-8".into()))?;
    refuse_dtd(&xml)?;
    Ok(xml)
}

/// Raw DEFLATE, stopping at [`MAX_XML`].
fn inflate(compressed: &[u8]) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(compressed)
        .take(MAX_XML + 1)
        .read_to_end(&mut out)
        .map_err(|_| Refusal::Deflate)?;
    if out.len() as u64 > MAX_XML {
        return Err(Refusal::TooLarge);
    }
    Ok(out)
}

fn url_decode(value: &str) -> String {
    url::form_urlencoded::parse(format!("v={value}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Decodes an HTTP-Redirect message from the raw query string, keeping the
/// signed octets exactly as the SP encoded them (re-encoding would break
/// signatures from SPs that encode differently).
///
/// # Errors
/// A [`Refusal`] for anything malformed or oversized.
pub fn from_redirect(raw_query: &str, param: &str) -> Result<Incoming, Refusal> {
    if raw_query.len() > MAX_ENCODED * 2 {
        return Err(Refusal::TooLarge);
    }
    let mut message = None;
    let mut relay = None;
    let mut sig_alg = None;
    let mut signature = None;
    for pair in raw_query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match k {
            k if k == param => &mut message,
            "RelayState" => &mut relay,
            "SigAlg" => &mut sig_alg,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(v).is_some() {
            return Err(Refusal::Malformed(format!("{k} appears twice")));
        }
    }
    let message_raw = message.ok_or(Refusal::Missing)?;
    let xml = to_xml(inflate(&decode_b64(&url_decode(message_raw))?)?)?;
    let redirect_signature = match (sig_alg, signature) {
        (Some(alg), Some(sig)) => {
            let mut signed = format!("{param}={message_raw}");
            if let Some(r) = relay {
                signed.push_str(&format!("&RelayState={r}"));
            }
            signed.push_str(&format!("&SigAlg={alg}"));
            Some(RedirectSignature {
                sig_alg: url_decode(alg),
                signature: decode_b64(&url_decode(sig))?,
                signed_octets: signed,
            })
        }
        (None, None) => None,
        _ => return Err(Refusal::BadSignature),
    };
    Ok(Incoming {
        xml,
        relay_state: relay_state(relay.map(url_decode))?,
        redirect_signature,
    })
}

/// SAML bindings §3.4.3 and §3.5.3: "RelayState data MUST NOT exceed 80
/// bytes in length". Checked before anything is stored for the request.
///
/// # Errors
/// [`Refusal::RelayStateTooLong`].
pub fn relay_state(value: Option<String>) -> Result<Option<String>, Refusal> {
    match value {
        Some(v) if v.len() > 80 => Err(Refusal::RelayStateTooLong),
        other => Ok(other),
    }
}

/// Decodes an HTTP-POST message (base64, no compression).
///
/// # Errors
/// A [`Refusal`] for anything malformed or oversized.
pub fn from_post(message: Option<&str>, relay_state: Option<&str>) -> Result<Incoming, Refusal> {
    let xml = to_xml(decode_b64(message.ok_or(Refusal::Missing)?)?)?;
    Ok(Incoming {
        xml,
        relay_state: self::relay_state(relay_state.map(str::to_owned))?,
        redirect_signature: None,
    })
}

/// Whether a message carries an XML signature element anywhere.
pub fn has_embedded_signature(xml: &str) -> bool {
    xml.contains("Signature")
}

/// Verifies every XML signature of a message with the SP's certificate and
/// returns only the content they cover (samael's reduction over xmlsec). A
/// signed element hidden inside an unsigned one comes back alone, so the
/// caller, re-reading the result, can see it is not the message it got.
///
/// # Errors
/// `BadSignature` when any signature fails or nothing is signed.
pub fn signed_content(xml: &str, certificate_pem: &str) -> Result<String, Refusal> {
    use samael::crypto::{CertificateDer, Crypto, CryptoProvider, ReduceMode};
    let der = X509::from_pem(certificate_pem.as_bytes())
        .and_then(|c| c.to_der())
        .map_err(|_| Refusal::BadSignature)?;
    Crypto::reduce_xml_to_signed(
        xml,
        &[CertificateDer::from(der)],
        ReduceMode::ValidateAndMarkNoAncestors,
    )
    .map_err(|_| Refusal::BadSignature)
}

/// Checks a redirect-binding signature against the SP's certificate.
/// Only RSA-SHA256 is accepted.
pub fn verify_redirect(sig: &RedirectSignature, certificate_pem: &str) -> bool {
    if sig.sig_alg != SIG_RSA_SHA256 {
        return false;
    }
    let Ok(cert) = X509::from_pem(certificate_pem.as_bytes()) else {
        return false;
    };
    let Ok(key) = cert.public_key() else {
        return false;
    };
    Verifier::new(MessageDigest::sha256(), &key)
        .and_then(|mut v| {
            v.update(sig.signed_octets.as_bytes())?;
            v.verify(&sig.signature)
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn encode(data: &[u8]) -> String {
        url::form_urlencoded::byte_serialize(STANDARD.encode(deflate(data)).as_bytes()).collect()
    }

    #[test]
    fn a_deflate_bomb_is_cut_off() {
        let bomb = vec![b'a'; 20 * 1024 * 1024];
        let query = format!("SAMLRequest={}", encode(&bomb));
        assert!(query.len() < MAX_ENCODED);
        assert_eq!(
            from_redirect(&query, "SAMLRequest").unwrap_err(),
            Refusal::TooLarge
        );
    }

    #[test]
    fn dtds_are_refused() {
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
        let query = format!("SAMLRequest={}", encode(xxe.as_bytes()));
        assert_eq!(
            from_redirect(&query, "SAMLRequest").unwrap_err(),
            Refusal::Dtd
        );
    }

    #[test]
    fn repeated_and_half_signed_queries_are_refused() {
        let q = format!("SAMLRequest={}", encode(b"<x/>"));
        assert!(matches!(
            from_redirect(&format!("{q}&{q}"), "SAMLRequest"),
            Err(Refusal::Malformed(_))
        ));
        assert_eq!(
            from_redirect(&format!("{q}&Signature=abc"), "SAMLRequest").unwrap_err(),
            Refusal::BadSignature
        );
        assert_eq!(
            from_redirect("RelayState=x", "SAMLRequest").unwrap_err(),
            Refusal::Missing
        );
        assert_eq!(
            relay_state(Some("r".repeat(80))).unwrap().map(|r| r.len()),
            Some(80)
        );
        assert_eq!(
            relay_state(Some("r".repeat(81))).unwrap_err(),
            Refusal::RelayStateTooLong
        );
    }
}
