use chrono::TimeDelta;
use serde_json::json;
use trusec_testkit::{Backend, TestApp, on_every_backend, on_shared_backend, status_json};

on_every_backend!(
    create_verify_revoke,
    lifetimes_and_metadata_are_checked,
    sessions_expire,
    list_and_revoke_all,
    revoke_by_id
);
on_shared_backend!(revoke_is_seen_by_another_instance);

async fn create_verify_revoke(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.create_user("s@example.com").await;
    let key = &app.secret_key;
    let (status, session) = status_json(
        app.post(
            "/v1/sessions",
            key,
            &json!({"user_id": user["id"], "expires_in": "24h", "metadata": {"device": "laptop"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{session}");
    assert!(session["id"].as_str().unwrap().starts_with("sess_"));
    assert_eq!(session["user_id"], user["id"]);
    assert_eq!(session["metadata"], json!({"device": "laptop"}));
    let token = session["token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 43);
    let expires =
        chrono::DateTime::parse_from_rfc3339(session["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires.timestamp(), app.clock.now().timestamp() + 86_400);

    // Twice: once from the database, once from the cache.
    for _ in 0..2 {
        let (status, v) = status_json(
            app.post("/v1/sessions/verify", key, &json!({"token": token}))
                .await,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(v["valid"], true);
        assert_eq!(v["user"]["id"], user["id"]);
        assert_eq!(v["session"]["id"], session["id"]);
        assert!(v["session"].get("token").is_none());
    }
    let (_, v) = status_json(
        app.post(
            "/v1/sessions/verify",
            key,
            &json!({"token": "trusec_st_nope"}),
        )
        .await,
    )
    .await;
    assert_eq!(v, json!({"valid": false, "reason": "not_found"}));

    let (status, r) = status_json(
        app.post("/v1/sessions/revoke", key, &json!({"token": token}))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(r["revoked"], true);
    let (_, v) = status_json(
        app.post("/v1/sessions/verify", key, &json!({"token": token}))
            .await,
    )
    .await;
    assert_eq!(v, json!({"valid": false, "reason": "revoked"}));
    let (_, r) = status_json(
        app.post("/v1/sessions/revoke", key, &json!({"token": token}))
            .await,
    )
    .await;
    assert_eq!(r["revoked"], false);
    // A user update is reflected at once in verification (no stale cache).
    let (_, s2) = status_json(
        app.post("/v1/sessions", key, &json!({"user_id": user["id"]}))
            .await,
    )
    .await;
    let t2 = s2["token"].as_str().unwrap();
    let (_, v) = status_json(
        app.post("/v1/sessions/verify", key, &json!({"token": t2}))
            .await,
    )
    .await;
    assert_eq!(v["user"]["name"], serde_json::Value::Null);
    app.patch(
        &format!("/v1/users/{}", user["id"].as_str().unwrap()),
        key,
        &json!({"name": "Renamed"}),
    )
    .await;
    let (_, v) = status_json(
        app.post("/v1/sessions/verify", key, &json!({"token": t2}))
            .await,
    )
    .await;
    assert_eq!(v["user"]["name"], "Renamed");
}

async fn lifetimes_and_metadata_are_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.create_user("l@example.com").await;
    let key = &app.secret_key;
    for (input, secs) in [
        (json!("30m"), 1800),
        (json!("7d"), 604_800),
        (json!(3600), 3600),
        (json!("90d"), 7_776_000),
    ] {
        let (status, s) = status_json(
            app.post(
                "/v1/sessions",
                key,
                &json!({"user_id": user["id"], "expires_in": input}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 201, "{input}");
        let expires =
            chrono::DateTime::parse_from_rfc3339(s["expires_at"].as_str().unwrap()).unwrap();
        assert_eq!(
            expires.timestamp() - app.clock.now().timestamp(),
            secs,
            "{input}"
        );
    }
    let cases = [
        (
            json!({"user_id": user["id"], "expires_in": "59s"}),
            422,
            "expires_in",
        ),
        (
            json!({"user_id": user["id"], "expires_in": "91d"}),
            422,
            "expires_in",
        ),
        (
            json!({"user_id": user["id"], "expires_in": "soon"}),
            422,
            "expires_in",
        ),
        (
            json!({"user_id": user["id"], "metadata": "x"}),
            422,
            "metadata",
        ),
        (
            json!({"user_id": user["id"], "metadata": {"blob": "x".repeat(4100)}}),
            422,
            "metadata",
        ),
        (
            json!({"user_id": "user_01m8fd80v9n2k4wv4thvm5ddfe"}),
            404,
            "user_id",
        ),
        (json!({"user_id": "bogus"}), 404, "user_id"),
        (json!({}), 400, "user_id"),
    ];
    for (body, status, param) in cases {
        let (got, err) = status_json(app.post("/v1/sessions", key, &body).await).await;
        assert_eq!(got, status, "{body}: {err}");
        assert_eq!(err["error"]["param"], param, "{body}");
    }
    let (status, err) = status_json(
        app.post("/v1/sessions/verify", key, &json!({"tokn": "x"}))
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["param"], "tokn");
}

async fn sessions_expire(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.create_user("e@example.com").await;
    let (_, s) = status_json(
        app.post(
            "/v1/sessions",
            &app.secret_key,
            &json!({"user_id": user["id"], "expires_in": "30m"}),
        )
        .await,
    )
    .await;
    let token = s["token"].as_str().unwrap();
    let (_, v) = status_json(
        app.post(
            "/v1/sessions/verify",
            &app.secret_key,
            &json!({"token": token}),
        )
        .await,
    )
    .await;
    assert_eq!(v["valid"], true);
    app.clock.advance(TimeDelta::minutes(30));
    let (_, v) = status_json(
        app.post(
            "/v1/sessions/verify",
            &app.secret_key,
            &json!({"token": token}),
        )
        .await,
    )
    .await;
    assert_eq!(v, json!({"valid": false, "reason": "expired"}));
}

async fn list_and_revoke_all(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.create_user("m@example.com").await;
    let uid = user["id"].as_str().unwrap();
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let (_, s) = status_json(
            app.post("/v1/sessions", &app.secret_key, &json!({"user_id": uid}))
                .await,
        )
        .await;
        tokens.push(s["token"].as_str().unwrap().to_owned());
    }
    let (status, list) = status_json(
        app.get(
            &format!("/v1/users/{uid}/sessions?limit=2"),
            &app.secret_key,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(list["has_more"], true);
    assert!(!list.to_string().contains(&tokens[0]));
    let (status, r) = status_json(
        app.delete(&format!("/v1/users/{uid}/sessions"), &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(r["revoked"], 3);
    for t in &tokens {
        let (_, v) = status_json(
            app.post("/v1/sessions/verify", &app.secret_key, &json!({"token": t}))
                .await,
        )
        .await;
        assert_eq!(v["valid"], false);
    }
    let (_, list) = status_json(
        app.get(&format!("/v1/users/{uid}/sessions"), &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(list["data"], json!([]));
    assert_eq!(
        app.get(
            "/v1/users/user_01m8fd80v9n2k4wv4thvm5ddfe/sessions",
            &app.secret_key
        )
        .await
        .status(),
        404
    );
}

async fn revoke_is_seen_by_another_instance(backend: Backend) {
    let a = TestApp::spawn(backend).await;
    let b = a.another_instance().await;
    let user = a.create_user("two@example.com").await;
    let (_, s) = status_json(
        a.post(
            "/v1/sessions",
            &a.secret_key,
            &json!({"user_id": user["id"]}),
        )
        .await,
    )
    .await;
    let token = s["token"].as_str().unwrap();
    // B verifies (and caches) the session A created.
    for _ in 0..2 {
        let (_, v) = status_json(
            b.post(
                "/v1/sessions/verify",
                &b.secret_key,
                &json!({"token": token}),
            )
            .await,
        )
        .await;
        assert_eq!(v["valid"], true);
    }
    let (_, r) = status_json(
        a.post(
            "/v1/sessions/revoke",
            &a.secret_key,
            &json!({"token": token}),
        )
        .await,
    )
    .await;
    assert_eq!(r["revoked"], true);
    let (_, v) = status_json(
        b.post(
            "/v1/sessions/verify",
            &b.secret_key,
            &json!({"token": token}),
        )
        .await,
    )
    .await;
    assert_eq!(v, json!({"valid": false, "reason": "revoked"}));
}

/// `DELETE /v1/sessions/{id}`: by id, at once, only in the key's
/// environment; a second delete says it was not live any more.
async fn revoke_by_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.create_user("s@example.com").await;
    let key = &app.secret_key;
    let (_, session) = status_json(
        app.post("/v1/sessions", key, &json!({"user_id": user["id"]}))
            .await,
    )
    .await;
    let (id, token) = (session["id"].as_str().unwrap(), &session["token"]);
    // Another environment's key does not see it.
    let (status, _) = status_json(
        app.delete(&format!("/v1/sessions/{id}"), &app.test_key)
            .await,
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = status_json(app.delete(&format!("/v1/sessions/{id}"), key).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"revoked": true, "session_id": id}));
    let (_, v) = status_json(
        app.post("/v1/sessions/verify", key, &json!({"token": token}))
            .await,
    )
    .await;
    assert_eq!(v["valid"], false, "{v}");
    let (_, body) = status_json(app.delete(&format!("/v1/sessions/{id}"), key).await).await;
    assert_eq!(body["revoked"], false);
    let (status, _) = status_json(app.delete("/v1/sessions/sess_nope", key).await).await;
    assert_eq!(status, 404);
    let (_, events) =
        status_json(app.get("/v1/audit-events?type=session.revoked", key).await).await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1, "audited once");
}
