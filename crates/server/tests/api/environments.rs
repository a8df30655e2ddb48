//! Each environment is its own issuer (contract): live at the root, every
//! other environment under `/env/NAME` with its own SAML entityID,
//! certificate and SPs (and its own OAuth issuer and keys). These tests
//! replay the attacks that sharing one identity allowed.

use crate::oauth_support::{
    PASSWORD, REDIRECT, accepted_by, browse_as, hidden, jwks, new_browser, pkce, query,
};
use crate::saml::{ACS, IDP_SSO, SP_ENTITY, authn_request, redirect_query, sso};
use serde_json::{Value, json};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

const ATTACKER_ACS: &str = "https://attacker.example/acs";
const TEST_IDP_SSO: &str = "http://127.0.0.1:8080/env/test/saml/sso";
const LIVE_ENTITY: &str = "http://127.0.0.1:8080/saml/metadata";
const TEST_ENTITY: &str = "http://127.0.0.1:8080/env/test/saml/metadata";

on_every_backend!(
    a_test_key_cannot_squat_a_live_sp_entity_id,
    each_environment_has_its_own_saml_metadata,
    a_test_client_token_is_refused_by_live_verifiers,
    each_environment_has_its_own_discovery_and_jwks,
    each_environment_has_its_own_login_session,
    a_test_code_flow_is_the_test_issuer_s_alone,
);

const LIVE_ISSUER: &str = "http://127.0.0.1:8080";
const TEST_ISSUER: &str = "http://127.0.0.1:8080/env/test";

