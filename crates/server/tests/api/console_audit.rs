//! The console's audit log page (issue #16): filtered by type, user,
//! outcome and time, paged, linking to the objects; a bad filter said
//! plainly; the chain verified from the page, and a tampered one caught.
//! `/v1/audit-events?outcome=` filters the same way.

use crate::console::{sign_in, user};
use crate::oauth_support::{hidden, new_browser, password_login};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(audit_log_filters_links_and_verifies);

async fn page(browser: &reqwest::Client, url: &str) -> (u16, String) {
    let resp = browser.get(url).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn audit_log_filters_links_and_verifies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = user(&app, &app.secret_key, "admin@example.com", true).await;
    let admin_id = admin["id"].as_str().unwrap();
    let browser = new_browser();
    assert_eq!(
        sign_in(&app, &browser, "", "admin@example.com")
            .await
            .status(),
        303
    );
    // A failed sign-in to filter for.
    let resp = password_login(&app, &new_browser(), "admin@example.com", "wrong password!").await;
    assert_eq!(resp.status(), 401);

    let (status, html) = page(&browser, &app.url("/console/audit")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("<td>user.created") && html.contains("<td>user.login.succeeded"),
        "{html}"
    );
    assert!(
        html.contains(&format!("/console/users/{admin_id}")),
        "links the user"
    );
    let (_, html) = page(&browser, &app.url("/console/audit?type=user.created")).await;
    assert!(
        html.contains("<td>user.created") && !html.contains("<td>user.login.succeeded"),
        "{html}"
    );
    let (_, html) = page(&browser, &app.url("/console/audit?outcome=failure")).await;
    assert!(
        html.contains("<td>user.login.failed") && !html.contains("<td>user.created"),
        "{html}"
    );
    let (_, html) = page(
        &browser,
        &app.url(&format!(
            "/console/audit?user_id={admin_id}&type=user.login.succeeded"
        )),
    )
    .await;
    assert!(html.contains("<td>user.login.succeeded"), "{html}");
    let (_, html) = page(&browser, &app.url("/console/audit?since=2099-01-01T00:00")).await;
    assert!(html.contains("No events match."), "{html}");
    let (status, html) = page(&browser, &app.url("/console/audit?type=nope")).await;
    assert_eq!(status, 400);
    assert!(html.contains("must be an event type"), "{html}");
    // The same outcome filter over /v1.
    let (status, body) = status_json(
        app.get("/v1/audit-events?outcome=failure", &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["outcome"] == "failure")
    );
    assert!(!body["data"].as_array().unwrap().is_empty());
    let (status, _) = status_json(
        app.get("/v1/audit-events?outcome=maybe", &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(status, 400);
    // Paging: 50 a page, an older link that continues.
    for n in 0..55 {
        let (status, _) = status_json(
            app.post(
                "/v1/users",
                &app.secret_key,
                &serde_json::json!({"email": format!("u{n}@example.com")}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 201);
    }
    let (_, html) = page(&browser, &app.url("/console/audit?type=user.created")).await;
    let older = html
        .split("/console/audit?")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert!(
        older.contains("after=evt_") && older.contains("type=user.created"),
        "{older}"
    );
    let (_, html) = page(&browser, &app.url(&format!("/console/audit?{older}"))).await;
    assert!(
        html.contains("admin@example.com") || html.contains("user.created"),
        "{html}"
    );
    // Verified from the page, then tampered with and caught.
    let (_, html) = page(&browser, &app.url("/console/audit")).await;
    let csrf = hidden(&html, "csrf_token");
    let verify = || async {
        browser
            .post(app.url("/console/audit/verify"))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert!(verify().await.contains("The chain verifies"));
    app.state
        .core
        .db
        .run(|conn| {
            use diesel::RunQueryDsl;
            diesel::sql_query("UPDATE audit_events SET data = '{}' WHERE seq = 2")
                .execute(conn)
                .map_err(trusec_storage::StorageError::backend)?;
            Ok(())
        })
        .await
        .unwrap();
    assert!(verify().await.contains("The chain is broken at event 2"));
}

on_every_backend!(dashboard_counts_from_the_metrics_counters);

/// The dashboard counts what `/metrics` counts: the console's own sign-in
/// (a sign-in and a token) and a failed sign-in show in this hour's row.
async fn dashboard_counts_from_the_metrics_counters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    user(&app, &app.secret_key, "admin@example.com", true).await;
    let browser = new_browser();
    assert_eq!(
        sign_in(&app, &browser, "", "admin@example.com")
            .await
            .status(),
        303
    );
    let resp = password_login(&app, &new_browser(), "admin@example.com", "wrong password!").await;
    assert_eq!(resp.status(), 401);
    let (status, html) = page(&browser, &app.url("/console/dashboard")).await;
    assert_eq!(status, 200);
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("event_type=\"user.login.failed\""),
        "{metrics}"
    );
    let current = html
        .split("<tbody>")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    let cells: Vec<&str> = current
        .split("<td>")
        .skip(2)
        .map(|c| c.split("</td>").next().unwrap())
        .collect();
    assert_eq!(cells, ["1", "1", "1", "0", "0"], "{current}");
    assert!(html.contains("<dt>Sign-ins</dt><dd>1</dd>"), "{html}");
}
