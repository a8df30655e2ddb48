//! The device authorization grant (RFC 8628, issue 15 item 2): a device
//! asks for codes, its user approves on the hosted `/device` page (signing
//! in and consenting there), and the device's polls hear every answer of
//! §3.5 before the tokens, which jsonwebtoken verifies.

use crate::oauth_support::{
    PASSWORD, TestClient, absolute, create_client, hidden, location, make_user, new_browser, token,
    verify_jwt,
};
use chrono::TimeDelta;
use serde_json::{Value, json};
use trusec_server::settings::Settings;
use trusec_storage::rate_limit::Limit;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const ISSUER: &str = "http://127.0.0.1:8080";

on_every_backend!(
    a_cli_signs_in_with_every_polling_answer,
    a_denied_or_expired_device_code_says_so,
    bad_device_authorization_requests_are_refused,
    wrong_user_codes_are_refused_and_limited,
);

async fn device_client(app: &TestApp) -> TestClient {
    create_client(
        app,
        json!({"name": "Acme CLI", "type": "confidential",
               "grant_types": [DEVICE_GRANT, "refresh_token"],
               "scopes": ["openid", "profile", "offline_access"]}),
    )
    .await
}

/// `POST /oauth/device_authorization` as `client`.
async fn start(app: &TestApp, client: &TestClient, form: &[(&str, &str)]) -> (u16, Value) {
    let mut req = app.client.post(app.url("/oauth/device_authorization"));
    let mut fields = form.to_vec();
    match &client.secret {
        Some(secret) => req = req.basic_auth(&client.id, Some(secret)),
        None => fields.push(("client_id", &client.id)),
    }
    status_json(req.form(&fields).send().await.unwrap()).await
}

async fn poll(app: &TestApp, client: &TestClient, device_code: &str) -> (u16, Value) {
    token(
        app,
        client,
        &[("grant_type", DEVICE_GRANT), ("device_code", device_code)],
    )
    .await
}

fn error_of(answer: &(u16, Value)) -> (u16, &str) {
    (answer.0, answer.1["error"].as_str().unwrap_or("none"))
}

/// What the user's browser went through on `/device`.
struct Visit {
    consent_html: String,
    final_status: u16,
    final_html: String,
}

