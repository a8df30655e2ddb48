use diesel::RunQueryDsl;
use serde_json::json;
use trusec_storage::audit;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    events_are_recorded_and_filtered,
    the_chain_detects_edits_and_deletions,
    an_unkeyed_chain_is_reanchored_never_rewritten,
    repeated_saml_refusals_are_audited_once_and_all_counted,
    the_retention_setting_prunes_old_events
);

async fn events_are_recorded_and_filtered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = &app.secret_key;
    let user = app.create_user("audit@example.com").await;
    let uid = user["id"].as_str().unwrap();
    let (_, s) = status_json(
        app.post("/v1/sessions", key, &json!({"user_id": uid}))
            .await,
    )
    .await;
    app.post("/v1/sessions/revoke", key, &json!({"token": s["token"]}))
        .await;
    app.patch(&format!("/v1/users/{uid}"), key, &json!({"name": "A"}))
        .await;
    app.post("/v1/api-keys", key, &json!({"type": "secret", "name": "k"}))
        .await;

    let (status, all) = status_json(app.get("/v1/audit-events", key).await).await;
    assert_eq!(status, 200);
    let types: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    // Newest first.
    assert_eq!(
        types,
        [
            "api_key.created",
            "user.updated",
            "session.revoked",
            "session.created",
            "user.created"
        ]
    );
    let first = &all["data"][4];
    assert_eq!(first["actor"]["type"], "api_key");
    assert!(first["actor"]["id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(first["ip"], "127.0.0.1");
    assert_eq!(first["outcome"], "success");
    assert_eq!(first["environment"], "env_live");
    assert_eq!(first["user_id"], uid);
    assert_eq!(first["hash"].as_str().unwrap().len(), 64);
    // Each event links to the one before it.
    assert_eq!(all["data"][0]["prev_hash"], all["data"][1]["hash"]);

    let (_, by_type) =
        status_json(app.get("/v1/audit-events?type=session.created", key).await).await;
    assert_eq!(by_type["data"].as_array().unwrap().len(), 1);
    let (_, by_user) = status_json(
        app.get(&format!("/v1/audit-events?user_id={uid}"), key)
            .await,
    )
    .await;
    assert_eq!(by_user["data"].as_array().unwrap().len(), 4);
    let later = (app.clock.now() + chrono::TimeDelta::seconds(1)).to_rfc3339();
    let (_, none) = status_json(
        app.get(
            &format!("/v1/audit-events?since={}", later.replace('+', "%2B")),
            key,
        )
        .await,
    )
    .await;
    assert_eq!(none["data"], json!([]));
    let (_, page1) = status_json(app.get("/v1/audit-events?limit=2", key).await).await;
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = status_json(
        app.get(&format!("/v1/audit-events?limit=2&after={cursor}"), key)
            .await,
    )
    .await;
    assert_eq!(page2["data"][0]["type"], "session.revoked");
    for bad in [
        "since=yesterday",
        "user_id=bob",
        "type=DROP%20TABLE",
        "limit=1000",
        "after=evt_01m8fd810xtm1pfz1r4ask08ad",
    ] {
        let (status, _) = status_json(app.get(&format!("/v1/audit-events?{bad}"), key).await).await;
        assert_eq!(status, 400, "{bad}");
    }
}

async fn the_chain_detects_edits_and_deletions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for i in 0..4 {
        app.create_user(&format!("c{i}@example.com")).await;
    }
    let report = app.state.core.verify_audit(None).await.unwrap();
    assert_eq!(report.checked, 4);
    assert_eq!(report.first_broken, None);
    // A chain begun with the key is keyed from its first event.
    assert_eq!(report.anchored_at, None);
    assert_eq!(report.head.seq, 4);

    // Someone with database access rewrites history.
    execute(&app, EDIT_EVENT_2).await;
    let report = app.state.core.verify_audit(None).await.unwrap();
    assert_eq!(report.checked, 1);
    let broken = report.first_broken.unwrap();
    assert_eq!(broken.seq, 2);
    assert!(broken.reason.contains("hash"), "{}", broken.reason);

    // Recomputing the whole chain from there on, as anyone with only
    // database access could with an unkeyed hash, does not help: without
    // the master key the first recomputed link does not verify.
    rehash_unkeyed(&app, 2..=i64::MAX).await;
    let broken = app
        .state
        .core
        .verify_audit(None)
        .await
        .unwrap()
        .first_broken
        .unwrap();
    assert_eq!(broken.seq, 2);
    assert!(broken.reason.contains("unkeyed"), "{}", broken.reason);

    // Deleting an event is detected too.
    execute(&app, "DELETE FROM audit_events WHERE seq = 1").await;
    let broken = app
        .state
        .core
        .verify_audit(None)
        .await
        .unwrap()
        .first_broken
        .unwrap();
    assert_eq!(broken.seq, 2);
    assert!(broken.reason.contains("missing"), "{}", broken.reason);
}

