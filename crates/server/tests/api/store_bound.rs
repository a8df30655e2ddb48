//! The ephemeral store's limits: the in-process store is bounded and, when
//! full, refuses new sign-ins rather than anything already promised; and a
//! revocation holds even when the store loses its entry.

use crate::oauth_support::{self, TestClient};
use base64::Engine;
use serde_json::json;
use trusec_storage::{StoreKey, secrets};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    a_revocation_holds_when_the_store_loses_its_entry,
    a_revoked_access_token_stays_revoked_when_its_markers_are_lost
);

/// Fill the in-process store to its bound with `/oauth/authorize`
/// interactions (anyone can make them): the next one gets a clear 503 page,
/// while revocations still land and hold.
#[tokio::test]
async fn a_full_store_refuses_new_sign_ins_and_keeps_revocations() {
    let app = TestApp::builder(Backend::Sqlite)
        .with_settings(|s| s.memory_store_max_bytes = 16 * 1024)
        .spawn()
        .await;
    let client = oauth_support::confidential_client(&app, json!({})).await;
    let (_, challenge) = oauth_support::pkce();
    let url = oauth_support::authorize_url(
        &app,
        &client.id,
        &[
            ("scope", "openid"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    // Each request parks an interaction; the bound is a few dozen of them.
    let mut parked = 0;
    let refused = loop {
        let resp = app.client.get(&url).send().await.unwrap();
        if resp.status() != 302 {
            break resp;
        }
        parked += 1;
        assert!(parked < 1000, "the store never filled up");
    };
    assert!(parked > 0);
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().get("location").is_none());
    let page = refused.text().await.unwrap();
    assert!(page.contains("too busy to start a new sign-in"), "{page}");
    assert!(page.contains("err_"), "the page names its error_id: {page}");

    // Revocations land all the same, and hold.
    let (status, issued) = oauth_support::token(
        &app,
        &client,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read:users"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{issued}");
    let access = issued["access_token"].as_str().unwrap();
    revoke(&app, &client, access, "access_token").await;
    assert_eq!(
        oauth_support::introspect(&app, &client, access).await,
        json!({"active": false})
    );
    let session = new_session(&app, "full@example.com").await;
    let token = json!({"token": session});
    let (status, _) = status_json(
        app.post("/v1/sessions/verify", &app.secret_key, &token)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let (status, revoked) = status_json(
        app.post("/v1/sessions/revoke", &app.secret_key, &token)
            .await,
    )
    .await;
    assert_eq!(status, 200, "{revoked}");
    let (_, verdict) = status_json(
        app.post("/v1/sessions/verify", &app.secret_key, &token)
            .await,
    )
    .await;
    assert_eq!(verdict["valid"], false, "{verdict}");
    // Still full: no interaction was evicted to make room.
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 503);
}

/// A session token of a new user.
async fn new_session(app: &TestApp, email: &str) -> String {
    let user = app.create_user(email).await;
    let (status, session) = status_json(
        app.post(
            "/v1/sessions",
            &app.secret_key,
            &json!({"user_id": user["id"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{session}");
    session["token"].as_str().unwrap().to_owned()
}

/// Sessions and API keys are revoked in the database; the store only
/// caches them. A revoked session or key whose cache entry disappears
/// (evicted, flushed, deleted behind TruSec's back — on Redis, the key
/// itself) reads the database again and stays revoked.
async fn a_revocation_holds_when_the_store_loses_its_entry(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let session = new_session(&app, "gone@example.com").await;
    let token = json!({"token": session});
    let verify = || async {
        status_json(
            app.post("/v1/sessions/verify", &app.secret_key, &token)
                .await,
        )
        .await
        .1
    };
    // Cached as valid, then revoked (the entry is marked stale)...
    assert_eq!(verify().await["valid"], true);
    let (status, _) = status_json(
        app.post("/v1/sessions/revoke", &app.secret_key, &token)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(verify().await["valid"], false);
    // ...and the marker is lost.
    let hash = secrets::hash_secret(&session);
    app.state
        .core
        .store
        .delete(&[StoreKey::session_cache(&hash)])
        .await
        .unwrap();
    let verdict = verify().await;
    assert_eq!(verdict["valid"], false, "{verdict}");
    assert_eq!(verdict["reason"], "revoked");

    // The same for an API key.
    let (_, key) = status_json(
        app.post(
            "/v1/api-keys",
            &app.secret_key,
            &json!({"type": "secret", "name": "doomed"}),
        )
        .await,
    )
    .await;
    let secret = key["key"].as_str().unwrap();
    assert_eq!(app.get("/v1/users", secret).await.status(), 200);
    let resp = app
        .delete(
            &format!("/v1/api-keys/{}", key["id"].as_str().unwrap()),
            &app.secret_key,
        )
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    app.state
        .core
        .store
        .delete(&[StoreKey::api_key_cache(&secrets::hash_secret(secret))])
        .await
        .unwrap();
    assert_eq!(app.get("/v1/users", secret).await.status(), 401);
}

/// The claims of a JWT, unverified (the server verified it).
fn claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn revoke(app: &TestApp, client: &TestClient, token: &str, hint: &str) {
    let resp = app
        .client
        .post(app.url("/oauth/revoke"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("token", token), ("token_type_hint", hint)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// Loses every store entry about an access token, as an eviction or a
/// restart of the store would.
async fn forget(app: &TestApp, access: &str) {
    let c = claims(access);
    let mut keys = vec![
        StoreKey::revoked_jti(c["jti"].as_str().unwrap()),
        StoreKey::access_token_status(c["jti"].as_str().unwrap()),
    ];
    if let Some(fid) = c["fid"].as_str() {
        keys.push(StoreKey::revoked_family(fid));
    }
    app.state.core.store.delete(&keys).await.unwrap();
}

/// Access tokens are JWTs, so their revocation is a record of its own: in
/// the database, with the store's markers in front. A revoked access token
/// (revoked itself, or through its refresh family) whose markers the store
/// loses stays revoked.
async fn a_revoked_access_token_stays_revoked_when_its_markers_are_lost(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = oauth_support::confidential_client(&app, json!({})).await;
    let inactive = json!({"active": false});

    let (_, issued) = oauth_support::token(
        &app,
        &client,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read:users"),
        ],
    )
    .await;
    let access = issued["access_token"].as_str().unwrap();
    assert_eq!(
        oauth_support::introspect(&app, &client, access).await["active"],
        true
    );
    revoke(&app, &client, access, "access_token").await;
    forget(&app, access).await;
    assert_eq!(
        oauth_support::introspect(&app, &client, access).await,
        inactive
    );

    // Revoked with its refresh-token family.
    oauth_support::make_user(&app, "family@example.com").await;
    let tokens = oauth_support::login_and_redeem(
        &app,
        &client,
        "family@example.com",
        "openid offline_access",
    )
    .await;
    let access = tokens["access_token"].as_str().unwrap();
    assert!(claims(access)["fid"].is_string(), "{}", claims(access));
    assert_eq!(
        oauth_support::introspect(&app, &client, access).await["active"],
        true
    );
    revoke(
        &app,
        &client,
        tokens["refresh_token"].as_str().unwrap(),
        "refresh_token",
    )
    .await;
    forget(&app, access).await;
    assert_eq!(
        oauth_support::introspect(&app, &client, access).await,
        inactive
    );
}