async fn create_user(app: &TestApp, key: &str, email: &str) {
    let (status, body) = status_json(
        app.post(
            "/v1/users",
            key,
            &json!({"email": email, "password": PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

async fn create_sp(app: &TestApp, key: &str, acs: &str) -> u16 {
    let resp = app
        .post(
            "/v1/saml/service-providers",
            key,
            &json!({"entity_id": SP_ENTITY, "acs_url": acs}),
        )
        .await;
    resp.status().as_u16()
}

/// The sign-in page a browser is sent to by an SSO request.
async fn login_page(app: &TestApp, browser: &reqwest::Client, sso_url: &str) -> (String, String) {
    let resp = browser.get(sso_url).send().await.unwrap();
    assert_eq!(resp.status(), 302, "{sso_url}");
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let html = text(browser, &app.url(&location)).await;
    (location, html)
}

async fn text(browser: &reqwest::Client, url: &str) -> String {
    browser.get(url).send().await.unwrap().text().await.unwrap()
}

fn issuer_of(xml: &str) -> String {
    xml.split("Issuer")
        .nth(1)
        .and_then(|s| s.split('>').nth(1))
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_owned()
}

/// Security issue 9, item 2: a `trusec_test_` key registered a SAML SP
/// under a production SP's entity id first (live then got a 409), and the
/// production SP's real AuthnRequests were answered from the test
/// environment: the attacker signed in as a test user they made, with an
/// assertion the SP accepted. Now the test environment is another IdP:
/// live registers its SP regardless, live requests are answered for the
/// live SP only (a test user cannot sign in there), and the test SP is
/// reached only at `/env/test/saml/sso`, under the test entityID.
async fn a_test_key_cannot_squat_a_live_sp_entity_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // The attacker, with a test key, claims the production SP's entity id
    // first and points it at their own ACS.
    assert_eq!(create_sp(&app, &app.test_key, ATTACKER_ACS).await, 201);
    create_user(&app, &app.test_key, "mallory@example.com").await;
    // Live registers its SP all the same: no 409.
    assert_eq!(create_sp(&app, &app.secret_key, ACS).await, 201);
    create_user(&app, &app.secret_key, "ada@example.com").await;
    let now = app.clock.now();
    let live = |id: &str| {
        app.url(&format!(
            "/saml/sso?{}",
            redirect_query(&authn_request(id, SP_ENTITY, None, now), "", None)
        ))
    };
    let test = |id: &str| {
        let request = authn_request(id, SP_ENTITY, None, now).replace(IDP_SSO, TEST_IDP_SSO);
        app.url(&format!(
            "/env/test/saml/sso?{}",
            redirect_query(&request, "", None)
        ))
    };
    let live_sso = live("_live1");
    // The production SP's request, at live: the test user cannot sign in.
    let browser = new_browser();
    let (location, html) = login_page(&app, &browser, &live_sso).await;
    assert!(location.starts_with("/login?"), "{location}");
    let interaction = hidden(&html, "interaction");
    let refused = submit_login(
        &browser,
        &app.url("/login"),
        &html,
        "mallory@example.com",
        &interaction,
    )
    .await;
    assert_eq!(refused.status(), 401, "a test user is not a live user");
    // The live user gets an assertion for the live SP, from the live IdP.
    let (action, xml, _) = sso(&app, &new_browser(), &live("_live2"), "ada@example.com").await;
    assert_eq!(action, ACS, "the live SP's ACS, never the squatter's");
    assert_eq!(issuer_of(&xml), LIVE_ENTITY);
    assert!(xml.contains("ada@example.com") && !xml.contains("mallory"));
    // The test SP is answered only by the test IdP, at its own endpoints.
    let (action, xml, _) = sso(&app, &new_browser(), &test("_test1"), "mallory@example.com").await;
    assert_eq!(action, ATTACKER_ACS);
    assert_eq!(issuer_of(&xml), TEST_ENTITY);
    // A test request sent to the live endpoint names a live destination it
    // does not have; the live request at the test endpoint likewise.
    let wrong = app.url(&format!(
        "/env/test/saml/sso?{}",
        redirect_query(&authn_request("_live4", SP_ENTITY, None, now), "", None)
    ));
    let resp = new_browser().get(&wrong).send().await.unwrap();
    assert_eq!(
        resp.status(),
        400,
        "a live-destination request at the test IdP"
    );
    // A live login session is no session at the test IdP.
    let browser = new_browser();
    sso(&app, &browser, &live("_live3"), "ada@example.com").await;
    let resp = browser.get(test("_test2")).send().await.unwrap();
    assert_eq!(
        resp.status(),
        302,
        "to the test login page, not an assertion"
    );
    let location = resp.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("/env/test/login?"), "{location}");
    // That test sign-in cannot be finished at live's pages.
    let id = location.split("interaction=").nth(1).unwrap();
    for path in [
        format!("/login?interaction={id}"),
        format!("/saml/sso/continue?interaction={id}"),
    ] {
        let status = browser.get(app.url(&path)).send().await.unwrap().status();
        assert_eq!(status, 400, "{path}");
    }
}

fn certificate_of(metadata: &str) -> String {
    metadata
        .split("<ds:X509Certificate>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_owned()
}

/// The test IdP's metadata names its own entityID, endpoints and
/// certificate; an environment that does not exist is a 404.
async fn each_environment_has_its_own_saml_metadata(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let get = |path: &'static str| {
        let client = app.client.clone();
        let url = app.url(path);
        async move { client.get(url).send().await.unwrap() }
    };
    let live = get("/saml/metadata").await.text().await.unwrap();
    let test = get("/env/test/saml/metadata").await.text().await.unwrap();
    assert!(
        live.contains(&format!("entityID=\"{LIVE_ENTITY}\"")),
        "{live}"
    );
    assert!(
        test.contains(&format!("entityID=\"{TEST_ENTITY}\"")),
        "{test}"
    );
    assert!(
        test.contains(&format!("Location=\"{TEST_IDP_SSO}\"")),
        "{test}"
    );
    assert!(!test.contains(&format!("Location=\"{IDP_SSO}\"")), "{test}");
    assert_ne!(certificate_of(&live), certificate_of(&test));
    for path in [
        "/env/nope/saml/metadata",
        "/env/live/saml/metadata",
        "/env/test/v1/users",
    ] {
        assert_eq!(get(path).await.status(), 404, "{path}");
    }
}

/// A confidential client with client_credentials, made with `key` (whose
/// environment it then belongs to): (id, secret).
async fn machine_client(app: &TestApp, key: &str) -> (String, String) {
    let (status, c) = status_json(
        app.post(
            "/v1/oauth/clients",
            key,
            &json!({"name": "Worker", "type": "confidential",
                    "redirect_uris": ["https://app.example.com/callback"],
                    "grant_types": ["client_credentials"], "scopes": ["read:users"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{c}");
    (
        c["client_id"].as_str().unwrap().to_owned(),
        c["client_secret"].as_str().unwrap().to_owned(),
    )
}

async fn post_form(
    app: &TestApp,
    path: &str,
    (id, secret): &(String, String),
    form: &[(&str, &str)],
) -> (u16, Value) {
    status_json(
        app.client
            .post(app.url(path))
            .basic_auth(id, Some(secret))
            .form(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn access_token(app: &TestApp, base: &str, client: &(String, String)) -> String {
    let (status, body) = post_form(
        app,
        &format!("{base}/oauth/token"),
        client,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read:users"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// RFC 7662 at `{base}/oauth/introspect`.
async fn introspect(app: &TestApp, base: &str, client: &(String, String), token: &str) -> Value {
    let path = format!("{base}/oauth/introspect");
    let (status, body) = post_form(app, &path, client, &[("token", token)]).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Security issue 9, item 2: a test-environment client's access token had
/// the same `iss`, `aud` and signing key as live's (only a private `env`
/// claim differed), so any resource server checking issuer and signature
/// accepted it as live. Now the test environment is its own issuer with its
/// own keys: a resource server that trusts the live issuer and JWKS refuses
/// it, and so do live's own userinfo and introspection.
async fn a_test_client_token_is_refused_by_live_verifiers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let test_client = machine_client(&app, &app.test_key).await;
    let live_client = machine_client(&app, &app.secret_key).await;
    // A test client is no client at the live token endpoint.
    let (status, body) = post_form(
        &app,
        "/oauth/token",
        &test_client,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let test_token = access_token(&app, "/env/test", &test_client).await;
    let live_token = access_token(&app, "", &live_client).await;
    let live_keys = jwks(&app, "/.well-known/jwks.json").await;
    let test_keys = jwks(&app, "/env/test/.well-known/jwks.json").await;
    // The resource server trusting live: live's token passes, test's fails.
    accepted_by(&live_token, &live_keys, LIVE_ISSUER, LIVE_ISSUER).unwrap();
    let refused = accepted_by(&test_token, &live_keys, LIVE_ISSUER, LIVE_ISSUER);
    assert!(refused.is_err(), "a test token passed as live: {refused:?}");
    // Even with its own keys in hand, its issuer is not live's.
    assert!(accepted_by(&test_token, &test_keys, LIVE_ISSUER, LIVE_ISSUER).is_err());
    let claims = accepted_by(&test_token, &test_keys, TEST_ISSUER, TEST_ISSUER).unwrap();
    assert_eq!(claims["iss"], TEST_ISSUER);
    assert_eq!(claims["aud"], TEST_ISSUER);
    // Live's own verifiers refuse it.
    let info = introspect(&app, "", &live_client, &test_token).await;
    assert_eq!(info["active"], false, "{info}");
    let resp = app
        .client
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(&test_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // And the test environment's accept only it.
    let info = introspect(&app, "/env/test", &test_client, &test_token).await;
    assert_eq!(
        (info["active"].as_bool(), info["iss"].as_str()),
        (Some(true), Some(TEST_ISSUER))
    );
    let info = introspect(&app, "/env/test", &test_client, &live_token).await;
    assert_eq!(info["active"], false, "{info}");
    // /v1 takes each token only with its own issuer's keys: the live token
    // reads live users, the test token test users.
    let users = |token: String| {
        let req = app.client.get(app.url("/v1/users")).bearer_auth(token);
        async move { status_json(req.send().await.unwrap()).await }
    };
    create_user(&app, &app.secret_key, "ada@example.com").await;
    let (status, live_users) = users(live_token.clone()).await;
    assert_eq!(status, 200, "{live_users}");
    assert_eq!(live_users["data"][0]["email"], "ada@example.com");
    let (status, test_users) = users(test_token.clone()).await;
    assert_eq!(status, 200, "{test_users}");
    assert_eq!(test_users["data"], json!([]));
}

/// The test environment's discovery document lists its own endpoints and
/// JWKS (OIDC Discovery §4.3: `issuer` is the URL it was fetched under),
/// with keys of its own; an unknown environment is a 404.
async fn each_environment_has_its_own_discovery_and_jwks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc = |path: &'static str| {
        let req = app.client.get(app.url(path));
        async move { status_json(req.send().await.unwrap()).await }
    };
    let (status, test) = doc("/env/test/.well-known/openid-configuration").await;
    assert_eq!(status, 200);
    assert_eq!(test["issuer"], TEST_ISSUER);
    assert_eq!(
        test["jwks_uri"],
        format!("{TEST_ISSUER}/.well-known/jwks.json")
    );
    for (name, value) in test.as_object().unwrap() {
        if name.ends_with("_endpoint") || name == "jwks_uri" {
            let url = value.as_str().unwrap();
            assert!(url.starts_with(&format!("{TEST_ISSUER}/")), "{name}: {url}");
        }
    }
    let (_, live) = doc("/.well-known/openid-configuration").await;
    assert_eq!(live["issuer"], LIVE_ISSUER);
    assert_eq!(live["token_endpoint"], format!("{LIVE_ISSUER}/oauth/token"));
    // RFC 8414 §3.1: the metadata of an issuer with a path, at the root.
    for path in [
        "/.well-known/oauth-authorization-server/env/test",
        "/env/test/.well-known/oauth-authorization-server",
    ] {
        let (status, meta) = status_json(app.client.get(app.url(path)).send().await.unwrap()).await;
        assert_eq!(
            (status, meta["issuer"].as_str()),
            (200, Some(TEST_ISSUER)),
            "{path}"
        );
    }
    let kids = |set: &jsonwebtoken::jwk::JwkSet| -> Vec<String> {
        set.keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect()
    };
    let live_kids = kids(&jwks(&app, "/.well-known/jwks.json").await);
    let test_kids = kids(&jwks(&app, "/env/test/.well-known/jwks.json").await);
    assert!(!test_kids.is_empty());
    assert!(
        test_kids.iter().all(|k| !live_kids.contains(k)),
        "keys of its own"
    );
    for path in [
        "/env/nope/.well-known/openid-configuration",
        "/env/nope/oauth/token",
        "/env/live/.well-known/jwks.json",
    ] {
        let status = app.client.get(app.url(path)).send().await.unwrap().status();
        assert_eq!(status, 404, "{path}");
    }
}

/// Posts the login form `html` to `url` as `email`.
async fn submit_login(
    browser: &reqwest::Client,
    url: &str,
    html: &str,
    email: &str,
    interaction: &str,
) -> reqwest::Response {
    browser
        .post(url)
        .form(&[
            ("email", email),
            ("password", PASSWORD),
            ("csrf_token", &hidden(html, "csrf_token")),
            ("interaction", interaction),
        ])
        .send()
        .await
        .unwrap()
}

/// Signs `browser` in at `{base}/login` (no protocol request); returns the
/// status and the `Set-Cookie` of the session, if any.
async fn hosted_login(
    app: &TestApp,
    browser: &reqwest::Client,
    base: &str,
    email: &str,
) -> (u16, Option<String>) {
    let html = text(browser, &app.url(&format!("{base}/login"))).await;
    assert!(
        html.contains(r#"action="login""#),
        "posts to its own environment"
    );
    let url = app.url(&format!("{base}/login"));
    let resp = submit_login(browser, &url, &html, email, "").await;
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("trusec_session"));
    (resp.status().as_u16(), cookie)
}

/// Hosted-page sessions are per environment: a test user cannot sign in at
/// live's pages nor a live user at the test's; signing in to one
/// environment leaves the other's session alone; and a live session token
/// never authenticates at `/env/test`, whatever cookie carries it.
async fn each_environment_has_its_own_login_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create_user(&app, &app.secret_key, "ada@example.com").await;
    create_user(&app, &app.test_key, "mallory@example.com").await;
    assert_eq!(create_sp(&app, &app.secret_key, ACS).await, 201);
    assert_eq!(create_sp(&app, &app.test_key, ATTACKER_ACS).await, 201);
    let browser = new_browser();
    assert_eq!(
        hosted_login(&app, &browser, "", "mallory@example.com")
            .await
            .0,
        401
    );
    assert_eq!(
        hosted_login(&app, &browser, "/env/test", "ada@example.com")
            .await
            .0,
        401
    );
    let (status, live_cookie) = hosted_login(&app, &browser, "", "ada@example.com").await;
    assert_eq!(status, 200);
    let live_cookie = live_cookie.unwrap();
    assert!(
        live_cookie.starts_with("trusec_session=") && live_cookie.contains("Path=/;"),
        "{live_cookie}"
    );
    let (status, test_cookie) =
        hosted_login(&app, &browser, "/env/test", "mallory@example.com").await;
    assert_eq!(status, 200);
    let test_cookie = test_cookie.unwrap();
    assert!(
        test_cookie.starts_with("trusec_session_test=") && test_cookie.contains("Path=/env/test"),
        "{test_cookie}"
    );
    // Both sessions hold: each IdP answers at once, for its own user.
    let now = app.clock.now();
    let live_sso = app.url(&format!(
        "/saml/sso?{}",
        redirect_query(&authn_request("_l1", SP_ENTITY, None, now), "", None)
    ));
    let test_request = authn_request("_t1", SP_ENTITY, None, now).replace(IDP_SSO, TEST_IDP_SSO);
    let test_sso = app.url(&format!(
        "/env/test/saml/sso?{}",
        redirect_query(&test_request, "", None)
    ));
    let (action, xml, _) = sso(&app, &browser, &live_sso, "unused@example.com").await;
    assert_eq!(action, ACS);
    assert!(xml.contains("ada@example.com"));
    let (action, xml, _) = sso(&app, &browser, &test_sso, "unused@example.com").await;
    assert_eq!(action, ATTACKER_ACS);
    assert!(xml.contains("mallory@example.com"));
    // The live session token, presented to the test IdP under either name.
    let token = live_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("trusec_session=");
    for name in ["trusec_session", "trusec_session_test"] {
        let request = authn_request(&format!("_t-{name}"), SP_ENTITY, None, now)
            .replace(IDP_SSO, TEST_IDP_SSO);
        let resp = app
            .client
            .get(app.url(&format!(
                "/env/test/saml/sso?{}",
                redirect_query(&request, "", None)
            )))
            .header("cookie", format!("{name}={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            302,
            "{name}: to the test login page, not an assertion"
        );
    }
}

/// An authorization-code flow of a test client runs entirely under
/// `/env/test` (its hosted pages included): the code, refresh token and ID
/// token it yields are the test issuer's, and live's token and logout
/// endpoints refuse every one of them.
async fn a_test_code_flow_is_the_test_issuer_s_alone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create_user(&app, &app.test_key, "mallory@example.com").await;
    let (status, c) = status_json(
        app.post(
            "/v1/oauth/clients",
            &app.test_key,
            &json!({"name": "Test SPA", "type": "public", "redirect_uris": [REDIRECT],
                    "post_logout_redirect_uris": ["https://app.example.com/bye"],
                    "scopes": ["openid", "offline_access"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{c}");
    let client_id = c["client_id"].as_str().unwrap().to_owned();
    let (verifier, challenge) = pkce();
    let mut start = url::Url::parse(&app.url("/env/test/oauth/authorize")).unwrap();
    start
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid offline_access")
        .append_pair("nonce", "n1")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let trip = browse_as(
        &app,
        &new_browser(),
        start.as_str(),
        "mallory@example.com",
        true,
    )
    .await;
    let callback = query(&trip.callback);
    assert_eq!(callback["iss"], TEST_ISSUER, "RFC 9207");
    let redeem = |base: &'static str, form: Vec<(&'static str, String)>| {
        let req = app.client.post(app.url(&format!("{base}/oauth/token")));
        async move { status_json(req.form(&form).send().await.unwrap()).await }
    };
    let code_form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", callback["code"].clone()),
        ("redirect_uri", REDIRECT.to_owned()),
        ("code_verifier", verifier),
        ("client_id", client_id.clone()),
    ];
    let (status, _) = redeem("", code_form.clone()).await;
    assert_eq!(status, 401, "the code is not live's to redeem");
    let (status, tokens) = redeem("/env/test", code_form).await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap();
    let test_keys = jwks(&app, "/env/test/.well-known/jwks.json").await;
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let key =
        jsonwebtoken::DecodingKey::from_jwk(test_keys.find(&header.kid.unwrap()).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[&client_id]);
    validation.set_issuer(&[TEST_ISSUER]);
    jsonwebtoken::decode::<Value>(id_token, &key, &validation).unwrap();
    // Its refresh token is unknown at live.
    let refresh = vec![
        ("grant_type", "refresh_token".to_owned()),
        (
            "refresh_token",
            tokens["refresh_token"].as_str().unwrap().to_owned(),
        ),
        ("client_id", client_id.clone()),
    ];
    let (status, _) = redeem("", refresh.clone()).await;
    assert_eq!(status, 401);
    let (status, body) = redeem("/env/test", refresh).await;
    assert_eq!(status, 200, "{body}");
    // Its ID token is no id_token_hint at live's logout.
    let logout = |base: &str| {
        let url = app.url(&format!(
            "{base}/oauth/logout?id_token_hint={id_token}&post_logout_redirect_uri={}",
            crate::saml::enc("https://app.example.com/bye")
        ));
        let req = app.client.get(url);
        async move { req.send().await.unwrap() }
    };
    assert_eq!(logout("").await.status(), 400);
    let resp = logout("/env/test").await;
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("/env/test/logout?intent="),
        "{location}"
    );
}
