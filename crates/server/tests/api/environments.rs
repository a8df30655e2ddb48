//! Each environment is its own issuer (contract): live at the root, every
//! other environment under `/env/NAME` with its own SAML entityID,
//! certificate and SPs (and its own OAuth issuer and keys). These tests
//! replay the attacks that sharing one identity allowed.

use crate::oauth_support::{PASSWORD, hidden, new_browser};
use crate::saml::{ACS, IDP_SSO, SP_ENTITY, authn_request, redirect_query, sso};
use serde_json::json;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

const ATTACKER_ACS: &str = "https://attacker.example/acs";
const TEST_IDP_SSO: &str = "http://127.0.0.1:8080/env/test/saml/sso";
const LIVE_ENTITY: &str = "http://127.0.0.1:8080/saml/metadata";
const TEST_ENTITY: &str = "http://127.0.0.1:8080/env/test/saml/metadata";

on_every_backend!(
    a_test_key_cannot_squat_a_live_sp_entity_id,
    each_environment_has_its_own_saml_metadata,
);

async fn create_user(app: &TestApp, key: &str, email: &str) {
    let (status, body) = status_json(
        app.post(
            "/v1/users",
            key,
            &json!({"email": email, "password": PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

async fn create_sp(app: &TestApp, key: &str, acs: &str) -> u16 {
    let resp = app
        .post(
            "/v1/saml/service-providers",
            key,
            &json!({"entity_id": SP_ENTITY, "acs_url": acs}),
        )
        .await;
    resp.status().as_u16()
}

/// The sign-in page a browser is sent to by an SSO request.
async fn login_page(app: &TestApp, browser: &reqwest::Client, sso_url: &str) -> (String, String) {
    let resp = browser.get(sso_url).send().await.unwrap();
    assert_eq!(resp.status(), 302, "{sso_url}");
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let html = browser
        .get(app.url(&location))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (location, html)
}

fn issuer_of(xml: &str) -> String {
    xml.split("Issuer")
        .nth(1)
        .and_then(|s| s.split('>').nth(1))
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_owned()
}

/// Security issue 9, item 2: a `trusec_test_` key registered a SAML SP
/// under a production SP's entity id first (live then got a 409), and the
/// production SP's real AuthnRequests were answered from the test
/// environment: the attacker signed in as a test user they made, with an
/// assertion the SP accepted. Now the test environment is another IdP:
/// live registers its SP regardless, live requests are answered for the
/// live SP only (a test user cannot sign in there), and the test SP is
/// reached only at `/env/test/saml/sso`, under the test entityID.
async fn a_test_key_cannot_squat_a_live_sp_entity_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // The attacker, with a test key, claims the production SP's entity id
    // first and points it at their own ACS.
    assert_eq!(create_sp(&app, &app.test_key, ATTACKER_ACS).await, 201);
    create_user(&app, &app.test_key, "mallory@example.com").await;
    // Live registers its SP all the same: no 409.
    assert_eq!(create_sp(&app, &app.secret_key, ACS).await, 201);
    create_user(&app, &app.secret_key, "ada@example.com").await;
    let now = app.clock.now();
    let live = |id: &str| {
        app.url(&format!(
            "/saml/sso?{}",
            redirect_query(&authn_request(id, SP_ENTITY, None, now), "", None)
        ))
    };
    let test = |id: &str| {
        let request = authn_request(id, SP_ENTITY, None, now).replace(IDP_SSO, TEST_IDP_SSO);
        app.url(&format!(
            "/env/test/saml/sso?{}",
            redirect_query(&request, "", None)
        ))
    };
    let live_sso = live("_live1");
    // The production SP's request, at live: the test user cannot sign in.
    let browser = new_browser();
    let (location, html) = login_page(&app, &browser, &live_sso).await;
    assert!(location.starts_with("/login?"), "{location}");
    let refused = browser
        .post(app.url("/login"))
        .form(&[
            ("email", "mallory@example.com"),
            ("password", PASSWORD),
            ("csrf_token", &hidden(&html, "csrf_token")),
            ("interaction", &hidden(&html, "interaction")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "a test user is not a live user");
    // The live user gets an assertion for the live SP, from the live IdP.
    let (action, xml, _) = sso(&app, &new_browser(), &live("_live2"), "ada@example.com").await;
    assert_eq!(action, ACS, "the live SP's ACS, never the squatter's");
    assert_eq!(issuer_of(&xml), LIVE_ENTITY);
    assert!(xml.contains("ada@example.com") && !xml.contains("mallory"));
    // The test SP is answered only by the test IdP, at its own endpoints.
    let (action, xml, _) = sso(&app, &new_browser(), &test("_test1"), "mallory@example.com").await;
    assert_eq!(action, ATTACKER_ACS);
    assert_eq!(issuer_of(&xml), TEST_ENTITY);
    // A test request sent to the live endpoint names a live destination it
    // does not have; the live request at the test endpoint likewise.
    let wrong = app.url(&format!(
        "/env/test/saml/sso?{}",
        redirect_query(&authn_request("_live4", SP_ENTITY, None, now), "", None)
    ));
    let resp = new_browser().get(&wrong).send().await.unwrap();
    assert_eq!(
        resp.status(),
        400,
        "a live-destination request at the test IdP"
    );
    // A live login session is no session at the test IdP.
    let browser = new_browser();
    sso(&app, &browser, &live("_live3"), "ada@example.com").await;
    let resp = browser.get(test("_test2")).send().await.unwrap();
    assert_eq!(
        resp.status(),
        302,
        "to the test login page, not an assertion"
    );
    let location = resp.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("/env/test/login?"), "{location}");
}

fn certificate_of(metadata: &str) -> String {
    metadata
        .split("<ds:X509Certificate>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_owned()
}

/// The test IdP's metadata names its own entityID, endpoints and
/// certificate; an environment that does not exist is a 404.
async fn each_environment_has_its_own_saml_metadata(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let get = |path: &'static str| {
        let client = app.client.clone();
        let url = app.url(path);
        async move { client.get(url).send().await.unwrap() }
    };
    let live = get("/saml/metadata").await.text().await.unwrap();
    let test = get("/env/test/saml/metadata").await.text().await.unwrap();
    assert!(
        live.contains(&format!("entityID=\"{LIVE_ENTITY}\"")),
        "{live}"
    );
    assert!(
        test.contains(&format!("entityID=\"{TEST_ENTITY}\"")),
        "{test}"
    );
    assert!(
        test.contains(&format!("Location=\"{TEST_IDP_SSO}\"")),
        "{test}"
    );
    assert!(!test.contains(&format!("Location=\"{IDP_SSO}\"")), "{test}");
    assert_ne!(certificate_of(&live), certificate_of(&test));
    for path in [
        "/env/nope/saml/metadata",
        "/env/live/saml/metadata",
        "/env/test/v1/users",
    ] {
        assert_eq!(get(path).await.status(), 404, "{path}");
    }
}
