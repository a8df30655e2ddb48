//! The token endpoint's other grants, and what happens to tokens later:
//! refresh rotation and reuse, the opt-in leeway, client credentials,
//! introspection, revocation, key rotation, errors.

use crate::oauth_support::*;
use chrono::TimeDelta;
use serde_json::json;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    refresh_rotates_and_reuse_revokes_the_family,
    leeway_returns_the_same_successor,
    client_credentials_introspection_and_revocation,
    rotated_keys_keep_old_tokens_valid,
    token_endpoint_errors,
    access_tokens_call_the_management_api_by_scope,
    discovery_lists_everything,
    a_code_restored_in_redis_is_still_used,
);

async fn refresh_rotates_and_reuse_revokes_the_family(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "r@example.com").await;
    let client = confidential_client(&app, json!({})).await;
    let first = login_and_redeem(&app, &client, "r@example.com", "openid offline_access").await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = token(
        &app,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt1)],
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2, "rotated on every use");
    assert!(second["id_token"].is_string());
    // A narrower scope is fine, a wider one is not (RFC 6749 §6).
    let (status, err) = token(
        &app,
        &client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt2),
            ("scope", "openid email"),
        ],
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    // Reusing the old token: invalid_grant, and the whole family is revoked.
    let (status, err) = token(
        &app,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt1)],
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = token(
        &app,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt2)],
    )
    .await;
    assert_eq!(status, 400, "the successor is revoked with the family");
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(
        introspect(&app, &client, access).await,
        json!({"active": false})
    );
    let (_, events) = status_json(
        app.get(
            "/v1/audit-events?type=oauth.refresh_token.reuse_detected",
            &app.secret_key,
        )
        .await,
    )
    .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
    // Another client cannot use this client's refresh token.
    let other = confidential_client(&app, json!({"name": "Other"})).await;
    let third = login_and_redeem(&app, &client, "r@example.com", "openid offline_access").await;
    let (status, err) = token(
        &app,
        &other,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", third["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

async fn leeway_returns_the_same_successor(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "tabs@example.com").await;
    let client = confidential_client(&app, json!({"refresh_token_leeway_seconds": 30})).await;
    let first = login_and_redeem(&app, &client, "tabs@example.com", "openid offline_access").await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt1.as_str()),
    ];
    // Two tabs at once, and a retried request: one successor for all.
    let (a, b) = tokio::join!(token(&app, &client, &form), token(&app, &client, &form));
    assert_eq!((a.0, b.0), (200, 200), "{} {}", a.1, b.1);
    assert_eq!(a.1["refresh_token"], b.1["refresh_token"]);
    assert_eq!(a.1["access_token"], b.1["access_token"]);
    app.clock.advance(TimeDelta::seconds(20));
    let (status, retry) = token(&app, &client, &form).await;
    assert_eq!(status, 200);
    assert_eq!(retry["refresh_token"], a.1["refresh_token"]);
    // A different request (another scope) is not a duplicate.
    let (status, _) = token(
        &app,
        &client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt1),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    // After the leeway the old token is a reuse: family revoked.
    let first = login_and_redeem(&app, &client, "tabs@example.com", "openid offline_access").await;
    let rt = first["refresh_token"].as_str().unwrap().to_owned();
    let (status, next) = token(
        &app,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .await;
    assert_eq!(status, 200);
    app.clock.advance(TimeDelta::seconds(31));
    let (status, err) = token(
        &app,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = token(
        &app,
        &client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", next["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, 400, "family revoked");
}

async fn client_credentials_introspection_and_revocation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = confidential_client(&app, json!({})).await;
    let (status, tokens) = token(
        &app,
        &client,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read:users"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens.get("refresh_token").is_none() && tokens.get("id_token").is_none());
    let access = tokens["access_token"].as_str().unwrap();
    let (_, claims) = verify_jwt(&app, access, "http://127.0.0.1:8080").await;
    assert_eq!(claims["sub"], client.id.as_str());
    let info = introspect(&app, &client, access).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["scope"], "read:users");
    assert_eq!(info["client_id"], client.id.as_str());
    let (status, err) = token(
        &app,
        &client,
        &[("grant_type", "client_credentials"), ("scope", "openid")],
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    // Revoke, then introspect: inactive. Unknown tokens revoke fine (200).
    let resp = app
        .client
        .post(app.url("/oauth/revoke"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("token", access), ("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        introspect(&app, &client, access).await,
        json!({"active": false})
    );
    let resp = app
        .client
        .post(app.url("/oauth/revoke"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("token", "nonsense")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Garbage and oversized tokens introspect as inactive.
    for bad in ["garbage", &"y".repeat(10_000)] {
        assert_eq!(
            introspect(&app, &client, bad).await,
            json!({"active": false})
        );
    }
    // A public client may not use client_credentials, nor introspect.
    let public = public_client(&app).await;
    let (status, err) = token(&app, &public, &[("grant_type", "client_credentials")]).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    let (_, events) = status_json(
        app.get("/v1/audit-events?type=oauth.token.revoked", &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
    // A deleted client stops authenticating at once (its cached row is dropped).
    assert_eq!(
        app.delete(&format!("/v1/oauth/clients/{}", client.id), &app.secret_key)
            .await
            .status(),
        200
    );
    let (status, err) = token(&app, &client, &[("grant_type", "client_credentials")]).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

async fn rotated_keys_keep_old_tokens_valid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = confidential_client(&app, json!({})).await;
    let (_, before) = token(&app, &client, &[("grant_type", "client_credentials")]).await;
    let old = before["access_token"].as_str().unwrap().to_owned();
    let old_kid = jsonwebtoken::decode_header(&old).unwrap().kid.unwrap();
    let jwks_before: serde_json::Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, rotated) = status_json(
        app.post("/v1/signing-keys/rotate", &app.secret_key, &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["rotated"].as_array().unwrap().len(), 3);
    let (_, after) = token(&app, &client, &[("grant_type", "client_credentials")]).await;
    let new = after["access_token"].as_str().unwrap();
    let new_kid = jsonwebtoken::decode_header(new).unwrap().kid.unwrap();
    assert_ne!(old_kid, new_kid);
    // The new signing key had been published (as "next") before it signed.
    assert!(
        jwks_before["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == new_kid.as_str())
    );
    // Old tokens still verify, with both libraries.
    verify_jwt(&app, &old, "http://127.0.0.1:8080").await;
    verify_jwt(&app, new, "http://127.0.0.1:8080").await;
    assert_eq!(introspect(&app, &client, &old).await["active"], true);
    // A test key rotates the test environment's keys, never live's.
    let (status, rotated) = status_json(
        app.post("/v1/signing-keys/rotate", &app.test_key, &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    assert!(
        rotated["jwks"]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["kid"] != new_kid.as_str()),
        "the test environment's JWKS has none of live's keys"
    );
    let (_, t) = token(&app, &client, &[("grant_type", "client_credentials")]).await;
    let kid = jsonwebtoken::decode_header(t["access_token"].as_str().unwrap())
        .unwrap()
        .kid
        .unwrap();
    assert_eq!(kid, new_kid, "live still signs with its own current key");
    // Another instance sees the rotation without a restart.
    if app.backend.has_redis() {
        let b = app.another_instance().await;
        let (_, t) = token(&b, &client, &[("grant_type", "client_credentials")]).await;
        assert_eq!(
            jsonwebtoken::decode_header(t["access_token"].as_str().unwrap())
                .unwrap()
                .kid
                .unwrap(),
            new_kid
        );
    }
}

async fn token_endpoint_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = confidential_client(&app, json!({})).await;
    let secret = client.secret.clone().unwrap();
    let post = |body: String, basic: bool| {
        let mut req = app
            .client
            .post(app.url("/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if basic {
            req = req.basic_auth(&client.id, Some(&secret));
        }
        async move { req.send().await.unwrap() }
    };
    let cases = [
        (
            "grant_type=client_credentials&grant_type=client_credentials",
            true,
            400,
            "invalid_request",
        ),
        (
            "grant_type=password&username=a&password=b",
            true,
            400,
            "unsupported_grant_type",
        ),
        ("scope=x", true, 400, "invalid_request"),
        (
            "grant_type=authorization_code&code=nope",
            true,
            400,
            "invalid_grant",
        ),
        (
            "grant_type=refresh_token&refresh_token=nope",
            true,
            400,
            "invalid_grant",
        ),
        (
            "grant_type=client_credentials",
            false,
            401,
            "invalid_client",
        ),
    ];
    for (body, basic, status, error) in cases {
        let resp = post(body.to_owned(), basic).await;
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let (got, err) = status_json(resp).await;
        assert_eq!(
            (got, err["error"].as_str()),
            (status, Some(error)),
            "{body}"
        );
        assert!(err["error_description"].is_string());
    }
    // A wrong secret with Basic: 401 and a Basic challenge (RFC 6749 §5.2).
    let resp = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&client.id, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    // Two authentication methods at once are refused.
    let resp = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&client.id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // JSON is not the token endpoint's media type.
    let resp = app
        .client
        .post(app.url("/oauth/token"))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

async fn access_tokens_call_the_management_api_by_scope(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("listed@example.com").await;
    let client = confidential_client(&app, json!({})).await;
    let (_, t) = token(
        &app,
        &client,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read:users"),
        ],
    )
    .await;
    let read_only = t["access_token"].as_str().unwrap().to_owned();
    let (status, page) = status_json(app.get("/v1/users", &read_only).await).await;
    assert_eq!(status, 200);
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let resp = app
        .post(
            "/v1/users",
            &read_only,
            &json!({"email": "new@example.com"}),
        )
        .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(app.get("/v1/api-keys", &read_only).await.status(), 403);
    let (_, t) = token(
        &app,
        &client,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "write:users"),
        ],
    )
    .await;
    let writer = t["access_token"].as_str().unwrap().to_owned();
    let (status, _) = status_json(
        app.post("/v1/users", &writer, &json!({"email": "new@example.com"}))
            .await,
    )
    .await;
    assert_eq!(status, 201);
    let (_, events) = status_json(
        app.get("/v1/audit-events?type=user.created", &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(events["data"][0]["actor"]["type"], "oauth_client");
}

async fn discovery_lists_everything(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let (status, doc) = status_json(app.client.get(app.url(path)).send().await.unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(doc["issuer"], "http://127.0.0.1:8080");
        for field in [
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "registration_endpoint",
            "revocation_endpoint",
            "introspection_endpoint",
            "code_challenge_methods_supported",
            "grant_types_supported",
            "token_endpoint_auth_methods_supported",
            "scopes_supported",
        ] {
            assert!(doc.get(field).is_some(), "{path}: {field}");
        }
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    }
    let (_, oidc) = status_json(
        app.client
            .get(app.url("/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    for field in [
        "userinfo_endpoint",
        "end_session_endpoint",
        "id_token_signing_alg_values_supported",
        "subject_types_supported",
    ] {
        assert!(oidc.get(field).is_some(), "{field}");
    }
    let resp = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/jwk-set+json");
    let jwks: serde_json::Value = resp.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 6, "current and next for ES256, RS256, EdDSA");
    for k in keys {
        assert!(k["kid"].is_string() && k["use"] == "sig" && k["alg"].is_string());
        assert!(k.get("d").is_none(), "never a private part");
    }
}

mod hardening {
    use crate::oauth_support::*;
    use serde_json::json;
    use trusec_testkit::{Backend, TestApp, on_every_backend};

    on_every_backend!(
        nobody_exhausts_another_clients_token_budget,
        narrowing_on_refresh_keeps_the_grant
    );

    async fn nobody_exhausts_another_clients_token_budget(backend: Backend) {
        let app = TestApp::builder(backend)
            .with_settings(|s| {
                s.rate_limits.token = trusec_storage::rate_limit::Limit::parse("2/min").unwrap()
            })
            .spawn()
            .await;
        let client = confidential_client(&app, json!({})).await;
        let impostor = TestClient {
            id: client.id.clone(),
            secret: Some("wrong".into()),
        };
        for _ in 0..3 {
            let (status, _) = token(&app, &impostor, &[("grant_type", "client_credentials")]).await;
            assert_eq!(status, 401);
        }
        for expected in [200, 200, 429] {
            let (status, _) = token(&app, &client, &[("grant_type", "client_credentials")]).await;
            assert_eq!(status, expected);
        }
    }

    async fn narrowing_on_refresh_keeps_the_grant(backend: Backend) {
        let app = TestApp::spawn(backend).await;
        make_user(&app, "narrow@example.com").await;
        let client = confidential_client(&app, json!({})).await;
        let first = login_and_redeem(
            &app,
            &client,
            "narrow@example.com",
            "openid email offline_access",
        )
        .await;
        let (status, narrow) = token(
            &app,
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
                ("scope", "openid"),
            ],
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(narrow["scope"], "openid");
        // RFC 6749 §6: the new refresh token keeps the original scope.
        let (status, wide) = token(
            &app,
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", narrow["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
        assert_eq!(status, 200, "{wide}");
        assert_eq!(wide["scope"], "openid email offline_access");
    }
}

/// RFC 6750 §3.1: a request with no token gets a bare `Bearer` challenge
/// (no error code); a refused token's challenge names `invalid_token`.
#[tokio::test]
async fn a_request_without_a_token_gets_a_bare_challenge() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let bare = app
        .client
        .get(app.url("/oauth/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 401);
    assert_eq!(
        bare.headers()["www-authenticate"],
        "Bearer realm=\"trusec\""
    );
    let refused = app
        .client
        .get(app.url("/oauth/userinfo"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );
}

/// An access token is verified from its compact form by hand (header and
/// claims decoded once, one signature over the bytes as sent): every
/// alteration of it is inactive, and a token naming an extension (`crit`)
/// or another `typ` is not ours.
#[tokio::test]
async fn altered_access_tokens_are_inactive() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let app = TestApp::spawn(Backend::Sqlite).await;
    let client = confidential_client(&app, json!({})).await;
    let (status, tokens) = token(&app, &client, &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(introspect(&app, &client, access).await["active"], true);
    let parts: Vec<&str> = access.split('.').collect();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let with_header = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut h = header.clone();
        change(&mut h);
        let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&h).unwrap());
        format!("{h}.{}.{}", parts[1], parts[2])
    };
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["scope"] = json!("admin");
    let forged_claims = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    let altered = [
        forged_claims,
        format!("{}.{}.{}", parts[0], parts[1], &parts[2][1..]),
        format!("{access}.x"),
        format!("{}.{}", parts[0], parts[1]),
        with_header(&|h| h["typ"] = json!("JWT")),
        with_header(&|h| h["alg"] = json!("none")),
        with_header(&|h| h["alg"] = json!("RS256")),
        with_header(&|h| h["crit"] = json!(["exp"])),
        with_header(&|h| h["kid"] = json!("key_unknown")),
    ];
    for token in &altered {
        assert_eq!(
            introspect(&app, &client, token).await,
            json!({"active": false}),
            "{token}"
        );
    }
    assert_eq!(introspect(&app, &client, access).await["active"], true);
}

/// Issue #12: the database is the authority on a code's single use. A
/// Redis that loses the take (a failover to a replica that missed it) and
/// hands the code out again must not let it be redeemed twice.
async fn a_code_restored_in_redis_is_still_used(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    let client = public_client(&app).await;
    let browser = new_browser();
    let (code, verifier) =
        authorize_code(&app, &browser, &client, "ada@example.com", "openid").await;
    let key = trusec_storage::StoreKey::code(&trusec_storage::secrets::hash_secret(&code));
    let stored = app.state.core.store.get(&key).await.unwrap().unwrap();
    let (status, _) = redeem(&app, &client, &code, &verifier).await;
    assert_eq!(status, 200);
    // The replica that missed the take still has the code.
    app.state
        .core
        .store
        .put(&key, &stored, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let (status, body) = redeem(&app, &client, &code, &verifier).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
}
