//! Security policies over HTTP (issue 14 item 5): `GET/PATCH /v1/policies`
//! per environment, by API key or by an access token with
//! `read:policies` / `write:policies`, audited; the password rules hold
//! wherever a password is set (`/v1/users`, the console's first-run page
//! shares the same check), on every instance at once.

use crate::console::{sign_in, user};
use crate::oauth_support::{confidential_client, hidden, new_browser, token};
use serde_json::{Value, json};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    policies_have_defaults_and_change_in_part,
    password_rules_hold_where_passwords_are_set,
    policies_belong_to_an_environment_and_are_scoped,
    a_change_holds_on_every_instance_at_once,
    the_console_shows_and_changes_the_policy,
);

async fn policy(app: &TestApp, key: &str) -> (u16, Value) {
    status_json(app.get("/v1/policies", key).await).await
}

async fn patch(app: &TestApp, key: &str, body: Value) -> (u16, Value) {
    status_json(app.patch("/v1/policies", key, &body).await).await
}

async fn create_user(app: &TestApp, key: &str, password: &str) -> (u16, Value) {
    let email = format!(
        "u{}@example.com",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    status_json(
        app.post(
            "/v1/users",
            key,
            &json!({"email": email, "password": password}),
        )
        .await,
    )
    .await
}

async fn policies_have_defaults_and_change_in_part(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, p) = policy(&app, &app.secret_key).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        p,
        json!({"password": {"min_length": 8, "refuse_common": true},
               "mfa": {"mode": "optional", "required_for_admins": false}})
    );
    let (status, p) = patch(
        &app,
        &app.secret_key,
        json!({"password": {"min_length": 12}}),
    )
    .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        p["password"],
        json!({"min_length": 12, "refuse_common": true})
    );
    // Another member alone leaves the first as it was.
    let (_, p) = patch(
        &app,
        &app.secret_key,
        json!({"password": {"refuse_common": false}}),
    )
    .await;
    assert_eq!(
        p["password"],
        json!({"min_length": 12, "refuse_common": false})
    );
    assert_eq!(policy(&app, &app.secret_key).await.1, p);
    // Out of bounds (422), of the wrong type or unknown (400): refused,
    // nothing changed.
    for (body, status) in [
        (json!({"password": {"min_length": 7}}), 422),
        (json!({"password": {"min_length": 65}}), 422),
        (json!({"password": {"min_length": "twelve"}}), 400),
        (json!({"password": {"max_length": 20}}), 400),
        (json!({"mfa": "required"}), 400),
        (json!({"mfa": {"mode": "sometimes"}}), 400),
    ] {
        let (got, e) = patch(&app, &app.secret_key, body.clone()).await;
        assert_eq!(got, status, "{body}: {e}");
        assert!(e["error"]["message"].is_string(), "{e}");
    }
    assert_eq!(policy(&app, &app.secret_key).await.1, p);
    // Each change is audited with the policy before and after.
    let (_, events) = status_json(
        app.get("/v1/audit-events?type=policy.updated", &app.secret_key)
            .await,
    )
    .await;
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["data"]["before"]["password"]["min_length"], 12);
    assert_eq!(
        events[0]["data"]["after"]["password"]["refuse_common"],
        false
    );
}

async fn password_rules_hold_where_passwords_are_set(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.secret_key.clone();
    // By default the most common passwords are refused, in any case.
    for common in ["password123", "Password1234", "qwertyuiop", "iloveyou1"] {
        let (status, e) = create_user(&app, &key, common).await;
        assert_eq!(status, 422, "{common}: {e}");
        assert_eq!(e["error"]["param"], "password", "{e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("most common"),
            "{e}"
        );
    }
    assert_eq!(
        create_user(&app, &key, "correct horse battery").await.0,
        201
    );
    // A longer minimum: a new password must meet it, on create and on change.
    patch(&app, &key, json!({"password": {"min_length": 24}})).await;
    let (status, e) = create_user(&app, &key, "correct horse battery").await;
    assert_eq!(status, 422, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at least 24"),
        "{e}"
    );
    let (status, user) = create_user(&app, &key, "correct horse battery staple").await;
    assert_eq!(status, 201, "{user}");
    let path = format!("/v1/users/{}", user["id"].as_str().unwrap());
    let (status, e) = status_json(
        app.patch(&path, &key, &json!({"password": "short but mine"}))
            .await,
    )
    .await;
    assert_eq!(status, 422, "{e}");
    // A user without a password is not affected.
    let (status, _) = status_json(
        app.post("/v1/users", &key, &json!({"email": "nopass@example.com"}))
            .await,
    )
    .await;
    assert_eq!(status, 201);
    // Turned off, a common password of the right length is accepted.
    patch(
        &app,
        &key,
        json!({"password": {"min_length": 8, "refuse_common": false}}),
    )
    .await;
    assert_eq!(create_user(&app, &key, "password123").await.0, 201);
}

