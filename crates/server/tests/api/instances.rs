//! Issue #12: three instances on one PostgreSQL and one Redis act as one
//! deployment behind a balancer without sticky sessions — a session made on
//! one verifies on the others, a revoke on one is seen at once by all, rate
//! limits are one budget, a signing-key rotation on one is used by all, a
//! sign-in started on one completes on the others, and the periodic key
//! rotation happens once however many instances run it.

use crate::oauth_support::{
    browse_across, confidential_client, introspect, jwks, make_user, pkce, query, redeem, token,
};
use serde_json::{Value, json};
use trusec_storage::audit::{self, AuditFilter, EventType};
use trusec_storage::rate_limit::Limit;
use trusec_storage::{PageRequest, ids};
use trusec_testkit::{Backend, TestApp, on_shared_backend, status_json};

on_shared_backend!(three_instances_act_as_one, periodic_rotation_happens_once);

/// Three instances over one database, one Redis prefix and one clock, with
/// a small management budget to see that it is shared.
async fn three(backend: Backend) -> [TestApp; 3] {
    let limited = |s: &mut trusec_server::settings::Settings| {
        s.rate_limits.management = Limit::parse("40/min").unwrap();
    };
    let a = TestApp::builder(backend.clone())
        .with_settings(limited)
        .spawn()
        .await;
    let more = || {
        TestApp::builder(backend.clone())
            .with_settings(limited)
            .with_clock(a.clock.clone())
            .sharing(&a)
    };
    let b = more().spawn().await;
    let c = more().spawn().await;
    [a, b, c]
}

