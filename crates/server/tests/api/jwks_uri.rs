//! `private_key_jwt` with keys published at a `jwks_uri` (RFC 7591 §2, RFC
//! 7523, OIDC Core §9 and §10.1.1; issue 15 item 3): fetched through the
//! SSRF-guarded outbound client from a server the test runs on loopback
//! (allowed only by `TRUSEC_OUTBOUND_ALLOW_PRIVATE` and `…_ALLOW_HTTP`),
//! cached, fetched again on an unknown `kid` at most once a minute, and
//! refused when too large or redirected.

use crate::client_jwt::{
    CC, ISSUER, Key, claims, jwt_client, make_key, post_assertion, register_service, sign,
};
use crate::doc_server::{Doc, DocServer, open_app};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    registration_refuses_jwks_uris_it_may_not_fetch,
    keys_at_a_jwks_uri_authenticate_and_rotate,
    too_large_or_redirected_key_sets_are_refused,
    patch_moves_a_client_between_jwks_and_jwks_uri,
);

fn client_body(jwks_uri: &str) -> Value {
    json!({"name": "Backend", "type": "confidential",
           "grant_types": ["client_credentials"], "scopes": ["read:users"],
           "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": jwks_uri})
}

async fn register(app: &TestApp, jwks_uri: &str) -> String {
    let (status, c) = status_json(
        app.post("/v1/oauth/clients", &app.secret_key, &client_body(jwks_uri))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["jwks_uri"], jwks_uri, "{c}");
    assert!(c["jwks"].is_null(), "{c}");
    c["client_id"].as_str().unwrap().to_owned()
}

async fn token(app: &TestApp, key: &Key, id: &str) -> (u16, Value) {
    let (status, body, _) = post_assertion(
        app,
        "/oauth/token",
        &sign(key, &claims(id, json!(ISSUER))),
        &CC,
    )
    .await;
    (status, body)
}

/// Claims at the app's own clock (after it was moved on).
fn claims_at(app: &TestApp, id: &str) -> Value {
    let now = app.clock.now().timestamp();
    let mut c = claims(id, json!(ISSUER));
    c["iat"] = json!(now);
    c["exp"] = json!(now + 120);
    c
}

async fn registration_refuses_jwks_uris_it_may_not_fetch(backend: Backend) {
    // http allowed, private addresses not: the address is what is refused.
    let app = TestApp::builder(backend)
        .with_settings(|s| s.outbound.allow_http = true)
        .spawn()
        .await;
    let key = make_key(Algorithm::ES256, "k1");
    for (body, why) in [
        (client_body("http://127.0.0.1:9/jwks.json"), "loopback"),
        (client_body("https://10.0.0.7/jwks.json"), "private"),
        (
            client_body("https://169.254.169.254/latest/meta-data"),
            "link-local",
        ),
        (client_body("https://[::1]/jwks.json"), "IPv6 loopback"),
        (client_body("https://[::ffff:127.0.0.1]/jwks"), "mapped"),
        (client_body("https://localhost/jwks.json"), "localhost"),
        (
            client_body("https://u:p@keys.example.com/jwks"),
            "user info",
        ),
        (client_body("ftp://keys.example.com/jwks"), "scheme"),
        (
            {
                let mut b = client_body("https://keys.example.com/jwks");
                b["jwks"] = json!({"keys": [key.jwk]});
                b
            },
            "both jwks and jwks_uri",
        ),
        (
            {
                let mut b = client_body("https://keys.example.com/jwks");
                b["token_endpoint_auth_method"] = json!("client_secret_basic");
                b
            },
            "not private_key_jwt",
        ),
    ] {
        let (status, err) =
            status_json(app.post("/v1/oauth/clients", &app.secret_key, &body).await).await;
        assert_eq!(status, 422, "{why}: {err}");
        assert_eq!(err["error"]["param"], "jwks_uri", "{why}: {err}");
    }
    // RFC 7591: invalid_client_metadata.
    let (status, err) =
        register_service(&app, json!({"jwks_uri": "https://192.168.1.10/jwks.json"})).await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"], "invalid_client_metadata", "{err}");
    // Without ALLOW_HTTP, http is refused even where private addresses are fine.
    let strict = TestApp::builder(Backend::Sqlite)
        .with_settings(|s| s.outbound.allow_private = true)
        .spawn()
        .await;
    let (status, err) = status_json(
        strict
            .post(
                "/v1/oauth/clients",
                &strict.secret_key,
                &client_body("http://127.0.0.1:9/jwks.json"),
            )
            .await,
    )
    .await;
    assert_eq!(status, 422, "{err}");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("https"),
        "{err}"
    );
}

