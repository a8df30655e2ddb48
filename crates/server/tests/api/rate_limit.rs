use trusec_storage::audit::{self, AuditFilter};
use trusec_storage::rate_limit::Limit;
use trusec_storage::{PageRequest, ids};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(management_api_is_limited_per_key);

async fn management_api_is_limited_per_key(backend: Backend) {
    let app = TestApp::builder(backend)
        .with_settings(|s| s.rate_limits.management = Limit::parse("3/min").unwrap())
        .spawn()
        .await;
    for _ in 0..3 {
        assert_eq!(app.get("/v1/users", &app.secret_key).await.status(), 200);
    }
    let resp = app.get("/v1/users", &app.secret_key).await;
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    let (status, err) = status_json(resp).await;
    assert_eq!(status, 429);
    assert_eq!(err["error"]["type"], "rate_limited");
    // Another key has its own budget.
    assert_eq!(app.get("/v1/users", &app.test_key).await.status(), 200);
    // The refusal is audited once, not once per refused request.
    assert_eq!(app.get("/v1/users", &app.secret_key).await.status(), 429);
    let filter = AuditFilter {
        event_type: Some("rate_limit.exceeded".into()),
        ..AuditFilter::default()
    };
    let page = PageRequest {
        limit: 10,
        after: None,
    };
    let events = app
        .state
        .db
        .run(move |c| audit::list(c, ids::ENV_LIVE, &filter, &page))
        .await
        .unwrap();
    assert_eq!(events.data.len(), 1);
    assert_eq!(events.data[0].outcome, "failure");
}