async fn verify(app: &TestApp, token: &str) -> bool {
    let (status, v) = status_json(
        app.post(
            "/v1/sessions/verify",
            &app.secret_key,
            &json!({"token": token}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["valid"] == true
}

fn kid(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}

async fn three_instances_act_as_one(backend: Backend) {
    let apps = three(backend).await;
    let [a, b, c] = &apps;

    // A session made on A verifies on B and C (and is cached there); ended
    // on B, it is refused at once by A and C.
    let user = make_user(a, "ada@example.com").await;
    let (status, s) = status_json(
        a.post(
            "/v1/sessions",
            &a.secret_key,
            &json!({"user_id": user["id"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{s}");
    let session = s["token"].as_str().unwrap();
    for app in &apps {
        assert!(verify(app, session).await);
    }
    let (status, r) = status_json(
        b.post(
            "/v1/sessions/revoke",
            &b.secret_key,
            &json!({"token": session}),
        )
        .await,
    )
    .await;
    assert_eq!((status, r["revoked"].clone()), (200, json!(true)), "{r}");
    for app in &apps {
        assert!(!verify(app, session).await, "a revoked session verified");
    }

    // A sign-in started on A, its pages served by B and C in turn, the code
    // redeemed on C, the refresh on B: no instance needs to have seen the
    // steps before.
    let client = confidential_client(a, json!({})).await;
    let (verifier, challenge) = pkce();
    let start = crate::oauth_support::authorize_url(
        a,
        &client.id,
        &[
            ("scope", "openid email offline_access"),
            ("state", "st"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let browser = crate::oauth_support::new_browser();
    let trip = browse_across(&[a, b, c], &browser, &start, "ada@example.com", true).await;
    assert!(trip.saw_login && trip.saw_consent, "{trip:?}");
    let code = query(&trip.callback).remove("code").unwrap();
    let (status, tokens) = redeem(c, &client, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, refreshed) = token(
        b,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    // The rotated-out refresh token is refused everywhere (reuse detection
    // ends the family, RFC 9700 §4.14.2).
    let (status, _) = token(
        a,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(status, 400);
    // The code is spent for every instance (its reuse also ends what it
    // gave, RFC 6749 §4.1.2).
    for app in &apps {
        let (status, again) = redeem(app, &client, &code, &verifier).await;
        assert_eq!(
            (status, again["error"].clone()),
            (400, json!("invalid_grant"))
        );
    }

    // A signing-key rotation on A: A signs with the new key, which B and C
    // already publish (it was the announced next key) and accept.
    let before = client_credentials(a, &client).await;
    let (status, rotated) = status_json(
        a.post("/v1/signing-keys/rotate", &a.secret_key, &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let after = client_credentials(a, &client).await;
    assert_ne!(kid(&before), kid(&after), "A signs with the new key");
    for app in &apps {
        let set = jwks(app, "/.well-known/jwks.json").await;
        assert!(
            set.find(&kid(&after)).is_some(),
            "{} publishes it",
            app.address
        );
        assert!(set.find(&kid(&before)).is_some(), "and still the old one");
        assert_eq!(introspect(app, &client, &after).await["active"], true);
        assert_eq!(introspect(app, &client, &before).await["active"], true);
    }

    // One management budget for the deployment: 40 a minute for this key,
    // whichever instance answers.
    let mut answered = Vec::new();
    for i in 0..45 {
        let app = &apps[i % 3];
        answered.push(
            app.get("/v1/users?limit=1", &a.secret_key)
                .await
                .status()
                .as_u16(),
        );
    }
    let ok = answered.iter().filter(|s| **s == 200).count();
    let limited = answered.iter().filter(|s| **s == 429).count();
    assert_eq!(ok + limited, 45, "{answered:?}");
    assert!(
        limited >= 5 && ok <= 40,
        "the budget is shared, not per instance: {answered:?}"
    );
}

async fn client_credentials(app: &TestApp, client: &crate::oauth_support::TestClient) -> String {
    let (status, t) = token(
        app,
        client,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read:users"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{t}");
    t["access_token"].as_str().unwrap().to_owned()
}

/// The 90-day rotation is due on all three at once: their maintenance
/// steps race and the keys rotate once (one `signing_key.rotated` event per
/// environment, one current key per algorithm).
async fn periodic_rotation_happens_once(backend: Backend) {
    let apps = three(backend).await;
    let [a, b, c] = &apps;
    let live = |app: &TestApp| {
        app.state
            .environments
            .first()
            .unwrap()
            .oauth
            .keyring
            .clone()
    };
    let published_before = published(a).await;
    a.clock.advance(chrono::TimeDelta::days(91));
    let (ka, kb, kc) = (live(a), live(b), live(c));
    let (core_a, core_b, core_c) = (
        a.state.core.clone(),
        b.state.core.clone(),
        c.state.core.clone(),
    );
    tokio::join!(
        ka.maintain(&core_a),
        kb.maintain(&core_b),
        kc.maintain(&core_c)
    );
    // Straight from the database: the API keys expired with the 91 days.
    let filter = AuditFilter {
        event_type: Some(EventType::SigningKeyRotated),
        ..AuditFilter::default()
    };
    let page = PageRequest {
        limit: 50,
        after: None,
    };
    let events = a
        .state
        .core
        .db
        .run(move |c| audit::list(c, ids::ENV_LIVE, &filter, &page))
        .await
        .unwrap()
        .data;
    let scheduled: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e.data).unwrap())
        .filter(|d| d["reason"] == "schedule")
        .collect();
    // Each algorithm rotated once, by whichever instance took the lock
    // first (not necessarily the same one for every algorithm).
    let mut algorithms: Vec<String> = scheduled
        .iter()
        .flat_map(|d| d["algorithms"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let rotations = algorithms.len();
    algorithms.sort();
    algorithms.dedup();
    assert_eq!(
        algorithms.len(),
        rotations,
        "an algorithm rotated twice: {scheduled:?}"
    );
    assert_eq!(
        rotations, 3,
        "ES256, RS256 and EdDSA each once: {scheduled:?}"
    );
    // One more key per algorithm is published (the new next), not three.
    let algorithms = rotations;
    for app in &apps {
        assert_eq!(
            published(app).await,
            published_before + algorithms,
            "{} publishes the same keys",
            app.address
        );
    }
    // The hourly audit prune, due on all three at once: one prune, and the
    // chain still verifies from its new start.
    a.clock.advance(chrono::TimeDelta::minutes(1));
    let before = a.clock.now_naive();
    let (pa, pb, pc) = tokio::join!(
        core_a.prune_audit(before),
        core_b.prune_audit(before),
        core_c.prune_audit(before)
    );
    // One prune of what is due. A second one only takes what a writer that
    // read the clock before the advance appended meanwhile (the instances'
    // own maintenance runs on): never the same events again.
    let mut throughs: Vec<i64> = [pa, pb, pc]
        .into_iter()
        .map(Result::unwrap)
        .filter_map(|p| match p {
            audit::Pruning::Pruned { through, .. } => Some(through.seq),
            audit::Pruning::Nothing | audit::Pruning::Refused(_) => None,
        })
        .collect();
    assert!(!throughs.is_empty(), "the due prune happened");
    let pruned = throughs.len();
    throughs.sort_unstable();
    throughs.dedup();
    assert_eq!(throughs.len(), pruned, "a part of the log was pruned twice");
    let report = core_b.verify_audit(None).await.unwrap();
    assert!(report.first_broken.is_none(), "{report:?}");
    assert!(report.pruned_through.is_some(), "{report:?}");
}

/// How many keys an instance's JWKS publishes.
async fn published(app: &TestApp) -> usize {
    jwks(app, "/.well-known/jwks.json").await.keys.len()
}
