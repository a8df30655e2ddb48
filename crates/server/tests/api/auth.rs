use chrono::TimeDelta;
use serde_json::json;
use trusec_testkit::{Backend, TestApp, on_every_backend, on_shared_backend, status_json};

on_every_backend!(
    missing_and_bad_keys_are_401,
    public_keys_are_403,
    test_keys_see_only_test_objects,
    expired_and_revoked_keys_are_401,
);
on_shared_backend!(key_revocation_is_seen_by_another_instance);

async fn missing_and_bad_keys_are_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let resp = app.client.get(app.url("/v1/users")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    for key in [
        "garbage",
        "trusec_sk_notarealkey",
        "trusec_test_",
        &app.secret_key.replace("trusec_sk_", "trusec_test_"),
    ] {
        let (status, err) = status_json(app.get("/v1/users", key).await).await;
        assert_eq!(status, 401, "{key}");
        assert_eq!(err["error"]["type"], "unauthenticated");
    }
    let resp = app
        .client
        .get(app.url("/v1/users"))
        .header("authorization", format!("Basic {}", app.secret_key))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // The scheme is case-insensitive (RFC 6750 §2.1 via RFC 7235).
    let resp = app
        .client
        .get(app.url("/v1/users"))
        .header("authorization", format!("bearer {}", app.secret_key))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn public_keys_are_403(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (method, path) in [
        (reqwest::Method::GET, "/v1/users"),
        (reqwest::Method::POST, "/v1/sessions/verify"),
        (reqwest::Method::GET, "/v1/api-keys"),
        (reqwest::Method::GET, "/v1/audit-events"),
    ] {
        let resp = app
            .request(method, path, &app.public_key)
            .json(&json!({"token": "x"}))
            .send()
            .await
            .unwrap();
        let (status, err) = status_json(resp).await;
        assert_eq!(status, 403, "{path}");
        assert_eq!(err["error"]["type"], "forbidden");
    }
}

async fn test_keys_see_only_test_objects(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let live = app.create_user("live@example.com").await;
    let live_id = live["id"].as_str().unwrap();
    // The test key cannot see, change, delete or open sessions for live users.
    assert_eq!(
        app.get(&format!("/v1/users/{live_id}"), &app.test_key)
            .await
            .status(),
        404
    );
    assert_eq!(
        app.patch(
            &format!("/v1/users/{live_id}"),
            &app.test_key,
            &json!({"name": "x"})
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        app.delete(&format!("/v1/users/{live_id}"), &app.test_key)
            .await
            .status(),
        404
    );
    assert_eq!(
        app.post("/v1/sessions", &app.test_key, &json!({"user_id": live_id}))
            .await
            .status(),
        404
    );
    let (_, page) = status_json(app.get("/v1/users", &app.test_key).await).await;
    assert_eq!(page["data"], json!([]));
    // A live session token does not verify with a test key.
    let (_, session) = status_json(
        app.post(
            "/v1/sessions",
            &app.secret_key,
            &json!({"user_id": live_id}),
        )
        .await,
    )
    .await;
    let (_, verdict) = status_json(
        app.post(
            "/v1/sessions/verify",
            &app.test_key,
            &json!({"token": session["token"]}),
        )
        .await,
    )
    .await;
    assert_eq!(verdict["valid"], false);
    // Nor does a revoked one reveal, through the revocation cache, that it
    // exists in the live environment.
    app.post(
        "/v1/sessions/revoke",
        &app.secret_key,
        &json!({"token": session["token"]}),
    )
    .await;
    let (_, verdict) = status_json(
        app.post(
            "/v1/sessions/verify",
            &app.test_key,
            &json!({"token": session["token"]}),
        )
        .await,
    )
    .await;
    assert_eq!(verdict, json!({"valid": false, "reason": "not_found"}));
    // And the other way round.
    let (status, test_user) = status_json(
        app.post(
            "/v1/users",
            &app.test_key,
            &json!({"email": "t@example.com"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(test_user["environment"], "env_test");
    let test_id = test_user["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v1/users/{test_id}"), &app.secret_key)
            .await
            .status(),
        404
    );
    let (_, page) = status_json(app.get("/v1/users", &app.secret_key).await).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    // Audit events and API keys are split too.
    let (_, events) = status_json(app.get("/v1/audit-events", &app.test_key).await).await;
    assert!(
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["environment"] == "env_test")
    );
    let (_, keys) = status_json(app.get("/v1/api-keys", &app.test_key).await).await;
    assert!(
        keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["type"] == "test")
    );
    // A test key creates test keys only; a live secret key, the operator's
    // root credential, creates keys of every type (contract).
    let resp = app
        .post(
            "/v1/api-keys",
            &app.test_key,
            &json!({"type": "secret", "name": "escalate"}),
        )
        .await;
    assert_eq!(resp.status(), 403);
    let (status, made) = status_json(
        app.post(
            "/v1/api-keys",
            &app.secret_key,
            &json!({"type": "test", "name": "cross"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["environment"], "env_test");
    let test_key = made["key"].as_str().unwrap();
    assert!(test_key.starts_with("trusec_test_"));
    // The new key sees the test environment, not live.
    let (_, keys) = status_json(app.get("/v1/api-keys", test_key).await).await;
    assert!(
        keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["environment"] == "env_test")
    );
}

async fn expired_and_revoked_keys_are_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, created) = status_json(
        app.post(
            "/v1/api-keys",
            &app.secret_key,
            &json!({"type": "secret", "name": "short", "expires_in": "1h"}),
        )
        .await,
    )
    .await;
    let short = created["key"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/v1/users", &short).await.status(), 200);
    app.clock.advance(TimeDelta::minutes(61));
    let (status, err) = status_json(app.get("/v1/users", &short).await).await;
    assert_eq!(status, 401);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    let (_, created) = status_json(
        app.post(
            "/v1/api-keys",
            &app.secret_key,
            &json!({"type": "secret", "name": "doomed"}),
        )
        .await,
    )
    .await;
    let doomed = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/v1/api-keys/{id}"), &app.secret_key)
            .await
            .status(),
        200
    );
    let (status, err) = status_json(app.get("/v1/users", &doomed).await).await;
    assert_eq!(status, 401);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
}

async fn key_revocation_is_seen_by_another_instance(backend: Backend) {
    let a = TestApp::spawn(backend).await;
    let b = a.another_instance().await;
    let (_, created) = status_json(
        a.post(
            "/v1/api-keys",
            &a.secret_key,
            &json!({"type": "secret", "name": "shared"}),
        )
        .await,
    )
    .await;
    let key = created["key"].as_str().unwrap();
    // B authenticates (and caches) the key.
    assert_eq!(b.get("/v1/users", key).await.status(), 200);
    assert_eq!(b.get("/v1/users", key).await.status(), 200);
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        a.delete(&format!("/v1/api-keys/{id}"), &a.secret_key)
            .await
            .status(),
        200
    );
    assert_eq!(b.get("/v1/users", key).await.status(), 401);
}
