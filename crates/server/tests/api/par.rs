//! Pushed authorization requests (RFC 9126, issue 15 item 4): pushed, then
//! used once at `/oauth/authorize`, then the code redeemed; every refusal
//! of §2.3 and §4; "require PAR" per client and server-wide; a
//! `private_key_jwt` client pushing with an assertion.

use crate::client_jwt::{ISSUER, TYPE, claims, make_key, sign};
use crate::oauth_support::*;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    pushed_request_signs_in_and_is_used_once,
    pushed_requests_are_refused_per_rfc_9126,
    request_uris_are_bound_to_client_and_lifetime,
    par_can_be_required_per_client,
    par_can_be_required_server_wide,
    private_key_jwt_clients_push_with_an_assertion,
);

const PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Posts a pushed request as `client` (Basic with a secret, else its id).
async fn push(app: &TestApp, client: &TestClient, form: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.client.post(app.url("/oauth/par"));
    let mut fields = form.to_vec();
    match &client.secret {
        Some(secret) => req = req.basic_auth(&client.id, Some(secret)),
        None => fields.push(("client_id", &client.id)),
    }
    req.form(&fields).send().await.unwrap()
}

/// The authorization request's parameters, as a client would push them.
fn request(challenge: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", "openid email".into()),
        ("state", "pushed-state".into()),
        ("nonce", "pushed-nonce".into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
    ]
}

fn borrowed<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Pushes a valid request: its request_uri and PKCE verifier.
pub(crate) async fn pushed(app: &TestApp, client: &TestClient) -> (String, String) {
    let (verifier, challenge) = pkce();
    let resp = push(app, client, &borrowed(&request(&challenge))).await;
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["expires_in"], 60);
    let uri = body["request_uri"].as_str().unwrap().to_owned();
    // §2.2: the reference is unguessable (≥ 128 bits of randomness).
    assert!(
        uri.starts_with(PREFIX) && uri.len() - PREFIX.len() >= 22,
        "{uri}"
    );
    (uri, verifier)
}

/// `/oauth/authorize` with only `client_id` and `request_uri` (§4), plus
/// whatever else a client might add (which must be ignored).
fn by_reference(
    app: &TestApp,
    client_id: &str,
    request_uri: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut url = url::Url::parse(&app.url("/oauth/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("request_uri", request_uri);
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    url.to_string()
}

/// Signs ada in through a pushed request: the code.
pub(crate) async fn signs_in(app: &TestApp, client: &TestClient, request_uri: &str) -> String {
    let url = by_reference(app, &client.id, request_uri, &[]);
    let trip = browse(app, &url, "ada@example.com", true).await;
    query(&trip.callback)
        .remove("code")
        .unwrap_or_else(|| panic!("no code in {}", trip.callback))
}

/// An authorize URL refused with an error page (never a redirect, §4).
pub(crate) async fn refused_page(app: &TestApp, url: &str, says: &str) {
    let resp = app.client.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 400, "{url}");
    assert!(resp.headers().get("location").is_none());
    let html = resp.text().await.unwrap();
    assert!(html.contains(says), "{says} not in {html}");
}

async fn pushed_request_signs_in_and_is_used_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    for client in [
        confidential_client(&app, json!({})).await,
        public_client(&app).await,
    ] {
        let (uri, verifier) = pushed(&app, &client).await;
        // Parameters beside the request_uri are ignored (§4): the state
        // comes back from the pushed request.
        let url = by_reference(&app, &client.id, &uri, &[("state", "not-this-one")]);
        let trip = browse(&app, &url, "ada@example.com", true).await;
        let back = query(&trip.callback);
        assert_eq!(back["state"], "pushed-state", "{}", trip.callback);
        let (status, tokens) = redeem(&app, &client, &back["code"], &verifier).await;
        assert_eq!(status, 200, "{tokens}");
        let (_, id_token) =
            verify_jwt(&app, tokens["id_token"].as_str().unwrap(), &client.id).await;
        assert_eq!(id_token["nonce"], "pushed-nonce");
        // §4: used once (we allow no reuse at all, even by the same browser).
        refused_page(&app, &url, "invalid_request_uri").await;
    }
}

async fn pushed_requests_are_refused_per_rfc_9126(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = confidential_client(&app, json!({})).await;
    let (_, challenge) = pkce();
    let good = request(&challenge);
    let error = |resp: reqwest::Response| async { status_json(resp).await };
    // A wrong secret: 401 invalid_client (§2.3, as at the token endpoint).
    let wrong = TestClient {
        id: client.id.clone(),
        secret: Some("trusec_cs_wrong".into()),
    };
    let (status, body) = error(push(&app, &wrong, &borrowed(&good)).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    let cases: [(&str, &str, &str); 5] = [
        ("redirect_uri", "https://evil.example/cb", "invalid_request"),
        (
            "request_uri",
            "urn:ietf:params:oauth:request_uri:x",
            "invalid_request",
        ),
        ("scope", "openid no:such:scope", "invalid_scope"),
        ("response_type", "token", "unsupported_response_type"),
        ("code_challenge_method", "plain", "invalid_request"),
    ];
    for (name, value, code) in cases {
        let mut form = good.clone();
        form.retain(|(k, _)| *k != name);
        form.push((name, value.into()));
        let (status, body) = error(push(&app, &client, &borrowed(&form)).await).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(code)),
            "{name}: {body}"
        );
    }
    // A public client must send PKCE here as at /oauth/authorize.
    let public = public_client(&app).await;
    let mut form = good.clone();
    form.retain(|(k, _)| !k.starts_with("code_challenge"));
    let (status, body) = error(push(&app, &public, &borrowed(&form)).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    // A request_uri that is not ours is not fetched (OIDC Core §6.2).
    let url = by_reference(&app, &client.id, "https://client.example/req.jwt", &[]);
    refused_page(&app, &url, "request_uri_not_supported").await;
    let url = by_reference(&app, &client.id, &format!("{PREFIX}guessed"), &[]);
    refused_page(&app, &url, "invalid_request_uri").await;
}

