//! The content cipher of encrypted assertions, chosen by the administrator
//! on the SP's console page (`/console/saml/{id}/encryption`) or over /v1
//! (`assertion_cipher`), and the key transport sent whatever the SP's
//! metadata asks for: each opened by an independent tool, `xmlsec1
//! --decrypt`, and its assertion's signature checked by `xmlsec1 --verify`.

use crate::console_saml::admin_browser;
use crate::oauth_support::{hidden, make_user};
use crate::saml::{idp_cert, patch_sp, register_sp, xmlsec1_verifies};
use crate::saml_encryption::{
    content_cipher, encrypting_sp, metadata, response_for, rsa_pair, xmlsec1_decrypts,
};
use serde_json::json;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    the_console_chooses_the_content_cipher,
    key_transport_is_rsa_oaep_mgf1p_whatever_the_metadata_asks,
);

const OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const OAEP_11: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";

/// Opens `xml` with the SP's key and checks the assertion's signature.
async fn opens(app: &TestApp, xml: &str, key: &str) {
    let decrypted = xmlsec1_decrypts(xml, key).expect("xmlsec1 decrypts with the SP's key");
    assert!(xmlsec1_verifies(&decrypted, &idp_cert(app).await, true));
    assert!(decrypted.contains("ada@example.com"));
}

async fn the_console_chooses_the_content_cipher(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    let entity = "https://ciphers.example.com";
    let (key, _, sp) = encrypting_sp(&app, entity).await;
    let id = sp["id"].as_str().unwrap().to_owned();
    assert_eq!(sp["assertion_cipher"], "aes256-gcm", "the default");
    let browser = admin_browser(&app).await;
    let sp_page = app.url(&format!("/console/saml/{id}"));
    let html = browser.get(&sp_page).send().await.unwrap().text().await;
    let html = html.unwrap();
    assert!(
        html.contains("<option value=\"aes256-gcm\" selected>"),
        "{html}"
    );
    let csrf = hidden(&html, "csrf_token");
    let choose = |cipher: &'static str| {
        let form = [
            ("csrf_token", csrf.clone()),
            ("encrypt_assertions", "on".to_owned()),
            ("assertion_cipher", cipher.to_owned()),
        ];
        let req = browser
            .post(app.url(&format!("/console/saml/{id}/encryption")))
            .form(&form);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };

    for (n, (cipher, uri, label)) in [
        (
            "aes128-gcm",
            "http://www.w3.org/2009/xmlenc11#aes128-gcm",
            "AES-128-GCM",
        ),
        (
            "aes256-cbc",
            "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
            "AES-256-CBC",
        ),
        (
            "aes256-gcm",
            "http://www.w3.org/2009/xmlenc11#aes256-gcm",
            "AES-256-GCM",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, html) = choose(cipher).await;
        assert_eq!(status, 200, "{html}");
        assert!(
            html.contains(&format!("<option value=\"{cipher}\" selected>")),
            "{html}"
        );
        assert!(html.contains(&format!("encrypted ({label}")), "{html}");
        let (_, now) = status_json(
            app.get(&format!("/v1/saml/service-providers/{id}"), &app.secret_key)
                .await,
        )
        .await;
        assert_eq!(now["assertion_cipher"], cipher, "{now}");
        let xml = response_for(&app, entity, &format!("_cipher{n}")).await;
        assert_eq!(content_cipher(&xml), uri);
        assert!(xml.contains(OAEP_MGF1P));
        opens(&app, &xml, &key).await;
    }

    // Nothing else is a cipher (the console's page for a refused change).
    let (status, html) = choose("des-cbc").await;
    assert_eq!(status, 400, "{html}");
    assert!(
        html.contains("aes256-gcm, aes128-gcm or aes256-cbc"),
        "{html}"
    );
    let (status, body) = patch_sp(&app, &id, json!({"assertion_cipher": "aes192-gcm"})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["param"], "assertion_cipher");
}

/// xmlsec (1.2.37 on Debian 12) offers RSA-OAEP only as `rsa-oaep-mgf1p`
/// with SHA-1: an SP whose metadata asks for XML Encryption 1.1's
/// `rsa-oaep` (MGF1 and digest SHA-256) still gets `rsa-oaep-mgf1p`,
/// which every XML Encryption implementation must decrypt (§5.5.2).
async fn key_transport_is_rsa_oaep_mgf1p_whatever_the_metadata_asks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    let (key, cert) = rsa_pair();
    for (n, methods) in [vec![OAEP_11], vec![OAEP_MGF1P], vec![]].iter().enumerate() {
        let entity = format!("https://oaep{n}.example.com");
        register_sp(
            &app,
            json!({"metadata_xml": metadata(&entity, &cert, Some("encryption"), methods)}),
        )
        .await;
        let xml = response_for(&app, &entity, &format!("_oaep{n}")).await;
        assert!(xml.contains(OAEP_MGF1P), "{xml}");
        assert!(!xml.contains(OAEP_11), "{xml}");
        opens(&app, &xml, &key).await;
    }
}