async fn policies_belong_to_an_environment_and_are_scoped(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // The test environment has its own policy.
    patch(&app, &app.test_key, json!({"password": {"min_length": 24}})).await;
    assert_eq!(
        policy(&app, &app.secret_key).await.1["password"]["min_length"],
        8
    );
    assert_eq!(
        policy(&app, &app.test_key).await.1["password"]["min_length"],
        24
    );
    assert_eq!(
        create_user(&app, &app.secret_key, "correct horse battery")
            .await
            .0,
        201
    );
    assert_eq!(
        create_user(&app, &app.test_key, "correct horse battery")
            .await
            .0,
        422
    );
    // An access token reads with read:policies and writes with
    // write:policies only.
    let client =
        confidential_client(&app, json!({"scopes": ["read:policies", "write:policies"]})).await;
    let grant = |scope: &'static str| {
        let client = &client;
        let app = &app;
        async move {
            let (status, t) = token(
                app,
                client,
                &[("grant_type", "client_credentials"), ("scope", scope)],
            )
            .await;
            assert_eq!(status, 200, "{t}");
            t["access_token"].as_str().unwrap().to_owned()
        }
    };
    let reader = grant("read:policies").await;
    assert_eq!(policy(&app, &reader).await.0, 200);
    let body = json!({"password": {"min_length": 10}});
    assert_eq!(patch(&app, &reader, body.clone()).await.0, 403);
    let writer = grant("write:policies").await;
    assert_eq!(patch(&app, &writer, body).await.0, 200);
    assert_eq!(policy(&app, &writer).await.0, 403);
    // A public key reads nothing.
    let (status, _) = policy(&app, &app.public_key).await;
    assert_eq!(status, 403);
}

async fn a_change_holds_on_every_instance_at_once(backend: Backend) {
    let a = TestApp::spawn(backend.clone()).await;
    let b = TestApp::builder(backend)
        .with_clock(a.clock.clone())
        .sharing(&a)
        .spawn()
        .await;
    assert_eq!(
        create_user(&b, &b.secret_key, "correct horse battery")
            .await
            .0,
        201
    );
    patch(&a, &a.secret_key, json!({"password": {"min_length": 30}})).await;
    assert_eq!(
        create_user(&b, &b.secret_key, "correct horse battery")
            .await
            .0,
        422
    );
    assert_eq!(
        policy(&b, &b.secret_key).await.1["password"]["min_length"],
        30
    );
}

async fn the_console_shows_and_changes_the_policy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    user(&app, &app.secret_key, "admin@example.com", true).await;
    let browser = new_browser();
    let resp = sign_in(&app, &browser, "", "admin@example.com").await;
    assert_eq!(resp.status(), 303);
    let html = browser
        .get(app.url("/console/policies"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("name=\"min_length\"") && html.contains("value=\"8\""),
        "{html}"
    );
    let csrf = hidden(&html, "csrf_token");
    let post = |form: Vec<(&'static str, String)>| {
        let browser = browser.clone();
        let url = app.url("/console/policies");
        async move {
            let resp = browser.post(url).form(&form).send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    // Out of bounds: shown next to the field, nothing changed.
    let (status, html) = post(vec![
        ("csrf_token", csrf.clone()),
        ("min_length", "5".into()),
    ])
    .await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("min_length-error"), "{html}");
    let (status, html) = post(vec![
        ("csrf_token", csrf.clone()),
        ("min_length", "ten".into()),
    ])
    .await;
    assert_eq!(status, 422, "{html}");
    assert_eq!(
        policy(&app, &app.secret_key).await.1["password"]["min_length"],
        8
    );
    // Saved: the checkbox left unticked turns the breached list off.
    let (status, html) = post(vec![
        ("csrf_token", csrf.clone()),
        ("min_length", "14".into()),
        ("mfa_mode", "optional".into()),
        ("mfa_admins", "on".into()),
    ])
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Saved."), "{html}");
    assert_eq!(
        policy(&app, &app.secret_key).await.1,
        json!({"password": {"min_length": 14, "refuse_common": false},
               "mfa": {"mode": "optional", "required_for_admins": true}})
    );
    // The administrator is the actor of the audited change.
    let (_, events) = status_json(
        app.get("/v1/audit-events?type=policy.updated", &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(events["data"][0]["actor"]["type"], "user", "{events}");
    // CSRF.
    let (status, _) = post(vec![
        ("csrf_token", "x".into()),
        ("min_length", "20".into()),
    ])
    .await;
    assert_eq!(status, 403);
}
