//! insta snapshots of the wire shapes clients and SPs code against: the
//! discovery documents, the SAML metadata and each kind of error body.
//! The shapes do not depend on the backend, so these run on SQLite only.

use crate::oauth_support::*;
use insta::{assert_json_snapshot, assert_snapshot};
use reqwest::Method;
use serde_json::{Value, json};
use trusec_testkit::{Backend, TestApp, status_json};

/// `text` with the configured issuer as `http://ISSUER` and the app's own
/// address (it carries the random port) as `http://APP`. Every URL should
/// come from the issuer, so `http://APP` in a snapshot is a bug it shows.
fn stable(app: &TestApp, text: &str) -> String {
    text.replace(&app.state.settings.issuer, "http://ISSUER")
        .replace(&app.address, "http://APP")
}

/// What lies between the first `open` and the next `close` after it.
fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let (_, rest) = text.split_once(open)?;
    Some(rest.split_once(close)?.0)
}

/// `text` with whatever stands between each `open` and the next `close`
/// replaced by `with`.
fn redact(text: &str, open: &str, close: &str, with: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some((head, tail)) = rest.split_once(open) {
        out.push_str(head);
        out.push_str(open);
        out.push_str(with);
        match tail.split_once(close) {
            Some((_, after)) => {
                out.push_str(close);
                rest = after;
            }
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn discovery_documents() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for (name, path) in [
        ("openid_configuration", "/.well-known/openid-configuration"),
        (
            "oauth_authorization_server",
            "/.well-known/oauth-authorization-server",
        ),
    ] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let doc: Value = serde_json::from_str(&stable(&app, &resp.text().await.unwrap())).unwrap();
        assert_json_snapshot!(name, doc);
    }
}

#[tokio::test]
async fn saml_metadata() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let resp = app.client.get(app.url("/saml/metadata")).send().await;
    let mut xml = stable(&app, &resp.unwrap().text().await.unwrap());
    // The key is made per test process. Unsigned metadata carries no ID or
    // validUntil today; they would differ per request, so redact them too.
    for (open, close, with) in [
        (
            "<ds:X509Certificate>",
            "</ds:X509Certificate>",
            "[certificate]",
        ),
        (" ID=\"", "\"", "[id]"),
        ("validUntil=\"", "\"", "[validUntil]"),
    ] {
        xml = redact(&xml, open, close, with);
    }
    assert_snapshot!("saml_metadata", xml);
}

/// The headers an error's shape includes, when the response has them.
const HEADERS: [&str; 3] = ["www-authenticate", "retry-after", "cache-control"];

/// Sends `req`; returns its status, `HEADERS` and JSON body.
async fn shape(req: reqwest::RequestBuilder) -> Value {
    let resp = req.send().await.unwrap();
    let mut shape = json!({"status": resp.status().as_u16()});
    for name in HEADERS {
        if let Some(v) = resp.headers().get(name) {
            shape[name] = json!(v.to_str().unwrap());
        }
    }
    shape["body"] = status_json(resp).await.1;
    shape
}

#[tokio::test]
async fn management_api_errors() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let weak_password = json!({"email": "ada@example.com", "password": "short"});
    let bodies = [
        shape(app.client.get(app.url("/v1/users"))).await,
        shape(app.request(Method::GET, "/v1/users/user_nope", &app.secret_key)).await,
        shape(
            app.request(Method::POST, "/v1/users", &app.secret_key)
                .json(&weak_password),
        )
        .await,
    ];
    assert_json_snapshot!("v1_errors", bodies);
}

#[tokio::test]
async fn token_endpoint_errors() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let client = confidential_client(&app, json!({})).await;
    let secret = client.secret.clone().unwrap();
    let with_secret = |secret: &str| {
        app.client
            .post(app.url("/oauth/token"))
            .basic_auth(&client.id, Some(secret))
    };
    // RFC 6749 §5.2, with a Basic challenge on 401.
    let password_grant = [
        ("grant_type", "password"),
        ("username", "a"),
        ("password", "b"),
    ];
    let bodies = [
        shape(with_secret(&secret).form(&password_grant)).await,
        shape(with_secret("wrong").form(&[("grant_type", "client_credentials")])).await,
    ];
    assert_json_snapshot!("token_errors", bodies);
}

#[tokio::test]
async fn hosted_error_page() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    // An unknown client: a page, never a redirect (RFC 6749 §4.1.2.1).
    let path = "/oauth/authorize?response_type=code&client_id=client_nope&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback";
    let resp = app.client.get(app.url(path)).send().await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    let html = resp.text().await.unwrap();
    // The page's words, not its markup: the template may change freely.
    let page = json!({
        "status": status,
        "content-type": content_type,
        "h1": between(&html, "<h1>", "</h1>"),
        "error": between(&html, "<div class=\"error\" role=\"alert\">", "</div>"),
    });
    assert_json_snapshot!("authorize_error_page", page);
}
