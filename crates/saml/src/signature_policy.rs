//! What an incoming XML signature may ask of xmlsec, checked before xmlsec
//! sees the message.
//!
//! XML Signature lets a signature point anywhere (`ds:Reference/@URI` may be
//! any URI), run XSLT or XPath transforms, nest references in a
//! `ds:Manifest` and fetch its key by `ds:RetrievalMethod`; xmlsec resolves
//! all of that before it compares a single digest, so a message nobody
//! signed could make the IdP fetch URLs or read `/dev/zero` for ever.
//! SAML needs none of it. Its profile of XML Signature (SAML core §5.4)
//! signs the protocol message itself, enveloped, by a same-document
//! reference (`""` or `#` + the message's `ID`), with the
//! enveloped-signature and exclusive-C14N transforms only. This module
//! refuses everything else, so that what reaches xmlsec is exactly that
//! shape: one `ds:Signature`, a child of the root element, with one
//! `ds:Reference` to the root, allowed algorithms only. (The IO lock-down in
//! `trusec_xmlsec_io` is the second wall: even a reference that got past
//! this could open nothing.)
//!
//! The message is read with the parser and options samael verifies with
//! (libxml2, its defaults), so both see the same tree.

use crate::error::Refusal;
use libxml::parser::Parser;
use libxml::tree::{Node, NodeType};
use std::collections::HashSet;

const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
/// XML Signature 1.1 adds `KeyInfoReference` (another dereferenced URI)
/// and nothing SAML uses.
const DSIG11: &str = "http://www.w3.org/2009/xmldsig11#";
const EXC_C14N_NS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const EXC_C14N_COMMENTS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// Signature methods accepted on both bindings: RSA with SHA-256 or
/// stronger. RSA-SHA1 (the XML Signature default SAML 2.0 once named) is
/// refused: SHA-1 collisions are practical.
pub const SIGNATURE_METHODS: [&str; 3] = [RSA_SHA256, RSA_SHA384, RSA_SHA512];
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const RSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384";
pub const RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";

const DIGEST_METHODS: [&str; 3] = [
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];

/// Whether a message that passed the policy carries a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed {
    /// No `ds:Signature` anywhere.
    No,
    /// One enveloped signature over the root element, of the allowed shape.
    Enveloped,
}

fn refuse(why: &'static str) -> Refusal {
    Refusal::SignaturePolicy(why)
}

fn in_ns(node: &Node, ns: &str) -> bool {
    node.get_namespace().is_some_and(|n| n.get_href() == ns)
}

fn is_dsig(node: &Node, name: &str) -> bool {
    in_ns(node, DSIG) && node.get_name() == name
}

fn algorithm(node: &Node) -> Option<String> {
    node.get_attribute("Algorithm")
}

/// Checks the message's signature, if it has one, against SAML's profile.
///
/// # Errors
/// `Malformed` when it does not parse, `Dtd` for a DTD, `SignaturePolicy`
/// for a signature of any other shape than the one SAML uses.
pub fn check(xml: &str) -> Result<Signed, Refusal> {
    let doc = Parser::default()
        .parse_string(xml)
        .map_err(|_| Refusal::Malformed("not well-formed XML".into()))?;
    if doc
        .as_node()
        .get_child_nodes()
        .iter()
        .any(|n| n.get_type() == Some(NodeType::DTDNode))
    {
        return Err(Refusal::Dtd);
    }
    let root = doc
        .get_root_element()
        .ok_or_else(|| Refusal::Malformed("no root element".into()))?;
    let signature = scan(&root)?;
    match signature {
        None => Ok(Signed::No),
        Some(signature) => {
            check_signature(&signature, &root)?;
            Ok(Signed::Enveloped)
        }
    }
}

/// Walks every element once: refuses what no SAML signature contains and
/// duplicate `ID`s (a `#id` reference must name one element), and returns
/// the one `ds:Signature`, which must be a child of the root.
fn scan(root: &Node) -> Result<Option<Node>, Refusal> {
    let mut ids = HashSet::new();
    let mut signature = None;
    let mut stack = vec![root.clone()];
    while let Some(node) = stack.pop() {
        if in_ns(&node, DSIG11) {
            return Err(refuse("XML Signature 1.1 elements are not accepted"));
        }
        if in_ns(&node, DSIG) {
            match node.get_name().as_str() {
                "Manifest" | "Object" | "RetrievalMethod" | "SignatureProperties" => {
                    return Err(refuse(
                        "a signature may not carry objects, manifests or retrieval methods",
                    ));
                }
                "Signature" => {
                    if signature.is_some() {
                        return Err(refuse("only one signature is accepted"));
                    }
                    if node.get_parent().as_ref() != Some(root) {
                        return Err(refuse("the signature must be on the message itself"));
                    }
                    signature = Some(node.clone());
                }
                _ => {}
            }
        }
        if let Some(id) = node.get_attribute("ID")
            && !ids.insert(id)
        {
            return Err(refuse("two elements share an ID"));
        }
        stack.extend(node.get_child_elements());
    }
    Ok(signature)
}

