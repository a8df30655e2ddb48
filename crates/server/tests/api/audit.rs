use diesel::RunQueryDsl;
use serde_json::json;
use trusec_storage::audit;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    events_are_recorded_and_filtered,
    the_chain_detects_edits_and_deletions
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
    let report = app.state.core.db.run(audit::verify_chain).await.unwrap();
    assert_eq!(report.checked, 4);
    assert_eq!(report.first_broken, None);

    // Someone with database access rewrites history.
    app.state
        .core
        .db
        .run(|conn| {
            diesel::sql_query(
                "UPDATE audit_events SET data = '{\"email\":\"evil@example.com\"}' WHERE seq = 2",
            )
            .execute(conn)
            .map_err(trusec_storage::StorageError::from)
        })
        .await
        .unwrap();
    let report = app.state.core.db.run(audit::verify_chain).await.unwrap();
    assert_eq!(report.checked, 1);
    let broken = report.first_broken.unwrap();
    assert_eq!(broken.seq, 2);
    assert!(broken.reason.contains("hash"), "{}", broken.reason);

    // Recomputing that row's hash does not help: the next link breaks.
    app.state
        .core
        .db
        .run(|conn| {
            let row: audit::AuditRow = diesel::QueryDsl::filter(
                trusec_storage::schema::audit_events::table,
                diesel::ExpressionMethods::eq(trusec_storage::schema::audit_events::seq, 2),
            )
            .first(conn)?;
            let forged = row.compute_hash()?;
            diesel::sql_query(format!(
                "UPDATE audit_events SET hash = '{forged}' WHERE seq = 2"
            ))
            .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    let broken = app
        .state
        .core
        .db
        .run(audit::verify_chain)
        .await
        .unwrap()
        .first_broken
        .unwrap();
    assert_eq!(broken.seq, 3);
    assert!(broken.reason.contains("prev_hash"));

    // Deleting an event is detected too.
    app.state
        .core
        .db
        .run(|conn| {
            diesel::sql_query("DELETE FROM audit_events WHERE seq = 1")
                .execute(conn)
                .map_err(trusec_storage::StorageError::from)
        })
        .await
        .unwrap();
    let broken = app
        .state
        .core
        .db
        .run(audit::verify_chain)
        .await
        .unwrap()
        .first_broken
        .unwrap();
    assert_eq!(broken.seq, 2);
    assert!(broken.reason.contains("missing"));
}
