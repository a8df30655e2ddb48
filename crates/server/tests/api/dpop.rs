//! DPoP (RFC 9449, issue 15 item 5), over HTTP: proofs made here from keys
//! made with openssl and signed with a second JWT library (jsonwebtoken's
//! signer; the headers and claims are written out by hand so that every
//! malformed proof of §4.3 can be sent). Tokens bound at the token endpoint
//! (`cnf.jkt`, `token_type: DPoP`) and used at `/v1` and userinfo with
//! their proof; codes bound with `dpop_jkt`; a public client's refresh
//! token bound to its key; server nonces; `dpop_bound_access_tokens`.

use crate::client_jwt::{ISSUER, Key, make_key};
use crate::oauth_support::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    bound_tokens_are_used_only_with_their_proof,
    token_endpoint_refuses_proofs_per_section_4_3,
    codes_and_public_refresh_tokens_are_bound_to_the_key,
    nonces_are_handed_out_and_required,
    clients_can_require_dpop,
    pushed_requests_bind_the_code_to_the_proof,
);

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    trusec_testkit::fake_clock().now().timestamp()
}

fn fresh_jti() -> String {
    let mut bytes = [0u8; 12];
    openssl::rand::rand_bytes(&mut bytes).unwrap();
    b64(&bytes)
}

/// The public JWK of `key` as a proof header carries it (no `kid`).
fn public_jwk(key: &Key) -> Value {
    let mut jwk = key.jwk.clone();
    jwk.as_object_mut().unwrap().remove("kid");
    jwk
}

/// RFC 7638 §3, computed here independently of the server: SHA-256 over
/// the required members in lexicographic order.
fn thumbprint(key: &Key) -> String {
    let j = &key.jwk;
    let canonical = match j["kty"].as_str().unwrap() {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            j["crv"].as_str().unwrap(),
            j["x"].as_str().unwrap(),
            j["y"].as_str().unwrap()
        ),
        "OKP" => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            j["crv"].as_str().unwrap(),
            j["x"].as_str().unwrap()
        ),
        _ => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            j["e"].as_str().unwrap(),
            j["n"].as_str().unwrap()
        ),
    };
    b64(&Sha256::digest(canonical.as_bytes()))
}

/// A compact JWS of `header` and `claims`, signed by `key`.
fn signed(key: &Key, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &key.signing, key.alg).unwrap();
    format!("{input}.{signature}")
}

fn alg_name(key: &Key) -> &'static str {
    match key.alg {
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::PS256 => "PS256",
        _ => "RS256",
    }
}

/// The claims of a proof for `method` `path` (under the issuer).
fn proof_claims(method: &str, path: &str) -> Value {
    json!({"jti": fresh_jti(), "htm": method, "htu": format!("{ISSUER}{path}"), "iat": now()})
}

/// A well-formed proof by `key` with `claims`.
fn proof_with(key: &Key, claims: &Value) -> String {
    let header = json!({"typ": "dpop+jwt", "alg": alg_name(key), "jwk": public_jwk(key)});
    signed(key, &header, claims)
}

/// A proof by `key` for `method` `path`.
fn proof(key: &Key, method: &str, path: &str) -> String {
    proof_with(key, &proof_claims(method, path))
}

/// A proof for a resource request that presents `token` (`ath`, §4.2).
fn resource_proof(key: &Key, method: &str, path: &str, token: &str) -> String {
    let mut claims = proof_claims(method, path);
    claims["ath"] = json!(b64(&Sha256::digest(token.as_bytes())));
    proof_with(key, &claims)
}

/// A token request with `proofs` as `DPoP` headers.
async fn token_with(
    app: &TestApp,
    client: &TestClient,
    form: &[(&str, &str)],
    proofs: &[&str],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = app.client.post(app.url("/oauth/token"));
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    match &client.secret {
        Some(secret) => req = req.basic_auth(&client.id, Some(secret)),
        None => fields.push(("client_id", &client.id)),
    }
    for p in proofs {
        req = req.header("DPoP", *p);
    }
    let resp = req.form(&fields).send().await.unwrap();
    let headers = resp.headers().clone();
    let (status, body) = status_json(resp).await;
    (status, body, headers)
}

const CLIENT_CREDENTIALS: [(&str, &str); 2] = [
    ("grant_type", "client_credentials"),
    ("scope", "read:users"),
];

