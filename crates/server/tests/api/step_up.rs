//! Step-up over HTTP (issue 14 item 4): an OIDC `acr_values` / `claims`
//! request or a SAML `RequestedAuthnContext` that asks for more than the
//! browser's session has sends a user with an authenticator app to the
//! second-factor step only (no password form); the session gains the
//! factor, and the tokens (verified with a second JWT library),
//! introspection and refreshed tokens, or the assertion (verified with
//! xmlsec1), say so. What cannot be met is refused as the specs say.

use crate::mfa::{code_at, enrol, factor_step};
use crate::oauth_support::{
    self, REDIRECT, TestClient, absolute, authorize_url, browse_as, hidden, location, make_user,
    new_browser, pkce, query,
};
use crate::saml::{
    ACS, SP_ENTITY, authn_request, auto_post, idp_cert, redirect_query, register_sp,
    xmlsec1_verifies,
};
use serde_json::{Value, json};
use std::str::FromStr;
use trusec_testkit::{Backend, TestApp, on_every_backend};

const MFA: &str = "urn:trusec:acr:mfa";
const SFA: &str = "urn:trusec:acr:sfa";
const ISSUER: &str = "http://127.0.0.1:8080";
const REFEDS_MFA: &str = "https://refeds.org/profile/mfa";

on_every_backend!(acr_values_step_up_asks_for_the_code_only);
on_every_backend!(acr_requests_that_cannot_be_met);
on_every_backend!(saml_requested_authn_context);

/// Follows redirects from `url` until a page (200) or the client; returns
/// the last URL and the page.
pub(crate) async fn follow(
    app: &TestApp,
    browser: &reqwest::Client,
    url: &str,
) -> (String, String) {
    let mut url = url.to_owned();
    for _ in 0..10 {
        if url.starts_with(REDIRECT) {
            return (url, String::new());
        }
        let resp = browser.get(&url).send().await.unwrap();
        if resp.status().is_redirection() {
            url = absolute(app, &location(&resp));
            continue;
        }
        assert_eq!(resp.status(), 200, "GET {url}");
        return (url, resp.text().await.unwrap());
    }
    panic!("too many redirects");
}

