//! Disabling a user (issue #16, `PATCH /v1/users/{id} {"disabled": true}`
//! and the console's Disable button): every session and refresh token of
//! theirs ends at once, the right password is refused with a page that says
//! why (a wrong one still says only "incorrect"), no grant is made for them
//! — not even for a code issued before —, `/v1` cannot make them a session,
//! and enabling them again lets them sign in.

use crate::console::{sign_in, user};
use crate::oauth_support::*;
use serde_json::{Value, json};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    disabling_ends_everything_and_refuses_sign_in_until_enabled,
    a_code_issued_before_disabling_is_refused,
    the_console_disables_and_enables_but_never_its_own_admin,
);

async fn set_disabled(app: &TestApp, id: &str, disabled: bool) -> Value {
    let (status, body) = status_json(
        app.patch(
            &format!("/v1/users/{id}"),
            &app.secret_key,
            &json!({"disabled": disabled}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn verify_session(app: &TestApp, token: &str) -> Value {
    let (status, body) = status_json(
        app.post(
            "/v1/sessions/verify",
            &app.secret_key,
            &json!({"token": token}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn audit(app: &TestApp, event_type: &str) -> Vec<Value> {
    let (status, events) = status_json(
        app.get(
            &format!("/v1/audit-events?type={event_type}"),
            &app.secret_key,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{events}");
    events["data"].as_array().unwrap().clone()
}

async fn disabling_ends_everything_and_refuses_sign_in_until_enabled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = make_user(&app, "off@example.com").await;
    let id = user["id"].as_str().unwrap();
    assert_eq!(user["disabled"], false);
    let client = confidential_client(&app, json!({})).await;
    let bound = login_and_redeem(&app, &client, "off@example.com", "openid").await;
    let offline = login_and_redeem(&app, &client, "off@example.com", "openid offline_access").await;
    let (status, made) = make_session(&app, id).await;
    assert_eq!(status, 201, "{made}");
    let session = made["token"].as_str().unwrap();
    assert_eq!(verify_session(&app, session).await["valid"], true);

    let body = set_disabled(&app, id, true).await;
    assert_eq!(body["disabled"], true);
    // Every session, refresh token (offline ones too) and their access
    // tokens ended, in one revocation event that says why.
    assert_eq!(verify_session(&app, session).await["valid"], false);
    for tokens in [&bound, &offline] {
        for kind in ["refresh_token", "access_token"] {
            let t = tokens[kind].as_str().unwrap();
            assert_eq!(introspect(&app, &client, t).await, json!({"active": false}));
        }
        let rt = tokens["refresh_token"].as_str().unwrap();
        let (status, err) = token(
            &app,
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
        .await;
        assert_eq!(
            (status, err["error"].as_str()),
            (400, Some("invalid_grant"))
        );
    }
    let revoked = audit(&app, "oauth.token.revoked").await;
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0]["data"]["reason"], "user_disabled");
    // Disabling again changes nothing and ends nothing more.
    assert_eq!(set_disabled(&app, id, true).await["disabled"], true);
    assert_eq!(audit(&app, "oauth.token.revoked").await.len(), 1);

    // The right password: refused, and told why; a wrong one: no hint.
    let browser = new_browser();
    let resp = password_login(&app, &browser, "off@example.com", PASSWORD).await;
    assert_eq!(resp.status(), 403);
    let html = resp.text().await.unwrap();
    assert!(html.contains("This account is disabled"), "{html}");
    let resp = password_login(&app, &browser, "off@example.com", "not the password").await;
    assert_eq!(resp.status(), 401);
    let html = resp.text().await.unwrap();
    assert!(html.contains("Incorrect email or password") && !html.contains("disabled"));
    let failed = audit(&app, "user.login.failed").await;
    assert!(
        failed
            .iter()
            .any(|e| e["data"]["reason"] == "user_disabled" && e["user_id"] == id),
        "{failed:?}"
    );
    // No session through /v1 either.
    let (status, err) = make_session(&app, id).await;
    assert_eq!(status, 409, "{err}");
    assert!(err.to_string().contains("disabled"), "{err}");

    // Enabled again: signs in, and the old tokens stay dead.
    assert_eq!(set_disabled(&app, id, false).await["disabled"], false);
    let resp = password_login(&app, &new_browser(), "off@example.com", PASSWORD).await;
    assert_eq!(resp.status(), 200);
    let again = login_and_redeem(&app, &client, "off@example.com", "openid").await;
    assert!(again["access_token"].is_string());
    let rt = offline["refresh_token"].as_str().unwrap();
    assert_eq!(
        introspect(&app, &client, rt).await,
        json!({"active": false})
    );
}

async fn a_code_issued_before_disabling_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = make_user(&app, "late@example.com").await;
    let client = confidential_client(&app, json!({})).await;
    let (code, verifier) =
        authorize_code(&app, &new_browser(), &client, "late@example.com", "openid").await;
    set_disabled(&app, user["id"].as_str().unwrap(), true).await;
    let (status, err) = redeem(&app, &client, &code, &verifier).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant")),
        "{err}"
    );
}

async fn the_console_disables_and_enables_but_never_its_own_admin(backend: Backend) {
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
    let target = make_user(&app, "ed@example.com").await;
    let id = target["id"].as_str().unwrap();
    let url = app.url(&format!("/console/users/{id}"));
    let html = browser
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Disable ed@example.com"), "{html}");
    let csrf = hidden(&html, "csrf_token");
    let post = |path: String, csrf: String| {
        let browser = browser.clone();
        async move {
            let resp = browser
                .post(path)
                .form(&[("csrf_token", csrf)])
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    // CSRF first.
    let (status, _) = post(format!("{url}/disable"), "forged".into()).await;
    assert_eq!(status, 403);
    assert_eq!(make_session_status(&app, id).await, 201);
    let (status, html) = post(format!("{url}/disable"), csrf.clone()).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("Enable ed@example.com") && html.contains("Disabled"),
        "{html}"
    );
    assert_eq!(make_session_status(&app, id).await, 409);
    let changed = audit(&app, "user.updated").await;
    assert!(
        changed.iter().any(|e| e["user_id"] == id
            && e["actor"]["id"] == admin_id
            && e["data"]["fields"] == json!(["disabled"])),
        "{changed:?}"
    );
    let (status, html) = post(format!("{url}/enable"), csrf.clone()).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Disable ed@example.com"));
    assert_eq!(make_session_status(&app, id).await, 201);
    // Never the administrator's own account: that could lock everyone out.
    let own = app.url(&format!("/console/users/{admin_id}"));
    let html = browser
        .get(&own)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !html.contains("/disable\""),
        "no disable button on one's own page"
    );
    let (status, _) = post(format!("{own}/disable"), csrf).await;
    assert_eq!(status, 409);
}

async fn make_session(app: &TestApp, user_id: &str) -> (u16, Value) {
    status_json(
        app.post(
            "/v1/sessions",
            &app.secret_key,
            &json!({"user_id": user_id, "expires_in": "1h"}),
        )
        .await,
    )
    .await
}

async fn make_session_status(app: &TestApp, user_id: &str) -> u16 {
    make_session(app, user_id).await.0
}
