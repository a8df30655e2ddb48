//! What ends a refresh token (contract, OAuth section): the end of the
//! sign-in session it came from (unless `offline_access` was granted), a
//! password change or the user's deletion (every token of the user), and
//! its family's absolute lifetime, which rotation never extends. A deleted
//! client's access tokens stop working at once.

use crate::oauth_support::*;
use chrono::TimeDelta;
use reqwest::cookie::CookieStore;
use serde_json::{Value, json};
use std::sync::Arc;
use trusec_testkit::{Backend, TestApp, on_every_backend, on_shared_backend, status_json};

on_every_backend!(
    logout_ends_the_sessions_refresh_tokens_but_not_offline_ones,
    session_revoke_ends_its_refresh_tokens_but_not_offline_ones,
    revoking_all_sessions_ends_their_refresh_tokens_but_not_offline_ones,
    a_password_change_ends_every_refresh_token,
    deleting_the_user_ends_every_refresh_token,
    rotation_does_not_extend_the_family_lifetime,
    the_family_lifetime_is_the_setting,
    a_deleted_clients_access_tokens_stop_at_once,
    offline_access_is_consented_to_first,
    a_code_redeemed_after_its_sign_in_ended_is_refused,
);
on_shared_backend!(a_deleted_client_is_refused_by_every_instance);

/// A browser whose cookies the test can read (the login session's token).
struct Browser {
    client: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
}

fn browser() -> Browser {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(jar.clone())
        .build()
        .unwrap();
    Browser { client, jar }
}

impl Browser {
    /// The login session token in the browser's cookie.
    fn session_token(&self, app: &TestApp) -> String {
        let url = app.url("/").parse().unwrap();
        let cookies = self.jar.cookies(&url).expect("cookies");
        cookies
            .to_str()
            .unwrap()
            .split("; ")
            .find_map(|c| c.strip_prefix("trusec_session="))
            .expect("a login session cookie")
            .to_owned()
    }
}

/// The tokens of one sign-in: a refresh token bound to it, one granted
/// `offline_access`, and the access token of the first.
struct Families {
    session_bound: String,
    offline: String,
    access: String,
}

/// A user, signed in once in a browser of their own, holding both kinds
/// of family at a confidential client.
struct Scene {
    app: TestApp,
    /// `/v1/users/{id}`.
    user_path: String,
    client: TestClient,
    browser: Browser,
    families: Families,
}

async fn signed_in(backend: Backend, email: &str) -> Scene {
    let app = TestApp::spawn(backend).await;
    let user = make_user(&app, email).await;
    let client = confidential_client(&app, json!({})).await;
    let browser = browser();
    let bound = login_and_redeem_as(&app, &browser.client, &client, email, "openid email").await;
    let offline = login_and_redeem_as(
        &app,
        &browser.client,
        &client,
        email,
        "openid offline_access",
    )
    .await;
    let families = Families {
        session_bound: bound["refresh_token"].as_str().unwrap().to_owned(),
        offline: offline["refresh_token"].as_str().unwrap().to_owned(),
        access: bound["access_token"].as_str().unwrap().to_owned(),
    };
    assert_eq!(
        introspect(&app, &client, &families.session_bound).await["active"],
        true
    );
    Scene {
        user_path: format!("/v1/users/{}", user["id"].as_str().unwrap()),
        app,
        client,
        browser,
        families,
    }
}