async fn introspect(app: &TestApp, client: &TestClient, token: &str) -> Value {
    let resp = app
        .client
        .post(app.url("/oauth/introspect"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// `acr`, `amr` and `auth_time` of a token's claims.
fn sign_in_claims(claims: &Value) -> (Value, Value, Value) {
    (
        claims["acr"].clone(),
        claims["amr"].clone(),
        claims["auth_time"].clone(),
    )
}

async fn acr_values_step_up_asks_for_the_code_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    // The browser that added the app is signed in with the password only.
    let browser = new_browser();
    let (key, _) = enrol(&app, &browser, "ada@example.com").await;
    let client = oauth_support::confidential_client(&app, json!({})).await;
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &app,
        &client.id,
        &[
            ("scope", "openid email"),
            ("nonce", "n1"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("acr_values", &format!("{MFA} {SFA}")),
        ],
    );
    let (at, page) = follow(&app, &browser, &url).await;
    assert!(at.contains("/second-factor?interaction="), "{at}");
    assert!(page.contains("Two-step verification"), "{page}");
    assert!(
        !page.contains("name=\"password\""),
        "no password form: {page}"
    );
    let stepped_at = app.clock.now().timestamp();
    let resp = factor_step(&app, &browser, &page, &code_at(&app, &key)).await;
    assert_eq!(resp.status(), 303);
    let next = absolute(&app, &location(&resp));
    let trip = browse_as(&app, &browser, &next, "ada@example.com", true).await;
    assert!(!trip.saw_login, "the password was not asked again");
    let code = query(&trip.callback).remove("code").unwrap();
    let (status, tokens) = oauth_support::redeem(&app, &client, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let want = (json!(MFA), json!(["otp", "pwd", "mfa"]), json!(stepped_at));
    let id_token = tokens["id_token"].as_str().unwrap();
    let (_, claims) = oauth_support::verify_jwt(&app, id_token, &client.id).await;
    assert_eq!(sign_in_claims(&claims), want, "{claims}");
    let access = tokens["access_token"].as_str().unwrap();
    let (_, claims) = oauth_support::verify_jwt(&app, access, ISSUER).await;
    assert_eq!(sign_in_claims(&claims), want, "{claims}");
    let info = introspect(&app, &client, access).await;
    assert_eq!(info["active"], true);
    assert_eq!(sign_in_claims(&info), want, "{info}");
    // Refreshing keeps them (OIDC Core §12.2).
    let (status, refreshed) = oauth_support::token(
        &app,
        &client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    for (token, aud) in [("id_token", client.id.as_str()), ("access_token", ISSUER)] {
        let jwt = refreshed[token].as_str().unwrap();
        let (_, claims) = oauth_support::verify_jwt(&app, jwt, aud).await;
        assert_eq!(sign_in_claims(&claims), want, "{token}: {claims}");
    }
    // The session itself stepped up: the next request for MFA needs no
    // page at all, and an essential request for an alias of ours gets
    // that value back (§5.5.1.1).
    let claims_param = json!({"id_token": {"acr": {"essential": true, "values": [REFEDS_MFA]}}});
    let url = authorize_url(
        &app,
        &client.id,
        &[
            ("scope", "openid email"),
            ("claims", &claims_param.to_string()),
        ],
    );
    let (at, _) = follow(&app, &browser, &url).await;
    let code = query(&at).remove("code").expect(&at);
    let (status, tokens) = oauth_support::token(
        &app,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let (_, claims) =
        oauth_support::verify_jwt(&app, tokens["id_token"].as_str().unwrap(), &client.id).await;
    assert_eq!(claims["acr"], REFEDS_MFA, "{claims}");
    // Discovery says what may be asked for.
    let doc: Value = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["acr_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(MFA))
    );
    assert_eq!(doc["claims_parameter_supported"], true);
}

/// The error at the client's redirect URI for `extra`.
async fn refused(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &TestClient,
    extra: &[(&str, &str)],
) -> (String, String) {
    let mut params = vec![("scope", "openid email")];
    params.extend_from_slice(extra);
    let (at, page) = follow(app, browser, &authorize_url(app, &client.id, &params)).await;
    assert!(at.starts_with(REDIRECT), "{at}: {page}");
    let mut q = query(&at);
    (
        q.remove("error").unwrap_or_default(),
        q.remove("error_description").unwrap_or_default(),
    )
}

async fn acr_requests_that_cannot_be_met(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "bob@example.com").await;
    let client = oauth_support::confidential_client(&app, json!({})).await;
    let browser = new_browser();
    let resp =
        oauth_support::password_login(&app, &browser, "bob@example.com", oauth_support::PASSWORD)
            .await;
    assert_eq!(resp.status(), 200);
    // Remember consent, so the outcomes below are the acr's alone.
    let url = authorize_url(&app, &client.id, &[("scope", "openid email")]);
    let trip = browse_as(&app, &browser, &url, "bob@example.com", true).await;
    assert!(trip.callback.contains("code="));

    // Essential MFA for a user with no second factor: a failed
    // authentication (OIDC Core §5.5.1.1), named by the Unmet
    // Authentication Requirements extension.
    let essential = json!({"id_token": {"acr": {"essential": true, "value": MFA}}}).to_string();
    let (error, _) = refused(&app, &browser, &client, &[("claims", &essential)]).await;
    assert_eq!(error, "unmet_authentication_requirements");
    // Only values we do not know, essential: the same.
    let unknown = json!({"id_token": {"acr": {"essential": true, "values": ["gold"]}}}).to_string();
    let (error, _) = refused(&app, &browser, &client, &[("claims", &unknown)]).await;
    assert_eq!(error, "unmet_authentication_requirements");
    // Malformed or oversized input.
    let (error, why) = refused(&app, &browser, &client, &[("claims", "[1]")]).await;
    assert_eq!(
        (error.as_str(), why.as_str()),
        (
            "invalid_request",
            "claims must be a JSON object (OIDC Core §5.5)"
        )
    );
    let long = "x".repeat(5000);
    let (error, why) = refused(&app, &browser, &client, &[("acr_values", &long)]).await;
    assert_eq!(
        (error.as_str(), why.as_str()),
        ("invalid_request", "acr_values is too long")
    );
    // Voluntary: the code is issued with the level reached.
    let (at, _) = follow(
        &app,
        &browser,
        &authorize_url(
            &app,
            &client.id,
            &[("scope", "openid email"), ("acr_values", MFA)],
        ),
    )
    .await;
    let code = query(&at).remove("code").expect(&at);
    let (status, tokens) = oauth_support::token(
        &app,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let (_, claims) =
        oauth_support::verify_jwt(&app, tokens["id_token"].as_str().unwrap(), &client.id).await;
    assert_eq!(claims["acr"], SFA, "{claims}");
    assert_eq!(claims["amr"], json!(["pwd"]), "{claims}");

    // A user with an app, prompt=none: the step-up would need a page.
    make_user(&app, "ada@example.com").await;
    let ada = new_browser();
    enrol(&app, &ada, "ada@example.com").await;
    let (error, _) = refused(
        &app,
        &ada,
        &client,
        &[("claims", &essential), ("prompt", "none")],
    )
    .await;
    assert_eq!(error, "interaction_required");
}

/// An AuthnRequest of `id` asking for `classes` by `comparison`, with
/// extra attributes.
fn requesting(
    app: &TestApp,
    id: &str,
    classes: &[&str],
    comparison: &str,
    attributes: &str,
) -> String {
    let refs: String = classes
        .iter()
        .map(|c| format!("<saml:AuthnContextClassRef>{c}</saml:AuthnContextClassRef>"))
        .collect();
    authn_request(id, SP_ENTITY, Some(ACS), app.clock.now())
        .replace(
            "Version=\"2.0\"",
            &format!("Version=\"2.0\"{attributes}"),
        )
        .replace(
            "</samlp:AuthnRequest>",
            &format!(
                r#"<samlp:RequestedAuthnContext Comparison="{comparison}">{refs}</samlp:RequestedAuthnContext></samlp:AuthnRequest>"#
            ),
        )
}

fn sso_url(app: &TestApp, xml: &str) -> String {
    app.url(&format!("/saml/sso?{}", redirect_query(xml, "r", None)))
}

/// The top-level and second-level status codes of a Response.
fn statuses(xml: &str) -> (String, Option<String>) {
    let codes: Vec<String> = xml
        .split("StatusCode Value=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect();
    (codes[0].clone(), codes.get(1).cloned())
}

const STATUS: &str = "urn:oasis:names:tc:SAML:2.0:status:";

async fn saml_requested_authn_context(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    register_sp(&app, json!({"entity_id": SP_ENTITY, "acs_url": ACS})).await;
    let cert = idp_cert(&app).await;
    let browser = new_browser();
    let (key, _) = enrol(&app, &browser, "ada@example.com").await;

    // IsPassive, and MFA is needed: no page may be shown.
    let passive = requesting(&app, "_p1", &[REFEDS_MFA], "exact", " IsPassive=\"true\"");
    let (_, xml, _) = auto_post(browser.get(sso_url(&app, &passive)).send().await.unwrap()).await;
    assert_eq!(
        statuses(&xml),
        (
            format!("{STATUS}Responder"),
            Some(format!("{STATUS}NoPassive"))
        )
    );
    assert!(xmlsec1_verifies(&xml, &cert, false), "signed: {xml}");

    // REFEDS MFA for a password-only session: the code only, then an
    // assertion of that class.
    let xml = requesting(&app, "_m1", &[REFEDS_MFA], "exact", "");
    let (at, page) = follow(&app, &browser, &sso_url(&app, &xml)).await;
    assert!(at.contains("/second-factor?interaction="), "{at}");
    assert!(!page.contains("name=\"password\""), "{page}");
    let resp = factor_step(&app, &browser, &page, &code_at(&app, &key)).await;
    assert_eq!(resp.status(), 303);
    let next = absolute(&app, &location(&resp));
    let (action, xml, _) = auto_post(browser.get(&next).send().await.unwrap()).await;
    assert_eq!(action, ACS);
    assert!(xmlsec1_verifies(&xml, &cert, false), "signed: {xml}");
    let parsed = samael::schema::Response::from_str(&xml).unwrap();
    let statement = parsed
        .assertion
        .unwrap()
        .authn_statements
        .unwrap()
        .remove(0);
    assert_eq!(
        statement
            .authn_context
            .unwrap()
            .value
            .unwrap()
            .value
            .as_deref(),
        Some(REFEDS_MFA)
    );

    // Exactly a class we do not have: NoAuthnContext, signed, to the ACS.
    let xml = requesting(&app, "_u1", &["urn:example:retina-scan"], "exact", "");
    let (action, xml, _) = auto_post(browser.get(sso_url(&app, &xml)).send().await.unwrap()).await;
    assert_eq!(action, ACS);
    assert_eq!(
        statuses(&xml),
        (
            format!("{STATUS}Requester"),
            Some(format!("{STATUS}NoAuthnContext"))
        )
    );
    assert!(!xml.contains("<saml2:Assertion"), "{xml}");
    assert!(xmlsec1_verifies(&xml, &cert, false), "signed: {xml}");

    // At least a password, from the session that has more: the strongest
    // class that is true of it.
    let minimum = requesting(
        &app,
        "_min",
        &["urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"],
        "minimum",
        "",
    );
    let (_, xml, _) = auto_post(browser.get(sso_url(&app, &minimum)).send().await.unwrap()).await;
    assert!(xml.contains(REFEDS_MFA), "{xml}");

    // ForceAuthn: the password again, although signed in.
    let force = requesting(&app, "_f1", &[REFEDS_MFA], "exact", " ForceAuthn=\"true\"");
    let resp = browser.get(sso_url(&app, &force)).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert!(location(&resp).starts_with("/login?interaction="));

    // IsPassive without a session: NoPassive.
    let stranger = new_browser();
    let passive = requesting(&app, "_p2", &[REFEDS_MFA], "minimum", " IsPassive=\"true\"");
    let (_, xml, _) = auto_post(stranger.get(sso_url(&app, &passive)).send().await.unwrap()).await;
    assert_eq!(
        statuses(&xml),
        (
            format!("{STATUS}Responder"),
            Some(format!("{STATUS}NoPassive"))
        )
    );

    // MFA for a user who has no second factor: NoAuthnContext after the
    // sign-in.
    make_user(&app, "bob@example.com").await;
    let bob = new_browser();
    let xml = requesting(&app, "_b1", &[REFEDS_MFA], "exact", "");
    let (at, page) = follow(&app, &bob, &sso_url(&app, &xml)).await;
    assert!(at.contains("/login?interaction="), "{at}");
    let resp = bob
        .post(app.url("/login"))
        .form(&[
            ("email", "bob@example.com"),
            ("password", oauth_support::PASSWORD),
            ("csrf_token", hidden(&page, "csrf_token").as_str()),
            ("interaction", hidden(&page, "interaction").as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let next = absolute(&app, &location(&resp));
    let (_, xml, _) = auto_post(bob.get(&next).send().await.unwrap()).await;
    assert_eq!(
        statuses(&xml),
        (
            format!("{STATUS}Requester"),
            Some(format!("{STATUS}NoAuthnContext"))
        )
    );
}
