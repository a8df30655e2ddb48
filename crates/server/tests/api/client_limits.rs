//! What a client may do as itself and no more: introspect only its own
//! tokens (unless it is a resource server, RFC 7662 §4), authenticate only
//! with the method it registered (RFC 7591 §2), and — when anyone could have
//! registered it — return from logout only with an ID token issued to it
//! (OIDC RP-Initiated Logout §2, §3).

use crate::oauth_support::*;
use serde_json::{Value, json};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    a_client_introspects_only_its_own_tokens_unless_it_is_a_resource_server,
    the_registered_token_endpoint_auth_method_is_enforced,
    anonymous_clients_return_after_logout_only_with_an_id_token_hint,
);

async fn client_credentials(app: &TestApp, client: &TestClient) -> String {
    let (status, tokens) = token(
        app,
        client,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read:users"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    tokens["access_token"].as_str().unwrap().to_owned()
}

async fn a_client_introspects_only_its_own_tokens_unless_it_is_a_resource_server(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "own@example.com").await;
    let owner = confidential_client(&app, json!({})).await;
    let other = confidential_client(&app, json!({})).await;
    let access = client_credentials(&app, &owner).await;
    let tokens = login_and_redeem(&app, &owner, "own@example.com", "openid offline_access").await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(introspect(&app, &owner, &access).await["active"], true);
    assert_eq!(introspect(&app, &owner, refresh).await["active"], true);
    // Another client learns nothing, not even that the tokens exist.
    assert_eq!(
        introspect(&app, &other, &access).await,
        json!({"active": false})
    );
    assert_eq!(
        introspect(&app, &other, refresh).await,
        json!({"active": false})
    );
    // A resource server sees the access tokens of its environment, never
    // another client's refresh token.
    let api = confidential_client(&app, json!({"resource_server": true})).await;
    let (_, view) = status_json(
        app.get(&format!("/v1/oauth/clients/{}", api.id), &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(view["resource_server"], true);
    let info = introspect(&app, &api, &access).await;
    assert_eq!(
        (info["active"].clone(), info["client_id"].clone()),
        (json!(true), json!(owner.id))
    );
    assert_eq!(
        introspect(&app, &api, refresh).await,
        json!({"active": false})
    );
    // The flag can be set later, and taken away.
    for (flag, active) in [(true, true), (false, false)] {
        let (status, view) = status_json(
            app.patch(
                &format!("/v1/oauth/clients/{}", other.id),
                &app.secret_key,
                &json!({"resource_server": flag}),
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, view["resource_server"].clone()),
            (200, json!(flag))
        );
        assert_eq!(introspect(&app, &other, &access).await["active"], active);
    }
    // Only a confidential client can introspect, so only one is a resource server.
    let (status, err) = status_json(
        app.post(
            "/v1/oauth/clients",
            &app.secret_key,
            &json!({"name": "SPA", "type": "public", "redirect_uris": [REDIRECT], "resource_server": true}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (422, Some("resource_server"))
    );
}

/// `client_credentials` with the secret in the Basic header or in the body.
async fn grant(app: &TestApp, client: &TestClient, basic: bool) -> (u16, Value, bool) {
    let secret = client.secret.as_deref().unwrap();
    let mut form = vec![("grant_type", "client_credentials")];
    let mut req = app.client.post(app.url("/oauth/token"));
    if basic {
        req = req.basic_auth(&client.id, Some(secret));
    } else {
        form.extend([("client_id", client.id.as_str()), ("client_secret", secret)]);
    }
    let resp = req.form(&form).send().await.unwrap();
    let challenged = resp.headers().contains_key("www-authenticate");
    let (status, body) = status_json(resp).await;
    (status, body, challenged)
}

async fn assert_methods(app: &TestApp, client: &TestClient, basic: bool, post: bool, why: &str) {
    for (use_basic, allowed) in [(true, basic), (false, post)] {
        let (status, body, challenged) = grant(app, client, use_basic).await;
        if allowed {
            assert_eq!(status, 200, "{why}, basic={use_basic}: {body}");
        } else {
            // RFC 6749 §5.2: invalid_client, 401, a challenge when Basic was tried.
            assert_eq!(
                (status, body["error"].as_str(), challenged),
                (401, Some("invalid_client"), use_basic),
                "{why}, basic={use_basic}"
            );
        }
    }
}

async fn the_registered_token_endpoint_auth_method_is_enforced(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cc = json!({"grant_types": ["client_credentials"], "scopes": ["read:users"]});
    let with = |method: &str| {
        let mut body = cc.clone();
        body["token_endpoint_auth_method"] = json!(method);
        body
    };
    // A /v1 client that never chose keeps working with either method.
    let unchosen = confidential_client(&app, cc.clone()).await;
    assert_methods(&app, &unchosen, true, true, "never chose").await;
    let basic = confidential_client(&app, with("client_secret_basic")).await;
    assert_methods(&app, &basic, true, false, "chose basic").await;
    let post = confidential_client(&app, with("client_secret_post")).await;
    assert_methods(&app, &post, false, true, "chose post").await;
    // Choosing later enforces from then on.
    let (status, view) = status_json(
        app.patch(
            &format!("/v1/oauth/clients/{}", unchosen.id),
            &app.secret_key,
            &json!({"token_endpoint_auth_method": "client_secret_post"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, view["token_endpoint_auth_method"].as_str()),
        (200, Some("client_secret_post"))
    );
    assert_methods(&app, &unchosen, false, true, "chose post later").await;
    // RFC 7591 registration always chooses: client_secret_basic by default (§2).
    let (status, c) = status_json(
        app.client
            .post(app.url("/oauth/register"))
            .bearer_auth(&app.secret_key)
            .json(&json!({"client_name": "Service", "grant_types": ["client_credentials"], "scope": "read:users"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["token_endpoint_auth_method"], "client_secret_basic");
    let registered = TestClient {
        id: c["client_id"].as_str().unwrap().to_owned(),
        secret: c["client_secret"].as_str().map(str::to_owned),
    };
    assert_methods(&app, &registered, true, false, "RFC 7591 default").await;
    // A public client cannot pick a secret method.
    let (status, err) = status_json(
        app.post(
            "/v1/oauth/clients",
            &app.secret_key,
            &json!({"name": "SPA", "type": "public", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_post"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (422, Some("token_endpoint_auth_method"))
    );
}

/// Starts RP-initiated logout and confirms it on the hosted page; returns
/// where the browser went (`None`: it stayed on the signed-out page).
async fn logout(app: &TestApp, params: &[(&str, &str)]) -> Option<String> {
    let mut url = url::Url::parse(&app.url("/oauth/logout")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    let resp = app.client.get(url.as_str()).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let confirm = app.url(resp.headers()["location"].to_str().unwrap());
    let (_, resp) = confirm_logout(app, &app.client, &confirm).await;
    match resp.status().as_u16() {
        303 => Some(resp.headers()["location"].to_str().unwrap().to_owned()),
        200 => {
            assert!(resp.text().await.unwrap().contains("You are signed out"));
            None
        }
        other => panic!("logout answered {other}"),
    }
}

async fn anonymous_clients_return_after_logout_only_with_an_id_token_hint(backend: Backend) {
    let app = TestApp::builder(backend)
        .with_settings(|s| s.open_registration = true)
        .spawn()
        .await;
    make_user(&app, "anon@example.com").await;
    let bye = "https://app.example.com/bye";
    let (status, c) = status_json(
        app.client
            .post(app.url("/oauth/register"))
            .json(&json!({"client_name": "Anyone's app", "redirect_uris": [REDIRECT],
                          "post_logout_redirect_uris": [bye], "token_endpoint_auth_method": "none"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    let anonymous = TestClient {
        id: c["client_id"].as_str().unwrap().to_owned(),
        secret: None,
    };
    // Its client_id alone does not make us redirect to a URI anyone chose.
    login_and_redeem(&app, &anonymous, "anon@example.com", "openid").await;
    let without_hint = [
        ("client_id", anonymous.id.as_str()),
        ("post_logout_redirect_uri", bye),
    ];
    assert_eq!(logout(&app, &without_hint).await, None);
    // With an ID token issued to it, it does.
    let tokens = login_and_redeem(&app, &anonymous, "anon@example.com", "openid").await;
    let hint = tokens["id_token"].as_str().unwrap();
    let with_hint = [("id_token_hint", hint), ("post_logout_redirect_uri", bye)];
    assert_eq!(logout(&app, &with_hint).await.as_deref(), Some(bye));
    // A client an operator registered keeps today's behaviour.
    let operator = public_client(&app).await;
    login_and_redeem(&app, &operator, "anon@example.com", "openid").await;
    let by_id = [
        ("client_id", operator.id.as_str()),
        ("post_logout_redirect_uri", bye),
    ];
    assert_eq!(logout(&app, &by_id).await.as_deref(), Some(bye));
}