/// Types `typed` on `/device` in `browser`, signs in as `email` when asked
/// and decides on the consent page; returns the page it ends on.
async fn visit(
    app: &TestApp,
    browser: &reqwest::Client,
    typed: &str,
    email: &str,
    approve: bool,
) -> Visit {
    let page = browser.get(app.url("/device")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csrf = hidden(&page.text().await.unwrap(), "csrf_token");
    let mut resp = browser
        .post(app.url("/device"))
        .form(&[("csrf_token", csrf.as_str()), ("user_code", typed)])
        .send()
        .await
        .unwrap();
    let mut consent_html = String::new();
    for _ in 0..10 {
        if !resp.status().is_redirection() {
            let final_status = resp.status().as_u16();
            return Visit {
                consent_html,
                final_status,
                final_html: resp.text().await.unwrap(),
            };
        }
        let url = absolute(app, &location(&resp));
        let html = browser
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = hidden(&html, "csrf_token");
        let interaction = hidden(&html, "interaction");
        let action = url.split('?').next().unwrap().to_owned();
        let decision = if approve { "approve" } else { "deny" };
        let form: Vec<(&str, &str)> = if url.contains("/login") {
            vec![("email", email), ("password", PASSWORD)]
        } else {
            assert!(url.contains("/consent"), "unexpected page {url}");
            consent_html.clone_from(&html);
            vec![("decision", decision)]
        };
        let mut fields = form;
        fields.extend([
            ("csrf_token", csrf.as_str()),
            ("interaction", interaction.as_str()),
        ]);
        resp = browser.post(&action).form(&fields).send().await.unwrap();
        assert_eq!(resp.status(), 303, "form post from {url}");
        resp = browser
            .get(absolute(app, &location(&resp)))
            .send()
            .await
            .unwrap();
    }
    panic!("too many redirects from /device");
}

async fn a_cli_signs_in_with_every_polling_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    let client = device_client(&app).await;
    let (status, codes) = start(&app, &client, &[("scope", "openid profile offline_access")]).await;
    assert_eq!(status, 200, "{codes}");
    let user_code = codes["user_code"].as_str().unwrap();
    let device_code = codes["device_code"].as_str().unwrap();
    assert!(device_code.len() >= 43, "a 256-bit device code");
    let (a, b) = user_code.split_once('-').unwrap();
    assert!(
        a.len() == 4
            && b.len() == 4
            && format!("{a}{b}")
                .bytes()
                .all(|c| b"BCDFGHJKLMNPQRSTVWXZ".contains(&c)),
        "{user_code}"
    );
    assert_eq!(codes["verification_uri"], format!("{ISSUER}/device"));
    assert_eq!(
        codes["verification_uri_complete"],
        format!("{ISSUER}/device?user_code={user_code}")
    );
    assert_eq!(codes["expires_in"], 600);
    assert_eq!(codes["interval"], 5);

    // §3.5: pending; too soon is slow_down (and the interval grows by 5 s).
    assert_eq!(
        error_of(&poll(&app, &client, device_code).await),
        (400, "authorization_pending")
    );
    assert_eq!(
        error_of(&poll(&app, &client, device_code).await),
        (400, "slow_down")
    );
    app.clock.advance(TimeDelta::seconds(6));
    assert_eq!(
        error_of(&poll(&app, &client, device_code).await),
        (400, "slow_down")
    );
    app.clock.advance(TimeDelta::seconds(15));
    assert_eq!(
        error_of(&poll(&app, &client, device_code).await),
        (400, "authorization_pending")
    );

    // The page is the hosted one, with its headers; the code is typed
    // lower case without its dash.
    let page = app
        .client
        .get(app.url(&format!("/device?user_code={user_code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert!(
        page.text()
            .await
            .unwrap()
            .contains(&format!("value=\"{user_code}\""))
    );
    let browser = new_browser();
    let typed = format!("{a}{b}").to_lowercase();
    let seen = visit(&app, &browser, &typed, "ada@example.com", true).await;
    assert!(
        seen.consent_html.contains("Acme CLI"),
        "{}",
        seen.consent_html
    );
    assert!(seen.consent_html.contains("See your name"));
    assert_eq!(seen.final_status, 200);
    assert!(seen.final_html.contains("You can return to your device"));

    // Redeemed once, even by concurrent polls.
    app.clock.advance(TimeDelta::seconds(30));
    let polls =
        futures_util::future::join_all((0..4).map(|_| poll(&app, &client, device_code))).await;
    let issued: Vec<_> = polls.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(issued.len(), 1, "{polls:?}");
    for other in polls.iter().filter(|(s, _)| *s != 200) {
        assert!(
            matches!(error_of(other), (400, "invalid_grant" | "slow_down")),
            "{other:?}"
        );
    }
    let tokens = &issued[0].1;
    let (_, claims) = verify_jwt(&app, tokens["access_token"].as_str().unwrap(), ISSUER).await;
    assert_eq!(claims["client_id"], client.id.as_str());
    let (_, id) = verify_jwt(&app, tokens["id_token"].as_str().unwrap(), &client.id).await;
    assert_eq!(id["sub"], claims["sub"]);
    assert!(tokens["refresh_token"].is_string());
    app.clock.advance(TimeDelta::seconds(30));
    assert_eq!(
        error_of(&poll(&app, &client, device_code).await),
        (400, "invalid_grant")
    );

    // A used user code is refused on the page.
    let again = visit(&app, &browser, user_code, "ada@example.com", true).await;
    assert_eq!(again.final_status, 400);
    assert!(again.final_html.contains("not valid"));

    // Audited like the code flow.
    let (_, events) = status_json(
        app.get("/v1/audit-events?type=oauth.token.issued", &app.secret_key)
            .await,
    )
    .await;
    assert!(
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["data"]["grant_type"] == DEVICE_GRANT),
        "{events}"
    );
    let (_, events) = status_json(
        app.get(
            "/v1/audit-events?type=oauth.consent.granted",
            &app.secret_key,
        )
        .await,
    )
    .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
}

async fn a_denied_or_expired_device_code_says_so(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    let client = device_client(&app).await;
    let (_, denied) = start(&app, &client, &[("scope", "openid")]).await;
    let browser = new_browser();
    let user_code = denied["user_code"].as_str().unwrap();
    let seen = visit(&app, &browser, user_code, "ada@example.com", false).await;
    assert!(
        seen.final_html.contains("Access denied"),
        "{}",
        seen.final_html
    );
    let device_code = denied["device_code"].as_str().unwrap();
    assert_eq!(
        error_of(&poll(&app, &client, device_code).await),
        (400, "access_denied")
    );

    let (_, late) = start(&app, &client, &[("scope", "openid")]).await;
    app.clock.advance(TimeDelta::seconds(601));
    let device_code = late["device_code"].as_str().unwrap();
    assert_eq!(
        error_of(&poll(&app, &client, device_code).await),
        (400, "expired_token")
    );
    let user_code = late["user_code"].as_str().unwrap();
    let expired = visit_typed(&app, &browser, user_code).await;
    assert_eq!(expired, 400);
    // Another client cannot poll with someone else's device code.
    let other = device_client(&app).await;
    assert_eq!(
        error_of(&poll(&app, &other, device_code).await),
        (400, "invalid_grant")
    );
}

/// Only types the code; the status of the answer.
async fn visit_typed(app: &TestApp, browser: &reqwest::Client, typed: &str) -> u16 {
    let page = browser.get(app.url("/device")).send().await.unwrap();
    let csrf = hidden(&page.text().await.unwrap(), "csrf_token");
    browser
        .post(app.url("/device"))
        .form(&[("csrf_token", csrf.as_str()), ("user_code", typed)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn bad_device_authorization_requests_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = device_client(&app).await;
    let unknown = TestClient {
        id: "cl_nobody".into(),
        secret: None,
    };
    assert_eq!(
        error_of(&start(&app, &unknown, &[]).await),
        (401, "invalid_client")
    );
    let wrong_secret = TestClient {
        id: client.id.clone(),
        secret: Some("wrong".into()),
    };
    assert_eq!(
        error_of(&start(&app, &wrong_secret, &[]).await),
        (401, "invalid_client")
    );
    let web = create_client(
        &app,
        json!({"name": "Web", "type": "confidential", "redirect_uris": ["https://app.example.com/cb"],
               "grant_types": ["authorization_code"], "scopes": ["openid"]}),
    )
    .await;
    assert_eq!(
        error_of(&start(&app, &web, &[]).await),
        (400, "unauthorized_client")
    );
    assert_eq!(
        error_of(&start(&app, &client, &[("scope", "openid email")]).await),
        (400, "invalid_scope")
    );
    assert_eq!(
        error_of(
            &start(
                &app,
                &client,
                &[
                    ("scope", "openid"),
                    ("resource", "https://api.example.com/")
                ]
            )
            .await
        ),
        (400, "invalid_target")
    );
    // Public clients name themselves, as at the token endpoint.
    let public = create_client(
        &app,
        json!({"name": "TV", "type": "public", "grant_types": [DEVICE_GRANT], "scopes": ["openid"]}),
    )
    .await;
    let (status, codes) = start(&app, &public, &[]).await;
    assert_eq!(status, 200, "{codes}");
    // RFC 7591 registration takes the grant too.
    let (status, registered) = status_json(
        app.client
            .post(app.url("/oauth/register"))
            .bearer_auth(&app.secret_key)
            .json(
                &json!({"client_name": "TV app", "grant_types": [DEVICE_GRANT],
                          "token_endpoint_auth_method": "none", "scope": "openid"}),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{registered}");
    assert_eq!(registered["grant_types"], json!([DEVICE_GRANT]));
    let tv = TestClient {
        id: registered["client_id"].as_str().unwrap().to_owned(),
        secret: None,
    };
    assert_eq!(start(&app, &tv, &[("scope", "openid")]).await.0, 200);
    // Discovery names the endpoint and the grant.
    let (_, meta) = status_json(
        app.client
            .get(app.url("/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        meta["device_authorization_endpoint"],
        format!("{ISSUER}/oauth/device_authorization")
    );
    assert!(
        meta["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == DEVICE_GRANT)
    );
}

fn three_wrong_codes(s: &mut Settings) {
    s.rate_limits.device_code = Limit::parse("3/min").unwrap();
    s.device_code_lifetime = std::time::Duration::from_secs(300);
}

async fn wrong_user_codes_are_refused_and_limited(backend: Backend) {
    let app = TestApp::builder(backend)
        .with_settings(three_wrong_codes)
        .spawn()
        .await;
    let client = device_client(&app).await;
    let (_, codes) = start(&app, &client, &[("scope", "openid")]).await;
    assert_eq!(codes["expires_in"], 300, "TRUSEC_DEVICE_CODE_LIFETIME");
    let browser = new_browser();
    // Malformed (a vowel, too short) and well-formed but unknown.
    for wrong in ["AAAA-AAAA", "BCDF", "BCDF-GHJK"] {
        assert_eq!(visit_typed(&app, &browser, wrong).await, 400, "{wrong}");
    }
    assert_eq!(visit_typed(&app, &browser, "BCDF-GHJL").await, 429);
    // Even the right code waits until the budget refills: guessing stops.
    let right = codes["user_code"].as_str().unwrap();
    assert_eq!(visit_typed(&app, &browser, right).await, 429);
    // A form without its CSRF token is refused.
    let no_csrf = browser
        .post(app.url("/device"))
        .form(&[("user_code", right)])
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403);
}