/// The stored rows, in chain order.
async fn rows(app: &TestApp) -> Vec<audit::AuditRow> {
    app.state
        .core
        .db
        .run(|conn| {
            use diesel::{QueryDsl, SelectableHelper};
            use trusec_storage::schema::audit_events;
            Ok(audit_events::table
                .select(audit::AuditRow::as_select())
                .order(audit_events::seq)
                .load(conn)?)
        })
        .await
        .unwrap()
}

/// Someone with database access changes an event's data.
const EDIT_EVENT_2: &str =
    "UPDATE audit_events SET data = '{\"email\":\"evil@example.com\"}' WHERE seq = 2";

/// Runs `sql` on the app's database behind its back.
pub(crate) async fn execute(app: &TestApp, sql: &'static str) {
    app.state
        .core
        .db
        .run(move |conn| {
            diesel::sql_query(sql)
                .execute(conn)
                .map_err(trusec_storage::StorageError::from)
        })
        .await
        .unwrap();
}

/// What an attacker with database access but no master key can do: rewrite
/// the hashes of the events in `seqs` as a plain SHA-256 chain.
async fn rehash_unkeyed(app: &TestApp, seqs: std::ops::RangeInclusive<i64>) {
    let all = rows(app).await;
    app.state
        .core
        .db
        .run(move |conn| {
            let mut prev = all
                .iter()
                .find(|r| r.seq == seqs.start() - 1)
                .map_or(audit::GENESIS_HASH.to_owned(), |r| r.hash.clone());
            for mut row in all.into_iter().filter(|r| seqs.contains(&r.seq)) {
                row.prev_hash = prev;
                row.hash = row.compute_hash(audit::Hashing::Unkeyed)?;
                diesel::sql_query(format!(
                    "UPDATE audit_events SET prev_hash = '{}', hash = '{}' WHERE seq = {}",
                    row.prev_hash, row.hash, row.seq
                ))
                .execute(conn)?;
                prev = row.hash;
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// A chain written before the audit key (plain SHA-256) is checked and
/// re-anchored by one checkpoint event on the next start; its rows are
/// never rewritten, and `verify` checks them unkeyed, the rest keyed. Its
/// unkeyed part cannot be rewritten afterwards either: the keyed checkpoint
/// names its head.
async fn an_unkeyed_chain_is_reanchored_never_rewritten(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    for i in 0..3 {
        first.create_user(&format!("old{i}@example.com")).await;
    }
    // As the previous release wrote it.
    rehash_unkeyed(&first, 1..=i64::MAX).await;
    let old = rows(&first).await;
    assert_eq!(old.len(), 3);
    let report = first.state.core.verify_audit(None).await.unwrap();
    assert!(
        report
            .first_broken
            .unwrap()
            .reason
            .contains("never anchored")
    );
    first.stop().await;

    let second = first.another_instance().await;
    second.create_user("new@example.com").await;
    let report = second.state.core.verify_audit(None).await.unwrap();
    assert_eq!(report.first_broken, None, "{report:?}");
    assert_eq!(report.anchored_at, Some(4));
    assert_eq!(report.checked, 5);
    let now = rows(&second).await;
    for (before, after) in old.iter().zip(&now) {
        assert_eq!(before.hash, after.hash, "old rows are never rewritten");
    }
    let checkpoint = &now[3];
    assert_eq!(checkpoint.event_type, audit::EventType::AuditChainAnchored);
    assert_eq!(checkpoint.prev_hash, old[2].hash);
    let data: serde_json::Value = serde_json::from_str(&checkpoint.data).unwrap();
    assert_eq!(data["previous_head"], format!("3:{}", old[2].hash));
    assert_eq!(data["previous_chain"], "verified");
    assert_eq!(data["scheme"], "hmac-sha256");
    // The checkpoint shows up in the log like any event, in no environment.
    assert_eq!(checkpoint.environment_id, None);

    // A third start anchors nothing more.
    second.stop().await;
    let third = second.another_instance().await;
    assert_eq!(rows(&third).await.len(), 5);

    // Rewriting an old event and its unkeyed successors breaks the
    // checkpoint's link.
    execute(&third, EDIT_EVENT_2).await;
    rehash_unkeyed(&third, 2..=3).await;
    let broken = third
        .state
        .core
        .verify_audit(None)
        .await
        .unwrap()
        .first_broken
        .unwrap();
    assert_eq!(broken.seq, 4);
    assert!(broken.reason.contains("prev_hash"), "{}", broken.reason);
}

/// Contract: a refusal that repeats (the same address, reason and minute)
/// is audited once and counted in metrics. Fifty bad SAML requests from one
/// address: one `saml.request.refused` event, fifty in the metric.
async fn repeated_saml_refusals_are_audited_once_and_all_counted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = app.state.core.verify_audit(None).await.unwrap().checked;
    for _ in 0..50 {
        let resp = app
            .client
            .get(app.url("/saml/sso?SAMLRequest=%25%25%25"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
    }
    // A refusal before the SP is known belongs to no environment (so
    // `/v1/audit-events` does not list it): count the whole chain.
    let after = app.state.core.verify_audit(None).await.unwrap().checked;
    assert_eq!(after - before, 1);
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains(r#"trusec_refusals_total{kind="saml_request",reason="encoding"} 50"#),
        "{metrics}"
    );
    // Another reason from the same address is audited on its own.
    let resp = app
        .client
        .get(app.url("/saml/sso?RelayState=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let last = rows(&app).await.pop().unwrap();
    assert_eq!(last.event_type, audit::EventType::SamlRequestRefused);
    let data: serde_json::Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(data["reason"], "missing");
    assert_eq!(last.ip.as_deref(), Some("127.0.0.1"));
}

/// With `TRUSEC_AUDIT_RETENTION`, an instance prunes (at start, then
/// hourly) the events older than the retention, and the chain verifies.
async fn the_retention_setting_prunes_old_events(backend: Backend) {
    let app = TestApp::spawn(backend.clone()).await;
    app.create_user("old1@example.com").await;
    app.create_user("old2@example.com").await;
    app.clock.advance(chrono::TimeDelta::days(3));
    app.create_user("new@example.com").await;
    let pruning = TestApp::builder(backend)
        .with_clock(app.clock.clone())
        .sharing(&app)
        .with_settings(|s| s.audit_retention = Some(std::time::Duration::from_secs(2 * 86_400)))
        .spawn()
        .await;
    let mut report = app.state.core.verify_audit(None).await.unwrap();
    for _ in 0..200 {
        if report.pruned_through.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        report = app.state.core.verify_audit(None).await.unwrap();
    }
    assert_eq!(report.first_broken, None, "{report:?}");
    assert_eq!(
        report.pruned_through.map(|h| h.seq),
        Some(2),
        "the two old events went"
    );
    let (_, events) = status_json(app.get("/v1/audit-events", &app.secret_key).await).await;
    let emails: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["data"]["email"].as_str())
        .collect();
    assert_eq!(emails, ["new@example.com"]);
    pruning.stop().await;
}