async fn request_uris_are_bound_to_client_and_lifetime(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    let client = confidential_client(&app, json!({})).await;
    let other = confidential_client(&app, json!({})).await;
    // Another client's request_uri (§4: bound to the client that pushed it).
    let (uri, _) = pushed(&app, &client).await;
    refused_page(
        &app,
        &by_reference(&app, &other.id, &uri, &[]),
        "invalid_request_uri",
    )
    .await;
    // Refused for the other client, it is still good for its own.
    signs_in(&app, &client, &uri).await;
    // Expired: 60 seconds (the default TRUSEC_PAR_LIFETIME).
    let (uri, _) = pushed(&app, &client).await;
    app.clock.advance(chrono::TimeDelta::seconds(61));
    refused_page(
        &app,
        &by_reference(&app, &client.id, &uri, &[]),
        "invalid_request_uri",
    )
    .await;
    // In another environment, this one's request_uri is nobody's.
    let (uri, _) = pushed(&app, &client).await;
    let env = format!(
        "/env/test/oauth/authorize?client_id={}&request_uri={uri}",
        client.id
    );
    let resp = app.client.get(app.url(&env)).send().await.unwrap();
    assert_eq!(resp.status(), 400);
}

async fn par_can_be_required_per_client(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    let client =
        confidential_client(&app, json!({"require_pushed_authorization_requests": true})).await;
    let (_, c) = status_json(
        app.get(&format!("/v1/oauth/clients/{}", client.id), &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(c["require_pushed_authorization_requests"], true, "{c}");
    plain_request_is_refused(&app, &client).await;
    // A pushed one works.
    let (uri, _) = pushed(&app, &client).await;
    signs_in(&app, &client, &uri).await;
    // Switched off again, a plain request works.
    let (status, c) = status_json(
        app.patch(
            &format!("/v1/oauth/clients/{}", client.id),
            &app.secret_key,
            &json!({"require_pushed_authorization_requests": false}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, &c["require_pushed_authorization_requests"]),
        (200, &json!(false))
    );
    authorize_code(&app, &app.client, &client, "ada@example.com", "openid").await;
}

/// A plain authorization request is sent back with `invalid_request`.
async fn plain_request_is_refused(app: &TestApp, client: &TestClient) {
    let (_, challenge) = pkce();
    let url = authorize_url(
        app,
        &client.id,
        &[
            ("scope", "openid"),
            ("state", "s"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let resp = app.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let back = query(&location(&resp));
    assert_eq!(back["error"], "invalid_request");
    assert_eq!(
        back["error_description"],
        "pushed authorization request required"
    );
    assert_eq!(back["state"], "s");
}

async fn par_can_be_required_server_wide(backend: Backend) {
    let app = TestApp::builder(backend)
        .with_settings(|s| s.par.required = true)
        .spawn()
        .await;
    make_user(&app, "ada@example.com").await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let doc: Value = app
            .client
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["require_pushed_authorization_requests"], true, "{path}");
        assert_eq!(
            doc["pushed_authorization_request_endpoint"],
            format!("{ISSUER}/oauth/par"),
            "{path}"
        );
    }
    let client = public_client(&app).await;
    plain_request_is_refused(&app, &client).await;
    let (uri, verifier) = pushed(&app, &client).await;
    let code = signs_in(&app, &client, &uri).await;
    let (status, tokens) = redeem(&app, &client, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
}

async fn private_key_jwt_clients_push_with_an_assertion(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = make_key(Algorithm::ES256, "par-1");
    let client = create_client(
        &app,
        json!({"name": "Web app", "type": "confidential", "redirect_uris": [REDIRECT],
               "scopes": ["openid", "email"], "token_endpoint_auth_method": "private_key_jwt",
               "jwks": {"keys": [key.jwk]}}),
    )
    .await;
    let (_, challenge) = pkce();
    let send = |aud: Value| {
        let assertion = sign(&key, &claims(&client.id, aud));
        let mut form = request(&challenge);
        form.push(("client_assertion_type", TYPE.into()));
        form.push(("client_assertion", assertion));
        let req = app.client.post(app.url("/oauth/par")).form(&form);
        async move { status_json(req.send().await.unwrap()).await }
    };
    // §2: the issuer or the PAR endpoint's URL is the audience.
    for aud in [json!(format!("{ISSUER}/oauth/par")), json!(ISSUER)] {
        let (status, body) = send(aud.clone()).await;
        assert_eq!(status, 201, "{aud}: {body}");
        assert!(body["request_uri"].as_str().unwrap().starts_with(PREFIX));
    }
    // Another endpoint's URL is not.
    let (status, body) = send(json!(format!("{ISSUER}/oauth/token"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
}
