use serde_json::json;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(a_restart_keeps_users_keys_and_sessions);

async fn a_restart_keeps_users_keys_and_sessions(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let user = first.create_user("keep@example.com").await;
    let (_, key) = status_json(
        first
            .post(
                "/v1/api-keys",
                &first.secret_key,
                &json!({"type": "secret", "name": "k"}),
            )
            .await,
    )
    .await;
    let key = key["key"].as_str().unwrap().to_owned();
    let (_, s) = status_json(
        first
            .post("/v1/sessions", &key, &json!({"user_id": user["id"]}))
            .await,
    )
    .await;
    let token = s["token"].as_str().unwrap().to_owned();
    first.stop().await;
    assert!(
        first
            .client
            .get(first.url("/healthz"))
            .send()
            .await
            .is_err(),
        "the first instance is down"
    );

    let second = first.another_instance().await;
    let (status, got) = status_json(
        second
            .get(&format!("/v1/users/{}", user["id"].as_str().unwrap()), &key)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got, user);
    let (_, v) = status_json(
        second
            .post(
                "/v1/sessions/verify",
                &first.secret_key,
                &json!({"token": token}),
            )
            .await,
    )
    .await;
    assert_eq!(v["valid"], true);
    let report = second.state.core.verify_audit(None).await.unwrap();
    assert_eq!(report.first_broken, None);
}
