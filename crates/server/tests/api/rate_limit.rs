use trusec_storage::audit::{self, AuditFilter, EventType};
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
        outcome: None,
        event_type: Some(EventType::RateLimitExceeded),
        ..AuditFilter::default()
    };
    let page = PageRequest {
        limit: 10,
        after: None,
    };
    let events = app
        .state
        .core
        .db
        .run(move |c| audit::list(c, ids::ENV_LIVE, &filter, &page))
        .await
        .unwrap();
    assert_eq!(events.data.len(), 1);
    assert_eq!(events.data[0].outcome.as_str(), "failure");
}

on_every_backend!(refusals_and_failed_logins_are_counted_on_every_surface);

/// The alerts `docs/operations.md` tells operators to set count on the
/// hosted pages and the token endpoint too, not only on `/v1`.
async fn refusals_and_failed_logins_are_counted_on_every_surface(backend: Backend) {
    let app = TestApp::builder(backend)
        .with_settings(|s| {
            s.rate_limits.token = Limit::parse("2/min").unwrap();
            s.rate_limits.login = Limit::parse("2/min").unwrap();
        })
        .spawn()
        .await;
    // A failed sign-in, then sign-ins refused by the login limit.
    let page = app.client.get(app.url("/login")).send().await.unwrap();
    let csrf = crate::oauth_support::hidden(&page.text().await.unwrap(), "csrf_token");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let resp = app
            .client
            .post(app.url("/login"))
            .form(&[
                ("email", "nobody@example.com"),
                ("password", "wrong password"),
                ("csrf_token", csrf.as_str()),
                ("interaction", ""),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            let secs: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&secs), "{secs}");
        }
    }
    assert_eq!(statuses, [401, 401, 429]);
    // Token requests refused by the per-client limit.
    let client = crate::oauth_support::confidential_client(
        &app,
        serde_json::json!({"grant_types": ["client_credentials"], "scopes": ["read:users"]}),
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, _) = crate::oauth_support::token(
            &app,
            &client,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "read:users"),
            ],
        )
        .await;
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 429]);

    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"trusec_rate_limited_total{family="login"} 1"#,
        r#"trusec_rate_limited_total{family="token"} 1"#,
        r#"trusec_audit_events_total{event_type="user.login.failed"} 2"#,
        r#"trusec_audit_events_total{event_type="rate_limit.exceeded"} 2"#,
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

on_every_backend!(behind_a_trusted_proxy_the_forwarded_client_is_limited_and_audited);

/// Behind a trusted proxy every user arrives from the proxy's address: the
/// per-IP budgets and the audit log must use the forwarded client address,
/// and nobody else's forwarding headers may be believed.
async fn behind_a_trusted_proxy_the_forwarded_client_is_limited_and_audited(backend: Backend) {
    let register = |app: &TestApp, from: &'static str| {
        let req = app
            .client
            .post(app.url("/oauth/register"))
            .header("x-forwarded-for", from)
            .json(&serde_json::json!({
                "redirect_uris": ["https://app.example.com/cb"],
                "token_endpoint_auth_method": "none"
            }));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let proxied = TestApp::builder(backend.clone())
        .with_settings(|s| {
            s.open_registration = true;
            s.rate_limits.registration = Limit::parse("1/min").unwrap();
            s.trusted_proxies =
                trusec_ui::http::TrustedProxies::parse("127.0.0.1/32, ::1").unwrap();
        })
        .spawn()
        .await;
    assert_eq!(register(&proxied, "203.0.113.5").await, 201);
    assert_eq!(register(&proxied, "203.0.113.5").await, 429);
    // Another user behind the same proxy has a budget of their own.
    assert_eq!(register(&proxied, "198.51.100.7").await, 201);
    let filter = AuditFilter {
        outcome: None,
        event_type: Some(EventType::OAuthClientCreated),
        ..AuditFilter::default()
    };
    let page = PageRequest {
        limit: 10,
        after: None,
    };
    let events = proxied
        .state
        .core
        .db
        .run(move |c| audit::list(c, ids::ENV_LIVE, &filter, &page))
        .await
        .unwrap();
    let ips: Vec<_> = events.data.iter().map(|e| e.ip.clone().unwrap()).collect();
    assert_eq!(ips, ["198.51.100.7", "203.0.113.5"]);

    // Without a trusted proxy the header is the client's own words: ignored.
    let direct = TestApp::builder(backend)
        .with_settings(|s| {
            s.open_registration = true;
            s.rate_limits.registration = Limit::parse("1/min").unwrap();
        })
        .spawn()
        .await;
    assert_eq!(register(&direct, "203.0.113.5").await, 201);
    assert_eq!(register(&direct, "198.51.100.7").await, 429);
}

on_every_backend!(anonymous_protocol_requests_are_limited_per_ip);

/// `/oauth/authorize`, `/oauth/logout` and `/saml/*` take anonymous requests
/// that store state or cost XML work: each family has a per-IP budget, and
/// a refusal is the page with `Retry-After`.
async fn anonymous_protocol_requests_are_limited_per_ip(backend: Backend) {
    let app = TestApp::builder(backend)
        .with_settings(|s| {
            s.rate_limits.authorize = Limit::parse("2/min").unwrap();
            s.rate_limits.saml = Limit::parse("2/min").unwrap();
        })
        .spawn()
        .await;
    for family in [
        "/oauth/authorize?client_id=client_nope",
        "/saml/sso?SAMLRequest=x",
    ] {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let resp = app.client.get(app.url(family)).send().await.unwrap();
            statuses.push(resp.status().as_u16());
            if resp.status() == 429 {
                assert!(resp.headers().contains_key("retry-after"));
                assert!(resp.text().await.unwrap().contains("Too many attempts"));
            }
        }
        assert_eq!(statuses.last(), Some(&429), "{family}: {statuses:?}");
        assert!(
            statuses.iter().take(2).all(|s| *s != 429),
            "{family}: {statuses:?}"
        );
    }
    // Logout shares the authorize budget.
    let resp = app
        .client
        .get(app.url("/oauth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
}
