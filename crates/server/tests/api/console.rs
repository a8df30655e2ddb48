//! `GET /`, the first-run setup link, and the admin console (issue #16):
//! sign-in through the console's own OIDC code flow, the Applications
//! page, CSRF, the administrator check, and environment isolation.

use crate::oauth_support::{PASSWORD, hidden, location, new_browser};
use serde_json::{Value, json};
use trusec_storage::admins;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    home_page_links_the_entry_points,
    first_run_link_creates_one_admin_once,
    setup_links_expire_and_stay_on_loopback,
    an_unknown_proxy_does_not_make_remote_clients_local,
    admin_registers_and_rotates_a_client,
    console_refuses_non_admins,
    test_admin_never_sees_live_objects,
    rotate_secret_over_v1,
    admins_add_from_the_cli,
    setup_links_are_limited_per_address,
    a_test_user_tries_the_sign_in_to_a_client,
);

/// A URL the server sent us to, on the test server (the settings' issuer
/// is `http://127.0.0.1:8080`, the app listens on another port).
fn on_app(app: &TestApp, loc: &str) -> String {
    let issuer = app.state.settings.issuer.clone();
    match loc.strip_prefix(&issuer) {
        Some(path) => app.url(path),
        None if loc.starts_with('/') => app.url(loc),
        None => loc.to_owned(),
    }
}

/// A setup link's token for `env`, made as `trusec admins add` does.
async fn setup_token(app: &TestApp, env: &'static str, email: Option<&'static str>) -> String {
    let now = app.state.core.clock.now_naive();
    app.state
        .core
        .db
        .run(move |c| admins::create_setup_token(c, env, email, now))
        .await
        .unwrap()
}

