//! Passkeys over HTTP (issue 14 item 1): a software authenticator
//! (webauthn-authenticator-rs' `SoftPasskey`, independent of the server's
//! webauthn-rs verification) answers the ceremonies the hosted pages start.
//! A signed-in user adds a passkey from `/account/security` (and gets
//! recovery codes with it), signs in with it alone from `/login` (the
//! discoverable flow), uses it as the second step after the password, and
//! renames and removes it; replayed answers, answers for another origin,
//! for another ceremony or by an unknown credential are each refused.
//!
//! `SoftPasskey` keeps no discoverable credentials: for the `/login`
//! ceremony the test hands it the credential id (the server's options
//! name none) and adds the user handle to its answer, as a platform
//! authenticator would. Neither is signed (WebAuthn §6.3.3: the signature
//! covers the authenticator data and the client data only), so what the
//! server verifies is exactly what a browser would send.

use crate::oauth_support::{
    PASSWORD, REDIRECT, TestClient, authorize_code, create_client, hidden, make_user, new_browser,
    password_login, redeem,
};
use serde_json::{Value, json};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};
use webauthn_authenticator_rs::AuthenticatorBackend;
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, RequestChallengeResponse, Url, WebauthnAuthenticator,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

on_every_backend!(
    a_passkey_is_added_and_signs_in_alone,
    a_passkey_is_the_second_step_after_the_password,
    passkey_answers_are_refused_per_webauthn,
    passkeys_are_renamed_and_removed,
    the_help_desk_sees_and_removes_passkeys,
);

/// WebAuthn needs a domain (or localhost) as relying party id: the app's
/// issuer is `http://localhost:8080` here.
const ORIGIN: &str = "http://localhost:8080";

async fn spawn(backend: Backend) -> TestApp {
    TestApp::builder(backend)
        .with_settings(|s| s.issuer = ORIGIN.into())
        .spawn()
        .await
}

fn origin() -> Url {
    Url::parse(ORIGIN).unwrap()
}