async fn refresh(app: &TestApp, client: &TestClient, rt: &str) -> (u16, Value) {
    token(
        app,
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await
}

async fn assert_refused(app: &TestApp, client: &TestClient, rt: &str) {
    assert_eq!(introspect(app, client, rt).await, json!({"active": false}));
    let (status, err) = refresh(app, client, rt).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

async fn assert_still_works(app: &TestApp, client: &TestClient, rt: &str) {
    assert_eq!(introspect(app, client, rt).await["active"], true);
    let (status, body) = refresh(app, client, rt).await;
    assert_eq!(status, 200, "{body}");
}

/// The session-bound family (and its access token) is gone, the offline
/// one works; one `oauth.token.revoked` event says so.
async fn assert_session_ended(scene: &Scene) {
    let (app, client, families) = (&scene.app, &scene.client, &scene.families);
    assert_refused(app, client, &families.session_bound).await;
    assert_eq!(
        introspect(app, client, &families.access).await,
        json!({"active": false})
    );
    assert_still_works(app, client, &families.offline).await;
    assert_eq!(revocations(app).await, [("session_ended".to_owned(), 1)]);
}

/// Both families (and the access token) are gone; one event says why.
async fn assert_all_ended(scene: &Scene, reason: &str) {
    let (app, client, families) = (&scene.app, &scene.client, &scene.families);
    assert_refused(app, client, &families.session_bound).await;
    assert_refused(app, client, &families.offline).await;
    assert_eq!(
        introspect(app, client, &families.access).await,
        json!({"active": false})
    );
    assert_eq!(revocations(app).await, [(reason.to_owned(), 2)]);
}

/// The bulk revocations audited: (reason, count) per event.
async fn revocations(app: &TestApp) -> Vec<(String, u64)> {
    let (status, events) = status_json(
        app.get("/v1/audit-events?type=oauth.token.revoked", &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(status, 200, "{events}");
    events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["data"]["reason"].as_str().unwrap_or_default().to_owned(),
                e["data"]["count"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

/// OIDC RP-initiated logout, then the hosted `/logout` page.
async fn logout_ends_the_sessions_refresh_tokens_but_not_offline_ones(backend: Backend) {
    let scene = signed_in(backend, "out@example.com").await;
    let (app, browser) = (&scene.app, &scene.browser.client);
    let mut url = url::Url::parse(&app.url("/oauth/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &scene.client.id);
    let resp = browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let confirm = app.url(resp.headers()["location"].to_str().unwrap());
    let (_, resp) = confirm_logout(app, browser, &confirm).await;
    assert_eq!(resp.status(), 200);
    assert_session_ended(&scene).await;
}

async fn session_revoke_ends_its_refresh_tokens_but_not_offline_ones(backend: Backend) {
    let scene = signed_in(backend, "rev@example.com").await;
    let app = &scene.app;
    let token = scene.browser.session_token(app);
    let (status, body) = status_json(
        app.post(
            "/v1/sessions/revoke",
            &app.secret_key,
            &json!({"token": token}),
        )
        .await,
    )
    .await;
    assert_eq!((status, &body["revoked"]), (200, &json!(true)), "{body}");
    assert_session_ended(&scene).await;
}

async fn revoking_all_sessions_ends_their_refresh_tokens_but_not_offline_ones(backend: Backend) {
    let scene = signed_in(backend, "all@example.com").await;
    let app = &scene.app;
    let path = format!("{}/sessions", scene.user_path);
    let (status, body) = status_json(app.delete(&path, &app.secret_key).await).await;
    assert_eq!((status, &body["revoked"]), (200, &json!(1)), "{body}");
    assert_session_ended(&scene).await;
}

async fn a_password_change_ends_every_refresh_token(backend: Backend) {
    let scene = signed_in(backend, "pw@example.com").await;
    let (app, path) = (&scene.app, &scene.user_path);
    // Another change of the user ends nothing.
    let resp = app
        .patch(path, &app.secret_key, &json!({"name": "Ada King"}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        introspect(app, &scene.client, &scene.families.session_bound).await["active"],
        true
    );
    let new_password = json!({"password": "a brand new passphrase"});
    let resp = app.patch(path, &app.secret_key, &new_password).await;
    assert_eq!(resp.status(), 200);
    assert_all_ended(&scene, "password_changed").await;
}

async fn deleting_the_user_ends_every_refresh_token(backend: Backend) {
    let scene = signed_in(backend, "gone@example.com").await;
    let app = &scene.app;
    assert_eq!(
        app.delete(&scene.user_path, &app.secret_key).await.status(),
        200
    );
    assert_all_ended(&scene, "user_deleted").await;
}

/// Each rotation gives a token that lives 30 more idle days, but never
/// past the family's 90 days (the default).
async fn rotation_does_not_extend_the_family_lifetime(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "long@example.com").await;
    let client = confidential_client(&app, json!({})).await;
    let first = login_and_redeem(&app, &client, "long@example.com", "openid offline_access").await;
    let mut current = first["refresh_token"].as_str().unwrap().to_owned();
    let family_ends = introspect(&app, &client, &current).await["iat"]
        .as_i64()
        .unwrap()
        + 90 * 86_400;
    for _ in 0..3 {
        app.clock.advance(TimeDelta::days(29));
        let (status, next) = refresh(&app, &client, &current).await;
        assert_eq!(status, 200, "{next}");
        current = next["refresh_token"].as_str().unwrap().to_owned();
    }
    // Day 87: the newest token says when it ends: with its family.
    let live = introspect(&app, &client, &current).await;
    assert_eq!(live["exp"].as_i64(), Some(family_ends), "{live}");
    app.clock.advance(TimeDelta::days(4));
    assert_refused(&app, &client, &current).await;
}

/// `TRUSEC_REFRESH_TOKEN_FAMILY_LIFETIME` is the absolute lifetime the
/// refresh grant enforces (here one day instead of 90).
async fn the_family_lifetime_is_the_setting(backend: Backend) {
    let app = TestApp::builder(backend)
        .with_settings(|s| s.refresh_token_family_lifetime = std::time::Duration::from_secs(86_400))
        .spawn()
        .await;
    make_user(&app, "short@example.com").await;
    let client = confidential_client(&app, json!({})).await;
    let first = login_and_redeem(&app, &client, "short@example.com", "openid offline_access").await;
    let token = first["refresh_token"].as_str().unwrap();
    app.clock.advance(TimeDelta::hours(25));
    assert_refused(&app, &client, token).await;
}

async fn a_deleted_clients_access_tokens_stop_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "cl@example.com").await;
    let client = confidential_client(&app, json!({})).await;
    let tokens = login_and_redeem(&app, &client, "cl@example.com", "openid email").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.get("/v1/users/me", access).await.status(), 200);
    assert_eq!(app.get("/oauth/userinfo", access).await.status(), 200);
    let path = format!("/v1/oauth/clients/{}", client.id);
    assert_eq!(app.delete(&path, &app.secret_key).await.status(), 200);
    let (status, body) = status_json(app.get("/v1/users/me", access).await).await;
    assert_eq!(status, 401, "{body}");
    let resp = app.get("/oauth/userinfo", access).await;
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}

/// Instance B caches the client while using its token; the deletion on A
/// is seen by B at once.
async fn a_deleted_client_is_refused_by_every_instance(backend: Backend) {
    let a = TestApp::spawn(backend).await;
    let b = a.another_instance().await;
    make_user(&a, "two@example.com").await;
    let client = confidential_client(&a, json!({})).await;
    let tokens = login_and_redeem(&a, &client, "two@example.com", "openid").await;
    let access = tokens["access_token"].as_str().unwrap();
    for _ in 0..2 {
        assert_eq!(b.get("/oauth/userinfo", access).await.status(), 200);
    }
    let path = format!("/v1/oauth/clients/{}", client.id);
    assert_eq!(a.delete(&path, &a.secret_key).await.status(), 200);
    assert_eq!(b.get("/oauth/userinfo", access).await.status(), 401);
    assert_eq!(b.get("/v1/users/me", access).await.status(), 401);
}

/// OIDC Core §11: offline access is granted only with the user's consent:
/// the consent page is shown (whatever `prompt` says) until the user has
/// consented to `offline_access` for this client, and `prompt=none` cannot
/// skip it. The scope is advertised and shown on the page.
async fn offline_access_is_consented_to_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "off@example.com").await;
    let client = confidential_client(&app, json!({})).await;
    let (_, discovery) = status_json(
        app.client
            .get(app.url("/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        discovery["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("offline_access"))
    );
    let (_, challenge) = pkce();
    let url = |scope: &str, prompt: Option<&str>| {
        let mut extra = vec![
            ("scope", scope.to_owned()),
            ("code_challenge", challenge.clone()),
            ("code_challenge_method", "S256".to_owned()),
        ];
        if let Some(p) = prompt {
            extra.push(("prompt", p.to_owned()));
        }
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        authorize_url(&app, &client.id, &extra)
    };
    let trip = browse(&app, &url("openid", None), "off@example.com", true).await;
    assert!(trip.saw_consent);
    // Consent to `openid` does not cover offline access.
    let resp = app
        .client
        .get(url("openid offline_access", Some("none")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        query(resp.headers()["location"].to_str().unwrap())["error"],
        "consent_required"
    );
    let page = app
        .client
        .get(url("openid offline_access", None))
        .send()
        .await
        .unwrap();
    let consent = app.url(page.headers()["location"].to_str().unwrap());
    assert!(consent.contains("/consent"), "{consent}");
    let html = app
        .client
        .get(&consent)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Stay connected when you are not using it"));
    let trip = browse(
        &app,
        &url("openid offline_access", None),
        "off@example.com",
        true,
    )
    .await;
    assert!(trip.saw_consent);
    // Consented once: remembered, as for every scope.
    let trip = browse(
        &app,
        &url("openid offline_access", None),
        "off@example.com",
        true,
    )
    .await;
    assert!(!trip.saw_consent && !trip.saw_login);
}

/// The code was issued, then the user signed out, then the app redeemed
/// it: a refresh token of that sign-in would outlive it.
async fn a_code_redeemed_after_its_sign_in_ended_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "late@example.com").await;
    let client = confidential_client(&app, json!({})).await;
    let browser = browser();
    let (code, verifier) =
        authorize_code(&app, &browser.client, &client, "late@example.com", "openid").await;
    let session = browser.session_token(&app);
    let resp = app
        .post(
            "/v1/sessions/revoke",
            &app.secret_key,
            &json!({"token": session}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let (status, err) = redeem(&app, &client, &code, &verifier).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant")),
        "{err}"
    );
}
