//! Incoming SAML protocol messages: decoding the HTTP-Redirect (DEFLATE +
//! base64 + query signature) and HTTP-POST (base64, embedded signature)
//! bindings with hard limits, and refusing what must never be parsed.
//!
//! SAML parsing is an attack surface: the encoded message is capped before
//! decoding, inflation stops at a fixed size (a DEFLATE bomb cannot eat
//! memory), and DTDs are refused outright (XXE, entity expansion).

use crate::error::Refusal;
use crate::signature_policy::{self, Signed};
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
/// What the IdP signs its own redirect-binding messages with.
pub const SIG_RSA_SHA256: &str = signature_policy::RSA_SHA256;

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

/// Whether decoded bytes start as an XML document does: an optional
/// byte-order mark and white space, then `<`.
fn looks_like_xml(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
}

/// The XML of an HTTP-POST message. The binding carries it base64-encoded
/// and not compressed (bindings §3.5.4), but some SPs (node-saml by
/// default) DEFLATE it as for HTTP-Redirect: that is accepted, inflated
/// under the same [`MAX_XML`] cap, and anything else is named for what it is.
fn post_xml(decoded: Vec<u8>) -> Result<Vec<u8>, Refusal> {
    if looks_like_xml(&decoded) {
        return Ok(decoded);
    }
    let not_xml = || {
        Refusal::Malformed(
            "the HTTP-POST message is neither XML nor DEFLATE-compressed XML once base64-decoded"
                .into(),
        )
    };
    let inflated = inflate(&decoded).map_err(|e| match e {
        Refusal::TooLarge => Refusal::TooLarge,
        _ => not_xml(),
    })?;
    if looks_like_xml(&inflated) {
        Ok(inflated)
    } else {
        Err(not_xml())
    }
}

/// Decodes an HTTP-POST message (base64; DEFLATE-compressed tolerated,
/// [`post_xml`]).
///
/// # Errors
/// A [`Refusal`] for anything malformed or oversized.
pub fn from_post(message: Option<&str>, relay_state: Option<&str>) -> Result<Incoming, Refusal> {
    let xml = to_xml(post_xml(decode_b64(message.ok_or(Refusal::Missing)?)?)?)?;
    Ok(Incoming {
        xml,
        relay_state: self::relay_state(relay_state.map(str::to_owned))?,
        redirect_signature: None,
    })
}

/// What a message's signature, if any, vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Nothing: the message carries no signature (whether that is allowed
    /// is the caller's decision).
    Unsigned,
    /// The whole message as sent: the HTTP-Redirect query signature covers
    /// the encoded message itself.
    Whole,
    /// Only this, the content an embedded signature covers, which the
    /// caller re-reads and acts on instead of the message (no wrapping).
    Content(String),
}

/// Checks the message's signature against the SP's certificate. The
/// message is first held to SAML's profile of XML Signature
/// ([`signature_policy`]), so xmlsec never sees a reference to anything
/// but the message itself, a transform but the two SAML uses, or an
/// algorithm weaker than RSA-SHA256. Synchronous C work: run it on the XML
/// pool.
///
/// # Errors
/// The policy's refusals; `BadSignature` when a signature does not verify
/// or there is no certificate to check it with.
pub fn verify(incoming: &Incoming, certificate_pem: Option<&str>) -> Result<Verified, Refusal> {
    let shape = signature_policy::check(&incoming.xml)?;
    if let Some(sig) = &incoming.redirect_signature {
        let pem = certificate_pem.ok_or(Refusal::BadSignature)?;
        return if verify_redirect(sig, pem) {
            Ok(Verified::Whole)
        } else {
            Err(Refusal::BadSignature)
        };
    }
    match shape {
        Signed::No => Ok(Verified::Unsigned),
        Signed::Enveloped => {
            let pem = certificate_pem.ok_or(Refusal::BadSignature)?;
            signed_content(&incoming.xml, pem).map(Verified::Content)
        }
    }
}

/// Verifies the (policy-checked) embedded signature with the SP's
/// certificate and returns only the content it covers (samael's reduction
/// over xmlsec), pinned to the policy's signature methods.
pub(crate) fn signed_content(xml: &str, certificate_pem: &str) -> Result<String, Refusal> {
    use samael::crypto::{
        AllowedSignatureAlgorithm as Alg, CertificateDer, Crypto, CryptoProvider, ReduceMode,
    };
    let der = X509::from_pem(certificate_pem.as_bytes())
        .and_then(|c| c.to_der())
        .map_err(|_| Refusal::BadSignature)?;
    Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        &[CertificateDer::from(der)],
        ReduceMode::ValidateAndMarkNoAncestors,
        Some(&[Alg::RsaSha256, Alg::RsaSha384, Alg::RsaSha512]),
    )
    .map_err(|_| Refusal::BadSignature)
}

/// The digest of an HTTP-Redirect `SigAlg` we accept: RSA with SHA-256 or
/// stronger, the same set as for embedded signatures. RSA-SHA1 (bindings
/// §3.4.4.1's example) is refused.
fn redirect_digest(sig_alg: &str) -> Option<MessageDigest> {
    match sig_alg {
        signature_policy::RSA_SHA256 => Some(MessageDigest::sha256()),
        signature_policy::RSA_SHA384 => Some(MessageDigest::sha384()),
        signature_policy::RSA_SHA512 => Some(MessageDigest::sha512()),
        _ => None,
    }
}

/// Checks a redirect-binding signature against the SP's certificate.
pub fn verify_redirect(sig: &RedirectSignature, certificate_pem: &str) -> bool {
    let Some(digest) = redirect_digest(&sig.sig_alg) else {
        return false;
    };
    let Ok(cert) = X509::from_pem(certificate_pem.as_bytes()) else {
        return false;
    };
    let Ok(key) = cert.public_key() else {
        return false;
    };
    Verifier::new(digest, &key)
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
    fn post_messages_may_be_deflated_under_the_same_caps() {
        let xml = "<samlp:AuthnRequest/>";
        let plain = STANDARD.encode(xml);
        assert_eq!(from_post(Some(&plain), None).unwrap().xml, xml);
        let deflated = STANDARD.encode(deflate(xml.as_bytes()));
        assert_eq!(from_post(Some(&deflated), None).unwrap().xml, xml);
        let bom = STANDARD.encode(format!("\u{feff}  {xml}"));
        assert!(from_post(Some(&bom), None).is_ok());
        let bomb = STANDARD.encode(deflate(&vec![b'<'; 20 * 1024 * 1024]));
        assert!(bomb.len() < MAX_ENCODED);
        assert_eq!(from_post(Some(&bomb), None).unwrap_err(), Refusal::TooLarge);
        let too_long = STANDARD.encode(vec![b'<'; MAX_ENCODED]);
        assert_eq!(
            from_post(Some(&too_long), None).unwrap_err(),
            Refusal::TooLarge
        );
        for garbage in [
            STANDARD.encode([0xff, 0xfe, 0x00, 0x01]),
            STANDARD.encode(deflate(b"hello")),
        ] {
            let Err(Refusal::Malformed(why)) = from_post(Some(&garbage), None) else {
                panic!("{garbage} was accepted");
            };
            assert!(
                why.contains("neither XML nor DEFLATE-compressed XML"),
                "{why}"
            );
        }
        let xxe = STANDARD.encode(deflate(
            b"<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r/>",
        ));
        assert_eq!(from_post(Some(&xxe), None).unwrap_err(), Refusal::Dtd);
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