async fn page(app: &TestApp, browser: &reqwest::Client, path: &str) -> String {
    let resp = browser.get(app.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.text().await.unwrap()
}

/// Posts `form` to `path`; the status and the JSON answer.
async fn post_json(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    status_json(browser.post(app.url(path)).form(form).send().await.unwrap()).await
}

async fn post_form(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    let resp = browser.post(app.url(path)).form(form).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// A registered passkey: the authenticator that holds it and its id.
struct Enrolled {
    authenticator: SoftPasskey,
    credential_id: String,
}

/// Signs `email` in with the password and adds a passkey named `name`
/// from the account page; the authenticator and the page shown after.
async fn enrol(
    app: &TestApp,
    browser: &reqwest::Client,
    email: &str,
    name: &str,
) -> (Enrolled, u16, String) {
    let resp = password_login(app, browser, email, PASSWORD).await;
    assert!(resp.status().is_success() || resp.status().is_redirection());
    let account = page(app, browser, "/account/security").await;
    assert!(account.contains("Add a passkey"), "{account}");
    let csrf = hidden(&account, "csrf_token");
    let (status, started) = post_json(
        app,
        browser,
        "/account/security/passkeys/options",
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let options: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    // Discoverable (for the e-mail field's conditional UI) and verified.
    assert_eq!(options.public_key.rp.id, "localhost");
    let mut authenticator = SoftPasskey::new(true);
    let answer = authenticator.do_registration(origin(), options).unwrap();
    let answer = serde_json::to_value(&answer).unwrap();
    let credential_id = answer["id"].as_str().unwrap().to_owned();
    let (status, shown) = post_form(
        app,
        browser,
        "/account/security/passkeys",
        &[
            ("csrf_token", &csrf),
            ("token", started["token"].as_str().unwrap()),
            ("name", name),
            ("credential", &answer.to_string()),
        ],
    )
    .await;
    (
        Enrolled {
            authenticator,
            credential_id,
        },
        status,
        shown,
    )
}

/// The user handle webauthn-rs gave the user's passkeys (a UUID from the
/// user id), base64url, as an authenticator returns it.
fn user_handle(user_id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(trusec_storage::passkeys::user_handle(user_id).as_bytes())
}

/// Answers a discoverable `/login` challenge with `key`, as the platform
/// would (see the module comment); `origin` is where the browser is.
fn discoverable_answer(
    key: &mut Enrolled,
    started: &Value,
    user_id: &str,
    origin: Url,
) -> Result<String, String> {
    let mut options = started["options"].clone();
    assert_eq!(options["publicKey"]["allowCredentials"], json!([]));
    options["publicKey"]["allowCredentials"] =
        json!([{"type": "public-key", "id": key.credential_id}]);
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let answer = key
        .authenticator
        .do_authentication(origin, options)
        .map_err(|e| format!("{e:?}"))?;
    let mut answer = serde_json::to_value(&answer).unwrap();
    answer["response"]["userHandle"] = json!(user_handle(user_id));
    Ok(answer.to_string())
}

/// Starts a passkey sign-in on `/login` in `browser`: the page's CSRF
/// token and the ceremony.
async fn start_login(app: &TestApp, browser: &reqwest::Client) -> (String, Value) {
    let login = page(app, browser, "/login").await;
    assert!(
        login.contains("webauthn"),
        "the e-mail field offers passkeys: {login}"
    );
    let csrf = hidden(&login, "csrf_token");
    let (status, started) = post_json(
        app,
        browser,
        "/login/passkey/options",
        &[("csrf_token", &csrf), ("interaction", "")],
    )
    .await;
    assert_eq!(status, 200, "{started}");
    (csrf, started)
}

async fn finish_login(
    app: &TestApp,
    browser: &reqwest::Client,
    csrf: &str,
    token: &str,
    credential: &str,
) -> u16 {
    let resp = browser
        .post(app.url("/login/passkey"))
        .form(&[
            ("csrf_token", csrf),
            ("interaction", ""),
            ("token", token),
            ("credential", credential),
        ])
        .send()
        .await
        .unwrap();
    resp.status().as_u16()
}

/// The `amr` and `acr` of an ID token issued to a browser that is signed
/// in already (no login page on the way).
async fn amr_of_session(app: &TestApp, browser: &reqwest::Client) -> (Value, Value) {
    let client: TestClient = create_client(
        app,
        json!({"name": "App", "type": "public", "redirect_uris": [REDIRECT],
               "scopes": ["openid", "email"]}),
    )
    .await;
    let (code, verifier) = authorize_code(app, browser, &client, "unused", "openid email").await;
    let (status, tokens) = redeem(app, &client, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap();
    let claims: Value = {
        use base64::Engine;
        let payload = id_token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    (claims["amr"].clone(), claims["acr"].clone())
}

async fn a_passkey_is_added_and_signs_in_alone(backend: Backend) {
    let app = spawn(backend).await;
    let user = make_user(&app, "ada@example.com").await;
    let user_id = user["id"].as_str().unwrap();
    let (mut key, status, shown) = enrol(&app, &new_browser(), "ada@example.com", "Laptop").await;
    // The first second factor comes with ten recovery codes, shown once.
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown.matches("<li><code>").count(), 10, "{shown}");
    let (_, events) = status_json(
        app.get("/v1/audit-events?type=user.mfa.enrolled", &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(events["data"][0]["data"]["kind"], "passkey", "{events}");

    // A new browser signs in with the passkey alone: nothing is typed.
    let browser = new_browser();
    let (csrf, started) = start_login(&app, &browser).await;
    let answer = discoverable_answer(&mut key, &started, user_id, origin()).unwrap();
    let status = finish_login(
        &app,
        &browser,
        &csrf,
        started["token"].as_str().unwrap(),
        &answer,
    )
    .await;
    assert!((200..400).contains(&status), "{status}");
    let account = page(&app, &browser, "/account/security").await;
    assert!(account.contains("Laptop"), "{account}");
    // RFC 8176: a device-bound key; a passkey alone is one factor (issue
    // 14: it is a second factor only beside the password).
    let (amr, acr) = amr_of_session(&app, &browser).await;
    assert_eq!(amr, json!(["hwk"]), "{amr}");
    assert_ne!(acr, json!("urn:trusec:acr:mfa"), "{acr}");
}

async fn a_passkey_is_the_second_step_after_the_password(backend: Backend) {
    let app = spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    let (mut key, status, _) = enrol(&app, &new_browser(), "ada@example.com", "Laptop").await;
    assert_eq!(status, 200);
    let browser = new_browser();
    let resp = password_login(&app, &browser, "ada@example.com", PASSWORD).await;
    let step = resp.text().await.unwrap();
    assert!(step.contains("Two-step verification"), "{step}");
    assert!(
        step.contains("Use a passkey"),
        "the step offers the passkey: {step}"
    );
    // A user with an authenticator app and no passkey is not offered one.
    make_user(&app, "bob@example.com").await;
    crate::mfa::enrol(&app, &new_browser(), "bob@example.com").await;
    let other = new_browser();
    let resp = password_login(&app, &other, "bob@example.com", PASSWORD).await;
    let bobs = resp.text().await.unwrap();
    assert!(bobs.contains("Two-step verification"), "{bobs}");
    assert!(!bobs.contains("Use a passkey"), "{bobs}");
    let (csrf, token) = (hidden(&step, "csrf_token"), hidden(&step, "token"));
    let (status, started) = post_json(
        &app,
        &browser,
        "/second-factor/passkey/options",
        &[("csrf_token", &csrf), ("token", &token)],
    )
    .await;
    assert_eq!(status, 200, "{started}");
    // §7.2: the allow list names this user's passkey only.
    let allowed = started["options"]["publicKey"]["allowCredentials"].clone();
    assert_eq!(allowed.as_array().unwrap().len(), 1, "{allowed}");
    assert_eq!(allowed[0]["id"], key.credential_id);
    let options: RequestChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let answer = key
        .authenticator
        .do_authentication(origin(), options)
        .unwrap();
    let (status, _) = post_form(
        &app,
        &browser,
        "/second-factor",
        &[
            ("csrf_token", &csrf),
            ("token", &token),
            ("credential", &serde_json::to_string(&answer).unwrap()),
        ],
    )
    .await;
    assert!((200..400).contains(&status), "{status}");
    let (amr, acr) = amr_of_session(&app, &browser).await;
    let amr: Vec<&str> = amr
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        amr.contains(&"pwd") && amr.contains(&"hwk") && amr.contains(&"mfa"),
        "{amr:?}"
    );
    assert_eq!(acr, json!("urn:trusec:acr:mfa"));
}

async fn passkey_answers_are_refused_per_webauthn(backend: Backend) {
    let app = spawn(backend).await;
    let user = make_user(&app, "ada@example.com").await;
    let user_id = user["id"].as_str().unwrap().to_owned();
    let (mut key, status, _) = enrol(&app, &new_browser(), "ada@example.com", "Laptop").await;
    assert_eq!(status, 200);
    let browser = new_browser();

    // An answer made for another origin (a phishing page's): a browser
    // would not even make it, so the authenticator is driven directly
    // (no client-side origin check) to see that the server refuses it.
    let (csrf, started) = start_login(&app, &browser).await;
    let mut options = started["options"].clone();
    options["publicKey"]["allowCredentials"] =
        json!([{"type": "public-key", "id": key.credential_id}]);
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let evil = Url::parse("https://login.evil.example").unwrap();
    let phished = key
        .authenticator
        .perform_auth(evil, options.public_key, 60_000)
        .unwrap();
    let mut phished = serde_json::to_value(&phished).unwrap();
    phished["response"]["userHandle"] = json!(user_handle(&user_id));
    let token = started["token"].as_str().unwrap();
    assert_eq!(
        finish_login(&app, &browser, &csrf, token, &phished.to_string()).await,
        401
    );
    // A good answer is used once: the ceremony is gone after it.
    let (csrf, started) = start_login(&app, &browser).await;
    let token = started["token"].as_str().unwrap().to_owned();
    let answer = discoverable_answer(&mut key, &started, &user_id, origin()).unwrap();
    let signed_in = finish_login(&app, &browser, &csrf, &token, &answer).await;
    assert!((200..400).contains(&signed_in));
    let replay = new_browser();
    let (csrf2, _) = start_login(&app, &replay).await;
    assert_eq!(
        finish_login(&app, &replay, &csrf2, &token, &answer).await,
        400
    );
    // The answer to one ceremony does not answer another.
    let (csrf3, other) = start_login(&app, &replay).await;
    let other_token = other["token"].as_str().unwrap();
    assert_eq!(
        finish_login(&app, &replay, &csrf3, other_token, &answer).await,
        401
    );
    // Garbage, and an answer naming another account's handle.
    let (csrf4, started) = start_login(&app, &replay).await;
    let t = started["token"].as_str().unwrap();
    assert_eq!(
        finish_login(&app, &replay, &csrf4, t, "{\"id\": 1}").await,
        400
    );
    let (csrf5, started) = start_login(&app, &replay).await;
    let mut forged: Value =
        serde_json::from_str(&discoverable_answer(&mut key, &started, &user_id, origin()).unwrap())
            .unwrap();
    forged["response"]["userHandle"] = json!(user_handle("user_someone_else"));
    let t = started["token"].as_str().unwrap();
    assert_eq!(
        finish_login(&app, &replay, &csrf5, t, &forged.to_string()).await,
        401
    );
    // Each refusal is audited as a failed sign-in with its reason.
    let (_, events) = status_json(
        app.get("/v1/audit-events?type=user.login.failed", &app.secret_key)
            .await,
    )
    .await;
    let reasons: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["method"] == "passkey")
        .filter_map(|e| e["data"]["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"expired"), "{reasons:?}");
    assert!(reasons.contains(&"verification_failed"), "{reasons:?}");
    assert!(reasons.contains(&"malformed"), "{reasons:?}");
    assert!(reasons.contains(&"unknown_credential"), "{reasons:?}");
}

async fn passkeys_are_renamed_and_removed(backend: Backend) {
    let app = spawn(backend).await;
    let user = make_user(&app, "ada@example.com").await;
    let user_id = user["id"].as_str().unwrap().to_owned();
    let browser = new_browser();
    let (mut key, status, _) = enrol(&app, &browser, "ada@example.com", "Laptop").await;
    assert_eq!(status, 200);
    let account = page(&app, &browser, "/account/security").await;
    let csrf = hidden(&account, "csrf_token");
    let passkey_id = hidden(&account, "passkey_id");
    // A name must be 1 to 64 characters.
    let too_long = "x".repeat(65);
    let rename = |name: String| {
        let (csrf, passkey_id) = (csrf.clone(), passkey_id.clone());
        let browser = browser.clone();
        let app = &app;
        async move {
            post_form(
                app,
                &browser,
                "/account/security/passkeys/rename",
                &[
                    ("csrf_token", &csrf),
                    ("passkey_id", &passkey_id),
                    ("name", &name),
                ],
            )
            .await
            .0
        }
    };
    assert_eq!(rename(too_long).await, 422);
    assert!((200..400).contains(&rename("Work phone".into()).await));
    let account = page(&app, &browser, "/account/security").await;
    assert!(
        account.contains("Work phone") && !account.contains("Laptop"),
        "{account}"
    );
    // Removing it: it no longer signs in.
    let (status, _) = post_form(
        &app,
        &browser,
        "/account/security/passkeys/remove",
        &[("csrf_token", &csrf), ("passkey_id", &passkey_id)],
    )
    .await;
    assert!((200..400).contains(&status), "{status}");
    let account = page(&app, &browser, "/account/security").await;
    assert!(account.contains("You have no passkey"), "{account}");
    let other = new_browser();
    let (csrf, started) = start_login(&app, &other).await;
    let answer = discoverable_answer(&mut key, &started, &user_id, origin()).unwrap();
    let t = started["token"].as_str().unwrap();
    assert_eq!(finish_login(&app, &other, &csrf, t, &answer).await, 401);
    // Someone else's passkey id is not found (nothing is changed).
    let (status, _) = post_form(
        &app,
        &browser,
        "/account/security/passkeys/remove",
        &[
            ("csrf_token", &hidden(&account, "csrf_token")),
            ("passkey_id", "passkey_01HZZZZZZZZZZZZZZZZZZZZZZZ"),
        ],
    )
    .await;
    assert_eq!(status, 404);
}

async fn the_help_desk_sees_and_removes_passkeys(backend: Backend) {
    let app = spawn(backend).await;
    let user = make_user(&app, "ada@example.com").await;
    let user_id = user["id"].as_str().unwrap();
    let (_, status, _) = enrol(&app, &new_browser(), "ada@example.com", "Laptop").await;
    assert_eq!(status, 200);
    let path = format!("/v1/users/{user_id}/factors");
    let (status, list) = status_json(app.get(&path, &app.secret_key).await).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["data"][0]["kind"], "passkey", "{list}");
    assert_eq!(list["data"][0]["name"], "Laptop");
    assert_eq!(list["recovery_codes_left"], 10);
    assert!(
        list.to_string().find("publicKey").is_none(),
        "no key material: {list}"
    );
    let id = list["data"][0]["id"].as_str().unwrap();
    assert!(id.starts_with("passkey_"), "{id}");
    let resp = app.delete(&format!("{path}/{id}"), &app.secret_key).await;
    assert_eq!(resp.status(), 204);
    let resp = app.delete(&format!("{path}/{id}"), &app.secret_key).await;
    assert_eq!(resp.status(), 404);
    let (_, list) = status_json(app.get(&path, &app.secret_key).await).await;
    assert_eq!(list["data"], json!([]));
    // The last second factor took the recovery codes with it.
    assert_eq!(list["recovery_codes_left"], 0);
    let (_, events) = status_json(
        app.get("/v1/audit-events?type=user.mfa.removed", &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(events["data"][0]["data"]["kind"], "passkey", "{events}");
}