/// A client_credentials grant with a good proof by `key`.
async fn proved_grant(
    app: &TestApp,
    client: &TestClient,
    key: &Key,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let p = proof(key, "POST", "/oauth/token");
    token_with(app, client, &CLIENT_CREDENTIALS, &[&p]).await
}

/// A `GET /v1/users` with `authorization` and optional proof: the status
/// and the `WWW-Authenticate` challenge.
async fn list_users(app: &TestApp, authorization: &str, proof: Option<&str>) -> (u16, String) {
    let mut req = app
        .client
        .get(app.url("/v1/users"))
        .header("Authorization", authorization);
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    let resp = req.send().await.unwrap();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (resp.status().as_u16(), challenge)
}

async fn bound_tokens_are_used_only_with_their_proof(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("listed@example.com").await;
    let client = confidential_client(&app, json!({})).await;
    let key = make_key(Algorithm::ES256, "dpop-1");
    let (status, t, _) = proved_grant(&app, &client, &key).await;
    assert_eq!(status, 200, "{t}");
    // §5.1: the token type says it is no bearer token.
    assert_eq!(t["token_type"], "DPoP");
    let token = t["access_token"].as_str().unwrap().to_owned();
    // §6.1: `cnf.jkt` is the key's thumbprint, checked with another library.
    let (_, claims) = verify_jwt(&app, &token, ISSUER).await;
    assert_eq!(claims["cnf"]["jkt"], thumbprint(&key), "{claims}");
    // §6.2: introspection tells a resource server the key.
    let info = introspect(&app, &client, &token).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["cnf"]["jkt"], thumbprint(&key));
    assert_eq!(info["token_type"], "DPoP");

    let scheme = format!("DPoP {token}");
    let good = resource_proof(&key, "GET", "/v1/users", &token);
    assert_eq!(list_users(&app, &scheme, Some(&good)).await.0, 200);
    // §11.1: the same proof again is a replay.
    let (status, challenge) = list_users(&app, &scheme, Some(&good)).await;
    assert_eq!(status, 401);
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(challenge.contains("invalid_dpop_proof"), "{challenge}");
    // §7.2: a bound token is not a bearer token.
    let fresh = resource_proof(&key, "GET", "/v1/users", &token);
    let (status, challenge) = list_users(&app, &format!("Bearer {token}"), Some(&fresh)).await;
    assert_eq!(status, 401);
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    // Without its proof.
    assert_eq!(list_users(&app, &scheme, None).await.0, 401);
    // A proof for another method, another URL, without `ath`, with the
    // hash of another token, or by another key.
    let other = make_key(Algorithm::ES256, "dpop-2");
    for wrong in [
        resource_proof(&key, "POST", "/v1/users", &token),
        resource_proof(&key, "GET", "/v1/api-keys", &token),
        proof(&key, "GET", "/v1/users"),
        resource_proof(&key, "GET", "/v1/users", "another token"),
        resource_proof(&other, "GET", "/v1/users", &token),
    ] {
        let (status, challenge) = list_users(&app, &scheme, Some(&wrong)).await;
        assert_eq!(status, 401, "{wrong}");
        assert!(challenge.contains("invalid_dpop_proof"), "{challenge}");
    }
    // An unbound token sent as DPoP is refused too; as Bearer it works.
    let (_, plain, _) = token_with(&app, &client, &CLIENT_CREDENTIALS, &[]).await;
    assert_eq!(plain["token_type"], "Bearer");
    let plain = plain["access_token"].as_str().unwrap();
    let p = resource_proof(&key, "GET", "/v1/users", plain);
    assert_eq!(
        list_users(&app, &format!("DPoP {plain}"), Some(&p)).await.0,
        401
    );
    assert_eq!(
        list_users(&app, &format!("Bearer {plain}"), None).await.0,
        200
    );
}

