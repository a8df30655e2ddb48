//! Encrypted assertions (issue #13), over HTTP: an SP whose metadata
//! publishes an encryption key receives its assertion only as an
//! `EncryptedAssertion`, which independent tools open — `xmlsec1 --decrypt`
//! with the SP's key (and not with another), then `xmlsec1 --verify` of the
//! assertion's signature — and which an independent SP stack, Debian's
//! ruby-saml (`tests/saml-sp/ruby-saml-acs.rb`), accepts, tampering refused.

use crate::oauth_support::make_user;
use crate::saml::{authn_request, idp_cert, redirect_query, register_sp, sso, xmlsec1_verifies};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::str::FromStr;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    an_encrypted_assertion_opens_only_with_the_sps_key,
    cbc_only_when_the_metadata_asks_and_encryption_switches_off,
    encryption_needs_an_rsa_certificate,
    ruby_saml_accepts_plain_and_encrypted_and_refuses_tampering,
);

const GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
const CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes256-cbc";
const IDP_ENTITY: &str = "http://127.0.0.1:8080/saml/metadata";

/// An SP's key pair: (private key PEM, certificate PEM).
pub(crate) fn rsa_pair() -> (String, String) {
    let key = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    (
        String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
        certificate(&key),
    )
}

fn certificate(key: &openssl::pkey::PKey<openssl::pkey::Private>) -> String {
    certificate_valid(key, 1_700_000_000, 2_100_000_000)
}

/// A self-signed certificate for `key`, valid between these Unix times.
pub(crate) fn certificate_valid(
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
    not_before: i64,
    not_after: i64,
) -> String {
    use openssl::{asn1::Asn1Time, hash::MessageDigest, x509};
    let mut name = x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "sp.test").unwrap();
    let name = name.build();
    let mut cert = x509::X509::builder().unwrap();
    cert.set_version(2).unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(key).unwrap();
    cert.set_not_before(Asn1Time::from_unix(not_before).unwrap().as_ref())
        .unwrap();
    cert.set_not_after(Asn1Time::from_unix(not_after).unwrap().as_ref())
        .unwrap();
    cert.sign(key, MessageDigest::sha256()).unwrap();
    String::from_utf8(cert.build().to_pem().unwrap()).unwrap()
}

fn b64_of(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

/// SP metadata with one `KeyDescriptor` (`key_use`, or none) for `cert_pem`
/// and these `EncryptionMethod`s.
pub(crate) fn metadata(
    entity: &str,
    cert_pem: &str,
    key_use: Option<&str>,
    methods: &[&str],
) -> String {
    let key_use = key_use.map(|u| format!(" use=\"{u}\"")).unwrap_or_default();
    let methods: String = methods
        .iter()
        .map(|m| format!("<md:EncryptionMethod Algorithm=\"{m}\"/>"))
        .collect();
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity}"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor{key_use}><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>{methods}</md:KeyDescriptor><md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat><md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{entity}/acs" index="0" isDefault="true"/></md:SPSSODescriptor></md:EntityDescriptor>"#,
        b64_of(cert_pem)
    )
}

/// SP-initiated SSO for `entity` (signed in already or not): the response XML.
pub(crate) async fn response_for(app: &TestApp, entity: &str, request_id: &str) -> String {
    let xml = authn_request(
        request_id,
        entity,
        Some(&format!("{entity}/acs")),
        app.clock.now(),
    );
    let url = app.url(&format!("/saml/sso?{}", redirect_query(&xml, "r", None)));
    let (action, response, _) = sso(app, &app.client, &url, "ada@example.com").await;
    assert_eq!(action, format!("{entity}/acs"));
    response
}

/// `xmlsec1 --decrypt` with `key_pem`: the decrypted document, or `None`.
pub(crate) fn xmlsec1_decrypts(xml: &str, key_pem: &str) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let (xml_path, key_path) = (dir.path().join("response.xml"), dir.path().join("sp.key"));
    std::fs::write(&xml_path, xml).unwrap();
    std::fs::write(&key_path, key_pem).unwrap();
    let out = std::process::Command::new("xmlsec1")
        .arg("--decrypt")
        .arg("--privkey-pem")
        .arg(&key_path)
        .arg(&xml_path)
        .output()
        .expect("xmlsec1 is installed (scripts/install-deps)");
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}

