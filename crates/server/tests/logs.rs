//! What a full OAuth and SAML sign-in leaves in the log: none of the
//! secrets, tokens, codes, protocol messages or e-mail addresses it used
//! (contract: logs carry route patterns, never paths with ids, query
//! strings, tokens, codes, passwords or e-mail addresses). Its own test
//! binary: the log is captured by a process-wide subscriber at debug level
//! (stricter than the `info` default), which the server's worker threads
//! write to.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests: a failed unwrap is a failed assertion"
)]

#[path = "api/oauth_support.rs"]
#[expect(dead_code, reason = "shared with the api tests, which use all of it")]
mod oauth_support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use oauth_support::{
    PASSWORD, REDIRECT, authorize_url, browse, confidential_client, hidden, pkce, query, token,
};
use serde_json::json;
use std::io::Write;
use std::sync::OnceLock;
use trusec_testkit::log::CapturedLog;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

fn captured() -> &'static CapturedLog {
    static LOG: OnceLock<CapturedLog> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = CapturedLog::default();
        let writer = log.clone();
        // The test's own HTTP client (reqwest, hyper, its cookie jar) logs the URLs it
        // requests; that is not the server's log.
        let filter = tracing_subscriber::EnvFilter::new(
            "debug,reqwest=off,hyper=off,hyper_util=off,cookie_store=off",
        );
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(move || writer.clone())
            .init();
        log
    })
}

on_every_backend!(a_full_oauth_and_saml_sign_in_logs_no_secret);

async fn a_full_oauth_and_saml_sign_in_logs_no_secret(backend: Backend) {
    let log = captured();
    let app = TestApp::spawn(backend).await;
    let email = format!("ada.logcheck.{}@example.com", app.port);
    let (status, user) = status_json(
        app.post(
            "/v1/users",
            &app.secret_key,
            &json!({"email": email, "password": PASSWORD, "name": "Ada"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{user}");
    let mut secrets = vec![email.clone(), PASSWORD.to_owned(), app.secret_key.clone()];

    // OAuth: authorize with a login hint, sign in, consent, redeem, use, refresh, log out.
    let client = confidential_client(
        &app,
        json!({"post_logout_redirect_uris": ["https://app.example.com/bye"]}),
    )
    .await;
    secrets.push(client.secret.clone().unwrap());
    let (verifier, challenge) = pkce();
    let (state, nonce) = ("state-Zq8w3LkP0vXy", "nonce-Hb2m9TfR4sQe");
    let start = authorize_url(
        &app,
        &client.id,
        &[
            ("scope", "openid email profile offline_access"),
            ("state", state),
            ("nonce", nonce),
            ("login_hint", &email),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let trip = browse(&app, &start, &email, true).await;
    let code = query(&trip.callback)["code"].clone();
    let (status, tokens) = token(
        &app,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let text = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
    let (access, refresh, id_token) = (
        text(&tokens["access_token"]),
        text(&tokens["refresh_token"]),
        text(&tokens["id_token"]),
    );
    let userinfo = app
        .client
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 200);
    let (status, refreshed) = token(
        &app,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    let logout = format!(
        "/oauth/logout?id_token_hint={id_token}&post_logout_redirect_uri={}",
        url::form_urlencoded::byte_serialize(b"https://app.example.com/bye").collect::<String>()
    );
    let resp = app.client.get(app.url(&logout)).send().await.unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    secrets.extend([
        verifier,
        state.to_owned(),
        nonce.to_owned(),
        code,
        access,
        refresh,
        id_token,
        text(&refreshed["access_token"]),
        text(&refreshed["refresh_token"]),
    ]);

    // SAML: an SP-initiated sign-in with a RelayState, through the login form.
    let (status, sp) = status_json(
        app.post(
            "/v1/saml/service-providers",
            &app.secret_key,
            &json!({"entity_id": "https://sp.logcheck.example", "acs_url": "https://sp.logcheck.example/acs"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{sp}");
    let relay_state = "relay-Wn5c7YdJ2aUo";
    let authn = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_logcheck1" Version="2.0" IssueInstant="{}"><saml:Issuer>https://sp.logcheck.example</saml:Issuer></samlp:AuthnRequest>"#,
        app.clock.now().format("%Y-%m-%dT%H:%M:%SZ")
    );
    let mut deflate =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflate.write_all(authn.as_bytes()).unwrap();
    let saml_request = STANDARD.encode(deflate.finish().unwrap());
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let browser = oauth_support::new_browser();
    let resp = browser
        .get(app.url(&format!(
            "/saml/sso?SAMLRequest={}&RelayState={relay_state}",
            enc(&saml_request)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let login_url = resp.headers()["location"].to_str().unwrap().to_owned();
    let html = browser
        .get(app.url(&login_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (csrf, interaction) = (hidden(&html, "csrf_token"), hidden(&html, "interaction"));
    let resp = browser
        .post(app.url("/login"))
        .form(&[
            ("email", email.as_str()),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
            ("interaction", &interaction),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let session_cookie = resp
        .cookies()
        .find(|c| c.name().contains("session"))
        .map(|c| c.value().to_owned())
        .expect("a session cookie");
    let next = resp.headers()["location"].to_str().unwrap().to_owned();
    let page = browser
        .get(app.url(&next))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let saml_response = hidden(&page, "SAMLResponse");
    assert!(!saml_response.is_empty(), "{page}");
    secrets.extend([
        saml_request,
        relay_state.to_owned(),
        interaction,
        csrf,
        session_cookie,
        saml_response,
    ]);

    // Let the last response's log lines land.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let logged = log.text();
    assert!(
        logged.contains("/oauth/token"),
        "the log was captured: {logged}"
    );
    for secret in &secrets {
        assert!(!secret.is_empty());
        let encoded = enc(secret);
        assert!(
            !logged.contains(secret.as_str()) && !logged.contains(&encoded),
            "the log carries {secret}: {}",
            logged
                .lines()
                .filter(|l| l.contains(secret.as_str()) || l.contains(&encoded))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    app.stop().await;
}
