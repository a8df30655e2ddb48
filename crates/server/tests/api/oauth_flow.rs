//! The browser flow end to end: authorize → login → consent → code → tokens.

use crate::oauth_support::*;
use serde_json::json;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    public_client_with_pkce_signs_in,
    confidential_client_and_remembered_consent,
    bad_authorization_requests,
    code_is_single_use_and_pkce_checked,
    login_failures_are_generic_limited_and_audited,
    prompt_none_and_denied_consent,
    rp_initiated_logout,
);

async fn public_client_with_pkce_signs_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = make_user(&app, "ada@example.com").await;
    let client = public_client(&app).await;
    let tokens = login_and_redeem(
        &app,
        &client,
        "ada@example.com",
        "openid profile email offline_access",
    )
    .await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert!(
        tokens["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("trusec_rt_")
    );

    // Both JWTs verify with a second library against the JWKS.
    let access = tokens["access_token"].as_str().unwrap();
    let (header, claims) = verify_jwt(&app, access, "http://127.0.0.1:8080").await;
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(claims["sub"], user["id"]);
    assert_eq!(claims["client_id"], client.id.as_str());
    assert_eq!(claims["scope"], "openid profile email offline_access");
    for claim in ["iss", "aud", "exp", "iat", "jti"] {
        assert!(claims.get(claim).is_some(), "{claim}");
    }
    let id_token = tokens["id_token"].as_str().unwrap();
    let (header, id) = verify_jwt(&app, id_token, &client.id).await;
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(id["sub"], user["id"]);
    assert_eq!(id["nonce"], "n1");
    assert!(id["auth_time"].is_i64());
    // RFC 8176: a password sign-in.
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    // OIDC Core §3.1.3.6: at_hash is the left half of SHA-256(access token).
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(access.as_bytes());
    let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16]);
    assert_eq!(id["at_hash"], expected);

    // userinfo and /v1/users/me with the access token.
    let (status, info) = status_json(
        app.client
            .get(app.url("/oauth/userinfo"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], user["id"]);
    assert_eq!(info["email"], "ada@example.com");
    assert_eq!(info["name"], "Ada Lovelace");
    let (status, me) = status_json(
        app.client
            .get(app.url("/v1/users/me"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(me["id"], user["id"]);
    // Garbage and oversized tokens are invalid_token, not errors.
    for bad in ["garbage", "a.b.c", &"x".repeat(20_000)] {
        let resp = app
            .client
            .get(app.url("/oauth/userinfo"))
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        assert!(
            resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
    }
    // An ID token is not an access token (RFC 9068 typ check).
    let resp = app
        .client
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(id_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

async fn confidential_client_and_remembered_consent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "grace@example.com").await;
    let client = confidential_client(&app, json!({"id_token_signed_response_alg": "EdDSA"})).await;
    let url = authorize_url(
        &app,
        &client.id,
        &[("scope", "openid email"), ("state", "xyz")],
    );
    let trip = browse(&app, &url, "grace@example.com", true).await;
    assert!(trip.saw_login && trip.saw_consent);
    let q = query(&trip.callback);
    assert_eq!(q["state"], "xyz");
    assert_eq!(q["iss"], "http://127.0.0.1:8080");
    let (status, tokens) = token(
        &app,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let (header, _) = verify_jwt(&app, tokens["id_token"].as_str().unwrap(), &client.id).await;
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    // client_secret_post works too.
    let trip = browse(
        &app,
        &authorize_url(&app, &client.id, &[("scope", "openid email")]),
        "grace@example.com",
        true,
    )
    .await;
    // Signed in and consented already: straight back with a code.
    assert!(!trip.saw_login && !trip.saw_consent, "{trip:?}");
    let q = query(&trip.callback);
    let secret = client.secret.clone().unwrap();
    let (status, _) = status_json(
        app.client
            .post(app.url("/oauth/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &q["code"]),
                ("redirect_uri", REDIRECT),
                ("client_id", &client.id),
                ("client_secret", &secret),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    // A wider scope asks again; prompt=consent always asks.
    let trip = browse(
        &app,
        &authorize_url(&app, &client.id, &[("scope", "openid email profile")]),
        "grace@example.com",
        true,
    )
    .await;
    assert!(!trip.saw_login && trip.saw_consent);
    let trip = browse(
        &app,
        &authorize_url(
            &app,
            &client.id,
            &[("scope", "openid"), ("prompt", "consent")],
        ),
        "grace@example.com",
        true,
    )
    .await;
    assert!(trip.saw_consent);
    let trip = browse(
        &app,
        &authorize_url(
            &app,
            &client.id,
            &[("scope", "openid"), ("prompt", "login")],
        ),
        "grace@example.com",
        true,
    )
    .await;
    assert!(trip.saw_login && !trip.saw_consent);
    // Consent and login are audited.
    let (_, events) = status_json(
        app.get(
            "/v1/audit-events?type=oauth.consent.granted",
            &app.secret_key,
        )
        .await,
    )
    .await;
    assert!(!events["data"].as_array().unwrap().is_empty());
    let (_, events) = status_json(
        app.get(
            "/v1/audit-events?type=user.login.succeeded",
            &app.secret_key,
        )
        .await,
    )
    .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 2);
}

async fn bad_authorization_requests(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = public_client(&app).await;
    let (_, challenge) = pkce();
    // Unknown client, unregistered or near-miss redirect URIs: a page, never a redirect.
    for url in [
        app.url("/oauth/authorize?response_type=code&client_id=client_nope&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback"),
        app.url(&format!("/oauth/authorize?response_type=code&client_id={}&redirect_uri=https%3A%2F%2Fevil.example%2Fcallback", client.id)),
        app.url(&format!("/oauth/authorize?response_type=code&client_id={}&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback%2F", client.id)),
        app.url(&format!("/oauth/authorize?response_type=code&client_id={}&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&redirect_uri=https%3A%2F%2Fevil.example", client.id)),
        app.url(&format!("/oauth/authorize?response_type=code&client_id={}&scope=openid", client.id)),
    ] {
        let resp = app.client.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{url}");
        assert!(resp.headers().get("location").is_none(), "{url}");
        assert!(resp.text().await.unwrap().contains("<html"));
    }
    // Anything else goes back to the client as an error (RFC 6749 §4.1.2.1).
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("scope", "openid")], "invalid_request"), // public client without PKCE
        (
            &[
                ("scope", "openid"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (
            &[("scope", "openid"), ("code_challenge", &challenge)],
            "invalid_request",
        ),
        (
            &[
                ("scope", "openid admin"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
            "invalid_scope",
        ),
        (
            &[
                ("scope", "openid"),
                ("prompt", "none login"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
            "invalid_request",
        ),
        (
            &[
                ("scope", "openid"),
                ("max_age", "-1"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
            "invalid_request",
        ),
    ];
    for (extra, error) in cases {
        let mut params = extra.to_vec();
        params.push(("state", "st"));
        let resp = app
            .client
            .get(authorize_url(&app, &client.id, &params))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302, "{extra:?}");
        let q = query(resp.headers()["location"].to_str().unwrap());
        assert_eq!(q["error"], error, "{extra:?}");
        assert_eq!(q["state"], "st");
    }
    let resp = app
        .client
        .get(app.url(&format!("/oauth/authorize?response_type=token&client_id={}&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback", client.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        query(resp.headers()["location"].to_str().unwrap())["error"],
        "unsupported_response_type"
    );
}

async fn code_is_single_use_and_pkce_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "pk@example.com").await;
    let client = public_client(&app).await;
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &app,
        &client.id,
        &[
            ("scope", "openid offline_access"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let code = query(&browse(&app, &url, "pk@example.com", true).await.callback)["code"].clone();
    // A wrong verifier fails, and the code is gone (single use).
    let (status, err) = token(
        &app,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &"x".repeat(43)),
        ],
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = token(
        &app,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 400);

    // Redeem a fresh code, then replay it: invalid_grant, and what the first
    // redemption issued is revoked.
    let url = authorize_url(
        &app,
        &client.id,
        &[
            ("scope", "openid offline_access"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let code = query(&browse(&app, &url, "pk@example.com", true).await.callback)["code"].clone();
    let form = code_form(&code, &verifier);
    let (status, tokens) = token(&app, &client, &form).await;
    assert_eq!(status, 200);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        app.client
            .get(app.url("/oauth/userinfo"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (status, err) = token(&app, &client, &form).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        app.client
            .get(app.url("/oauth/userinfo"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let (status, _) = token(
        &app,
        &client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, 400, "the refresh token went with it");
    // A mismatched redirect_uri fails too.
    let url = authorize_url(
        &app,
        &client.id,
        &[
            ("scope", "openid"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let code = query(&browse(&app, &url, "pk@example.com", true).await.callback)["code"].clone();
    let (status, err) = token(
        &app,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://app.example.com/other"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

async fn login_failures_are_generic_limited_and_audited(backend: Backend) {
    let app = TestApp::builder(backend)
        .with_settings(|s| {
            s.rate_limits.login = trusec_storage::rate_limit::Limit::parse("2/min").unwrap()
        })
        .spawn()
        .await;
    make_user(&app, "lim@example.com").await;
    let page = app
        .client
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf_token");
    let attempt = |email: &'static str, password: &'static str, csrf: String| {
        let client = app.client.clone();
        let url = app.url("/login");
        async move {
            let resp = client
                .post(url)
                .form(&[
                    ("email", email),
                    ("password", password),
                    ("csrf_token", &csrf),
                    ("interaction", ""),
                ])
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let (s1, wrong_password) = attempt("lim@example.com", "wrong password!", csrf.clone()).await;
    let (s2, unknown_email) = attempt("nobody@example.com", "wrong password!", csrf.clone()).await;
    assert_eq!((s1, s2), (401, 401));
    // Same message whether or not the email exists.
    assert!(wrong_password.contains("Incorrect email or password."));
    assert!(unknown_email.contains("Incorrect email or password."));
    // A missing CSRF token is refused.
    let (s, _) = attempt("lim@example.com", PASSWORD, String::new()).await;
    assert_eq!(s, 403);
    // Failures count per account and address (the other account's failure
    // did not spend this one's budget): the second one here spends it, and
    // then even the right password waits.
    let (s, _) = attempt("lim@example.com", "wrong again!", csrf.clone()).await;
    assert_eq!(s, 401);
    let (s, body) = attempt("lim@example.com", PASSWORD, csrf.clone()).await;
    assert_eq!(s, 429, "{body}");
    let (_, events) = status_json(
        app.get("/v1/audit-events?type=user.login.failed", &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 3);
    assert_eq!(events["data"][0]["outcome"], "failure");
}

async fn prompt_none_and_denied_consent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "pn@example.com").await;
    let client = confidential_client(&app, json!({})).await;
    let resp = app
        .client
        .get(authorize_url(
            &app,
            &client.id,
            &[("scope", "openid"), ("prompt", "none"), ("state", "q")],
        ))
        .send()
        .await
        .unwrap();
    let q = query(resp.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "login_required");
    let trip = browse(
        &app,
        &authorize_url(&app, &client.id, &[("scope", "openid"), ("state", "d")]),
        "pn@example.com",
        false,
    )
    .await;
    let q = query(&trip.callback);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "d");
    // Signed in now, but no consent: prompt=none says so.
    let resp = app
        .client
        .get(authorize_url(
            &app,
            &client.id,
            &[("scope", "openid"), ("prompt", "none")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        query(resp.headers()["location"].to_str().unwrap())["error"],
        "consent_required"
    );
}

async fn rp_initiated_logout(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "bye@example.com").await;
    let client = public_client(&app).await;
    let tokens = login_and_redeem(&app, &client, "bye@example.com", "openid").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let mut url = url::Url::parse(&app.url("/oauth/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", "https://app.example.com/bye")
        .append_pair("state", "later");
    let resp = app.client.get(url.as_str()).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let confirm = app.url(resp.headers()["location"].to_str().unwrap());
    let (html, resp) = confirm_logout(&app, &app.client, &confirm).await;
    assert!(html.contains("Single-page app"));
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        "https://app.example.com/bye?state=later"
    );
    // Signed out: the next authorization needs the password again.
    let (_, challenge) = pkce();
    let trip = browse(
        &app,
        &authorize_url(
            &app,
            &client.id,
            &[
                ("scope", "openid"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        ),
        "bye@example.com",
        true,
    )
    .await;
    assert!(trip.saw_login);
    // An unregistered post-logout URI is refused.
    let mut url = url::Url::parse(&app.url("/oauth/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", "https://evil.example/");
    assert_eq!(
        app.client.get(url.as_str()).send().await.unwrap().status(),
        400
    );
    // An oversized state is not stored with the logout intent.
    let mut url = url::Url::parse(&app.url("/oauth/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", "https://app.example.com/bye")
        .append_pair("state", &"s".repeat(513));
    let resp = app.client.get(url.as_str()).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("state is longer"));
    let (_, events) = status_json(
        app.get("/v1/audit-events?type=user.logout", &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
}

mod hardening {
    use crate::oauth_support::*;
    use serde_json::json;
    use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

    on_every_backend!(
        a_consent_link_works_only_for_its_own_session,
        management_scopes_need_an_administrator,
        loopback_redirects_take_any_port_and_post_works,
    );

    async fn a_consent_link_works_only_for_its_own_session(backend: Backend) {
        let app = TestApp::spawn(backend).await;
        make_user(&app, "attacker@example.com").await;
        make_user(&app, "victim@example.com").await;
        let client = confidential_client(&app, json!({})).await;
        // The attacker approves, but keeps the continuation link.
        let attacker = new_browser();
        let resp = attacker
            .get(authorize_url(
                &app,
                &client.id,
                &[("scope", "openid email")],
            ))
            .send()
            .await
            .unwrap();
        let login_url = app.url(resp.headers()["location"].to_str().unwrap());
        let html = attacker
            .get(&login_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let resp = attacker
            .post(app.url("/login"))
            .form(&[
                ("email", "attacker@example.com"),
                ("password", PASSWORD),
                ("csrf_token", &hidden(&html, "csrf_token")),
                ("interaction", &hidden(&html, "interaction")),
            ])
            .send()
            .await
            .unwrap();
        let cont = app.url(resp.headers()["location"].to_str().unwrap());
        let resp = attacker.get(&cont).send().await.unwrap();
        let consent_url = app.url(resp.headers()["location"].to_str().unwrap());
        let html = attacker
            .get(&consent_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let resp = attacker
            .post(app.url("/consent"))
            .form(&[
                ("decision", "approve"),
                ("csrf_token", &hidden(&html, "csrf_token")),
                ("interaction", &hidden(&html, "interaction")),
            ])
            .send()
            .await
            .unwrap();
        let approved = app.url(resp.headers()["location"].to_str().unwrap());
        // A signed-in victim follows that link: asked for consent, no code.
        let victim = new_browser();
        let page = victim
            .get(app.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        victim
            .post(app.url("/login"))
            .form(&[
                ("email", "victim@example.com"),
                ("password", PASSWORD),
                ("csrf_token", &hidden(&page, "csrf_token")),
                ("interaction", ""),
            ])
            .send()
            .await
            .unwrap();
        let resp = victim.get(&approved).send().await.unwrap();
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with("/consent?"), "{location}");
        assert!(!location.contains("code="));
    }

    async fn management_scopes_need_an_administrator(backend: Backend) {
        let app = TestApp::spawn(backend.clone()).await;
        make_user(&app, "plain@example.com").await;
        let (status, _) = status_json(
            app.post("/v1/users", &app.secret_key, &json!({"email": "admin@example.com", "password": PASSWORD, "groups": ["trusec-admins"]})).await,
        )
        .await;
        assert_eq!(status, 201);
        let client = confidential_client(&app, json!({})).await;
        let trip = browse(
            &app,
            &authorize_url(&app, &client.id, &[("scope", "openid read:users")]),
            "plain@example.com",
            true,
        )
        .await;
        assert_eq!(query(&trip.callback)["error"], "access_denied");
        let admin = new_browser();
        let trip = browse_as(
            &app,
            &admin,
            &authorize_url(&app, &client.id, &[("scope", "openid read:users")]),
            "admin@example.com",
            true,
        )
        .await;
        let code = query(&trip.callback)["code"].clone();
        let (status, tokens) = token(
            &app,
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
        assert_eq!(status, 200);
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(app.get("/v1/users", access).await.status(), 200);
        // API keys, clients and signing keys never answer to access tokens.
        let (_, cc) = token(
            &app,
            &client,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "write:users"),
            ],
        )
        .await;
        let service = cc["access_token"].as_str().unwrap();
        for (method, path) in [
            ("POST", "/v1/api-keys"),
            ("GET", "/v1/oauth/clients"),
            ("POST", "/v1/signing-keys/rotate"),
        ] {
            let resp = app
                .request(method.parse().unwrap(), path, service)
                .json(&json!({"type": "secret", "name": "x"}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 403, "{method} {path}");
        }
        // Anonymous registration cannot ask for management scopes.
        let open = TestApp::builder(backend)
            .with_settings(|s| s.open_registration = true)
            .spawn()
            .await;
        let (status, err) = status_json(
            open.client
                .post(open.url("/oauth/register"))
                .json(&json!({"application_type": "native", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none", "scope": "openid write:users"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, err["error"].as_str()),
            (400, Some("invalid_client_metadata"))
        );
    }

    async fn loopback_redirects_take_any_port_and_post_works(backend: Backend) {
        let app = TestApp::builder(backend)
            .with_settings(|s| s.open_registration = true)
            .spawn()
            .await;
        let (status, c) = status_json(
            app.client
                .post(app.url("/oauth/register"))
                .json(&json!({"client_name": "CLI", "application_type": "native", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201);
        let id = c["client_id"].as_str().unwrap();
        let (_, challenge) = pkce();
        let url = format!(
            "/oauth/authorize?response_type=code&client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A53122%2Fcb&scope=openid&code_challenge={challenge}&code_challenge_method=S256"
        );
        let resp = app.client.get(app.url(&url)).send().await.unwrap();
        assert_eq!(resp.status(), 302);
        assert!(
            resp.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login?")
        );
        // Another path is still refused.
        let resp = app
            .client
            .get(app.url(&url.replace("%2Fcb", "%2Fother")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        // An anonymously registered client's errors are shown, never redirected.
        let resp = app
            .client
            .get(app.url(&format!("/oauth/authorize?response_type=token&client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        assert!(resp.headers().get("location").is_none());
        // The authorization endpoint takes POST too (OIDC Core §3.1.2.1).
        let resp = app
            .client
            .post(app.url("/oauth/authorize"))
            .form(&[
                ("response_type", "code"),
                ("client_id", id),
                ("redirect_uri", "http://127.0.0.1:9/cb"),
                ("scope", "openid"),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302);
        assert!(
            resp.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login?")
        );
    }
}

on_every_backend!(users_me_releases_only_what_the_scopes_allow);

/// `/v1/users/me` shows a token exactly what its scopes release, as
/// userinfo does: not the admin-set metadata or groups to any token.
async fn users_me_releases_only_what_the_scopes_allow(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = make_user(&app, "ada@example.com").await;
    let id = user["id"].as_str().unwrap();
    app.patch(
        &format!("/v1/users/{id}"),
        &app.secret_key,
        &json!({"metadata": {"plan": "enterprise"}}),
    )
    .await;
    let client = create_client(
        &app,
        json!({"name": "Profile app", "type": "public", "redirect_uris": [REDIRECT],
               "scopes": ["openid", "profile", "email", "groups"]}),
    )
    .await;
    let me = |scope: &'static str| {
        let (app, client) = (&app, &client);
        async move {
            let tokens = login_and_redeem(app, client, "ada@example.com", scope).await;
            let access = tokens["access_token"].as_str().unwrap().to_owned();
            let (status, me) = status_json(
                app.client
                    .get(app.url("/v1/users/me"))
                    .bearer_auth(access)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200, "{me}");
            me
        }
    };
    let bare = me("openid").await;
    assert_eq!(bare, json!({"id": id}));
    let email = me("openid email").await;
    assert_eq!(email["email"], "ada@example.com");
    assert!(email.get("name").is_none() && email.get("groups").is_none());
    assert!(email.get("metadata").is_none(), "{email}");
    let profile = me("openid profile groups").await;
    assert_eq!(profile["name"], "Ada Lovelace");
    assert_eq!(profile["groups"], json!(["eng"]));
    assert!(profile.get("email").is_none() && profile.get("metadata").is_none());
}

on_every_backend!(a_code_presented_by_another_client_is_not_consumed);

/// RFC 6749 §4.1.3 binds a code to its client; someone who learns a code
/// must not be able to burn it for the client it was issued to.
async fn a_code_presented_by_another_client_is_not_consumed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    let client = public_client(&app).await;
    let other = confidential_client(&app, json!({})).await;
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &app,
        &client.id,
        &[
            ("scope", "openid"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let trip = browse(&app, &url, "ada@example.com", true).await;
    let code = query(&trip.callback)["code"].clone();
    let form = code_form(&code, &verifier);
    let (status, err) = token(&app, &other, &form).await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"], "invalid_grant");
    let (status, tokens) = token(&app, &client, &form).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["access_token"].is_string());
}