/// The assertion of a (decrypted) response, parsed by samael.
fn assertion_of(xml: &str) -> samael::schema::Assertion {
    let start = xml.find("<saml2:Assertion").unwrap();
    let end = xml.find("</saml2:Assertion>").unwrap() + "</saml2:Assertion>".len();
    samael::schema::Assertion::from_str(&xml[start..end]).unwrap()
}

fn attribute(a: &samael::schema::Assertion, name: &str) -> Vec<String> {
    a.attribute_statements.as_ref().unwrap()[0]
        .attributes
        .iter()
        .find(|x| x.name.as_deref() == Some(name))
        .map(|x| x.values.iter().filter_map(|v| v.value.clone()).collect())
        .unwrap_or_default()
}

/// The `EncryptionMethod` algorithm of the `EncryptedData` (the first one).
pub(crate) fn content_cipher(xml: &str) -> String {
    xml.split("<xenc:EncryptionMethod Algorithm=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

/// An SP registered from metadata with a `use="encryption"` key: (its
/// private key PEM, its certificate PEM, the SP).
pub(crate) async fn encrypting_sp(app: &TestApp, entity: &str) -> (String, String, Value) {
    let (key, cert) = rsa_pair();
    let md = metadata(entity, &cert, Some("encryption"), &[]);
    let sp = register_sp(app, json!({ "metadata_xml": md })).await;
    (key, cert, sp)
}

async fn an_encrypted_assertion_opens_only_with_the_sps_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    let entity = "https://enc.example.com";
    let (key, cert, sp) = encrypting_sp(&app, entity).await;
    assert_eq!(sp["encrypt_assertions"], true, "{sp}");
    assert_eq!(sp["assertion_cipher"], "aes256-gcm");
    assert_eq!(sp["encryption_certificate_pem"], cert.as_str());
    assert_eq!(
        sp["certificate_pem"],
        Value::Null,
        "a use=\"encryption\" key is not for signing"
    );

    let xml = response_for(&app, entity, "_enc1").await;
    assert!(xml.contains("<saml2:EncryptedAssertion"), "{xml}");
    assert!(
        !xml.contains("<saml2:Assertion"),
        "no plaintext assertion: {xml}"
    );
    assert!(!xml.contains("ada@example.com"), "{xml}");
    assert!(xml.contains(r#"Type="http://www.w3.org/2001/04/xmlenc#Element""#));
    assert!(xml.contains("http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"));
    assert_eq!(content_cipher(&xml), GCM);
    // The response's own signature covers the EncryptedAssertion.
    let idp = idp_cert(&app).await;
    assert!(xmlsec1_verifies(&xml, &idp, false), "response signature");
    let tampered = xml.replacen("<xenc:CipherValue>", "<xenc:CipherValue>AAAA", 1);
    assert!(!xmlsec1_verifies(&tampered, &idp, false));

    // Opened with the SP's key, the assertion's signature verifies and it
    // says what a plaintext one says.
    let decrypted = xmlsec1_decrypts(&xml, &key).expect("xmlsec1 decrypts with the SP's key");
    assert!(
        xmlsec1_verifies(&decrypted, &idp, true),
        "assertion signature"
    );
    let a = assertion_of(&decrypted);
    assert_eq!(
        a.subject.as_ref().unwrap().name_id.as_ref().unwrap().value,
        "ada@example.com"
    );
    assert_eq!(attribute(&a, "email"), vec!["ada@example.com"]);
    assert_eq!(attribute(&a, "groups"), vec!["eng"]);
    assert_eq!(
        a.conditions.unwrap().audience_restrictions.unwrap()[0].audience,
        vec![entity.to_owned()]
    );

    // Any other key opens nothing.
    let (other_key, _) = rsa_pair();
    assert_eq!(xmlsec1_decrypts(&xml, &other_key), None);
}

async fn cbc_only_when_the_metadata_asks_and_encryption_switches_off(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    let (key, cert) = rsa_pair();
    // A KeyDescriptor without `use` serves encryption too (metadata §2.4.1.1);
    // an SP listing CBC (and key transport) but no GCM gets CBC.
    let cbc_sp = "https://cbc.example.com";
    let rsa_oaep = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
    let sp = register_sp(
        &app,
        json!({"metadata_xml": metadata(cbc_sp, &cert, None, &[rsa_oaep, CBC])}),
    )
    .await;
    assert_eq!(
        (&sp["encrypt_assertions"], &sp["assertion_cipher"]),
        (&json!(true), &json!("aes256-cbc"))
    );
    let xml = response_for(&app, cbc_sp, "_cbc1").await;
    assert_eq!(content_cipher(&xml), CBC);
    let decrypted = xmlsec1_decrypts(&xml, &key).expect("decrypts");
    assert!(xmlsec1_verifies(&decrypted, &idp_cert(&app).await, true));
    // Listing GCM next to CBC keeps GCM.
    let both = "https://both.example.com";
    let sp = register_sp(
        &app,
        json!({"metadata_xml": metadata(both, &cert, Some("encryption"), &[CBC, GCM])}),
    )
    .await;
    assert_eq!(sp["assertion_cipher"], "aes256-gcm");

    // Switched off: a plain signed assertion again.
    let id = sp["id"].as_str().unwrap();
    let (status, off) = status_json(
        app.patch(
            &format!("/v1/saml/service-providers/{id}"),
            &app.secret_key,
            &json!({"encrypt_assertions": false}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{off}");
    assert_eq!(off["encrypt_assertions"], false);
    assert_eq!(off["encryption_certificate_pem"], cert.as_str(), "kept");
    let xml = response_for(&app, both, "_plain1").await;
    assert!(!xml.contains("EncryptedAssertion"), "{xml}");
    assert!(xml.contains("<saml2:Assertion"));
    assert!(xmlsec1_verifies(&xml, &idp_cert(&app).await, true));
    assert_eq!(
        attribute(&assertion_of(&xml), "email"),
        vec!["ada@example.com"]
    );
}

async fn encryption_needs_an_rsa_certificate(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // An EC encryption key: XML Encryption's key agreement is not offered.
    let ec = openssl::pkey::PKey::from_ec_key(
        openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let md = metadata(
        "https://ec.example.com",
        &certificate(&ec),
        Some("encryption"),
        &[],
    );
    let (status, body) = status_json(
        app.post(
            "/v1/saml/service-providers",
            &app.secret_key,
            &json!({"metadata_xml": md}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["param"], "metadata_xml", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must have an RSA key"),
        "{body}"
    );
    // Encryption asked for, with no certificate to encrypt for.
    let (status, body) = status_json(
        app.post(
            "/v1/saml/service-providers",
            &app.secret_key,
            &json!({"entity_id": "https://plain.example.com", "acs_url": "https://plain.example.com/acs", "encrypt_assertions": true}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["param"], "encrypt_assertions", "{body}");
    // A plain-field SP given an RSA encryption certificate encrypts.
    let (_, cert) = rsa_pair();
    let sp = register_sp(
        &app,
        json!({"entity_id": "https://plain.example.com", "acs_url": "https://plain.example.com/acs", "encryption_certificate_pem": cert}),
    )
    .await;
    assert_eq!(sp["encrypt_assertions"], true);
    assert_eq!(sp["assertion_cipher"], "aes256-gcm");
}

/// `xml` with one base64 character of the `EncryptedData`'s own
/// `CipherValue` (the second in document order, after the EncryptedKey's)
/// changed.
fn flip_content_cipher(xml: &str) -> String {
    let tag = "<xenc:CipherValue>";
    let start = xml.match_indices(tag).nth(1).unwrap().0 + tag.len();
    let mut bytes = xml.as_bytes().to_vec();
    let at = start
        + bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// Runs `tests/saml-sp/ruby-saml-acs.rb` on a response: `Ok(its JSON)` when
/// ruby-saml accepts it, `Err(its errors)` when it refuses it; `None` when
/// Ruby is not installed outside CI.
pub(crate) fn ruby_saml(settings: &Value) -> Option<Result<Value, String>> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/saml-sp/ruby-saml-acs.rb"
    );
    let child = std::process::Command::new("ruby")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!(
                "skipped: ruby-saml needs `ruby` and `ruby-saml` (scripts/install-deps): {e}"
            );
            return None;
        }
        Err(e) => panic!("CI runs ruby-saml: {e}"),
    };
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(settings.to_string().as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Some(if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

async fn ruby_saml_accepts_plain_and_encrypted_and_refuses_tampering(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    let idp = idp_cert(&app).await;
    let (key, cert) = rsa_pair();
    let (encrypted_sp, plain_sp) = ("https://ruby.example.com", "https://ruby-plain.example.com");
    register_sp(
        &app,
        json!({"metadata_xml": metadata(encrypted_sp, &cert, Some("encryption"), &[])}),
    )
    .await;
    register_sp(
        &app,
        json!({"entity_id": plain_sp, "acs_url": format!("{plain_sp}/acs"), "attribute_profile": "oid"}),
    )
    .await;
    let settings = |xml: &str, entity: &str, request_id: &str| {
        json!({
            "saml_response": STANDARD.encode(xml),
            "idp_cert": idp,
            "issuer": IDP_ENTITY,
            "audience": entity,
            "acs": format!("{entity}/acs"),
            "request_id": request_id,
            "sp_private_key": key,
            "now": app.clock.now().to_rfc3339(),
        })
    };

    // Both responses first: ruby takes a while to start, and a pooled
    // connection idle that long may meet the server's keep-alive timeout.
    let xml = response_for(&app, plain_sp, "_ruby1").await;
    let encrypted = response_for(&app, encrypted_sp, "_ruby2").await;
    let Some(plain) = ruby_saml(&settings(&xml, plain_sp, "_ruby1")) else {
        return;
    };
    let plain = plain.expect("ruby-saml accepts the plain response");
    assert_eq!(plain["name_id"], "ada@example.com");
    assert_eq!(plain["encrypted"], false);
    assert_eq!(
        plain["attributes"]["urn:oid:0.9.2342.19200300.100.1.3"],
        json!(["ada@example.com"])
    );
    let tampered = xml.replace("ada@example.com", "eve@example.com");
    let refused = ruby_saml(&settings(&tampered, plain_sp, "_ruby1")).unwrap();
    assert!(refused.is_err(), "ruby-saml accepted a tampered response");

    // Encrypted (AES-256-GCM, RSA-OAEP): ruby-saml decrypts it with the SP's
    // key and checks both signatures.
    let xml = encrypted;
    let accepted = ruby_saml(&settings(&xml, encrypted_sp, "_ruby2"))
        .unwrap()
        .expect("ruby-saml accepts the encrypted response");
    assert_eq!(accepted["encrypted"], true);
    assert_eq!(accepted["name_id"], "ada@example.com");
    assert_eq!(accepted["attributes"]["given_name"], json!(["Ada"]));
    // A changed ciphertext is refused (the response signature, and GCM's tag).
    let tampered = flip_content_cipher(&xml);
    assert_ne!(tampered, xml);
    let refused = ruby_saml(&settings(&tampered, encrypted_sp, "_ruby2")).unwrap();
    assert!(refused.is_err(), "ruby-saml accepted a tampered ciphertext");
    // And another SP's key opens nothing.
    let (other_key, _) = rsa_pair();
    let mut other = settings(&xml, encrypted_sp, "_ruby2");
    other["sp_private_key"] = json!(other_key);
    assert!(ruby_saml(&other).unwrap().is_err());
}