/// `ds:Signature` = `SignedInfo`, `SignatureValue`, optional `KeyInfo`.
fn check_signature(signature: &Node, root: &Node) -> Result<(), Refusal> {
    let children = signature.get_child_elements();
    let [signed_info, value, rest @ ..] = children.as_slice() else {
        return Err(refuse("the signature is incomplete"));
    };
    let key_info_only = match rest {
        [] => true,
        [key_info] => is_dsig(key_info, "KeyInfo"),
        _ => false,
    };
    if !is_dsig(signed_info, "SignedInfo") || !is_dsig(value, "SignatureValue") || !key_info_only {
        return Err(refuse("the signature has unexpected parts"));
    }
    check_signed_info(signed_info, root)
}

/// `SignedInfo` = exclusive C14N, an allowed method, one `Reference`.
fn check_signed_info(signed_info: &Node, root: &Node) -> Result<(), Refusal> {
    let children = signed_info.get_child_elements();
    let [c14n, method, reference] = children.as_slice() else {
        return Err(refuse("exactly one reference is accepted"));
    };
    if !is_dsig(c14n, "CanonicalizationMethod")
        || !is_dsig(method, "SignatureMethod")
        || !is_dsig(reference, "Reference")
    {
        return Err(refuse("the signed info has unexpected parts"));
    }
    let exclusive = [EXC_C14N, EXC_C14N_COMMENTS];
    if !algorithm(c14n).is_some_and(|a| exclusive.contains(&a.as_str())) || !only_prefix_lists(c14n)
    {
        return Err(refuse("only exclusive canonicalisation is accepted"));
    }
    if !algorithm(method).is_some_and(|a| SIGNATURE_METHODS.contains(&a.as_str()))
        || !method.get_child_elements().is_empty()
    {
        return Err(refuse("only RSA with SHA-256 or stronger is accepted"));
    }
    check_reference(reference, root)
}

/// `Reference` to the root (`""` or `#ID`), allowed transforms and digest.
fn check_reference(reference: &Node, root: &Node) -> Result<(), Refusal> {
    let uri = reference
        .get_attribute("URI")
        .ok_or_else(|| refuse("the reference must name the message"))?;
    let to_root = uri.is_empty()
        || uri
            .strip_prefix('#')
            .is_some_and(|id| !id.is_empty() && root.get_attribute("ID").as_deref() == Some(id));
    if !to_root {
        return Err(refuse(
            "the reference must point to the signed message itself",
        ));
    }
    let children = reference.get_child_elements();
    let (transforms, digest) = match children.as_slice() {
        [transforms, digest, value] if is_dsig(value, "DigestValue") => (Some(transforms), digest),
        [digest, value] if is_dsig(value, "DigestValue") => (None, digest),
        _ => return Err(refuse("the reference has unexpected parts")),
    };
    if let Some(transforms) = transforms {
        check_transforms(transforms)?;
    }
    if !is_dsig(digest, "DigestMethod")
        || !algorithm(digest).is_some_and(|a| DIGEST_METHODS.contains(&a.as_str()))
    {
        return Err(refuse("only SHA-256 or stronger digests are accepted"));
    }
    Ok(())
}

/// Enveloped-signature and exclusive C14N, each at most once.
fn check_transforms(transforms: &Node) -> Result<(), Refusal> {
    if !is_dsig(transforms, "Transforms") {
        return Err(refuse("the reference has unexpected parts"));
    }
    let mut seen = HashSet::new();
    for transform in transforms.get_child_elements() {
        let allowed = [ENVELOPED, EXC_C14N, EXC_C14N_COMMENTS];
        let ok = is_dsig(&transform, "Transform")
            && algorithm(&transform)
                .is_some_and(|a| allowed.contains(&a.as_str()) && seen.insert(a))
            && only_prefix_lists(&transform);
        if !ok {
            return Err(refuse(
                "only the enveloped-signature and exclusive canonicalisation transforms are accepted",
            ));
        }
    }
    Ok(())
}

