//! `/v1/oauth/clients` and RFC 7591 registration.

use crate::oauth_support::rfc7591_register;
use serde_json::json;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    clients_crud_and_validation,
    dynamic_registration,
    application_type_decides_the_redirect_uris
);

async fn clients_crud_and_validation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = &app.secret_key;
    let (status, c) = status_json(
        app.post("/v1/oauth/clients", key, &json!({"name": "Web", "type": "confidential", "redirect_uris": ["https://a.example/cb"]})).await,
    )
    .await;
    assert_eq!(status, 201, "{c}");
    let id = c["client_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("client_"));
    assert!(
        c["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("trusec_cs_")
    );
    assert_eq!(
        c["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    let (status, got) = status_json(app.get(&format!("/v1/oauth/clients/{id}"), key).await).await;
    assert_eq!(status, 200);
    assert!(
        got.get("client_secret").is_none(),
        "the secret is shown once"
    );
    let (status, patched) = status_json(
        app.patch(
            &format!("/v1/oauth/clients/{id}"),
            key,
            &json!({"redirect_uris": ["https://b.example/cb"], "refresh_token_leeway_seconds": 10}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["redirect_uris"], json!(["https://b.example/cb"]));
    assert_eq!(patched["refresh_token_leeway_seconds"], 10);
    let (status, list) = status_json(app.get("/v1/oauth/clients", key).await).await;
    assert_eq!(status, 200);
    // Besides the admin console's own client (registered at start-up).
    let listed: Vec<&serde_json::Value> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] != "TruSec console")
        .collect();
    assert_eq!(listed.len(), 1);
    // Isolated by environment.
    assert_eq!(
        app.get(&format!("/v1/oauth/clients/{id}"), &app.test_key)
            .await
            .status(),
        404
    );
    let cases = [
        (
            json!({"name": "x", "type": "confidential", "redirect_uris": ["http://a.example/cb"]}),
            "redirect_uris",
        ),
        (
            json!({"name": "x", "type": "confidential", "redirect_uris": ["https://*.example/cb"]}),
            "redirect_uris",
        ),
        (
            json!({"name": "x", "type": "confidential", "redirect_uris": ["https://a.example/cb#f"]}),
            "redirect_uris",
        ),
        (
            json!({"name": "x", "type": "public", "redirect_uris": [], "grant_types": ["authorization_code"]}),
            "redirect_uris",
        ),
        (
            json!({"name": "x", "type": "public", "grant_types": ["client_credentials"]}),
            "grant_types",
        ),
        (
            json!({"name": "x", "type": "robot", "redirect_uris": ["https://a.example/cb"]}),
            "type",
        ),
        (
            json!({"name": "x", "type": "confidential", "redirect_uris": ["https://a.example/cb"], "refresh_token_leeway_seconds": 61}),
            "refresh_token_leeway_seconds",
        ),
        (
            json!({"name": "x", "type": "confidential", "redirect_uris": ["https://a.example/cb"], "scopes": ["root"]}),
            "scopes",
        ),
        (
            json!({"name": "", "type": "confidential", "redirect_uris": ["https://a.example/cb"]}),
            "name",
        ),
    ];
    for (body, field) in cases {
        let (status, err) = status_json(app.post("/v1/oauth/clients", key, &body).await).await;
        assert_eq!(status, 422, "{body}: {err}");
        assert_eq!(err["error"]["param"], field, "{body}");
    }
    let (status, _) = status_json(
        app.post("/v1/oauth/clients", key, &json!({"name": "x"}))
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        app.delete(&format!("/v1/oauth/clients/{id}"), key)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get(&format!("/v1/oauth/clients/{id}"), key)
            .await
            .status(),
        404
    );
    let (_, events) = status_json(
        app.get("/v1/audit-events?type=oauth.client.deleted", key)
            .await,
    )
    .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
}

async fn dynamic_registration(backend: Backend) {
    let app = TestApp::spawn(backend.clone()).await;
    let body = json!({"client_name": "CLI", "application_type": "native", "redirect_uris": ["http://127.0.0.1:7777/cb"], "token_endpoint_auth_method": "none", "unknown_member": 1});
    // Anonymous registration is off by default.
    let resp = app
        .client
        .post(app.url("/oauth/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let (status, c) = status_json(
        app.client
            .post(app.url("/oauth/register"))
            .bearer_auth(&app.secret_key)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    assert!(c["client_id"].as_str().unwrap().starts_with("client_"));
    assert!(c.get("client_secret").is_none());
    assert_eq!(c["token_endpoint_auth_method"], "none");
    let (status, c) = status_json(
        app.client
            .post(app.url("/oauth/register"))
            .bearer_auth(&app.secret_key)
            .json(&json!({"client_name": "Server", "redirect_uris": ["https://s.example/cb"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    assert!(c["client_secret"].is_string());
    assert_eq!(c["client_secret_expires_at"], 0);
    let (status, err) = status_json(
        app.client
            .post(app.url("/oauth/register"))
            .bearer_auth(&app.secret_key)
            .json(&json!({"redirect_uris": ["http://evil.example/cb"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_redirect_uri"))
    );
    // With open registration, anonymous public clients are welcome; confidential ones are not.
    let open = TestApp::builder(backend)
        .with_settings(|s| s.open_registration = true)
        .spawn()
        .await;
    let resp = open
        .client
        .post(open.url("/oauth/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let (status, err) = status_json(
        open.client
            .post(open.url("/oauth/register"))
            .json(&json!({"redirect_uris": ["https://s.example/cb"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_client_metadata"))
    );
}

/// RFC 7591 §2 `application_type`: only a native app (RFC 8252 §7.1,
/// §7.3) registers loopback and private-use scheme redirect URIs; a web
/// client (the default) https ones only (OIDC Registration §2).
async fn application_type_decides_the_redirect_uris(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = &app.secret_key;
    let create = |body: serde_json::Value| {
        let app = &app;
        async move { status_json(app.post("/v1/oauth/clients", key, &body).await).await }
    };
    let native_uris = [
        "http://127.0.0.1:8000/cb",
        "http://127.0.0.1/cb",
        "http://[::1]/cb",
        "com.example.app:/oauth2redirect",
    ];
    for uri in native_uris {
        let (status, err) =
            create(json!({"name": "App", "type": "public", "redirect_uris": [uri]})).await;
        assert_eq!(
            (status, err["error"]["param"].as_str()),
            (422, Some("redirect_uris")),
            "web: {uri}: {err}"
        );
    }
    let (status, c) = create(
        json!({"name": "App", "type": "public", "application_type": "native",
                                     "redirect_uris": native_uris}),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["application_type"], "native");
    let id = c["client_id"].as_str().unwrap();
    let (status, web) = create(json!({"name": "Web", "type": "public",
                                      "redirect_uris": ["https://a.example/cb"]}))
    .await;
    assert_eq!(
        (status, web["application_type"].as_str()),
        (201, Some("web"))
    );
    for (body, param) in [
        (
            json!({"name": "App", "type": "public", "application_type": "native", "redirect_uris": ["http://app.example.com/cb"]}),
            "redirect_uris",
        ),
        (
            json!({"name": "App", "type": "public", "application_type": "desktop", "redirect_uris": ["https://a.example/cb"]}),
            "application_type",
        ),
    ] {
        let (status, err) = create(body.clone()).await;
        assert_eq!(
            (status, err["error"]["param"].as_str()),
            (422, Some(param)),
            "{body}: {err}"
        );
    }
    // A native client with loopback URIs cannot become a web one.
    let (status, err) = status_json(
        app.patch(
            &format!("/v1/oauth/clients/{id}"),
            key,
            &json!({"application_type": "web"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (422, Some("redirect_uris")),
        "{err}"
    );
    // RFC 7591 registration: the same rules, RFC 7591 §3.2.2 errors.
    let register = |body: serde_json::Value| {
        let app = &app;
        async move { rfc7591_register(app, &body).await }
    };
    let (status, err) = register(json!({"redirect_uris": ["http://127.0.0.1/cb"],
                                        "token_endpoint_auth_method": "none"}))
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_redirect_uri")),
        "{err}"
    );
    let (status, reg) = register(
        json!({"redirect_uris": ["http://[::1]/cb", "com.example.cli:/cb"],
                                        "application_type": "native",
                                        "token_endpoint_auth_method": "none"}),
    )
    .await;
    assert_eq!(status, 201, "{reg}");
    assert_eq!(reg["application_type"], "native");
}