/// A user with a password, in `trusec-admins` when `admin`.
pub(crate) async fn user(app: &TestApp, key: &str, email: &str, admin: bool) -> Value {
    let groups: Vec<&str> = if admin {
        vec![admins::ADMIN_GROUP]
    } else {
        vec![]
    };
    let (status, body) = status_json(
        app.post(
            "/v1/users",
            key,
            &json!({"email": email, "password": PASSWORD, "groups": groups}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// Signs `email` in to the console at `base` (`""` for live,
/// `/env/test`) in `browser`, through `/oauth/authorize`, the hosted login
/// (no consent: the console is first-party); returns the callback's
/// response.
pub(crate) async fn sign_in(
    app: &TestApp,
    browser: &reqwest::Client,
    base: &str,
    email: &str,
) -> reqwest::Response {
    let mut resp = browser
        .get(app.url(&format!("{base}/console/login")))
        .send()
        .await
        .unwrap();
    for _ in 0..12 {
        if !resp.status().is_redirection() {
            let url = resp.url().to_string();
            let html = resp.text().await.unwrap();
            let csrf = hidden(&html, "csrf_token");
            let interaction = hidden(&html, "interaction");
            let action = url.split('?').next().unwrap().to_owned();
            // The console is first-party: the hosted login, never consent.
            assert!(url.contains("/login"), "unexpected page {url}: {html}");
            let form: Vec<(&str, &str)> = vec![("email", email), ("password", PASSWORD)];
            let mut fields = form;
            fields.push(("csrf_token", &csrf));
            fields.push(("interaction", &interaction));
            resp = browser.post(&action).form(&fields).send().await.unwrap();
            assert_eq!(resp.status(), 303, "posting {action}");
            continue;
        }
        let next = on_app(app, &location(&resp));
        if next.contains("/console/callback") {
            return browser.get(&next).send().await.unwrap();
        }
        resp = browser.get(&next).send().await.unwrap();
    }
    panic!("the console sign-in did not reach its callback");
}

/// A console page: its status and HTML (whose CSRF token a test reads).
async fn page_csrf(browser: &reqwest::Client, url: &str) -> (u16, String) {
    let resp = browser.get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    let html = resp.text().await.unwrap();
    (status, html)
}

async fn home_page_links_the_entry_points(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let resp = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    let html = resp.text().await.unwrap();
    for link in [
        "http://127.0.0.1:8080/.well-known/openid-configuration",
        "http://127.0.0.1:8080/saml/metadata",
        "http://127.0.0.1:8080/env/test/.well-known/openid-configuration",
        "href=\"/docs/api\"",
        "href=\"/console\"",
        "href=\"/env/test/console\"",
        "Documentation",
    ] {
        assert!(html.contains(link), "{link} missing from {html}");
    }
}

async fn first_run_link_creates_one_admin_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let url = trusec_server::console::first_run_link(&app.state)
        .await
        .unwrap()
        .expect("no administrator yet: a link");
    assert!(
        url.starts_with("http://127.0.0.1:8080/console/setup?token="),
        "{url}"
    );
    let token = url.split("token=").nth(1).unwrap().to_owned();
    assert!(token.len() >= 43, "a 256-bit token");
    // Stored only as its hash.
    let stored: Vec<String> = app
        .state
        .core
        .db
        .run(|c| {
            use diesel::prelude::*;
            use trusec_storage::schema::admin_setup_tokens::dsl::*;
            Ok(admin_setup_tokens.select(token_hash).load::<String>(c)?)
        })
        .await
        .unwrap();
    assert!(!stored.is_empty() && !stored.contains(&token));

    let browser = new_browser();
    let (status, html) = page_csrf(&browser, &on_app(&app, &url)).await;
    assert_eq!(status, 200, "{html}");
    let csrf = hidden(&html, "csrf_token");
    let form = |csrf: &str| {
        vec![
            ("csrf_token", csrf.to_owned()),
            ("token", token.clone()),
            ("email", "root@example.com".to_owned()),
            ("password", PASSWORD.to_owned()),
        ]
    };
    // A forged form (no matching CSRF token) changes nothing.
    let resp = browser
        .post(app.url("/console/setup"))
        .form(&form("forged-token-forged-token-forged-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // Inline validation: a short password.
    let mut short = form(&csrf);
    short[3].1 = "short".into();
    let resp = browser
        .post(app.url("/console/setup"))
        .form(&short)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    assert!(resp.text().await.unwrap().contains("aria-invalid=\"true\""));
    // The real thing: created, then on to sign in.
    let resp = browser
        .post(app.url("/console/setup"))
        .form(&form(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/console/login");
    // Single use.
    let resp = browser
        .post(app.url("/console/setup"))
        .form(&form(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = browser.get(on_app(&app, &url)).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    // An administrator exists now: no more first-run links.
    assert!(
        trusec_server::console::first_run_link(&app.state)
            .await
            .unwrap()
            .is_none()
    );
    let (_, users) = status_json(app.get("/v1/users", &app.secret_key).await).await;
    let root = users["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "root@example.com")
        .unwrap()
        .clone();
    assert_eq!(root["groups"], json!([admins::ADMIN_GROUP]));
    let (_, events) = status_json(
        app.get("/v1/audit-events?type=user.created", &app.secret_key)
            .await,
    )
    .await;
    assert!(
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["user_id"] == root["id"] && e["actor"]["type"] == "user")
    );
    // And the new administrator can sign in to the console.
    let resp = sign_in(&app, &browser, "", "root@example.com").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/console/applications");
}

/// Without trusted proxies, a forwarded request from a same-host proxy is
/// not taken for a local one: the forwarding headers were not believed, so
/// the loopback peer says nothing of the client.
async fn an_unknown_proxy_does_not_make_remote_clients_local(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = setup_token(&app, trusec_storage::ids::ENV_LIVE, None).await;
    let url = app.url(&format!("/console/setup?token={token}"));
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
    ] {
        let resp = app
            .client
            .get(&url)
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{name}");
    }
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 200);
}

async fn setup_links_expire_and_stay_on_loopback(backend: Backend) {
    let app = TestApp::builder(backend.clone())
        .with_settings(|s| {
            // The proxy on this machine forwards a remote client.
            s.trusted_proxies =
                trusec_ui::http::TrustedProxies::parse("127.0.0.1/32, ::1").unwrap();
        })
        .spawn()
        .await;
    let token = setup_token(&app, trusec_storage::ids::ENV_LIVE, Some("ops@example.com")).await;
    let url = app.url(&format!("/console/setup?token={token}"));
    let remote = app
        .client
        .get(&url)
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(remote.status(), 403, "a remote client is refused");
    let local = app.client.get(&url).send().await.unwrap();
    assert_eq!(local.status(), 200);
    let html = local.text().await.unwrap();
    assert!(
        html.contains("value=\"ops@example.com\" readonly"),
        "bound to its email"
    );
    // 30 minutes later it is dead.
    app.clock.advance(chrono::TimeDelta::minutes(31));
    let expired = app.client.get(&url).send().await.unwrap();
    assert_eq!(expired.status(), 400);
    let resp = app
        .client
        .post(app.url("/console/setup"))
        .form(&[
            ("csrf_token", hidden(&html, "csrf_token").as_str()),
            ("token", &token),
            ("email", "ops@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // Unless the flag says otherwise.
    let open = TestApp::builder(backend)
        .with_settings(|s| {
            s.trusted_proxies =
                trusec_ui::http::TrustedProxies::parse("127.0.0.1/32, ::1").unwrap();
            s.setup_allow_remote = true;
        })
        .spawn()
        .await;
    let token = setup_token(&open, trusec_storage::ids::ENV_LIVE, None).await;
    let remote = open
        .client
        .get(open.url(&format!("/console/setup?token={token}")))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(remote.status(), 200);
}

/// The client secret shown on a page.
fn shown_secret(html: &str) -> String {
    let marker = "id=\"client-secret\" type=\"text\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no secret in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

async fn client_credentials(app: &TestApp, id: &str, secret: &str) -> u16 {
    app.client
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn admin_registers_and_rotates_a_client(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = user(&app, &app.secret_key, "admin@example.com", true).await;
    let browser = new_browser();
    // Not signed in: sent to sign in.
    let resp = browser
        .get(app.url("/console/applications"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/console/login");
    let resp = sign_in(&app, &browser, "", "admin@example.com").await;
    assert_eq!(resp.status(), 303);
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("trusec_console="))
        .expect("a console cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");

    let list = browser
        .get(app.url("/console/applications"))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let csp = list.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    let html = list.text().await.unwrap();
    assert!(
        html.contains("Live environment"),
        "the environment is named"
    );
    assert!(html.contains("TruSec console"), "its own client is listed");
    let csrf = hidden(&html, "csrf_token");
    let form = |csrf: &str, redirect: &str| {
        vec![
            ("csrf_token", csrf.to_owned()),
            ("name", "Billing".to_owned()),
            ("type", "confidential".to_owned()),
            ("redirect_uris", redirect.to_owned()),
            ("grant_authorization_code", "on".to_owned()),
            ("grant_client_credentials", "on".to_owned()),
            ("scopes", "openid email".to_owned()),
        ]
    };
    // CSRF refused.
    let resp = browser
        .post(app.url("/console/applications"))
        .form(&form("x", "https://billing.example/cb"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // A bad redirect URI: the form again, the field marked, nothing made.
    let resp = browser
        .post(app.url("/console/applications"))
        .form(&form(&csrf, "http://billing.example/cb"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"redirect_uris-error\""), "{html}");
    assert!(html.contains("http is allowed only for loopback hosts"));
    assert!(
        html.contains("http://billing.example/cb</textarea>"),
        "what was typed stays"
    );
    // Registered: the secret shown once.
    let resp = browser
        .post(app.url("/console/applications"))
        .form(&form(&csrf, "https://billing.example/cb"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let html = resp.text().await.unwrap();
    let secret = shown_secret(&html);
    assert!(secret.starts_with("trusec_cs_"));
    assert!(html.contains("http://127.0.0.1:8080/.well-known/openid-configuration"));
    assert!(html.contains(&format!("OIDC_CLIENT_SECRET={secret}")));
    let id = hidden_id(&html);
    assert_eq!(client_credentials(&app, &id, &secret).await, 200);
    // The same client over /v1; audited with the administrator as actor.
    let (status, got) = status_json(
        app.get(&format!("/v1/oauth/clients/{id}"), &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got["redirect_uris"], json!(["https://billing.example/cb"]));
    let (_, events) = status_json(
        app.get(
            "/v1/audit-events?type=oauth.client.created",
            &app.secret_key,
        )
        .await,
    )
    .await;
    let created = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["data"]["client_id"] == id.as_str())
        .expect("audited")
        .clone();
    assert_eq!(created["actor"], json!({"type": "user", "id": admin["id"]}));
    // Its page later: no secret.
    let page = browser
        .get(app.url(&format!("/console/applications/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains(&secret));
    assert!(!page.contains("id=\"client-secret\""));
    // Rotation: CSRF refused, then a new secret; the old one is dead.
    let rotate = app.url(&format!("/console/applications/{id}/rotate-secret"));
    let resp = browser
        .post(&rotate)
        .form(&[("csrf_token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(client_credentials(&app, &id, &secret).await, 200);
    let resp = browser
        .post(&rotate)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let rotated = shown_secret(&resp.text().await.unwrap());
    assert_ne!(rotated, secret);
    assert_eq!(client_credentials(&app, &id, &secret).await, 401);
    assert_eq!(client_credentials(&app, &id, &rotated).await, 200);
    let (_, events) = status_json(
        app.get(
            "/v1/audit-events?type=oauth.client.updated",
            &app.secret_key,
        )
        .await,
    )
    .await;
    assert!(
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["data"]["secret_rotated"] == true && e["actor"]["id"] == admin["id"])
    );
    // Signing out ends the console session.
    let resp = browser
        .post(app.url("/console/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = browser
        .get(app.url("/console/applications"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
}

/// The client id on an application page.
fn hidden_id(html: &str) -> String {
    let marker = "<code id=\"client-id\">";
    let start = html.find(marker).unwrap() + marker.len();
    html[start..].split('<').next().unwrap().to_owned()
}

async fn console_refuses_non_admins(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    user(&app, &app.secret_key, "someone@example.com", false).await;
    let browser = new_browser();
    let resp = sign_in(&app, &browser, "", "someone@example.com").await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("not an administrator"));
    let resp = browser
        .get(app.url("/console/applications"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "no console session was made");
    // A callback that did not start in this browser is refused.
    let other = new_browser();
    let resp = other
        .get(app.url("/console/callback?code=x&state=y"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

async fn test_admin_never_sees_live_objects(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, live) = status_json(
        app.post("/v1/oauth/clients", &app.secret_key, &json!({"name": "Live only", "type": "confidential", "redirect_uris": ["https://live.example/cb"]})).await,
    )
    .await;
    assert_eq!(status, 201);
    let live_id = live["client_id"].as_str().unwrap().to_owned();
    user(&app, &app.test_key, "tester@example.com", true).await;
    let browser = new_browser();
    let resp = sign_in(&app, &browser, "/env/test", "tester@example.com").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/env/test/console/applications");
    let html = browser
        .get(app.url("/env/test/console/applications"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Test environment"), "marked as test");
    assert!(!html.contains(&live_id) && !html.contains("Live only"));
    let resp = browser
        .get(app.url(&format!("/env/test/console/applications/{live_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let csrf = hidden(&html, "csrf_token");
    let resp = browser
        .post(app.url(&format!(
            "/env/test/console/applications/{live_id}/rotate-secret"
        )))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // The test console's session does not open the live console.
    let resp = browser
        .get(app.url("/console/applications"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    // What it registers lives in test.
    let resp = browser
        .post(app.url("/env/test/console/applications"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "Test app"),
            ("type", "public"),
            ("redirect_uris", "https://t.example/cb"),
            ("grant_authorization_code", "on"),
            ("scopes", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let id = hidden_id(&resp.text().await.unwrap());
    assert_eq!(
        app.get(&format!("/v1/oauth/clients/{id}"), &app.test_key)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get(&format!("/v1/oauth/clients/{id}"), &app.secret_key)
            .await
            .status(),
        404
    );
}

async fn rotate_secret_over_v1(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, c) = status_json(
        app.post("/v1/oauth/clients", &app.secret_key, &json!({"name": "Svc", "type": "confidential", "redirect_uris": [], "grant_types": ["client_credentials"]})).await,
    )
    .await;
    let id = c["client_id"].as_str().unwrap();
    let old = c["client_secret"].as_str().unwrap();
    let (status, rotated) = status_json(
        app.post(
            &format!("/v1/oauth/clients/{id}/rotate-secret"),
            &app.secret_key,
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(client_credentials(&app, id, old).await, 401);
    assert_eq!(client_credentials(&app, id, new).await, 200);
    // Another environment's key does not see it.
    let (status, _) = status_json(
        app.post(
            &format!("/v1/oauth/clients/{id}/rotate-secret"),
            &app.test_key,
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
    let (_, public) = status_json(
        app.post(
            "/v1/oauth/clients",
            &app.secret_key,
            &json!({"name": "SPA", "type": "public", "redirect_uris": ["https://spa.example/cb"]}),
        )
        .await,
    )
    .await;
    let (status, _) = status_json(
        app.post(
            &format!(
                "/v1/oauth/clients/{}/rotate-secret",
                public["client_id"].as_str().unwrap()
            ),
            &app.secret_key,
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 409);
}

/// `trusec admins add EMAIL` against the app's database.
async fn admins_add(app: &TestApp, args: &[&str]) -> String {
    use crate::cli::{TEST_MASTER_KEY, text, trusec};
    let db = app.db.url_string();
    let args: Vec<String> = ["admins", "add"]
        .iter()
        .chain(args)
        .map(|a| (*a).to_owned())
        .collect();
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        trusec(
            &args,
            &[
                ("TRUSEC_DATABASE_URL", &db),
                ("TRUSEC_MASTER_KEY", TEST_MASTER_KEY),
            ],
            None,
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout}");
    stdout.trim().to_owned()
}

async fn admins_add_from_the_cli(backend: Backend) {
    // The CLI stamps its links with the system clock.
    let app = TestApp::builder(backend)
        .with_clock(trusec_storage::Clock::System)
        .spawn()
        .await;
    // A new address: a link bound to it, in the environment asked for.
    let line = admins_add(&app, &["new@example.com", "--environment", "test"]).await;
    let url = line.split_whitespace().last().unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:8080/env/test/console/setup?token="),
        "{line}"
    );
    let html = app
        .client
        .get(on_app(&app, url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("value=\"new@example.com\" readonly"),
        "{html}"
    );
    let token = url.split("token=").nth(1).unwrap();
    // Another address is refused, and does not use the link up.
    let post = |email: &'static str| {
        let form = [
            ("csrf_token", hidden(&html, "csrf_token")),
            ("token", token.to_owned()),
            ("email", email.to_owned()),
            ("password", PASSWORD.to_owned()),
        ];
        app.client
            .post(app.url("/env/test/console/setup"))
            .form(&form)
            .send()
    };
    assert_eq!(post("evil@example.com").await.unwrap().status(), 422);
    assert_eq!(post("new@example.com").await.unwrap().status(), 303);
    let (_, users) = status_json(app.get("/v1/users", &app.test_key).await).await;
    assert_eq!(users["data"][0]["groups"], json!([admins::ADMIN_GROUP]));
    // An existing user joins the group.
    let existing = user(&app, &app.secret_key, "member@example.com", false).await;
    let line = admins_add(&app, &["member@example.com"]).await;
    assert!(line.contains("is now an administrator"), "{line}");
    let (_, got) = status_json(
        app.get(
            &format!("/v1/users/{}", existing["id"].as_str().unwrap()),
            &app.secret_key,
        )
        .await,
    )
    .await;
    assert_eq!(got["groups"], json!([admins::ADMIN_GROUP]));
    assert!(
        admins_add(&app, &["member@example.com"])
            .await
            .contains("already")
    );
}

/// Guessing setup tokens is limited per address (the anonymous
/// `authorize` budget): past it, a 429 page with `Retry-After`, and a real
/// link waits too.
async fn setup_links_are_limited_per_address(backend: Backend) {
    let app = TestApp::builder(backend)
        .with_settings(|s| {
            s.rate_limits.authorize = trusec_storage::rate_limit::Limit::parse("3/min").unwrap();
        })
        .spawn()
        .await;
    let token = setup_token(&app, trusec_storage::ids::ENV_LIVE, None).await;
    let mut statuses = Vec::new();
    for n in 0..3 {
        let resp = app
            .client
            .get(app.url(&format!("/console/setup?token=guess{n}")))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    assert!(statuses.iter().all(|s| *s != 429), "{statuses:?}");
    let resp = app
        .client
        .get(app.url(&format!("/console/setup?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
}

/// The href of the application page's "Try the sign-in" link, unescaped.
fn try_link(html: &str) -> Option<String> {
    let panel = &html[html.find("id=\"try-heading\"")?..];
    let start = panel.find("href=\"")? + "href=\"".len();
    let href = panel[start..].split('"').next()?;
    Some(href.replace("&#38;", "&").replace("&amp;", "&"))
}

async fn a_test_user_tries_the_sign_in_to_a_client(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    crate::oauth_support::make_user(&app, "grace@example.com").await;
    let browser = crate::console_saml::admin_browser(&app).await;
    let client = crate::oauth_support::confidential_client(&app, json!({})).await;
    let (_, html) = page_csrf(
        &browser,
        &app.url(&format!("/console/applications/{}", client.id)),
    )
    .await;
    let link = try_link(&html).unwrap_or_else(|| panic!("no try link in {html}"));
    let asked = crate::oauth_support::query(&format!("http://x{link}"));
    assert_eq!(asked["client_id"], client.id);
    assert_eq!(asked["redirect_uri"], crate::oauth_support::REDIRECT);
    assert_eq!(asked["prompt"], "login");
    assert_eq!(asked["code_challenge_method"], "S256");
    // Grace, in a private window: the hosted login and consent, as the app
    // will show them, then back to the app with a code.
    let trip = crate::oauth_support::browse_as(
        &app,
        &new_browser(),
        &app.url(&link),
        "grace@example.com",
        true,
    )
    .await;
    assert!(trip.saw_login && trip.saw_consent, "{trip:?}");
    let back = crate::oauth_support::query(&trip.callback);
    assert_eq!(back["state"], "console-try");
    // The app did not start the request: without the verifier nobody can
    // redeem the code (RFC 7636 §4.6).
    let (status, body) = crate::oauth_support::token(
        &app,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &back["code"]),
            ("redirect_uri", crate::oauth_support::REDIRECT),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    // A machine client has no sign-in to try.
    let machine = crate::oauth_support::create_client(
        &app,
        json!({"name": "Cron", "type": "confidential", "grant_types": ["client_credentials"], "scopes": ["read:users"]}),
    )
    .await;
    let (_, html) = page_csrf(
        &browser,
        &app.url(&format!("/console/applications/{}", machine.id)),
    )
    .await;
    assert!(try_link(&html).is_none(), "{html}");
}
