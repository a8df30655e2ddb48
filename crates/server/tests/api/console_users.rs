//! The console's Users page (issue #16): search, create with field errors,
//! edit, a new password, sessions ended (seen at once by
//! `/v1/sessions/verify`), the factor reset, consent taken back, delete,
//! the administrator's own account protected, CSRF, environments apart.

use crate::console::{sign_in, user};
use crate::oauth_support::{PASSWORD, hidden, new_browser};
use serde_json::{Value, json};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    search_create_and_edit,
    sessions_factors_consents_and_delete,
    own_account_and_other_environments,
);

async fn admin_browser(app: &TestApp) -> (reqwest::Client, String) {
    let admin = user(app, &app.secret_key, "admin@example.com", true).await;
    let browser = new_browser();
    let resp = sign_in(app, &browser, "", "admin@example.com").await;
    assert_eq!(resp.status(), 303);
    (browser, admin["id"].as_str().unwrap().to_owned())
}

async fn page(browser: &reqwest::Client, url: &str) -> (u16, String) {
    let resp = browser.get(url).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn post(browser: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, String) {
    let resp = browser.post(url).form(form).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn v1_user(app: &TestApp, id: &str) -> (u16, Value) {
    status_json(app.get(&format!("/v1/users/{id}"), &app.secret_key).await).await
}

/// The user id a page links to.
fn user_id(html: &str) -> String {
    let start = html.find("<code>user_").unwrap() + "<code>".len();
    html[start..].split('<').next().unwrap().to_owned()
}

async fn search_create_and_edit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (browser, _) = admin_browser(&app).await;
    let (status, html) = page(&browser, &app.url("/console/users")).await;
    assert_eq!(status, 200);
    assert!(html.contains("admin@example.com"), "{html}");
    let csrf = hidden(&html, "csrf_token");
    let create = |email: &'static str, password: &'static str| {
        vec![
            ("csrf_token", csrf.clone()),
            ("email", email.to_owned()),
            ("name", "Ada Lovelace".to_owned()),
            ("password", password.to_owned()),
            ("groups", "engineering, staff".to_owned()),
        ]
    };
    // CSRF refused; a bad field marked, the password never sent back.
    let resp = browser
        .post(app.url("/console/users"))
        .form(&[("csrf_token", "x"), ("email", "ada@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = browser
        .post(app.url("/console/users"))
        .form(&create("ada@example.com", "short"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"password-error\""), "{html}");
    assert!(html.contains("value=\"ada@example.com\""));
    assert!(
        !html.contains("value=\"short\""),
        "the password is not echoed"
    );
    // Created: the same user over /v1, with a password that signs in.
    let resp = browser
        .post(app.url("/console/users"))
        .form(&create("ada@example.com", PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let html = resp.text().await.unwrap();
    let id = user_id(&html);
    let (status, got) = v1_user(&app, &id).await;
    assert_eq!(status, 200);
    assert_eq!(got["groups"], json!(["engineering", "staff"]));
    assert_eq!(got["has_password"], true);
    // Taken e-mail: said next to the field.
    let (status, html) = post(
        &browser,
        &app.url("/console/users"),
        &create("ada@example.com", PASSWORD)
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("already exists"), "{html}");
    // Search: by name and e-mail, case folded.
    let (_, html) = page(&browser, &app.url("/console/users?q=LOVELACE")).await;
    assert!(
        html.contains("ada@example.com") && !html.contains(">admin@example.com</a>"),
        "{html}"
    );
    let (_, html) = page(&browser, &app.url("/console/users?q=nobody")).await;
    assert!(html.contains("No user matches"), "{html}");
    // Edited, audited with the administrator as the actor.
    let (status, html) = post(
        &browser,
        &app.url(&format!("/console/users/{id}")),
        &[
            ("csrf_token", &csrf),
            ("email", "ada@example.com"),
            ("name", "Ada King"),
            ("given_name", "Ada"),
            ("family_name", ""),
            ("groups", "staff"),
            ("password", ""),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Saved."));
    let (_, got) = v1_user(&app, &id).await;
    assert_eq!(got["name"], "Ada King");
    assert_eq!(got["given_name"], "Ada");
    assert_eq!(got["family_name"], Value::Null);
    assert_eq!(got["groups"], json!(["staff"]));
    let (_, events) = status_json(
        app.get("/v1/audit-events?type=user.updated", &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(events["data"][0]["actor"]["type"], "user", "{events}");
    // A bad e-mail in the edit form: marked, nothing changed.
    let (status, html) = post(
        &browser,
        &app.url(&format!("/console/users/{id}")),
        &[
            ("csrf_token", &csrf),
            ("email", "not an email"),
            ("groups", "staff"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("id=\"email-error\""), "{html}");
    assert_eq!(v1_user(&app, &id).await.1["email"], "ada@example.com");
}

async fn sessions_factors_consents_and_delete(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (browser, _) = admin_browser(&app).await;
    let ada = user(&app, &app.secret_key, "ada@example.com", false).await;
    let id = ada["id"].as_str().unwrap().to_owned();
    // Three sessions made over /v1.
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let (status, s) = status_json(
            app.post(
                "/v1/sessions",
                &app.secret_key,
                &json!({"user_id": id, "expires_in": "1h"}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 201, "{s}");
        tokens.push((
            s["id"].as_str().unwrap().to_owned(),
            s["token"].as_str().unwrap().to_owned(),
        ));
    }
    let verify = |token: String| {
        let app = &app;
        async move {
            let (_, v) = status_json(
                app.post(
                    "/v1/sessions/verify",
                    &app.secret_key,
                    &json!({"token": token}),
                )
                .await,
            )
            .await;
            v["valid"].as_bool().unwrap()
        }
    };
    let (_, html) = page(&browser, &app.url(&format!("/console/users/{id}"))).await;
    let csrf = hidden(&html, "csrf_token");
    assert!(
        html.contains(&tokens[0].0) && html.contains("through the API"),
        "{html}"
    );
    // One ended: at once, for /v1 too; the others live.
    let (status, html) = post(
        &browser,
        &app.url(&format!("/console/users/{id}/sessions/{}/end", tokens[0].0)),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(!verify(tokens[0].1.clone()).await);
    assert!(verify(tokens[1].1.clone()).await);
    // A session id of nobody, or of another user: not found.
    let (status, _) = post(
        &browser,
        &app.url(&format!(
            "/console/users/{id}/sessions/sess_01m8v8kjmc40y5pjtvh33ydz7q/end"
        )),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(status, 404);
    // All ended.
    let (status, html) = post(
        &browser,
        &app.url(&format!("/console/users/{id}/sessions/end-all")),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("2 session(s) ended."), "{html}");
    assert!(!verify(tokens[1].1.clone()).await && !verify(tokens[2].1.clone()).await);
    // The factor reset (none enrolled: nothing to show, but the route works
    // and is audited only per removed factor).
    let (status, _) = post(
        &browser,
        &app.url(&format!("/console/users/{id}/factors/reset")),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(status, 200);
    // A consent, taken back.
    let client = crate::oauth_support::public_client(&app).await;
    crate::oauth_support::login_and_redeem_as(
        &app,
        &new_browser(),
        &client,
        "ada@example.com",
        "openid email",
    )
    .await;
    let (_, html) = page(&browser, &app.url(&format!("/console/users/{id}"))).await;
    assert!(html.contains(&client.id), "{html}");
    let (status, html) = post(
        &browser,
        &app.url(&format!(
            "/console/users/{id}/consents/{}/revoke",
            client.id
        )),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("The user has not consented to any app."),
        "{html}"
    );
    // Deleted.
    let resp = browser
        .post(app.url(&format!("/console/users/{id}/delete")))
        .form(&[("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(v1_user(&app, &id).await.0, 404);
    let (status, _) = page(&browser, &app.url(&format!("/console/users/{id}"))).await;
    assert_eq!(status, 404);
}

async fn own_account_and_other_environments(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (browser, admin_id) = admin_browser(&app).await;
    let (_, html) = page(&browser, &app.url(&format!("/console/users/{admin_id}"))).await;
    let csrf = hidden(&html, "csrf_token");
    assert!(
        !html.contains("/delete\""),
        "no delete button on one's own page"
    );
    let (status, _) = post(
        &browser,
        &app.url(&format!("/console/users/{admin_id}/delete")),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = post(
        &browser,
        &app.url(&format!("/console/users/{admin_id}")),
        &[
            ("csrf_token", &csrf),
            ("email", "admin@example.com"),
            ("groups", "staff"),
        ],
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(
        v1_user(&app, &admin_id).await.1["groups"],
        json!([trusec_storage::admins::ADMIN_GROUP])
    );
    // A test user is not found from the live console, nor listed.
    let test_user = user(&app, &app.test_key, "tess@example.com", false).await;
    let test_id = test_user["id"].as_str().unwrap();
    let (status, _) = page(&browser, &app.url(&format!("/console/users/{test_id}"))).await;
    assert_eq!(status, 404);
    let (_, html) = page(&browser, &app.url("/console/users?q=tess")).await;
    assert!(html.contains("No user matches"), "{html}");
    let (status, _) = page(&browser, &app.url("/console/users/nope")).await;
    assert_eq!(status, 404);
}
