//! The console's SAML page (issue #16): metadata read and shown before it
//! is saved, registering by metadata and by fields with field errors,
//! attribute release, the per-SP trace of assertions and refusals, the IdP
//! certificate download, deletion, CSRF, and environment isolation.

use crate::console::{sign_in, user};
use crate::oauth_support::{hidden, new_browser};
use crate::saml::{
    FIXTURE_KEY_PEM, authn_request, idp_cert, redirect_query, sso, xmlsec1_verifies,
};
use serde_json::{Value, json};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    metadata_is_shown_before_it_is_saved,
    attributes_trace_and_delete,
    fields_errors_and_isolation,
    the_sso_test_shows_the_signed_assertion,
);

const METADATA: &str = include_str!("../fixtures/sp-metadata.xml");
const ENTITY: &str = "https://acme-crm.example/saml/sp";

/// A browser signed in to the live console as a new administrator.
pub(crate) async fn admin_browser(app: &TestApp) -> reqwest::Client {
    user(app, &app.secret_key, "admin@example.com", true).await;
    let browser = new_browser();
    let resp = sign_in(app, &browser, "", "admin@example.com").await;
    assert_eq!(resp.status(), 303);
    browser
}

async fn page(browser: &reqwest::Client, url: &str) -> (u16, String) {
    let resp = browser.get(url).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn post(
    browser: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> (u16, String, Option<String>) {
    let resp = browser.post(url).form(form).send().await.unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (status, resp.text().await.unwrap(), location)
}

async fn v1_sps(app: &TestApp, key: &str) -> Vec<Value> {
    let (status, list) = status_json(app.get("/v1/saml/service-providers", key).await).await;
    assert_eq!(status, 200, "{list}");
    list["data"].as_array().unwrap().clone()
}

/// Registers the fixture SP from the console by its metadata; the CSRF
/// token and the SP's page.
async fn register_fixture(app: &TestApp, browser: &reqwest::Client) -> (String, String) {
    let (_, html) = page(browser, &app.url("/console/saml")).await;
    let csrf = hidden(&html, "csrf_token");
    let (status, html, _) = post(
        browser,
        &app.url("/console/saml"),
        &[("csrf_token", &csrf), ("metadata_xml", METADATA)],
    )
    .await;
    assert_eq!(status, 201, "{html}");
    (csrf, html)
}

/// An SP of the test environment, registered over /v1.
async fn test_env_sp(app: &TestApp) -> Value {
    let (status, sp) = status_json(
        app.post(
            "/v1/saml/service-providers",
            &app.test_key,
            &json!({"entity_id": "https://test-only.example/sp", "acs_url": "https://test-only.example/acs"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{sp}");
    sp
}

/// The SP id a page links to (`/console/saml/sp_…/…`).
fn sp_id(html: &str) -> String {
    let start = html.find("/console/saml/sp_").unwrap() + "/console/saml/".len();
    html[start..].split(['/', '"']).next().unwrap().to_owned()
}

async fn metadata_is_shown_before_it_is_saved(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let browser = admin_browser(&app).await;
    let (status, html) = page(&browser, &app.url("/console/saml")).await;
    assert_eq!(status, 200);
    assert!(html.contains("No service providers yet."), "{html}");
    assert!(html.contains("http://127.0.0.1:8080/saml/metadata"));
    let csrf = hidden(&html, "csrf_token");

    // Not metadata: the form again, the field marked, nothing saved.
    let (status, html, _) = post(
        &browser,
        &app.url("/console/saml/preview"),
        &[("csrf_token", &csrf), ("metadata_xml", "<html>no</html>")],
    )
    .await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("id=\"metadata_xml-error\""), "{html}");
    let pasted = html
        .split("id=\"metadata_xml\"")
        .nth(1)
        .and_then(|t| t.split("</textarea>").next())
        .unwrap();
    assert!(
        pasted.contains("no&#60;/html&#62;"),
        "what was pasted stays: {pasted}"
    );

    // What the metadata says, shown; still nothing saved.
    let (status, html, _) = post(
        &browser,
        &app.url("/console/saml/preview"),
        &[("csrf_token", &csrf), ("metadata_xml", METADATA)],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    for shown in [
        ENTITY,
        "https://acme-crm.example/saml/acs",
        "index 0, default",
        "https://eu.acme-crm.example/saml/acs",
        "(not used)",
        "https://acme-crm.example/saml/slo",
        "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        "CN=saml.acme-crm.example, O=Acme CRM",
        "2048-bit key",
        "cert-valid",
        "2036-11-24",
        "yes: unsigned requests are refused",
        // Its use="encryption" key: encrypted by default.
        "<dt>Assertions</dt><dd>encrypted (AES-256-GCM, certificate expires 2036-11-24",
    ] {
        assert!(html.contains(shown), "{shown} in {html}");
    }
    assert!(v1_sps(&app, &app.secret_key).await.is_empty());

    // CSRF is checked on saving.
    let (status, _, _) = post(
        &browser,
        &app.url("/console/saml"),
        &[("csrf_token", "x"), ("metadata_xml", METADATA)],
    )
    .await;
    assert_eq!(status, 403);
    // Confirmed: saved, as /v1 sees it, audited with the admin as actor.
    // The metadata rides along in the page (HTML-escaped; a browser posts
    // it back as it was pasted).
    assert!(hidden(&html, "metadata_xml").contains(ENTITY));
    let xml = METADATA;
    let (status, html, _) = post(
        &browser,
        &app.url("/console/saml"),
        &[
            ("csrf_token", &csrf),
            ("metadata_xml", xml),
            ("name", "CRM"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{html}");
    assert!(html.contains("<h1>CRM</h1>"), "{html}");
    let sps = v1_sps(&app, &app.secret_key).await;
    assert_eq!(sps.len(), 1);
    assert_eq!(sps[0]["entity_id"], ENTITY);
    assert_eq!(sps[0]["name"], "CRM");
    assert_eq!(sps[0]["encrypt_assertions"], true);
    // The switch: unticked, assertions go out plain; the key is kept.
    assert!(html.contains("Save encryption"), "{html}");
    let id = sp_id(&html);
    let (status, page_html, _) = post(
        &browser,
        &app.url(&format!("/console/saml/{id}/encryption")),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(status, 200, "{page_html}");
    assert!(
        page_html.contains(
            "not encrypted (switched off; the SP&#39;s encryption certificate expires 2036-11-24"
        ) || page_html.contains(
            "not encrypted (switched off; the SP&#x27;s encryption certificate expires 2036-11-24"
        ),
        "{page_html}"
    );
    let sps = v1_sps(&app, &app.secret_key).await;
    assert_eq!(sps[0]["encrypt_assertions"], false);
    assert!(sps[0]["encryption_certificate_pem"].is_string());
    let (status, _, _) = post(
        &browser,
        &app.url(&format!("/console/saml/{id}/encryption")),
        &[("csrf_token", &csrf), ("encrypt_assertions", "on")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        v1_sps(&app, &app.secret_key).await[0]["encrypt_assertions"],
        true
    );
    let (_, events) = status_json(
        app.get("/v1/audit-events?type=saml.sp.created", &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(events["data"][0]["actor"]["type"], "user", "{events}");
    // Registering it again: the entity id is taken, said next to the form.
    let (status, html, _) = post(
        &browser,
        &app.url("/console/saml"),
        &[("csrf_token", &csrf), ("metadata_xml", xml)],
    )
    .await;
    assert_eq!(status, 422, "{html}");
    assert!(
        html.contains("exists already in this environment"),
        "{html}"
    );
    // The list shows it with its certificate's state.
    let (_, html) = page(&browser, &app.url("/console/saml")).await;
    assert!(
        html.contains("CRM") && html.contains("cert-valid"),
        "{html}"
    );
}

async fn attributes_trace_and_delete(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let browser = admin_browser(&app).await;
    let (csrf, html) = register_fixture(&app, &browser).await;
    let id = sp_id(&html);
    assert!(html.contains("No assertions issued"), "{html}");

    // The OID profile, mail released as the profile names it and groups
    // under a name of the SP's own.
    let (status, html, _) = post(
        &browser,
        &app.url(&format!("/console/saml/{id}/attributes")),
        &[
            ("csrf_token", &csrf),
            ("attribute_profile", "oid"),
            ("release_email", "on"),
            ("name_email", ""),
            ("release_groups", "on"),
            ("name_groups", "memberOf"),
            ("name_given_name", "ignored: not released"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Attribute release saved."));
    let (_, sp) = status_json(
        app.get(&format!("/v1/saml/service-providers/{id}"), &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(sp["attribute_profile"], "oid");
    assert_eq!(
        sp["attributes"],
        json!({
            "email": {"name": "urn:oid:0.9.2342.19200300.100.1.3", "name_format": "uri", "friendly_name": "mail"},
            "groups": {"name": "memberOf", "name_format": "uri"},
        }),
        "{sp}"
    );

    // A refusal from this SP (an ACS it never registered) and an assertion
    // issued to it (IdP-initiated, as the signed-in admin): both traced.
    let now = app.clock.now();
    let request = authn_request("_c1", ENTITY, Some("https://evil.example/acs"), now);
    let query = redirect_query(&request, "r", Some(FIXTURE_KEY_PEM));
    let resp = browser
        .get(app.url(&format!("/saml/sso?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let init = app.url(&format!("/saml/sso/init?sp={}", crate::saml::enc(ENTITY)));
    let (action, _, _) = sso(&app, &browser, &init, "admin@example.com").await;
    assert_eq!(action, "https://acme-crm.example/saml/acs");
    let (_, html) = page(&browser, &app.url(&format!("/console/saml/{id}"))).await;
    assert!(html.contains("Assertion issued"), "{html}");
    assert!(html.contains("class=\"refused\""), "{html}");
    assert!(
        html.contains("acs_not_registered") || html.contains("Refused"),
        "{html}"
    );

    // The IdP certificate, as the metadata publishes it.
    let resp = browser
        .get(app.url("/console/saml/idp-certificate.pem"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let pem = resp.text().await.unwrap();
    let body = |p: &str| {
        p.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>()
    };
    assert_eq!(body(&pem), body(&idp_cert(&app).await));

    // Deleted: back to the list, gone from /v1.
    let (status, _, location) = post(
        &browser,
        &app.url(&format!("/console/saml/{id}/delete")),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/console/saml"));
    assert!(v1_sps(&app, &app.secret_key).await.is_empty());
    let (status, _) = page(&browser, &app.url(&format!("/console/saml/{id}"))).await;
    assert_eq!(status, 404);
}

async fn fields_errors_and_isolation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let browser = admin_browser(&app).await;
    let (_, html) = page(&browser, &app.url("/console/saml")).await;
    let csrf = hidden(&html, "csrf_token");
    let by_fields = |acs: &'static str| {
        vec![
            ("csrf_token", csrf.clone()),
            ("entity_id", "https://wiki.example/sp".to_owned()),
            ("acs_url", acs.to_owned()),
            ("name", "Wiki".to_owned()),
            ("name_id_format", "persistent".to_owned()),
            ("certificate_pem", String::new()),
        ]
    };
    // Plain http off loopback: the ACS field is marked, what was typed stays.
    let resp = browser
        .post(app.url("/console/saml"))
        .form(&by_fields("http://wiki.example/acs"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"acs_url-error\""), "{html}");
    assert!(html.contains("value=\"https://wiki.example/sp\""), "{html}");
    assert!(v1_sps(&app, &app.secret_key).await.is_empty());
    let resp = browser
        .post(app.url("/console/saml"))
        .form(&by_fields("https://wiki.example/acs"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let html = resp.text().await.unwrap();
    assert!(html.contains("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"));
    let id = sp_id(&html);
    // Another environment's SP is not found from the live console, and
    // the test environment's console does not list the live one.
    let test_sp = test_env_sp(&app).await;
    let test_id = test_sp["id"].as_str().unwrap();
    let (status, _) = page(&browser, &app.url(&format!("/console/saml/{test_id}"))).await;
    assert_eq!(status, 404);
    let (status, _) = page(&browser, &app.url("/console/saml/not-an-id")).await;
    assert_eq!(status, 404);
    let (_, html) = page(&browser, &app.url("/console/saml")).await;
    assert!(html.contains(&id) && !html.contains(test_id), "{html}");
    // An oversized metadata form is refused before it is read.
    let big = "x".repeat(1024 * 1024);
    let (status, _, _) = post(
        &browser,
        &app.url("/console/saml/preview"),
        &[("csrf_token", &csrf), ("metadata_xml", &big)],
    )
    .await;
    assert_eq!(status, 400);
}

/// The text of the page's `<pre>`, as the browser shows it.
fn pre_text(html: &str) -> String {
    let start = html.find("<pre").unwrap();
    let body = &html[start..];
    let body = &body[body.find('>').unwrap() + 1..body.find("</pre>").unwrap()];
    body.replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#38;", "&")
}

async fn the_sso_test_shows_the_signed_assertion(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let browser = admin_browser(&app).await;
    let (status, bob) = status_json(
        app.post(
            "/v1/users",
            &app.secret_key,
            &json!({"email": "bob@example.com", "password": crate::oauth_support::PASSWORD, "name": "Bob Example"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{bob}");
    let (csrf, html) = register_fixture(&app, &browser).await;
    assert!(html.contains("Test the SSO"), "{html}");
    let id = sp_id(&html);
    let test = app.url(&format!("/console/saml/{id}/test"));

    // Bob's assertion: shown with what it carries, its signature checked by
    // the page and, independently, by xmlsec1.
    let (status, html, _) = post(
        &browser,
        &test,
        &[("csrf_token", &csrf), ("email", "bob@example.com")],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    for shown in [
        "Signature valid",
        "https://acme-crm.example/saml/acs",
        "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        "<code>bob@example.com</code>",
        "Bob Example",
        "/saml/sso/init?sp=https%3A%2F%2Facme-crm.example%2Fsaml%2Fsp",
    ] {
        assert!(html.contains(shown), "{shown} in {html}");
    }
    let xml = pre_text(&html);
    assert!(
        xml.contains("<saml2p:Response") && xml.contains("bob@example.com"),
        "{xml}"
    );
    let cert = idp_cert(&app).await;
    assert!(xmlsec1_verifies(&xml, &cert, false), "{xml}");
    let tampered = xml.replace("bob@example.com", "eve@example.com");
    assert!(!xmlsec1_verifies(&tampered, &cert, false));

    // Nothing was sent or issued: the test is audited as a preview, with the
    // administrator as the actor and Bob as the subject.
    let (_, issued) = status_json(
        app.get(
            "/v1/audit-events?type=saml.assertion.issued",
            &app.secret_key,
        )
        .await,
    )
    .await;
    assert_eq!(issued["data"].as_array().unwrap().len(), 0, "{issued}");
    let (_, previewed) = status_json(
        app.get(
            "/v1/audit-events?type=saml.assertion.previewed",
            &app.secret_key,
        )
        .await,
    )
    .await;
    let event = &previewed["data"][0];
    assert_eq!(event["actor"]["type"], "user", "{previewed}");
    assert_eq!(event["user_id"], bob["id"], "{previewed}");
    assert_eq!(event["data"]["verified"], true, "{previewed}");

    // Empty e-mail: the administrator's own account.
    let (status, html, _) = post(&browser, &test, &[("csrf_token", &csrf), ("email", "")]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<code>admin@example.com</code>"), "{html}");
    // An unknown user, a forged form, another environment's SP: refused.
    let (status, _, _) = post(
        &browser,
        &test,
        &[("csrf_token", &csrf), ("email", "nobody@example.com")],
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = post(&browser, &test, &[("csrf_token", "x"), ("email", "")]).await;
    assert_eq!(status, 403);
    let test_sp = test_env_sp(&app).await;
    let other = app.url(&format!(
        "/console/saml/{}/test",
        test_sp["id"].as_str().unwrap()
    ));
    let (status, _, _) = post(&browser, &other, &[("csrf_token", &csrf), ("email", "")]).await;
    assert_eq!(status, 404);
}