async fn keys_at_a_jwks_uri_authenticate_and_rotate(backend: Backend) {
    let app = open_app(backend).await;
    let keys = DocServer::start();
    let (k1, k2, k3) = (
        make_key(Algorithm::ES256, "k1"),
        make_key(Algorithm::ES256, "k2"),
        make_key(Algorithm::EdDSA, "k3"),
    );
    keys.put(
        "/jwks.json",
        Doc::json(&json!({"keys": [k1.jwk]})).with_header("cache-control", "max-age=3600"),
    );
    let id = register(&app, &keys.url("/jwks.json")).await;
    // Registration does not fetch; the first assertion does, once.
    assert_eq!(keys.hits("/jwks.json"), 0);
    for _ in 0..2 {
        let (status, body) = token(&app, &k1, &id).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(keys.hits("/jwks.json"), 1, "the set is cached");
    // Rotated at the URL: an unknown kid fetches the set again.
    keys.put("/jwks.json", Doc::json(&json!({"keys": [k2.jwk]})));
    let (status, body) = token(&app, &k2, &id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys.hits("/jwks.json"), 2);
    // The old key is gone from the set now.
    let (status, body) = token(&app, &k1, &id).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
    // Unknown kids refetch at most once per interval: a second rotation
    // within the minute is not seen, and nobody can make every request fetch.
    keys.put("/jwks.json", Doc::json(&json!({"keys": [k3.jwk]})));
    let (status, _) = token(&app, &k3, &id).await;
    assert_eq!(status, 401);
    assert_eq!(keys.hits("/jwks.json"), 2);
    app.clock.advance(chrono::TimeDelta::seconds(61));
    let (status, body, _) =
        post_assertion(&app, "/oauth/token", &sign(&k3, &claims_at(&app, &id)), &CC).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys.hits("/jwks.json"), 3);
    // RFC 7591 registration takes a jwks_uri too, and says it back.
    keys.put("/other.json", Doc::json(&json!({"keys": [k1.jwk]})));
    let (status, reg) = register_service(&app, json!({"jwks_uri": keys.url("/other.json")})).await;
    assert_eq!(status, 201, "{reg}");
    assert_eq!(reg["jwks_uri"], keys.url("/other.json"));
    let rid = reg["client_id"].as_str().unwrap();
    let (status, body, _) =
        post_assertion(&app, "/oauth/token", &sign(&k1, &claims_at(&app, rid)), &CC).await;
    assert_eq!(status, 200, "{body}");
}

async fn too_large_or_redirected_key_sets_are_refused(backend: Backend) {
    let app = open_app(backend).await;
    let keys = DocServer::start();
    let key = make_key(Algorithm::ES256, "k1");
    keys.put("/jwks.json", Doc::json(&json!({"keys": [key.jwk]})));
    // Over the 32 KiB cap (padded with an unknown member).
    let mut big = key.jwk.clone();
    big["x-padding"] = json!("a".repeat(40 * 1024));
    keys.put("/big.json", Doc::json(&json!({"keys": [big.clone()]})));
    keys.put(
        "/streamed.json",
        Doc::streamed_json(&json!({"keys": [big]})),
    );
    keys.put("/moved.json", Doc::redirect(&keys.url("/jwks.json")));
    keys.put(
        "/private.json",
        Doc::json(&json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k1"}]})),
    );
    keys.put(
        "/broken.json",
        Doc {
            status: 200,
            body: b"not json".to_vec(),
            headers: Vec::new(),
            streamed: false,
        },
    );
    for (path, says) in [
        ("/big.json", "larger than"),
        ("/streamed.json", "larger than"),
        ("/moved.json", "redirect"),
        ("/private.json", "refused"),
        ("/broken.json", "JSON"),
        ("/missing.json", "status 404"),
    ] {
        let id = register(&app, &keys.url(path)).await;
        let (status, body) = token(&app, &key, &id).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(body["error"], "invalid_client", "{path}: {body}");
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(says), "{path}: {body}");
    }
    // The redirect was not followed.
    assert_eq!(keys.hits("/jwks.json"), 0);
    // An invalid set is not cached: fixed at its URL, it works at once.
    keys.put("/broken.json", Doc::json(&json!({"keys": [key.jwk]})));
    let id = register(&app, &keys.url("/broken.json")).await;
    let (status, body) = token(&app, &key, &id).await;
    assert_eq!(status, 200, "{body}");
}

/// `PATCH /v1/oauth/clients/{id}`: one key source replaces the other (RFC
/// 7591 §2: never both), and `jwks_uri: null` removes the URL.
async fn patch_moves_a_client_between_jwks_and_jwks_uri(backend: Backend) {
    let app = open_app(backend).await;
    let keys = DocServer::start();
    let (inline, published) = (
        make_key(Algorithm::ES256, "inline"),
        make_key(Algorithm::ES256, "published"),
    );
    keys.put("/jwks.json", Doc::json(&json!({"keys": [published.jwk]})));
    let id = jwt_client(&app, &inline).await;
    let path = format!("/v1/oauth/clients/{id}");
    let patch = |body: Value| {
        let (app, path) = (&app, &path);
        async move { status_json(app.patch(path, &app.secret_key, &body).await).await }
    };
    let (status, c) = patch(json!({"jwks_uri": keys.url("/jwks.json")})).await;
    assert_eq!(status, 200, "{c}");
    assert!(c["jwks"].is_null(), "{c}");
    assert_eq!(token(&app, &published, &id).await.0, 200);
    assert_eq!(token(&app, &inline, &id).await.0, 401);
    let (status, c) = patch(json!({"jwks": {"keys": [inline.jwk]}})).await;
    assert_eq!(status, 200, "{c}");
    assert!(c["jwks_uri"].is_null(), "{c}");
    assert_eq!(token(&app, &inline, &id).await.0, 200);
    // Both at once, or no keys left: refused.
    let (status, c) = patch(json!({"jwks": {"keys": [inline.jwk]},
                                  "jwks_uri": keys.url("/jwks.json")}))
    .await;
    assert_eq!(
        (status, c["error"]["param"].as_str()),
        (422, Some("jwks_uri")),
        "{c}"
    );
    let (status, c) = patch(json!({"jwks_uri": keys.url("/jwks.json")})).await;
    assert_eq!(status, 200, "{c}");
    let (status, c) = patch(json!({"jwks_uri": null})).await;
    assert_eq!(
        (status, c["error"]["param"].as_str()),
        (422, Some("jwks")),
        "{c}"
    );
}
