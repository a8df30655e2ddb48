//! `client_secret_jwt` client authentication (RFC 7523 §2.2, OIDC Core §9,
//! issue 15 item 3): assertions MACed with the client secret by a second
//! JWT library (jsonwebtoken) at every endpoint that authenticates clients;
//! the refusals of RFC 7523 §3, a `jti` kept single use by the database
//! after the store forgot it, and secret rotation.

use crate::client_jwt::{
    CC, ISSUER, claims, jwt_client, make_key, now, post_assertion, refused, sign,
};
use crate::oauth_support::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use trusec_storage::StoreKey;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    each_hs_algorithm_authenticates_at_every_endpoint,
    mac_assertions_are_refused_per_rfc_7523,
    a_jti_stays_used_after_the_store_forgot_it,
    a_rotated_secret_replaces_the_old_one,
);

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A `client_secret_jwt` client of every grant: its id and secret.
async fn mac_client(app: &TestApp, extra: Value) -> TestClient {
    let mut body = json!({"name": "MAC service", "type": "confidential",
        "redirect_uris": [REDIRECT],
        "grant_types": ["client_credentials", "authorization_code", DEVICE_GRANT],
        "scopes": ["openid", "email", "read:users"],
        "token_endpoint_auth_method": "client_secret_jwt"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let client = create_client(app, body).await;
    let secret = client.secret.as_deref().expect("a secret, shown once");
    // RFC 7518 §3.2: an HS512 key is at least 64 bytes.
    assert!(secret.len() >= 64, "{}", secret.len());
    client
}

fn mac(alg: Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn secret(client: &TestClient) -> &str {
    client.secret.as_deref().unwrap()
}

async fn each_hs_algorithm_authenticates_at_every_endpoint(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, meta) = status_json(
        app.client
            .get(app.url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    for field in [
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
    ] {
        assert!(
            meta[field]
                .as_array()
                .unwrap()
                .contains(&json!("client_secret_jwt")),
            "{field}"
        );
    }
    for alg in ["HS256", "HS384", "HS512"] {
        let algs = meta["token_endpoint_auth_signing_alg_values_supported"]
            .as_array()
            .unwrap();
        assert!(algs.contains(&json!(alg)), "{alg}");
        assert!(!algs.contains(&json!("none")));
    }
    let client = mac_client(&app, json!({})).await;
    let id = client.id.as_str();
    for (alg, aud) in [
        (Algorithm::HS256, json!(ISSUER)),
        (Algorithm::HS384, json!(format!("{ISSUER}/oauth/token"))),
        (Algorithm::HS512, json!(["https://other.example", ISSUER])),
    ] {
        let assertion = mac(alg, secret(&client), &claims(id, aud));
        let (status, tokens, _) = post_assertion(&app, "/oauth/token", &assertion, &CC).await;
        assert_eq!(status, 200, "{alg:?}: {tokens}");
        let access = tokens["access_token"].as_str().unwrap();
        let (_, at) = verify_jwt(&app, access, ISSUER).await;
        assert_eq!(at["client_id"], id, "{alg:?}");
        let (status, info, _) = post_assertion(
            &app,
            "/oauth/introspect",
            &mac(
                alg,
                secret(&client),
                &claims(id, json!(format!("{ISSUER}/oauth/introspect"))),
            ),
            &[("token", access)],
        )
        .await;
        assert_eq!((status, &info["active"]), (200, &json!(true)), "{info}");
        let (status, _, _) = post_assertion(
            &app,
            "/oauth/revoke",
            &mac(
                alg,
                secret(&client),
                &claims(id, json!(format!("{ISSUER}/oauth/revoke"))),
            ),
            &[("token", access)],
        )
        .await;
        assert_eq!(status, 200, "{alg:?}");
    }
    // RFC 9126 §2 and RFC 8628 §3.1: as at the token endpoint.
    let (_, challenge) = pkce();
    let par_form = [
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let (status, body, _) = post_assertion(
        &app,
        "/oauth/par",
        &mac(
            Algorithm::HS256,
            secret(&client),
            &claims(id, json!(format!("{ISSUER}/oauth/par"))),
        ),
        &par_form,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body, _) = post_assertion(
        &app,
        "/oauth/device_authorization",
        &mac(
            Algorithm::HS256,
            secret(&client),
            &claims(id, json!(ISSUER)),
        ),
        &[("scope", "openid")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["device_code"].is_string(), "{body}");
}

async fn mac_assertions_are_refused_per_rfc_7523(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = mac_client(&app, json!({})).await;
    let (id, key) = (client.id.as_str(), secret(&client));
    let once = mac(Algorithm::HS256, key, &claims(id, json!(ISSUER)));
    let (status, _, _) = post_assertion(&app, "/oauth/token", &once, &CC).await;
    assert_eq!(status, 200);
    refused(&app, &once, "replayed jti").await;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims(id, json!(ISSUER));
        f(&mut c);
        mac(Algorithm::HS256, key, &c)
    };
    refused(
        &app,
        &with(&|c| c["aud"] = json!("https://other.example")),
        "wrong aud",
    )
    .await;
    refused(&app, &with(&|c| c["exp"] = json!(now() - 120)), "expired").await;
    refused(
        &app,
        &with(&|c| c["exp"] = json!(now() + 3600)),
        "exp too far ahead",
    )
    .await;
    refused(
        &app,
        &with(&|c| c["sub"] = json!("someone-else")),
        "wrong sub",
    )
    .await;
    refused(
        &app,
        &mac(
            Algorithm::HS256,
            "not the secret",
            &claims(id, json!(ISSUER)),
        ),
        "wrong secret",
    )
    .await;
    // A MAC cut short, or over other claims.
    let good = mac(Algorithm::HS256, key, &claims(id, json!(ISSUER)));
    refused(&app, &good[..good.len() - 2], "truncated MAC").await;
    let (head, _) = good.rsplit_once('.').unwrap();
    let other = mac(Algorithm::HS256, key, &claims(id, json!(ISSUER)));
    let (_, other_mac) = other.rsplit_once('.').unwrap();
    refused(
        &app,
        &format!("{head}.{other_mac}"),
        "another assertion's MAC",
    )
    .await;
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(claims(id, json!(ISSUER)).to_string().as_bytes())
    );
    refused(&app, &none, "alg none").await;
    // An asymmetric alg on a client_secret_jwt client.
    let ec = make_key(Algorithm::ES256, "k1");
    refused(
        &app,
        &sign(&ec, &claims(id, json!(ISSUER))),
        "ES256 on a MAC client",
    )
    .await;
    // The secret methods are not this client's: the method is enforced.
    let resp = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(key))
        .form(&CC)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "client_secret_basic");
    // A registered algorithm is the only one accepted; HS only.
    let hs384 = mac_client(&app, json!({"token_endpoint_auth_signing_alg": "HS384"})).await;
    let (hid, hkey) = (hs384.id.as_str(), secret(&hs384));
    refused(
        &app,
        &mac(Algorithm::HS256, hkey, &claims(hid, json!(ISSUER))),
        "HS256 when HS384",
    )
    .await;
    let (status, _, _) = post_assertion(
        &app,
        "/oauth/token",
        &mac(Algorithm::HS384, hkey, &claims(hid, json!(ISSUER))),
        &CC,
    )
    .await;
    assert_eq!(status, 200);
    for (extra, param) in [
        (
            json!({"token_endpoint_auth_signing_alg": "ES256"}),
            "token_endpoint_auth_signing_alg",
        ),
        (
            json!({"token_endpoint_auth_signing_alg": "none"}),
            "token_endpoint_auth_signing_alg",
        ),
        (json!({"jwks": {"keys": [ec.jwk]}}), "jwks"),
    ] {
        let mut body = json!({"name": "MAC", "type": "confidential",
            "grant_types": ["client_credentials"], "scopes": ["read:users"],
            "token_endpoint_auth_method": "client_secret_jwt"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, err) =
            status_json(app.post("/v1/oauth/clients", &app.secret_key, &body).await).await;
        assert_eq!(
            (status, err["error"]["param"].as_str()),
            (422, Some(param)),
            "{body}: {err}"
        );
    }
    // RFC 7591 registration makes the same client, its secret shown once.
    let (status, reg) = status_json(
        app.client
            .post(app.url("/oauth/register"))
            .bearer_auth(&app.secret_key)
            .json(&json!({"client_name": "Service", "grant_types": ["client_credentials"],
                          "scope": "read:users", "token_endpoint_auth_method": "client_secret_jwt"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{reg}");
    let (rid, rkey) = (
        reg["client_id"].as_str().unwrap(),
        reg["client_secret"].as_str().unwrap(),
    );
    let (status, _, _) = post_assertion(
        &app,
        "/oauth/token",
        &mac(Algorithm::HS512, rkey, &claims(rid, json!(ISSUER))),
        &CC,
    )
    .await;
    assert_eq!(status, 200);
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7523 §3 point 7, for both JWT methods: the database keeps a `jti`
/// used after the store lost its marker (a flushed or failed over Redis).
async fn a_jti_stays_used_after_the_store_forgot_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = mac_client(&app, json!({})).await;
    let key = make_key(Algorithm::ES256, "k1");
    let signed_id = jwt_client(&app, &key).await;
    let c = claims(&client.id, json!(ISSUER));
    let s = claims(&signed_id, json!(ISSUER));
    for (id, assertion, jti) in [
        (
            client.id.as_str(),
            mac(Algorithm::HS256, secret(&client), &c),
            &c["jti"],
        ),
        (signed_id.as_str(), sign(&key, &s), &s["jti"]),
    ] {
        let (status, _, _) = post_assertion(&app, "/oauth/token", &assertion, &CC).await;
        assert_eq!(status, 200, "{id}");
        app.state
            .core
            .store
            .delete(&[StoreKey::client_assertion_used(id, jti.as_str().unwrap())])
            .await
            .unwrap();
        refused(&app, &assertion, "replayed after the store forgot it").await;
    }
}

async fn a_rotated_secret_replaces_the_old_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = mac_client(&app, json!({})).await;
    let (id, old) = (client.id.as_str(), secret(&client));
    let (status, rotated) = status_json(
        app.post(
            &format!("/v1/oauth/clients/{id}/rotate-secret"),
            &app.secret_key,
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["client_secret"].as_str().unwrap();
    assert!(new.len() >= 64);
    refused(
        &app,
        &mac(Algorithm::HS256, old, &claims(id, json!(ISSUER))),
        "old secret",
    )
    .await;
    let (status, _, _) = post_assertion(
        &app,
        "/oauth/token",
        &mac(Algorithm::HS256, new, &claims(id, json!(ISSUER))),
        &CC,
    )
    .await;
    assert_eq!(status, 200, "new secret");
    // Another method drops the sealed secret; choosing client_secret_jwt
    // again takes a rotation, since only the hash was kept meanwhile.
    let patch = |method: &'static str| {
        let path = format!("/v1/oauth/clients/{id}");
        let body = json!({"token_endpoint_auth_method": method});
        let app = &app;
        async move {
            let status = app.patch(&path, &app.secret_key, &body).await.status();
            assert_eq!(status, 200, "{method}");
        }
    };
    patch("client_secret_basic").await;
    let (status, _) = token(
        &app,
        &TestClient {
            id: id.to_owned(),
            secret: Some(new.to_owned()),
        },
        &CC,
    )
    .await;
    assert_eq!(status, 200, "basic with the same secret");
    patch("client_secret_jwt").await;
    refused(
        &app,
        &mac(Algorithm::HS256, new, &claims(id, json!(ISSUER))),
        "no sealed secret",
    )
    .await;
    let (_, rotated) = status_json(
        app.post(
            &format!("/v1/oauth/clients/{id}/rotate-secret"),
            &app.secret_key,
            &json!({}),
        )
        .await,
    )
    .await;
    let newer = rotated["client_secret"].as_str().unwrap();
    let (status, _, _) = post_assertion(
        &app,
        "/oauth/token",
        &mac(Algorithm::HS256, newer, &claims(id, json!(ISSUER))),
        &CC,
    )
    .await;
    assert_eq!(status, 200, "after the rotation");
}