/// A C14N method or transform may carry `ec:InclusiveNamespaces` only
/// (exclusive C14N §3); anything else (an XPath, a stylesheet) is refused.
fn only_prefix_lists(node: &Node) -> bool {
    node.get_child_elements()
        .iter()
        .all(|c| in_ns(c, EXC_C14N_NS) && c.get_name() == "InclusiveNamespaces")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
    const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

    fn message(uri: &str, transforms: &str, method: &str, digest: &str, extra: &str) -> String {
        format!(
            r##"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>https://sp</saml:Issuer><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="{method}"/><ds:Reference URI="{uri}"><ds:Transforms>{transforms}</ds:Transforms><ds:DigestMethod Algorithm="{digest}"/><ds:DigestValue>AA==</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>AA==</ds:SignatureValue>{extra}</ds:Signature></samlp:AuthnRequest>"##
        )
    }

    const STANDARD: &str = r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"><ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="saml"/></ds:Transform>"#;

    fn refused(xml: &str) -> bool {
        matches!(check(xml), Err(Refusal::SignaturePolicy(_)))
    }

    #[test]
    fn the_shape_saml_uses_passes() {
        for uri in ["#_r1", ""] {
            let xml = message(uri, STANDARD, RSA_SHA256, SHA256, "");
            assert_eq!(check(&xml), Ok(Signed::Enveloped), "{uri}");
        }
        let unsigned =
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r1"/>"#;
        assert_eq!(check(unsigned), Ok(Signed::No));
    }

    #[test]
    fn references_to_anything_but_the_message_are_refused() {
        for uri in [
            "http://127.0.0.1:9/x",
            "file:///dev/zero",
            "#_other",
            "#",
            "#xpointer(/)",
            "/etc/passwd",
        ] {
            assert!(
                refused(&message(uri, STANDARD, RSA_SHA256, SHA256, "")),
                "{uri}"
            );
        }
    }

    #[test]
    fn other_transforms_are_refused() {
        let xslt = r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"><xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0"><xsl:template match="/"><xsl:copy-of select="document('http://127.0.0.1:9/x')"/></xsl:template></xsl:stylesheet></ds:Transform>"#;
        let xpath = r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>1</ds:XPath></ds:Transform>"#;
        let base64 = r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#base64"/>"#;
        let twice = format!("{STANDARD}{STANDARD}");
        for t in [xslt, xpath, base64, twice.as_str()] {
            assert!(refused(&message("#_r1", t, RSA_SHA256, SHA256, "")), "{t}");
        }
    }

    #[test]
    fn sha1_and_unknown_algorithms_are_refused() {
        let rsa_sha1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
        let hmac = "http://www.w3.org/2000/09/xmldsig#hmac-sha1";
        for m in [rsa_sha1, hmac] {
            assert!(refused(&message("#_r1", STANDARD, m, SHA256, "")), "{m}");
        }
        let sha1 = "http://www.w3.org/2000/09/xmldsig#sha1";
        assert!(refused(&message("#_r1", STANDARD, RSA_SHA256, sha1, "")));
    }

    #[test]
    fn objects_manifests_and_retrieval_methods_are_refused() {
        let object = r#"<ds:Object><ds:Manifest><ds:Reference URI="file:///dev/zero"/></ds:Manifest></ds:Object>"#;
        let retrieval =
            r#"<ds:KeyInfo><ds:RetrievalMethod URI="http://127.0.0.1:9/key"/></ds:KeyInfo>"#;
        let key_ref = r#"<ds:KeyInfo><dsig11:KeyInfoReference xmlns:dsig11="http://www.w3.org/2009/xmldsig11#" URI="http://127.0.0.1:9/k"/></ds:KeyInfo>"#;
        for extra in [object, retrieval, key_ref] {
            assert!(
                refused(&message("#_r1", STANDARD, RSA_SHA256, SHA256, extra)),
                "{extra}"
            );
        }
        let key_info = r#"<ds:KeyInfo><ds:X509Data><ds:X509Certificate>AA==</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"#;
        assert_eq!(
            check(&message("#_r1", STANDARD, RSA_SHA256, SHA256, key_info)),
            Ok(Signed::Enveloped)
        );
    }

    #[test]
    fn signatures_elsewhere_or_twice_and_duplicate_ids_are_refused() {
        let signed = message("#_r1", STANDARD, RSA_SHA256, SHA256, "");
        let signature = &signed[signed.find("<ds:Signature").unwrap_or(0)
            ..signed.find("</samlp:AuthnRequest>").unwrap_or(0)];
        let nested = signed.replace(signature, "").replace(
            "<saml:Issuer>https://sp</saml:Issuer>",
            &format!("<saml:Issuer>https://sp</saml:Issuer><samlp:Extensions>{signature}</samlp:Extensions>"),
        );
        assert!(refused(&nested), "{nested}");
        let twice = signed.replace(
            "</samlp:AuthnRequest>",
            &format!("{signature}</samlp:AuthnRequest>"),
        );
        assert!(refused(&twice));
        let dup = signed.replace(
            "<saml:Issuer>",
            r#"<samlp:Extensions><x ID="_r1"/></samlp:Extensions><saml:Issuer>"#,
        );
        assert!(refused(&dup));
    }

    #[test]
    fn dtds_and_garbage_are_refused() {
        let dtd = r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x ID="_r1">&e;</x>"#;
        assert_eq!(check(dtd), Err(Refusal::Dtd));
        assert!(matches!(check("not xml"), Err(Refusal::Malformed(_))));
    }
}
