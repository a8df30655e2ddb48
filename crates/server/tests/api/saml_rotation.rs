//! IdP key rotation with an independent SP stack (issue 13): Debian's
//! ruby-saml holds the IdP metadata it fetched while a rotation was
//! announced (both certificates, as the SAML metadata interop profile asks
//! an SP to keep), the key is switched, and that SP still accepts the
//! assertions signed after the switch; an assertion signed by a key this
//! IdP never published is refused by it.

use crate::oauth_support::make_user;
use crate::saml::register_sp;
use crate::saml_encryption::{response_for, ruby_saml};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(ruby_saml_with_metadata_from_before_a_rotation_accepts_the_new_key);

const IDP_ENTITY: &str = "http://127.0.0.1:8080/saml/metadata";
const SP: &str = "https://rotating.example.com";

async fn metadata(app: &TestApp) -> String {
    let resp = app.client.get(app.url("/saml/metadata")).send().await;
    resp.unwrap().text().await.unwrap()
}

/// One rotation step; returns what it did (`announced`, `promoted`).
async fn rotate(app: &TestApp) -> String {
    let (status, body) = status_json(
        app.post("/v1/signing-keys/rotate", &app.secret_key, &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["saml"].as_str().unwrap().to_owned()
}

/// What ruby-saml is given: the response and the IdP metadata it holds.
fn settings(app: &TestApp, xml: &str, held: &str, request_id: &str) -> Value {
    json!({
        "saml_response": STANDARD.encode(xml),
        "idp_metadata": held,
        "issuer": IDP_ENTITY,
        "audience": SP,
        "acs": format!("{SP}/acs"),
        "request_id": request_id,
        "now": app.clock.now().to_rfc3339(),
    })
}

async fn ruby_saml_with_metadata_from_before_a_rotation_accepts_the_new_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    let sp = json!({"entity_id": SP, "acs_url": format!("{SP}/acs")});
    register_sp(&app, sp.clone()).await;
    let before = metadata(&app).await;

    // Step one announces the next certificate; the SP fetches the metadata
    // now, and never again.
    assert_eq!(rotate(&app).await, "announced");
    let held = metadata(&app).await;
    assert_eq!(held.matches("<ds:X509Certificate>").count(), 2, "{held}");
    let old_signed = response_for(&app, SP, "_rot1").await;
    // Step two: the announced key signs from now on.
    assert_eq!(rotate(&app).await, "promoted");
    let after = metadata(&app).await;
    assert_ne!(after, before);
    let new_signed = response_for(&app, SP, "_rot2").await;

    // Another IdP with the same entity ID and a key never published in the
    // metadata the SP holds: test apps start from one seeded key, so it
    // rotates to a fresh one first (its own storage does not matter).
    let rogue = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(rotate(&rogue).await, "announced");
    assert_eq!(rotate(&rogue).await, "promoted");
    make_user(&rogue, "ada@example.com").await;
    register_sp(&rogue, sp).await;
    let rogue_signed = response_for(&rogue, SP, "_rot3").await;

    // Every response before ruby starts (a pooled connection idle that long
    // may meet the server's keep-alive timeout).
    let Some(old) = ruby_saml(&settings(&app, &old_signed, &held, "_rot1")) else {
        return;
    };
    assert_eq!(
        old.expect("signed by the current key")["name_id"],
        "ada@example.com"
    );
    let new = ruby_saml(&settings(&app, &new_signed, &held, "_rot2"))
        .unwrap()
        .expect("ruby-saml with the metadata fetched before the switch accepts the new key");
    assert_eq!(new["name_id"], "ada@example.com");
    assert_eq!(new["attributes"]["email"], json!(["ada@example.com"]));
    // Without the announced certificate (metadata from before step one) the
    // new key is refused: the announcement is what made it work.
    let stale = ruby_saml(&settings(&app, &new_signed, &before, "_rot2")).unwrap();
    assert!(stale.is_err(), "accepted with a metadata lacking the key");
    let refused = ruby_saml(&settings(&rogue, &rogue_signed, &held, "_rot3")).unwrap();
    let errors = refused.expect_err("ruby-saml accepted a key never published");
    assert!(!errors.is_empty());
}
