use chrono::TimeDelta;
use serde_json::json;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    keys_are_shown_once_and_listed_safely,
    rotation_keeps_the_old_key_for_the_grace_period,
    bad_key_requests
);

async fn keys_are_shown_once_and_listed_safely(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, created) = status_json(
        app.post(
            "/v1/api-keys",
            &app.secret_key,
            &json!({"type": "public", "name": "web"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201);
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("trusec_pk_"));
    // 43 base62 symbols: at least 256 bits.
    assert_eq!(key.len(), "trusec_pk_".len() + 43);
    assert_eq!(created["last_four"], key[key.len() - 4..]);
    assert_eq!(created["prefix"], "trusec_pk_");
    // Default lifetime: 90 days.
    let created_at =
        chrono::DateTime::parse_from_rfc3339(created["created_at"].as_str().unwrap()).unwrap();
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(created["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires_at - created_at, TimeDelta::days(90));

    let (status, list) = status_json(app.get("/v1/api-keys", &app.secret_key).await).await;
    assert_eq!(status, 200);
    let text = list.to_string();
    assert!(
        !text.contains(key),
        "a listed key must not reveal its secret"
    );
    assert!(!text.contains("secret_hash"));
    let listed = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == created["id"])
        .unwrap();
    assert_eq!(listed["last_four"], created["last_four"]);
    assert!(listed.get("key").is_none());
    let (status, one) = status_json(
        app.get(
            &format!("/v1/api-keys/{}", created["id"].as_str().unwrap()),
            &app.secret_key,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert!(one.get("key").is_none());
    // Using a key records its last use.
    let (_, me) = status_json(
        app.get(
            &format!("/v1/api-keys/{}", created["id"].as_str().unwrap()),
            &app.secret_key,
        )
        .await,
    )
    .await;
    assert_eq!(me["last_used_at"], serde_json::Value::Null);
    let (_, keys) = status_json(app.get("/v1/api-keys", &app.secret_key).await).await;
    assert!(
        keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["type"] == "secret" && k["last_used_at"].is_string())
    );
}

async fn rotation_keeps_the_old_key_for_the_grace_period(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, created) = status_json(
        app.post(
            "/v1/api-keys",
            &app.secret_key,
            &json!({"type": "secret", "name": "ci"}),
        )
        .await,
    )
    .await;
    let old_key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, rotated) = status_json(
        app.post(
            &format!("/v1/api-keys/{id}/rotate"),
            &old_key,
            &json!({"grace_period": "2h"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{rotated}");
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, old_key);
    assert_eq!(rotated["name"], "ci");
    assert_eq!(rotated["previous"]["id"], id.as_str());
    assert_eq!(rotated["previous"]["rotated_to"], rotated["id"]);
    // A key is rotated once: its successor is the one to rotate next.
    let resp = app
        .post(&format!("/v1/api-keys/{id}/rotate"), &new_key, &json!({}))
        .await;
    assert_eq!(resp.status(), 404);
    // Both work inside the grace period.
    app.clock.advance(TimeDelta::minutes(119));
    assert_eq!(app.get("/v1/users", &old_key).await.status(), 200);
    assert_eq!(app.get("/v1/users", &new_key).await.status(), 200);
    // After it, only the new one.
    app.clock.advance(TimeDelta::minutes(2));
    assert_eq!(app.get("/v1/users", &old_key).await.status(), 401);
    assert_eq!(app.get("/v1/users", &new_key).await.status(), 200);
    // An expired key cannot be rotated again.
    let resp = app
        .post(&format!("/v1/api-keys/{id}/rotate"), &new_key, &json!({}))
        .await;
    assert_eq!(resp.status(), 404);
    // The rotation is audited.
    let (_, events) = status_json(
        app.get("/v1/audit-events?type=api_key.rotated", &new_key)
            .await,
    )
    .await;
    assert_eq!(events["data"][0]["data"]["api_key_id"], id.as_str());
}

async fn bad_key_requests(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = &app.secret_key;
    let cases = [
        (json!({"type": "admin", "name": "x"}), 422, "type"),
        (json!({"type": "secret", "name": "  "}), 422, "name"),
        (
            json!({"type": "secret", "name": "x", "expires_in": "10s"}),
            422,
            "expires_in",
        ),
        (
            json!({"type": "secret", "name": "x", "expires_in": "forever"}),
            422,
            "expires_in",
        ),
        (json!({"type": "secret"}), 400, "name"),
    ];
    for (body, status, param) in cases {
        let (got, err) = status_json(app.post("/v1/api-keys", key, &body).await).await;
        assert_eq!(got, status, "{body}: {err}");
        assert_eq!(err["error"]["param"], param);
    }
    let (status, _) = status_json(
        app.post(
            "/v1/api-keys/key_01m8fd7z9k1b76shek8x2v4j7m/rotate",
            key,
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
    let (_, created) = status_json(
        app.post("/v1/api-keys", key, &json!({"type": "secret", "name": "x"}))
            .await,
    )
    .await;
    let path = format!("/v1/api-keys/{}/rotate", created["id"].as_str().unwrap());
    let (status, err) =
        status_json(app.post(&path, key, &json!({"grace_period": "31d"})).await).await;
    assert_eq!(status, 422);
    assert_eq!(err["error"]["param"], "grace_period");
}
