//! Remembered consent can be listed and taken back, by an administrator
//! (`/v1/users/{id}/consents`) and by the app itself on the user's behalf
//! (`/v1/users/me/consents`); taking it back ends the client's refresh
//! tokens for the user and brings the consent page back.

use crate::oauth_support::{
    authorize_url, browse, confidential_client, login_and_redeem, make_user, public_client, token,
};
use serde_json::json;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(consents_are_listed_and_revoked);

async fn consents_are_listed_and_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = make_user(&app, "grants@example.com").await;
    let user_id = user["id"].as_str().unwrap();
    let web = confidential_client(&app, json!({})).await;
    let spa = public_client(&app).await;
    let tokens = login_and_redeem(
        &app,
        &web,
        "grants@example.com",
        "openid email offline_access",
    )
    .await;
    login_and_redeem(&app, &spa, "grants@example.com", "openid profile").await;

    // The administrator sees both grants.
    let path = format!("/v1/users/{user_id}/consents");
    let (status, all) = status_json(app.get(&path, &app.secret_key).await).await;
    assert_eq!(status, 200, "{all}");
    let mut clients: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    clients.sort_unstable();
    let mut expected = vec![web.id.as_str(), spa.id.as_str()];
    expected.sort_unstable();
    assert_eq!(clients, expected);
    assert!(
        all["data"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("consent_")
    );

    // The web app sees only its own grant through the user's token.
    let access = tokens["access_token"].as_str().unwrap();
    let mine = app
        .client
        .get(app.url("/v1/users/me/consents"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    let (status, mine) = status_json(mine).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["data"].as_array().unwrap().len(), 1);
    assert_eq!(mine["data"][0]["client_id"], web.id.as_str());
    assert_eq!(
        mine["data"][0]["scopes"],
        json!(["openid", "email", "offline_access"])
    );
    // ...and cannot take back another app's grant, nor use an API key here.
    let other = app
        .client
        .delete(app.url(&format!("/v1/users/me/consents/{}", spa.id)))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let with_key = app.get("/v1/users/me/consents", &app.secret_key).await;
    assert_eq!(with_key.status(), 401);

    // The app disconnects itself: the refresh token (offline) dies with it.
    let gone = app
        .client
        .delete(app.url(&format!("/v1/users/me/consents/{}", web.id)))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    // Its access tokens stop at once too.
    let after = app
        .client
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = token(
        &app,
        &web,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    // Signing in to it again asks for consent again.
    let trip = browse(
        &app,
        &authorize_url(&app, &web.id, &[("scope", "openid"), ("state", "s")]),
        "grants@example.com",
        true,
    )
    .await;
    assert!(trip.saw_consent, "the consent page is back");

    // The administrator takes back the other grant; a second time is 404.
    let spa_grant = format!("/v1/users/{user_id}/consents/{}", spa.id);
    assert_eq!(app.delete(&spa_grant, &app.secret_key).await.status(), 204);
    assert_eq!(app.delete(&spa_grant, &app.secret_key).await.status(), 404);
    // A test key sees nothing of the live user.
    assert_eq!(app.get(&path, &app.test_key).await.status(), 404);
    let (_, events) = status_json(
        app.get(
            "/v1/audit-events?type=oauth.consent.revoked",
            &app.secret_key,
        )
        .await,
    )
    .await;
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .any(|e| e["actor"]["type"] == "user" && e["data"]["client_id"] == web.id.as_str())
    );
    assert!(
        events
            .iter()
            .any(|e| e["actor"]["type"] == "api_key" && e["data"]["client_id"] == spa.id.as_str())
    );
}
