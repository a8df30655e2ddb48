use serde_json::json;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(health_readiness_and_metrics);

async fn health_readiness_and_metrics(backend: Backend) {
    let app = TestApp::spawn(backend.clone()).await;
    let resp = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
    let (status, ready) =
        status_json(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        ready,
        json!({"status": "ready", "database": "ok", "ephemeral_store": "ok"})
    );

    app.get("/v1/users", &app.secret_key).await;
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains(
            r#"trusec_http_requests_total{method="GET",route="/v1/users",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("trusec_http_request_duration_seconds_bucket"));

    let (status, err) =
        status_json(app.client.get(app.url("/nowhere")).send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["type"], "not_found");
    let (status, err) = status_json(
        app.request(reqwest::Method::PUT, "/v1/users", &app.secret_key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 405);
    assert_eq!(err["error"]["type"], "invalid_request");
    let resp = app.get("/v1/users", &app.secret_key).await;
    assert_eq!(resp.headers()["cache-control"], "no-store");

    // The OpenAPI document and its browsable form.
    let (status, doc) = status_json(
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["paths"]["/v1/users"]["post"].is_object());
    assert!(doc["paths"]["/oauth/token"]["post"].is_object());
    let resp = app.client.get(app.url("/docs/api")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().to_lowercase().contains("<html"));
}
