//! The MFA policy (issue 14 item 5) over HTTP: with `mfa.mode` required, a
//! user without a second factor who signs in to an app (OIDC or SAML) is
//! sent to add one (`/account/security?interaction=…`), then asked for it,
//! then goes on to the app with `amr` saying both factors; a user with one
//! is asked for it; `prompt=none` fails instead of asking;
//! `required_for_admins` holds administrators only.

use crate::mfa::{code_at, enrol, factor_step};
use crate::oauth_support::{
    PASSWORD, REDIRECT, TestClient, absolute, create_client, hidden, make_user, new_browser, pkce,
    query, redeem,
};
use crate::saml::{ACS, SP_ENTITY, authn_request, auto_post, redirect_query, register_sp};
use crate::step_up::follow;
use chrono::TimeDelta;
use serde_json::{Value, json};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    required_mfa_sends_a_user_to_add_a_factor_and_then_asks_for_it,
    required_mfa_for_admins_only_holds_administrators,
    required_mfa_holds_saml_sign_ins_too,
);

/// Posts a form and follows where it leads.
async fn submit(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> (String, String) {
    let resp = browser.post(app.url(path)).form(form).send().await.unwrap();
    match resp.headers().get("location") {
        Some(loc) => {
            let loc = loc.to_str().unwrap().to_owned();
            follow(app, browser, &absolute(app, &loc)).await
        }
        None => (path.to_owned(), resp.text().await.unwrap()),
    }
}

fn authorize(app: &TestApp, client: &TestClient, challenge: &str, extra: &str) -> String {
    app.url(&format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid%20email\
         &state=s1&code_challenge={challenge}&code_challenge_method=S256{extra}",
        client.id,
        urlencoding(REDIRECT)
    ))
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Signs in with the password on the login page the flow showed.
async fn password(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &str,
    email: &str,
) -> (String, String) {
    submit(
        app,
        browser,
        "/login",
        &[
            ("email", email),
            ("password", PASSWORD),
            ("csrf_token", &hidden(page, "csrf_token")),
            ("interaction", &hidden(page, "interaction")),
        ],
    )
    .await
}

/// Approves the consent page if it is the one shown.
async fn approve(app: &TestApp, browser: &reqwest::Client, at: (String, String)) -> String {
    let (url, page) = at;
    if !url.contains("/consent") {
        return url;
    }
    submit(
        app,
        browser,
        "/consent",
        &[
            ("decision", "approve"),
            ("csrf_token", &hidden(&page, "csrf_token")),
            ("interaction", &hidden(&page, "interaction")),
        ],
    )
    .await
    .0
}

fn claims_of(id_token: &str) -> Value {
    use base64::Engine;
    let payload = id_token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn app_with_client(backend: Backend, mfa: Value) -> (TestApp, TestClient) {
    let app = TestApp::spawn(backend).await;
    let (status, p) = status_json(
        app.patch("/v1/policies", &app.secret_key, &json!({"mfa": mfa}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{p}");
    let client = create_client(
        &app,
        json!({"name": "Wiki", "type": "public", "redirect_uris": [REDIRECT],
               "scopes": ["openid", "email"]}),
    )
    .await;
    (app, client)
}

async fn required_mfa_sends_a_user_to_add_a_factor_and_then_asks_for_it(backend: Backend) {
    let (app, client) = app_with_client(backend, json!({"mode": "required"})).await;
    make_user(&app, "ada@example.com").await;
    let browser = new_browser();
    let (verifier, challenge) = pkce();

    let (url, login) = follow(&app, &browser, &authorize(&app, &client, &challenge, "")).await;
    assert!(url.contains("/login"), "{url}");
    // The password, and no factor yet: to the account page, held there.
    let (url, page) = password(&app, &browser, &login, "ada@example.com").await;
    assert!(url.contains("/account/security?interaction="), "{url}");
    assert!(page.contains("requires two-step verification"), "{page}");
    assert!(
        !page.contains("Continue to"),
        "nothing to go on with yet: {page}"
    );

    // Add an authenticator app from that page.
    let (_, enrol) = submit(
        &app,
        &browser,
        "/account/security/totp/start",
        &[("csrf_token", &hidden(&page, "csrf_token"))],
    )
    .await;
    let key = enrol
        .split("<code id=\"manual-key\">")
        .nth(1)
        .unwrap()
        .split("</code>")
        .next()
        .unwrap()
        .replace(' ', "");
    let (_, shown) = submit(
        &app,
        &browser,
        "/account/security/totp/confirm",
        &[
            ("csrf_token", &hidden(&enrol, "csrf_token")),
            ("code", &code_at(&app, &key)),
        ],
    )
    .await;
    assert!(shown.contains("Your recovery codes"), "{shown}");
    assert!(shown.contains("Continue to Wiki"), "{shown}");
    let next = shown
        .split("class=\"button button-primary\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    app.clock.advance(TimeDelta::seconds(30));

    // Going on: the new factor is asked for (the confirming code proved the
    // app works, not that this sign-in has it).
    let (url, step) = follow(&app, &browser, &absolute(&app, &next)).await;
    assert!(url.contains("/second-factor"), "{url}");
    let at = submit(
        &app,
        &browser,
        "/second-factor",
        &[
            ("csrf_token", &hidden(&step, "csrf_token")),
            ("token", &hidden(&step, "token")),
            ("code", &code_at(&app, &key)),
        ],
    )
    .await;
    let callback = approve(&app, &browser, at).await;
    assert!(callback.starts_with(REDIRECT), "{callback}");
    let code = query(&callback).remove("code").unwrap();
    let (status, tokens) = redeem(&app, &client, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = claims_of(tokens["id_token"].as_str().unwrap());
    let amr: Vec<&str> = claims["amr"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(amr.contains(&"otp") && amr.contains(&"pwd"), "{claims}");
    assert_eq!(claims["acr"], "urn:trusec:acr:mfa");

    // A second app later: the session has both factors, nothing is asked.
    let other = create_client(
        &app,
        json!({"name": "Mail", "type": "public", "redirect_uris": [REDIRECT],
               "scopes": ["openid"]}),
    )
    .await;
    let (_, challenge) = pkce();
    let at = follow(&app, &browser, &authorize(&app, &other, &challenge, "")).await;
    assert!(approve(&app, &browser, at).await.starts_with(REDIRECT));

    // A new browser: password, then the code, as for any user with a factor.
    let fresh = new_browser();
    let (_, challenge) = pkce();
    let (_, login) = follow(&app, &fresh, &authorize(&app, &client, &challenge, "")).await;
    let (_, step) = password(&app, &fresh, &login, "ada@example.com").await;
    assert!(step.contains("Two-step verification"), "{step}");
}

async fn required_mfa_for_admins_only_holds_administrators(backend: Backend) {
    let (app, client) = app_with_client(
        backend,
        json!({"mode": "optional", "required_for_admins": true}),
    )
    .await;
    make_user(&app, "user@example.com").await;
    let admin = make_user(&app, "admin@example.com").await;
    let path = format!("/v1/users/{}", admin["id"].as_str().unwrap());
    let (status, _) = status_json(
        app.patch(
            &path,
            &app.secret_key,
            &json!({"groups": ["trusec-admins"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    // An ordinary user goes on with the password alone.
    let browser = new_browser();
    let (_, challenge) = pkce();
    let (_, login) = follow(&app, &browser, &authorize(&app, &client, &challenge, "")).await;
    let at = password(&app, &browser, &login, "user@example.com").await;
    assert!(approve(&app, &browser, at).await.starts_with(REDIRECT));
    // An administrator is held at the account page.
    let browser = new_browser();
    let (_, challenge) = pkce();
    let (_, login) = follow(&app, &browser, &authorize(&app, &client, &challenge, "")).await;
    let (url, _) = password(&app, &browser, &login, "admin@example.com").await;
    assert!(url.contains("/account/security?interaction="), "{url}");
    // prompt=none with that session: the app hears why, nothing is asked.
    let (_, challenge) = pkce();
    let (url, _) = follow(
        &app,
        &browser,
        &authorize(&app, &client, &challenge, "&prompt=none"),
    )
    .await;
    assert_eq!(
        query(&url).get("error").map(String::as_str),
        Some("interaction_required"),
        "{url}"
    );
    // The policy as the API shows it.
    let (_, p) = status_json(app.get("/v1/policies", &app.secret_key).await).await;
    assert_eq!(
        p["mfa"],
        json!({"mode": "optional", "required_for_admins": true})
    );
}

/// SAML: with MFA required, an SP-initiated sign-in of a password-only
/// session asks for the code (a user with a factor) or sends the user to
/// add one (a user without), before any assertion is sent.
async fn required_mfa_holds_saml_sign_ins_too(backend: Backend) {
    let (app, _) = app_with_client(backend, json!({"mode": "required"})).await;
    make_user(&app, "ada@example.com").await;
    make_user(&app, "bob@example.com").await;
    register_sp(&app, json!({"entity_id": SP_ENTITY, "acs_url": ACS})).await;
    let sso = |id: &str| {
        let xml = authn_request(id, SP_ENTITY, Some(ACS), app.clock.now());
        app.url(&format!("/saml/sso?{}", redirect_query(&xml, "r", None)))
    };
    // Ada has an authenticator app; her browser a password-only session.
    let browser = new_browser();
    let (key, _) = enrol(&app, &browser, "ada@example.com").await;
    let (at, page) = follow(&app, &browser, &sso("_a1")).await;
    assert!(at.contains("/second-factor?interaction="), "{at}");
    let resp = factor_step(&app, &browser, &page, &code_at(&app, &key)).await;
    assert_eq!(resp.status(), 303);
    let next = absolute(&app, resp.headers()["location"].to_str().unwrap());
    let (action, xml, _) = auto_post(browser.get(&next).send().await.unwrap()).await;
    assert_eq!(action, ACS);
    assert!(xml.contains("Success"), "{xml}");
    // Bob has none: the account page, no assertion.
    let browser = new_browser();
    let (url, login) = follow(&app, &browser, &sso("_b1")).await;
    assert!(url.contains("/login"), "{url}");
    let (url, page) = password(&app, &browser, &login, "bob@example.com").await;
    assert!(url.contains("/account/security?interaction="), "{url}");
    assert!(page.contains("requires two-step verification"), "{page}");
}
