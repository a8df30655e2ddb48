//! The console's API keys and signing keys pages (issue #16): a key made
//! and shown once that works on `/v1`, rotated with a grace period (old
//! and new both work), revoked (at once), types this environment does not
//! have refused, CSRF; signing keys listed and rotated (the JWKS changes).

use crate::console::{sign_in, user};
use crate::oauth_support::{hidden, new_browser};
use trusec_testkit::{Backend, TestApp, on_every_backend};

on_every_backend!(
    api_keys_made_rotated_revoked,
    signing_keys_listed_and_rotated
);

async fn admin_browser(app: &TestApp) -> reqwest::Client {
    user(app, &app.secret_key, "admin@example.com", true).await;
    let browser = new_browser();
    let resp = sign_in(app, &browser, "", "admin@example.com").await;
    assert_eq!(resp.status(), 303);
    browser
}

async fn post(browser: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, String) {
    let resp = browser.post(url).form(form).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Whether `key` may list users.
async fn works(app: &TestApp, key: &str) -> bool {
    app.get("/v1/users", key).await.status() == 200
}

/// The id of the live key named `name`, from its row's rotate form.
fn key_id(html: &str, name: &str) -> String {
    let row = html
        .split("<tr>")
        .find(|r| r.contains(&format!("<td>{name}</td>")) && r.contains("/rotate\""))
        .unwrap();
    let start = row
        .find("/api-keys/key_")
        .unwrap_or_else(|| panic!("{row}"))
        + "/api-keys/".len();
    row[start..].split('/').next().unwrap().to_owned()
}

async fn api_keys_made_rotated_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let browser = admin_browser(&app).await;
    let resp = browser
        .get(app.url("/console/api-keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    let csrf = hidden(&html, "csrf_token");
    assert!(
        html.contains("value=\"secret\"") && !html.contains("value=\"test\""),
        "{html}"
    );
    let (status, _) = post(
        &browser,
        &app.url("/console/api-keys"),
        &[("csrf_token", "x"), ("name", "CI"), ("type", "secret")],
    )
    .await;
    assert_eq!(status, 403);
    // A test key from the live console: refused next to the field.
    let (status, html) = post(
        &browser,
        &app.url("/console/api-keys"),
        &[
            ("csrf_token", &csrf),
            ("name", "CI"),
            ("type", "test"),
            ("expires_in", "90d"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("id=\"type-error\""), "{html}");
    let (status, html) = post(
        &browser,
        &app.url("/console/api-keys"),
        &[("csrf_token", &csrf), ("name", ""), ("type", "secret")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("id=\"name-error\""), "{html}");
    // Made: shown once, works.
    let resp = browser
        .post(app.url("/console/api-keys"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "CI"),
            ("type", "secret"),
            ("expires_in", "30d"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let html = resp.text().await.unwrap();
    let key = hidden_value(&html, "new-key");
    assert!(key.starts_with("trusec_sk_"), "{key}");
    assert!(works(&app, &key).await);
    let listed = browser
        .get(app.url("/console/api-keys"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!listed.contains(&key), "never shown again");
    let id = key_id(&listed, "CI");
    // Rotated with a grace period: both work; the new one shown once.
    let (status, html) = post(
        &browser,
        &app.url(&format!("/console/api-keys/{id}/rotate")),
        &[("csrf_token", &csrf), ("grace_period", "1h")],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let new_key = hidden_value(&html, "new-key");
    assert_ne!(new_key, key);
    assert!(works(&app, &key).await && works(&app, &new_key).await);
    assert!(html.contains("rotated"), "{html}");
    // Revoked: at once.
    let new_id = key_id(&html, "CI");
    assert_ne!(new_id, id);
    let (status, _) = post(
        &browser,
        &app.url(&format!("/console/api-keys/{new_id}/revoke")),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(!works(&app, &new_key).await);
    let (status, _) = post(
        &browser,
        &app.url("/console/api-keys/key_nope/revoke"),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(status, 404);
}

/// The `value` of the input with this id.
fn hidden_value(html: &str, id: &str) -> String {
    let at = html.find(&format!("id=\"{id}\"")).unwrap();
    let rest = &html[at..];
    let start = rest.find("value=\"").unwrap() + "value=\"".len();
    rest[start..].split('"').next().unwrap().to_owned()
}

async fn signing_keys_listed_and_rotated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let browser = admin_browser(&app).await;
    let jwks = || async {
        app.client
            .get(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = jwks().await;
    let html = browser
        .get(app.url("/console/signing-keys"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<td>current</td>") && html.contains("<td>next</td>"),
        "{html}"
    );
    assert!(html.contains("signing now"), "{html}");
    let csrf = hidden(&html, "csrf_token");
    let (status, html) = post(
        &browser,
        &app.url("/console/signing-keys/rotate"),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Rotated the JWT keys"), "{html}");
    assert!(html.contains("<td>retired</td>"), "{html}");
    assert_ne!(jwks().await, before);
    let (status, _) = post(
        &browser,
        &app.url("/console/signing-keys/rotate"),
        &[("csrf_token", "x")],
    )
    .await;
    assert_eq!(status, 403);
}
