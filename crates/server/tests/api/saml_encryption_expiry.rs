//! Expired encryption certificates (issue 13): an expired certificate is
//! refused when it is given (422 naming the field and the expiry date),
//! and a sign-in to an SP whose certificate has expired since is refused
//! with an error page and a `saml.request.refused` entry for that SP
//! (reason `encryption_certificate_expired`, in the console's trace)
//! instead of encrypting the assertion to a dead key.

use crate::console_saml::admin_browser;
use crate::oauth_support::make_user;
use crate::saml::{authn_request, enc, patch_sp, redirect_query, register_sp};
use crate::saml_encryption::{certificate_valid, metadata, response_for, xmlsec1_decrypts};
use serde_json::{Value, json};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    an_expired_encryption_certificate_is_refused_when_given,
    sign_in_is_refused_once_the_encryption_certificate_expires,
);

const DAY: i64 = 86_400;

/// An RSA key (PEM) and a certificate for it valid until `not_after`.
fn pair_until(not_after: i64) -> (String, String) {
    let key = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let pem = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (
        pem,
        certificate_valid(&key, not_after - 400 * DAY, not_after),
    )
}

fn date(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

async fn create(app: &TestApp, body: Value) -> (u16, Value) {
    status_json(
        app.post("/v1/saml/service-providers", &app.secret_key, &body)
            .await,
    )
    .await
}

fn assert_refused(status: u16, body: &Value, field: &str, expired: i64) {
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["param"], field, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("expired on {}", date(expired))),
        "{message}"
    );
}

async fn an_expired_encryption_certificate_is_refused_when_given(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let expired = app.clock.now().timestamp() - 3 * DAY;
    let (_, cert) = pair_until(expired);
    let entity = "https://expired.example.com";
    let md = metadata(entity, &cert, Some("encryption"), &[]);
    let (status, body) = create(&app, json!({"metadata_xml": md})).await;
    assert_refused(status, &body, "metadata_xml", expired);
    let plain = json!({"entity_id": entity, "acs_url": format!("{entity}/acs"), "encryption_certificate_pem": cert});
    let (status, body) = create(&app, plain.clone()).await;
    assert_refused(status, &body, "encryption_certificate_pem", expired);
    // Kept, switched off, when the same request says so.
    let mut off = plain;
    off["encrypt_assertions"] = json!(false);
    let (status, sp) = create(&app, off).await;
    assert_eq!(status, 201, "{sp}");
    assert_eq!(sp["encrypt_assertions"], false);
    // And it cannot be switched on.
    let id = sp["id"].as_str().unwrap();
    let on = json!({"encrypt_assertions": true});
    let (status, body) = patch_sp(&app, id, on).await;
    assert_refused(status, &body, "encrypt_assertions", expired);
    // Other changes to the SP are not held up by it.
    let (status, body) = patch_sp(&app, id, json!({"name": "Renamed"})).await;
    assert_eq!(status, 200, "{body}");
}

async fn sign_in_is_refused_once_the_encryption_certificate_expires(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    let expires = app.clock.now().timestamp() + DAY;
    let (key, cert) = pair_until(expires);
    let entity = "https://expiring.example.com";
    let md = metadata(entity, &cert, Some("encryption"), &[]);
    let sp = register_sp(&app, json!({"metadata_xml": md})).await;
    let id = sp["id"].as_str().unwrap().to_owned();
    // Current: encrypted, and it opens with the SP's key.
    let xml = response_for(&app, entity, "_exp1").await;
    assert!(xml.contains("<saml2:EncryptedAssertion"), "{xml}");
    assert!(xmlsec1_decrypts(&xml, &key).is_some());

    app.clock.advance(chrono::TimeDelta::days(2));
    let refused_page = |resp: reqwest::Response| async move {
        assert_eq!(resp.status(), 400);
        let html = resp.text().await.unwrap();
        let says = format!("encryption certificate expired on {}", date(expires));
        assert!(html.contains(&says), "{html}");
        assert!(!html.contains("SAMLResponse"), "nothing is posted: {html}");
    };
    // SP-initiated, signed in already, and IdP-initiated from a new browser.
    let request = authn_request(
        "_exp2",
        entity,
        Some(&format!("{entity}/acs")),
        app.clock.now(),
    );
    let url = app.url(&format!(
        "/saml/sso?{}",
        redirect_query(&request, "r", None)
    ));
    refused_page(app.client.get(url).send().await.unwrap()).await;
    let init = app.url(&format!("/saml/sso/init?sp={}", enc(entity)));
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    refused_page(browser.get(&init).send().await.unwrap()).await;

    // Audited for that SP, and in its console trace.
    let (_, events) = status_json(
        app.get(
            "/v1/audit-events?type=saml.request.refused&limit=1",
            &app.secret_key,
        )
        .await,
    )
    .await;
    let data = &events["data"][0]["data"];
    assert_eq!(data["reason"], "encryption_certificate_expired", "{events}");
    assert_eq!(data["sp_id"], id.as_str());
    let admin = admin_browser(&app).await;
    let page = admin
        .get(app.url(&format!("/console/saml/{id}")))
        .send()
        .await;
    let html = page.unwrap().text().await.unwrap();
    assert!(html.contains("encryption_certificate_expired"), "{html}");
    assert!(html.contains("certificate expired"), "{html}");

    // Switched off by the administrator, the SP signs in with a plain
    // (signed) assertion again.
    let off = json!({"encrypt_assertions": false});
    let (status, body) = patch_sp(&app, &id, off).await;
    assert_eq!(status, 200, "{body}");
    let xml = response_for(&app, entity, "_exp3").await;
    assert!(xml.contains("<saml2:Assertion"), "{xml}");
}
