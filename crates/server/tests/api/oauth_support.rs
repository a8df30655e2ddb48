//! Drives the OAuth flows the way a browser without JavaScript would, and
//! verifies JWTs with a second library (jsonwebtoken) against the JWKS.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use trusec_testkit::{TestApp, status_json};

pub const REDIRECT: &str = "https://app.example.com/callback";
pub const PASSWORD: &str = "correct horse battery";

/// A registered client: id and secret (confidential) or none (public).
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
}

pub async fn create_client(app: &TestApp, body: Value) -> TestClient {
    let (status, c) =
        status_json(app.post("/v1/oauth/clients", &app.secret_key, &body).await).await;
    assert_eq!(status, 201, "{c}");
    TestClient {
        id: c["client_id"].as_str().unwrap().to_owned(),
        secret: c["client_secret"].as_str().map(str::to_owned),
    }
}

pub async fn public_client(app: &TestApp) -> TestClient {
    create_client(
        app,
        json!({"name": "Single-page app", "type": "public", "redirect_uris": [REDIRECT],
               "post_logout_redirect_uris": ["https://app.example.com/bye"],
               "scopes": ["openid", "profile", "email", "offline_access", "read:users"]}),
    )
    .await
}

pub async fn confidential_client(app: &TestApp, extra: Value) -> TestClient {
    let mut body = json!({"name": "Web app", "type": "confidential", "redirect_uris": [REDIRECT],
                          "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                          "scopes": ["openid", "profile", "email", "offline_access", "read:users", "write:users"]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    create_client(app, body).await
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = trusec_storage::secrets::generate_secret("pkce-").unwrap();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location on a {} response", resp.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn absolute(app: &TestApp, loc: &str) -> String {
    if loc.starts_with('/') {
        app.url(loc)
    } else {
        loc.to_owned()
    }
}

/// The value of a hidden form field in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

pub fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// The authorize URL for a client.
pub fn authorize_url(app: &TestApp, client_id: &str, extra: &[(&str, &str)]) -> String {
    authorize_url_to(app, client_id, REDIRECT, extra)
}

/// [`authorize_url`] with another redirect URI.
pub fn authorize_url_to(
    app: &TestApp,
    client_id: &str,
    redirect_uri: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut url = url::Url::parse(&app.url("/oauth/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri);
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    url.to_string()
}

/// How the browser trip went.
#[derive(Debug)]
pub struct Trip {
    pub saw_login: bool,
    pub saw_consent: bool,
    /// The consent page as shown, if it was.
    pub consent_html: String,
    /// Where the client got sent back to.
    pub callback: String,
}

/// Follows a browser from the authorize URL to the client's callback,
/// signing in with `email` and approving consent when asked.
pub async fn browse(app: &TestApp, start: &str, email: &str, approve: bool) -> Trip {
    browse_as(app, &app.client, start, email, approve).await
}

/// A second browser, with cookies of its own.
pub fn new_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// [`browse`] in the given browser.
pub async fn browse_as(
    app: &TestApp,
    browser: &reqwest::Client,
    start: &str,
    email: &str,
    approve: bool,
) -> Trip {
    browse_across(&[app], browser, start, email, approve).await
}

/// `url` on the instance whose turn `step` is, when it is on one of them:
/// a load balancer without sticky sessions.
fn on_instance(apps: &[&TestApp], step: usize, url: &str) -> String {
    let Some(path) = apps.iter().find_map(|a| url.strip_prefix(&a.address)) else {
        return url.to_owned();
    };
    apps.get(step % apps.len())
        .map_or_else(|| url.to_owned(), |a| a.url(path))
}

/// [`browse_as`] where every request goes to the next of `apps` in turn
/// (instances of one deployment), as through a round-robin balancer.
pub async fn browse_across(
    apps: &[&TestApp],
    browser: &reqwest::Client,
    start: &str,
    email: &str,
    approve: bool,
) -> Trip {
    let app = apps.first().expect("an instance");
    let mut step = 0;
    let mut next = |url: &str| {
        step += 1;
        on_instance(apps, step - 1, url)
    };
    let mut trip = Trip {
        saw_login: false,
        saw_consent: false,
        consent_html: String::new(),
        callback: String::new(),
    };
    let mut url = start.to_owned();
    for _ in 0..10 {
        if url.starts_with(REDIRECT) || url.starts_with("https://app.example.com/") {
            trip.callback = url;
            return trip;
        }
        let resp = browser.get(next(&url)).send().await.unwrap();
        if resp.status().is_redirection() {
            url = absolute(app, &location(&resp));
            continue;
        }
        assert_eq!(resp.status(), 200, "GET {url}");
        let headers = resp.headers().clone();
        assert_eq!(headers["x-frame-options"], "DENY");
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(headers["cache-control"], "no-store");
        let html = resp.text().await.unwrap();
        let csrf = hidden(&html, "csrf_token");
        let interaction = hidden(&html, "interaction");
        // Forms post to their own page (of their own environment).
        let action = next(url.split('?').next().unwrap());
        let resp = if url.contains("/login") {
            trip.saw_login = true;
            browser
                .post(&action)
                .form(&[
                    ("email", email),
                    ("password", PASSWORD),
                    ("csrf_token", &csrf),
                    ("interaction", &interaction),
                ])
                .send()
                .await
                .unwrap()
        } else if url.contains("/consent") {
            trip.saw_consent = true;
            trip.consent_html.clone_from(&html);
            let decision = if approve { "approve" } else { "deny" };
            browser
                .post(&action)
                .form(&[
                    ("decision", decision),
                    ("csrf_token", &csrf),
                    ("interaction", &interaction),
                ])
                .send()
                .await
                .unwrap()
        } else {
            panic!("unexpected page {url}: {html}");
        };
        assert_eq!(resp.status(), 303, "form post from {url}");
        url = absolute(app, &location(&resp));
    }
    panic!("too many redirects from {start}");
}

/// Opens the hosted sign-out page at `confirm` (`/logout?intent=…`) in
/// `browser` and confirms it; returns the page and the answer.
pub async fn confirm_logout(
    app: &TestApp,
    browser: &reqwest::Client,
    confirm: &str,
) -> (String, reqwest::Response) {
    let html = browser
        .get(confirm)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let resp = browser
        .post(app.url("/logout"))
        .form(&[
            ("decision", "logout"),
            ("csrf_token", &hidden(&html, "csrf_token")),
            ("intent", &hidden(&html, "intent")),
        ])
        .send()
        .await
        .unwrap();
    (html, resp)
}

/// Posts to the token endpoint, with Basic auth when a secret is given.
pub async fn token(app: &TestApp, client: &TestClient, form: &[(&str, &str)]) -> (u16, Value) {
    let mut req = app.client.post(app.url("/oauth/token"));
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    match &client.secret {
        Some(secret) => req = req.basic_auth(&client.id, Some(secret)),
        None => fields.push(("client_id", &client.id)),
    }
    status_json(req.form(&fields).send().await.unwrap()).await
}

/// Signs `email` in through the whole flow and redeems the code.
pub async fn login_and_redeem(
    app: &TestApp,
    client: &TestClient,
    email: &str,
    scope: &str,
) -> Value {
    login_and_redeem_as(app, &app.client, client, email, scope).await
}

/// [`login_and_redeem`] in the given browser (signed in already or not).
pub async fn login_and_redeem_as(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &TestClient,
    email: &str,
    scope: &str,
) -> Value {
    let (code, verifier) = authorize_code(app, browser, client, email, scope).await;
    let (status, tokens) = redeem(app, client, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// Signs `email` in (in `browser`) and approves: the code and its PKCE
/// verifier, not redeemed yet.
pub async fn authorize_code(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &TestClient,
    email: &str,
    scope: &str,
) -> (String, String) {
    let (url, verifier) = pkce_authorize_url(app, &client.id, scope);
    let trip = browse_as(app, browser, &url, email, true).await;
    let code = query(&trip.callback)
        .remove("code")
        .unwrap_or_else(|| panic!("no code in {}", trip.callback));
    (code, verifier)
}

/// An authorize URL for `scope` with `state`, `nonce` and PKCE; and the
/// PKCE verifier.
pub fn pkce_authorize_url(app: &TestApp, client_id: &str, scope: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        app,
        client_id,
        &[
            ("scope", scope),
            ("state", "s1"),
            ("nonce", "n1"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    (url, verifier)
}

/// The token request that redeems `code` (at [`REDIRECT`], with PKCE).
pub fn code_form<'a>(code: &'a str, verifier: &'a str) -> [(&'static str, &'a str); 4] {
    [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ]
}

/// Redeems a code at the token endpoint.
pub async fn redeem(
    app: &TestApp,
    client: &TestClient,
    code: &str,
    verifier: &str,
) -> (u16, Value) {
    token(app, client, &code_form(code, verifier)).await
}

pub async fn make_user(app: &TestApp, email: &str) -> Value {
    let (status, u) = status_json(
        app.post(
            "/v1/users",
            &app.secret_key,
            &json!({"email": email, "password": PASSWORD, "name": "Ada Lovelace", "given_name": "Ada", "family_name": "Lovelace", "groups": ["eng"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201);
    u
}

/// Verifies a JWT with jsonwebtoken against the server's JWKS; returns
/// (header, claims).
pub async fn verify_jwt(
    app: &TestApp,
    token: &str,
    audience: &str,
) -> (jsonwebtoken::Header, Value) {
    let jwks: jsonwebtoken::jwk::JwkSet = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let kid = header.kid.clone().unwrap(); // every JWT header has a kid
    let jwk = jwks
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} not in JWKS"));
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&["http://127.0.0.1:8080"]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation).unwrap();
    (data.header, data.claims)
}

pub async fn introspect(app: &TestApp, client: &TestClient, token: &str) -> Value {
    let (status, body) = status_json(
        app.client
            .post(app.url("/oauth/introspect"))
            .basic_auth(&client.id, client.secret.as_ref())
            .form(&[("token", token)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The OpenID Provider metadata of the live environment.
pub async fn openid_configuration(app: &TestApp) -> Value {
    app.client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The JWKS at `path` (an environment's `/.well-known/jwks.json`).
pub async fn jwks(app: &TestApp, path: &str) -> jsonwebtoken::jwk::JwkSet {
    app.client
        .get(app.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// What an independent resource server does (jsonwebtoken, not our code):
/// the key from the issuer's JWKS by `kid`, then signature, `iss` and its
/// own identifier as `aud` (RFC 8707, RFC 9068 §4).
pub fn accepted_by(
    token: &str,
    keys: &jsonwebtoken::jwk::JwkSet,
    issuer: &str,
    audience: &str,
) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = keys.find(&kid).ok_or("kid not in the issuer's JWKS")?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

/// Opens the hosted `/login` page in `browser` (no app behind it) and
/// posts `email` and `password` with its CSRF token; the response.
pub async fn password_login(
    app: &TestApp,
    browser: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let page = browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    browser
        .post(app.url("/login"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", hidden(&page, "csrf_token").as_str()),
            ("interaction", ""),
        ])
        .send()
        .await
        .unwrap()
}

/// RFC 7591 registration (`POST /oauth/register`) with the secret key.
pub(crate) async fn rfc7591_register(app: &TestApp, body: &Value) -> (u16, Value) {
    status_json(
        app.client
            .post(app.url("/oauth/register"))
            .bearer_auth(&app.secret_key)
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}