async fn token_endpoint_refuses_proofs_per_section_4_3(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = confidential_client(&app, json!({})).await;
    let key = make_key(Algorithm::ES256, "dpop-1");
    let rsa = make_key(Algorithm::RS256, "dpop-rsa");
    let ed = make_key(Algorithm::EdDSA, "dpop-ed");
    // Each asymmetric algorithm is accepted.
    for k in [&key, &rsa, &ed] {
        let (status, t, _) = proved_grant(&app, &client, k).await;
        assert_eq!(status, 200, "{} {t}", alg_name(k));
        assert_eq!(t["token_type"], "DPoP");
    }
    let header = |typ: &str, alg: &str, jwk: Value| json!({"typ": typ, "alg": alg, "jwk": jwk});
    let claims = || proof_claims("POST", "/oauth/token");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims();
        f(&mut c);
        proof_with(&key, &c)
    };
    let mut private = public_jwk(&key);
    private["d"] = json!(b64(b"not really the private key, but a private member"));
    let unsigned = format!(
        "{}.{}.",
        b64(header("dpop+jwt", "none", public_jwk(&key))
            .to_string()
            .as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    let replayed = proof(&key, "POST", "/oauth/token");
    let (status, _, _) = token_with(&app, &client, &CLIENT_CREDENTIALS, &[replayed.as_str()]).await;
    assert_eq!(status, 200);
    let refused: Vec<(&str, String)> = vec![
        ("a replayed proof", replayed),
        (
            "typ missing",
            signed(
                &key,
                &json!({"alg": "ES256", "jwk": public_jwk(&key)}),
                &claims(),
            ),
        ),
        (
            "typ jwt",
            signed(&key, &header("JWT", "ES256", public_jwk(&key)), &claims()),
        ),
        ("alg none", unsigned),
        (
            "a private key in the header",
            signed(&key, &header("dpop+jwt", "ES256", private), &claims()),
        ),
        (
            "no jwk",
            signed(&key, &json!({"typ": "dpop+jwt", "alg": "ES256"}), &claims()),
        ),
        (
            "the jwk of another key",
            signed(
                &key,
                &header(
                    "dpop+jwt",
                    "ES256",
                    public_jwk(&make_key(Algorithm::ES256, "x")),
                ),
                &claims(),
            ),
        ),
        ("htm GET", proof(&key, "GET", "/oauth/token")),
        ("htu of another endpoint", proof(&key, "POST", "/oauth/par")),
        (
            "htu of another host",
            with(&|c| c["htu"] = json!("https://elsewhere.example/oauth/token")),
        ),
        ("iat too old", with(&|c| c["iat"] = json!(now() - 120))),
        (
            "iat in the future",
            with(&|c| c["iat"] = json!(now() + 120)),
        ),
        ("no jti", with(&|c| c["jti"] = Value::Null)),
        ("not a JWS", "a.b".to_owned()),
    ];
    for (why, p) in &refused {
        let (status, body, _) = token_with(&app, &client, &CLIENT_CREDENTIALS, &[p.as_str()]).await;
        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(body["error"], "invalid_dpop_proof", "{why}: {body}");
    }
    // §4.3 point 1: one DPoP header, not two.
    let (a, b) = (
        proof(&key, "POST", "/oauth/token"),
        proof(&key, "POST", "/oauth/token"),
    );
    let (status, body, _) = token_with(&app, &client, &CLIENT_CREDENTIALS, &[&a, &b]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    // Discovery names the algorithms (§5.1).
    let doc = openid_configuration(&app).await;
    let algs = doc["dpop_signing_alg_values_supported"].as_array().unwrap();
    assert!(algs.contains(&json!("ES256")), "{doc}");
    assert!(!algs.iter().any(|a| a.as_str().unwrap().starts_with("HS")));
}

/// Signs ada in through the code flow with `extra` authorization
/// parameters: the code and its PKCE verifier.
async fn code_with(app: &TestApp, client: &TestClient, extra: &[(&str, &str)]) -> (String, String) {
    let (verifier, challenge) = pkce();
    let mut params = vec![
        ("scope", "openid email offline_access"),
        ("state", "s1"),
        ("nonce", "n1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let url = authorize_url(app, &client.id, &params);
    let browser = new_browser();
    let trip = browse_as(app, &browser, &url, "ada@example.com", true).await;
    let code = query(&trip.callback)
        .remove("code")
        .unwrap_or_else(|| panic!("no code in {}", trip.callback));
    (code, verifier)
}

async fn codes_and_public_refresh_tokens_are_bound_to_the_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    let client = public_client(&app).await;
    let key = make_key(Algorithm::ES256, "dpop-1");
    let other = make_key(Algorithm::ES256, "dpop-2");
    let jkt = thumbprint(&key);
    // §10: a malformed dpop_jkt is refused at the authorization endpoint.
    let bad = authorize_url(
        &app,
        &client.id,
        &[
            ("scope", "openid"),
            ("code_challenge", "x".repeat(43).as_str()),
            ("code_challenge_method", "S256"),
            ("dpop_jkt", "not-a-thumbprint"),
        ],
    );
    let resp = new_browser().get(bad).send().await.unwrap();
    let loc = location(&resp);
    assert_eq!(
        query(&loc).get("error").map(String::as_str),
        Some("invalid_request"),
        "{loc}"
    );
    // A code bound with dpop_jkt is not redeemed without a proof, nor with
    // a proof of another key (each try burns the code: it is single use).
    for proofs in [vec![], vec![proof(&other, "POST", "/oauth/token")]] {
        let (code, verifier) = code_with(&app, &client, &[("dpop_jkt", &jkt)]).await;
        let refs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let (status, body, _) =
            token_with(&app, &client, &code_form(&code, &verifier), &refs).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    }
    let (code, verifier) = code_with(&app, &client, &[("dpop_jkt", &jkt)]).await;
    let (status, t, _) = token_with(
        &app,
        &client,
        &code_form(&code, &verifier),
        &[&proof(&key, "POST", "/oauth/token")],
    )
    .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP");
    let access = t["access_token"].as_str().unwrap().to_owned();
    // Userinfo takes the bound token with its proof (§7), and only so.
    let userinfo = |proof: Option<String>, scheme: &'static str| {
        let mut req = app
            .client
            .get(app.url("/oauth/userinfo"))
            .header("Authorization", format!("{scheme} {access}"));
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        req.send()
    };
    let ok = userinfo(
        Some(resource_proof(&key, "GET", "/oauth/userinfo", &access)),
        "DPoP",
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    let claims: Value = ok.json().await.unwrap();
    assert_eq!(claims["email"], "ada@example.com");
    for (p, scheme) in [
        (None, "DPoP"),
        (
            Some(resource_proof(&key, "GET", "/oauth/userinfo", &access)),
            "Bearer",
        ),
        (
            Some(resource_proof(&other, "GET", "/oauth/userinfo", &access)),
            "DPoP",
        ),
    ] {
        let resp = userinfo(p, scheme).await.unwrap();
        assert_eq!(resp.status(), 401, "{scheme}");
        let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("DPoP "), "{challenge}");
    }
    // §5: a public client's refresh token is bound to the key.
    let refresh = t["refresh_token"].as_str().unwrap().to_owned();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    for proofs in [vec![], vec![proof(&other, "POST", "/oauth/token")]] {
        let refs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let (status, body, _) = token_with(&app, &client, &form, &refs).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    }
    // The refusals above did not spend it: with the key's proof it rotates.
    let (status, next, _) = token_with(
        &app,
        &client,
        &form,
        &[&proof(&key, "POST", "/oauth/token")],
    )
    .await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["token_type"], "DPoP");
    let (_, claims) = verify_jwt(&app, next["access_token"].as_str().unwrap(), ISSUER).await;
    assert_eq!(claims["cnf"]["jkt"], jkt);
}

async fn nonces_are_handed_out_and_required(backend: Backend) {
    let app = TestApp::builder(backend)
        .with_settings(|s| s.dpop.require_nonce = true)
        .spawn()
        .await;
    app.create_user("listed@example.com").await;
    let client = confidential_client(&app, json!({})).await;
    let key = make_key(Algorithm::ES256, "dpop-1");
    // §8: a proof without the server's nonce gets one to use.
    let (status, body, headers) = proved_grant(&app, &client, &key).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce")),
        "{body}"
    );
    let nonce = headers["dpop-nonce"].to_str().unwrap().to_owned();
    // A nonce the server never gave is refused the same way.
    let mut claims = proof_claims("POST", "/oauth/token");
    claims["nonce"] = json!("made-up");
    let (status, body, _) = token_with(
        &app,
        &client,
        &CLIENT_CREDENTIALS,
        &[&proof_with(&key, &claims)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce"))
    );
    let mut claims = proof_claims("POST", "/oauth/token");
    claims["nonce"] = json!(nonce);
    let (status, t, _) = token_with(
        &app,
        &client,
        &CLIENT_CREDENTIALS,
        &[&proof_with(&key, &claims)],
    )
    .await;
    assert_eq!(status, 200, "{t}");
    let token = t["access_token"].as_str().unwrap().to_owned();
    // §9: a resource asks for a nonce with 401 and a DPoP challenge.
    let resp = app
        .client
        .get(app.url("/v1/users"))
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", resource_proof(&key, "GET", "/v1/users", &token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("use_dpop_nonce"), "{challenge}");
    let nonce = resp.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let mut claims = proof_claims("GET", "/v1/users");
    claims["ath"] = json!(b64(&Sha256::digest(token.as_bytes())));
    claims["nonce"] = json!(nonce);
    let (status, _) = list_users(
        &app,
        &format!("DPoP {token}"),
        Some(&proof_with(&key, &claims)),
    )
    .await;
    assert_eq!(status, 200);
}

async fn clients_can_require_dpop(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = confidential_client(&app, json!({"dpop_bound_access_tokens": true})).await;
    let (status, shown) = status_json(
        app.get(&format!("/v1/oauth/clients/{}", client.id), &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(shown["dpop_bound_access_tokens"], true);
    // §5.2: a token request without a proof is refused.
    let (status, body, _) = token_with(&app, &client, &CLIENT_CREDENTIALS, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
    let key = make_key(Algorithm::ES256, "dpop-1");
    let (status, t, _) = proved_grant(&app, &client, &key).await;
    assert_eq!(
        (status, t["token_type"].as_str()),
        (200, Some("DPoP")),
        "{t}"
    );
    // The flag can be turned off again.
    let (status, _) = status_json(
        app.patch(
            &format!("/v1/oauth/clients/{}", client.id),
            &app.secret_key,
            &json!({"dpop_bound_access_tokens": false}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    let (status, t, _) = token_with(&app, &client, &CLIENT_CREDENTIALS, &[]).await;
    assert_eq!(
        (status, t["token_type"].as_str()),
        (200, Some("Bearer")),
        "{t}"
    );
    // RFC 7591 registration takes and echoes it too.
    let (status, reg) = status_json(
        app.client
            .post(app.url("/oauth/register"))
            .bearer_auth(&app.secret_key)
            .json(&json!({"client_name": "CLI", "redirect_uris": [REDIRECT],
                          "dpop_bound_access_tokens": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{reg}");
    assert_eq!(reg["dpop_bound_access_tokens"], true);
}

/// §10.1: a proof sent with a pushed request binds the code to its key,
/// as `dpop_jkt` does; a `dpop_jkt` of another key than the proof's is
/// refused.
async fn pushed_requests_bind_the_code_to_the_proof(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    let client = public_client(&app).await;
    let key = make_key(Algorithm::ES256, "dpop-1");
    let other = make_key(Algorithm::ES256, "dpop-2");
    let push = |challenge: String, extra: Vec<(&'static str, String)>, proof: String| {
        let mut form = vec![
            ("client_id", client.id.clone()),
            ("response_type", "code".to_owned()),
            ("redirect_uri", REDIRECT.to_owned()),
            ("scope", "openid email".to_owned()),
            ("state", "s1".to_owned()),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256".to_owned()),
        ];
        form.extend(extra);
        app.client
            .post(app.url("/oauth/par"))
            .header("DPoP", proof)
            .form(&form)
            .send()
    };
    let (_, challenge) = pkce();
    let (status, body) = status_json(
        push(
            challenge,
            vec![("dpop_jkt", thumbprint(&other))],
            proof(&key, "POST", "/oauth/par"),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
    let (verifier, challenge) = pkce();
    let (status, body) = status_json(
        push(challenge, vec![], proof(&key, "POST", "/oauth/par"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let url = {
        let mut u = url::Url::parse(&app.url("/oauth/authorize")).unwrap();
        u.query_pairs_mut()
            .append_pair("client_id", &client.id)
            .append_pair("request_uri", body["request_uri"].as_str().unwrap());
        u.to_string()
    };
    let trip = browse_as(&app, &new_browser(), &url, "ada@example.com", true).await;
    let code = query(&trip.callback).remove("code").unwrap();
    let form = code_form(&code, &verifier);
    let (status, body, _) = token_with(
        &app,
        &client,
        &form,
        &[&proof(&other, "POST", "/oauth/token")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
    // Codes are single use: the refused redemption spent this one, so the
    // right key now meets invalid_grant, not a token.
    let (status, body, _) = token_with(
        &app,
        &client,
        &form,
        &[&proof(&key, "POST", "/oauth/token")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}
