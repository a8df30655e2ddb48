//! Second factors over HTTP (issue 14): a user adds an authenticator app
//! from `/account/security` (the key read off the page, codes computed here
//! with totp-rs), gets ten recovery codes, and is then asked for a code
//! after the password, at `/login` and in an OAuth code flow; a replayed
//! code, a used recovery code and a wrong code are each refused, and a
//! wrong code changes nothing.

use crate::oauth_support::{
    self, PASSWORD, REDIRECT, browse_as, hidden, make_user, new_browser, query,
};
use chrono::TimeDelta;
use serde_json::Value;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

/// The code an authenticator app with `key` (base32) shows at the app's
/// clock.
pub(crate) fn code_at(app: &TestApp, key: &str) -> String {
    let secret = totp_rs::Secret::try_from_base32(key).unwrap();
    let totp = totp_rs::Builder::new().with_secret(secret).build().unwrap();
    let now = u64::try_from(app.clock.now().timestamp()).unwrap();
    totp.generate(now).to_string()
}

/// The text between `start` and the next `end` after it.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"))
        + start.len();
    html[from..].split(end).next().unwrap()
}

/// Signs in with the password at `/login` (no app); the status and page.
async fn password_step(app: &TestApp, browser: &reqwest::Client, email: &str) -> (u16, String) {
    let resp = oauth_support::password_login(app, browser, email, PASSWORD).await;
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Posts a code on the second-factor page `page`; the response.
pub(crate) async fn factor_step(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &str,
    code: &str,
) -> reqwest::Response {
    browser
        .post(app.url("/second-factor"))
        .form(&[
            ("csrf_token", hidden(page, "csrf_token").as_str()),
            ("token", hidden(page, "token").as_str()),
            ("code", code),
        ])
        .send()
        .await
        .unwrap()
}

/// Signs in with the password and then `code`; the status and page.
async fn sign_in(
    app: &TestApp,
    browser: &reqwest::Client,
    email: &str,
    code: &str,
) -> (u16, String) {
    let (status, page) = password_step(app, browser, email).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Two-step verification"), "{page}");
    let resp = factor_step(app, browser, &page, code).await;
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn account_page(app: &TestApp, browser: &reqwest::Client) -> String {
    let resp = browser
        .get(app.url("/account/security"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

async fn post_code(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    page: &str,
    code: &str,
) -> (u16, String) {
    let resp = browser
        .post(app.url(path))
        .form(&[
            ("csrf_token", hidden(page, "csrf_token").as_str()),
            ("code", code),
        ])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Signs `email` in (password only) and adds an authenticator app; the key
/// and the recovery codes. The clock has moved past the confirming code's
/// step when it returns.
pub(crate) async fn enrol(
    app: &TestApp,
    browser: &reqwest::Client,
    email: &str,
) -> (String, Vec<String>) {
    let (status, _) = password_step(app, browser, email).await;
    assert_eq!(status, 200);
    let page = account_page(app, browser).await;
    assert!(page.contains("Add an authenticator app"), "{page}");
    let resp = browser
        .post(app.url("/account/security/totp/start"))
        .form(&[("csrf_token", hidden(&page, "csrf_token").as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let enrol = resp.text().await.unwrap();
    assert!(enrol.contains("data:image/svg+xml;base64,"), "{enrol}");
    let key = between(&enrol, "<code id=\"manual-key\">", "</code>").replace(' ', "");

    // A wrong first code: nothing is turned on.
    let path = "/account/security/totp/confirm";
    let (status, again) = post_code(app, browser, path, &enrol, "000000").await;
    assert_eq!(status, 422, "{again}");
    assert!(
        account_page(app, browser)
            .await
            .contains("Add an authenticator app")
    );

    let (status, shown) = post_code(app, browser, path, &again, &code_at(app, &key)).await;
    assert_eq!(status, 200, "{shown}");
    let codes: Vec<String> = shown
        .split("<li><code>")
        .skip(1)
        .map(|s| s.split("</code>").next().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{shown}");
    app.clock.advance(TimeDelta::seconds(30));
    (key, codes)
}

pub(crate) async fn events(app: &TestApp, event_type: &str) -> Vec<Value> {
    let path = format!("/v1/audit-events?type={event_type}");
    let (status, body) = status_json(app.get(&path, &app.secret_key).await).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

on_every_backend!(an_authenticator_app_guards_sign_in_and_a_code_works_once);

async fn an_authenticator_app_guards_sign_in_and_a_code_works_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    let (key, _) = enrol(&app, &new_browser(), "ada@example.com").await;
    assert_eq!(events(&app, "user.mfa.enrolled").await.len(), 1);

    // The password alone no longer signs in.
    let browser = new_browser();
    let (status, page) = password_step(&app, &browser, "ada@example.com").await;
    assert_eq!(status, 200);
    assert!(page.contains("Two-step verification"), "{page}");
    assert!(
        account_page_redirects_to_login(&app, &browser)
            .await
            .ends_with("/login")
    );

    // A wrong code is refused, and the same page can try again.
    let resp = factor_step(&app, &browser, &page, "123456").await;
    assert_eq!(resp.status(), 401);
    let page = resp.text().await.unwrap();
    assert!(page.contains("not right"), "{page}");
    let code = code_at(&app, &key);
    let resp = factor_step(&app, &browser, &page, &code).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("You are signed in"));

    // The same code in another browser, within its step: refused (RFC 6238 §5.2).
    let (status, page) = sign_in(&app, &new_browser(), "ada@example.com", &code).await;
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("already used"), "{page}");

    // The next step's code works, one step of drift late too.
    app.clock.advance(TimeDelta::seconds(30));
    let next = code_at(&app, &key);
    app.clock.advance(TimeDelta::seconds(30));
    let (status, _) = sign_in(&app, &new_browser(), "ada@example.com", &next).await;
    assert_eq!(status, 200);
    // Two steps late: refused.
    app.clock.advance(TimeDelta::seconds(30));
    let stale = code_at(&app, &key);
    app.clock.advance(TimeDelta::seconds(60));
    let (status, _) = sign_in(&app, &new_browser(), "ada@example.com", &stale).await;
    assert_eq!(status, 401);

    let failed = events(&app, "user.mfa.failed").await;
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert_eq!(events(&app, "user.mfa.succeeded").await.len(), 2);
}

/// An account page without a session sends the browser to sign in.
async fn account_page_redirects_to_login(app: &TestApp, browser: &reqwest::Client) -> String {
    let resp = browser
        .get(app.url("/account/security"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    resp.headers()["location"].to_str().unwrap().to_owned()
}

on_every_backend!(a_recovery_code_signs_in_once_and_the_app_can_be_removed);

async fn a_recovery_code_signs_in_once_and_the_app_can_be_removed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "grace@example.com").await;
    let (key, codes) = enrol(&app, &new_browser(), "grace@example.com").await;
    let recovery = codes.first().unwrap();

    // Typed loosely (lower case, spaces): still the code.
    let typed = recovery.to_lowercase().replace('-', " ");
    let (status, _) = sign_in(&app, &new_browser(), "grace@example.com", &typed).await;
    assert_eq!(status, 200);
    let used = events(&app, "user.mfa.recovery_code_used").await;
    assert_eq!(used.len(), 1);
    assert_eq!(used[0]["data"]["remaining"], 9);

    let (status, page) = sign_in(&app, &new_browser(), "grace@example.com", recovery).await;
    assert_eq!(status, 401, "{page}");

    // Removing takes a code: a wrong one changes nothing.
    let browser = new_browser();
    let (status, _) = sign_in(&app, &browser, "grace@example.com", &code_at(&app, &key)).await;
    assert_eq!(status, 200);
    app.clock.advance(TimeDelta::seconds(30));
    let page = account_page(&app, &browser).await;
    assert!(page.contains("9 recovery codes left"), "{page}");
    let path = "/account/security/totp/remove";
    let (status, page) = post_code(&app, &browser, path, &page, "999999").await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("Nothing was changed"));
    let resp = browser
        .post(app.url(path))
        .form(&[
            ("csrf_token", hidden(&page, "csrf_token").as_str()),
            ("code", code_at(&app, &key).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(events(&app, "user.mfa.removed").await.len(), 1);
    // The password alone signs in again.
    let (status, page) = password_step(&app, &new_browser(), "grace@example.com").await;
    assert_eq!(status, 200);
    assert!(page.contains("You are signed in"), "{page}");
}

on_every_backend!(an_oauth_code_flow_asks_for_the_second_factor);

async fn an_oauth_code_flow_asks_for_the_second_factor(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    let (key, _) = enrol(&app, &new_browser(), "ada@example.com").await;
    let client = oauth_support::public_client(&app).await;
    let (url, verifier) = oauth_support::pkce_authorize_url(&app, &client.id, "openid email");
    let browser = new_browser();
    let resp = browser.get(&url).send().await.unwrap();
    assert!(resp.status().is_redirection());
    let login = app.url(resp.headers()["location"].to_str().unwrap());
    let page = browser
        .get(&login)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let resp = browser
        .post(app.url("/login"))
        .form(&[
            ("email", "ada@example.com"),
            ("password", PASSWORD),
            ("csrf_token", hidden(&page, "csrf_token").as_str()),
            ("interaction", hidden(&page, "interaction").as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("to continue to Single-page app"), "{page}");
    let resp = factor_step(&app, &browser, &page, &code_at(&app, &key)).await;
    assert_eq!(resp.status(), 303);
    let next = app.url(resp.headers()["location"].to_str().unwrap());
    let trip = browse_as(&app, &browser, &next, "ada@example.com", true).await;
    assert!(!trip.saw_login, "the factor step signed the browser in");
    assert!(trip.callback.starts_with(REDIRECT));
    let code = query(&trip.callback).remove("code").unwrap();
    let (status, tokens) = oauth_support::redeem(&app, &client, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    // RFC 8176 in the ID token and the access token (verified by a second
    // JWT library); a password-only sign-in says `pwd` alone.
    let id_token = tokens["id_token"].as_str().unwrap();
    let (_, claims) = oauth_support::verify_jwt(&app, id_token, &client.id).await;
    assert_eq!(
        claims["amr"],
        serde_json::json!(["otp", "pwd", "mfa"]),
        "{claims}"
    );
    assert!(claims["auth_time"].is_i64());
    let access = tokens["access_token"].as_str().unwrap();
    let (_, claims) = oauth_support::verify_jwt(&app, access, "http://127.0.0.1:8080").await;
    assert_eq!(
        claims["amr"],
        serde_json::json!(["otp", "pwd", "mfa"]),
        "{claims}"
    );
    // Refreshing keeps how the user signed in (OIDC Core §12.2), through
    // more than one rotation.
    let mut refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let (status, refreshed) = oauth_support::token(
            &app,
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
        assert_eq!(status, 200, "{refreshed}");
        for (token, audience) in [
            (&refreshed["id_token"], client.id.as_str()),
            (&refreshed["access_token"], "http://127.0.0.1:8080"),
        ] {
            let (_, claims) =
                oauth_support::verify_jwt(&app, token.as_str().unwrap(), audience).await;
            assert_eq!(
                claims["amr"],
                serde_json::json!(["otp", "pwd", "mfa"]),
                "{claims}"
            );
        }
        refresh = refreshed["refresh_token"].as_str().unwrap().to_owned();
    }
}

on_every_backend!(a_forged_or_unknown_second_factor_token_is_refused);

async fn a_forged_or_unknown_second_factor_token_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let browser = new_browser();
    let page = browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let resp = browser
        .post(app.url("/second-factor"))
        .form(&[
            ("csrf_token", hidden(&page, "csrf_token").as_str()),
            ("token", "nosuchtoken"),
            ("code", "123456"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("expired"));
    assert!(events(&app, "user.mfa.failed").await.is_empty());
}

on_every_backend!(a_saml_login_asks_for_the_second_factor_and_says_so);

/// SP-initiated SSO through the factor step: the assertion's
/// `AuthnContextClassRef` names a TOTP code (`TimeSyncToken`); a recovery
/// code is no time-synchronised token, so it says only
/// `PasswordProtectedTransport`.
async fn a_saml_login_asks_for_the_second_factor_and_says_so(backend: Backend) {
    use crate::saml::{ACS, SP_ENTITY, authn_request, auto_post, redirect_query, register_sp};
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    let (key, codes) = enrol(&app, &new_browser(), "ada@example.com").await;
    register_sp(
        &app,
        serde_json::json!({"entity_id": SP_ENTITY, "acs_url": ACS}),
    )
    .await;
    for (n, (code, class)) in [
        (
            code_at(&app, &key),
            "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken",
        ),
        (
            codes[0].clone(),
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let xml = authn_request(&format!("_mfa{n}"), SP_ENTITY, Some(ACS), app.clock.now());
        let url = app.url(&format!("/saml/sso?{}", redirect_query(&xml, "r", None)));
        let browser = new_browser();
        let resp = browser.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 302);
        let login = app.url(resp.headers()["location"].to_str().unwrap());
        let page = browser
            .get(&login)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let resp = browser
            .post(app.url("/login"))
            .form(&[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("csrf_token", hidden(&page, "csrf_token").as_str()),
                ("interaction", hidden(&page, "interaction").as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let page = resp.text().await.unwrap();
        assert!(page.contains("Two-step verification"), "{page}");
        let resp = factor_step(&app, &browser, &page, &code).await;
        assert_eq!(resp.status(), 303);
        let next = app.url(resp.headers()["location"].to_str().unwrap());
        let (action, response_xml, _) = auto_post(browser.get(&next).send().await.unwrap()).await;
        assert_eq!(action, ACS);
        assert!(response_xml.contains(class), "{class} in {response_xml}");
    }
}

on_every_backend!(the_help_desk_lists_removes_and_resets_factors);

/// `/v1/users/{id}/factors`: what a user has (never a secret), removing
/// it, and the reset after which the password alone signs in.
async fn the_help_desk_lists_removes_and_resets_factors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = make_user(&app, "ada@example.com").await;
    let id = user["id"].as_str().unwrap();
    let path = format!("/v1/users/{id}/factors");
    let (status, none) = status_json(app.get(&path, &app.secret_key).await).await;
    assert_eq!(status, 200);
    assert_eq!(none["data"], serde_json::json!([]));

    let (key, _) = enrol(&app, &new_browser(), "ada@example.com").await;
    let (status, list) = status_json(app.get(&path, &app.secret_key).await).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["kind"], "totp");
    assert_eq!(list["recovery_codes_left"], 10);
    assert!(!list.to_string().contains(&key), "no secret in {list}");
    let factor = list["data"][0]["id"].as_str().unwrap().to_owned();

    // Unknown ids are 404s, and nothing changes.
    let missing = app
        .delete(
            &format!("{path}/mfa_01jz0000000000000000000000"),
            &app.secret_key,
        )
        .await;
    assert_eq!(missing.status(), 404);
    let other = app
        .delete(
            "/v1/users/user_01jz0000000000000000000000/factors",
            &app.secret_key,
        )
        .await;
    assert_eq!(other.status(), 404);

    // Removing one: the password alone signs in, and the codes are gone.
    let removed = app
        .delete(&format!("{path}/{factor}"), &app.secret_key)
        .await;
    assert_eq!(removed.status(), 204);
    let (_, list) = status_json(app.get(&path, &app.secret_key).await).await;
    assert_eq!(list["data"], serde_json::json!([]));
    assert_eq!(list["recovery_codes_left"], 0);
    let (_, page) = password_step(&app, &new_browser(), "ada@example.com").await;
    assert!(page.contains("You are signed in"), "{page}");

    // The reset: enrolled again, then everything removed at once.
    enrol(&app, &new_browser(), "ada@example.com").await;
    let reset = app.delete(&path, &app.secret_key).await;
    assert_eq!(reset.status(), 204);
    let (_, page) = password_step(&app, &new_browser(), "ada@example.com").await;
    assert!(page.contains("You are signed in"), "{page}");
    let removed = events(&app, "user.mfa.removed").await;
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert!(removed.iter().any(|e| e["data"]["reset"] == true));
}

on_every_backend!(concurrent_wrong_codes_share_five_attempts);

/// The five code checks of one pending sign-in are slots taken
/// set-if-absent: twelve wrong codes posted at once check at most five
/// (each audited), and the pending sign-in is gone afterwards.
async fn concurrent_wrong_codes_share_five_attempts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    enrol(&app, &new_browser(), "ada@example.com").await;
    let browser = new_browser();
    let (status, page) = password_step(&app, &browser, "ada@example.com").await;
    assert_eq!(status, 200, "{page}");
    let before = events(&app, "user.mfa.failed").await.len();
    let posts = (0..12).map(|_| factor_step(&app, &browser, &page, "000000"));
    let statuses: Vec<u16> = futures_util::future::join_all(posts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(
        statuses.iter().all(|s| [401, 400, 429].contains(s)),
        "{statuses:?}"
    );
    let checked = events(&app, "user.mfa.failed").await.len() - before;
    assert!((1..=5).contains(&checked), "{checked} codes were checked");
    // Whatever the order, the sign-in must be started again.
    let resp = factor_step(&app, &browser, &page, "000000").await;
    assert!([400, 401, 429].contains(&resp.status().as_u16()));
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("expired") || text.contains("Too many"),
        "{text}"
    );
}
