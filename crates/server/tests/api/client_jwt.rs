//! `private_key_jwt` client authentication (RFC 7523, OIDC Core §9, issue
//! 15 item 3): assertions made and signed with a second JWT library
//! (jsonwebtoken) from keys made with openssl, sent to the token,
//! introspection and revocation endpoints; every refusal of RFC 7523 §3.

use crate::oauth_support::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use serde_json::{Value, json};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    each_algorithm_gets_a_client_credentials_token,
    assertions_are_refused_per_rfc_7523,
    introspection_and_revocation_take_assertions,
    registration_refuses_bad_keys,
);

pub(crate) const ISSUER: &str = "http://127.0.0.1:8080";
pub(crate) const TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A private key, its public JWK and jsonwebtoken's signing key.
pub(crate) struct Key {
    pub(crate) alg: Algorithm,
    pub(crate) jwk: Value,
    pub(crate) signing: EncodingKey,
}

pub(crate) fn make_key(alg: Algorithm, kid: &str) -> Key {
    let (pkey, jwk): (PKey<Private>, Value) = match alg {
        Algorithm::ES256 => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
            let ec = EcKey::generate(&group).unwrap();
            let mut ctx = openssl::bn::BigNumContext::new().unwrap();
            let (mut x, mut y) = (
                openssl::bn::BigNum::new().unwrap(),
                openssl::bn::BigNum::new().unwrap(),
            );
            ec.public_key()
                .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
                .unwrap();
            let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid,
                "x": b64(&x.to_vec_padded(32).unwrap()), "y": b64(&y.to_vec_padded(32).unwrap())});
            (PKey::from_ec_key(ec).unwrap(), jwk)
        }
        Algorithm::EdDSA => {
            let pkey = PKey::generate_ed25519().unwrap();
            let raw = pkey.raw_public_key().unwrap();
            (
                pkey,
                json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(&raw)}),
            )
        }
        _ => {
            let rsa = Rsa::generate(2048).unwrap();
            let jwk = json!({"kty": "RSA", "kid": kid, "n": b64(&rsa.n().to_vec()),
                             "e": b64(&rsa.e().to_vec())});
            (PKey::from_rsa(rsa).unwrap(), jwk)
        }
    };
    let signing = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_der(&pkey.private_key_to_pkcs8().unwrap()),
        Algorithm::EdDSA => EncodingKey::from_ed_der(&pkey.private_key_to_pkcs8().unwrap()),
        _ => EncodingKey::from_rsa_der(&pkey.rsa().unwrap().private_key_to_der().unwrap()),
    };
    Key { alg, jwk, signing }
}

pub(crate) async fn jwt_client(app: &TestApp, key: &Key) -> String {
    let (status, c) = status_json(
        app.post(
            "/v1/oauth/clients",
            &app.secret_key,
            &json!({"name": "Backend service", "type": "confidential",
                    "grant_types": ["client_credentials"], "scopes": ["read:users"],
                    "token_endpoint_auth_method": "private_key_jwt",
                    "jwks": {"keys": [key.jwk]}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{c}");
    assert!(
        c.get("client_secret").is_none(),
        "no secret for private_key_jwt"
    );
    assert_eq!(c["jwks"]["keys"][0]["kid"], key.jwk["kid"]);
    c["client_id"].as_str().unwrap().to_owned()
}

/// The app's (fake, fixed) clock: no test here waits.
pub(crate) fn now() -> i64 {
    trusec_testkit::fake_clock().now().timestamp()
}

pub(crate) fn claims(client_id: &str, aud: Value) -> Value {
    json!({"iss": client_id, "sub": client_id, "aud": aud, "iat": now(),
           "exp": now() + 120, "jti": format!("jti-{}", rand_suffix())})
}

fn rand_suffix() -> String {
    let mut bytes = [0u8; 12];
    openssl::rand::rand_bytes(&mut bytes).unwrap();
    b64(&bytes)
}

pub(crate) fn sign(key: &Key, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = key.jwk["kid"].as_str().map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key.signing).unwrap()
}

pub(crate) async fn post_assertion(
    app: &TestApp,
    path: &str,
    assertion: &str,
    form: &[(&str, &str)],
) -> (u16, Value, Option<String>) {
    let mut fields = form.to_vec();
    fields.extend([
        ("client_assertion_type", TYPE),
        ("client_assertion", assertion),
    ]);
    let resp = app
        .client
        .post(app.url(path))
        .form(&fields)
        .send()
        .await
        .unwrap();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|h| h.to_str().unwrap().to_owned());
    let (status, body) = status_json(resp).await;
    (status, body, challenge)
}

/// RFC 7591 registration of a `private_key_jwt` service, with `keys`
/// (`jwks` or `jwks_uri`, and any other member) added.
pub(crate) async fn register_service(app: &TestApp, keys: Value) -> (u16, Value) {
    let mut body = json!({"client_name": "Service", "grant_types": ["client_credentials"],
                          "scope": "read:users", "token_endpoint_auth_method": "private_key_jwt"});
    for (k, v) in keys.as_object().unwrap() {
        body[k] = v.clone();
    }
    rfc7591_register(app, &body).await
}

pub(crate) const CC: [(&str, &str); 2] = [
    ("grant_type", "client_credentials"),
    ("scope", "read:users"),
];

async fn each_algorithm_gets_a_client_credentials_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (alg, aud) in [
        (Algorithm::ES256, json!(ISSUER)),
        (Algorithm::PS256, json!(format!("{ISSUER}/oauth/token"))),
        (Algorithm::EdDSA, json!(["https://other.example", ISSUER])),
        (Algorithm::RS256, json!(ISSUER)),
    ] {
        let key = make_key(alg, &format!("{alg:?}-1"));
        let id = jwt_client(&app, &key).await;
        let assertion = sign(&key, &claims(&id, aud));
        let (status, tokens, _) = post_assertion(&app, "/oauth/token", &assertion, &CC).await;
        assert_eq!(status, 200, "{alg:?}: {tokens}");
        let access = tokens["access_token"].as_str().unwrap();
        let (_, at) = verify_jwt(&app, access, ISSUER).await;
        assert_eq!(at["sub"], id.as_str(), "{alg:?}");
        assert_eq!(at["client_id"], id.as_str(), "{alg:?}");
        // client_id in the body may name the same client (RFC 7521 §4.2).
        let again = sign(&key, &claims(&id, json!(ISSUER)));
        let mut form = CC.to_vec();
        form.push(("client_id", &id));
        let (status, _, _) = post_assertion(&app, "/oauth/token", &again, &form).await;
        assert_eq!(status, 200, "{alg:?} with client_id");
    }
}

pub(crate) async fn refused(app: &TestApp, assertion: &str, why: &str) {
    let (status, body, _) = post_assertion(app, "/oauth/token", assertion, &CC).await;
    assert_eq!(status, 401, "{why}: {body}");
    assert_eq!(body["error"], "invalid_client", "{why}: {body}");
}

async fn assertions_are_refused_per_rfc_7523(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = make_key(Algorithm::ES256, "k1");
    let id = jwt_client(&app, &key).await;
    // Replay: the same jti twice.
    let once = sign(&key, &claims(&id, json!(ISSUER)));
    let (status, _, _) = post_assertion(&app, "/oauth/token", &once, &CC).await;
    assert_eq!(status, 200);
    refused(&app, &once, "replayed jti").await;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims(&id, json!(ISSUER));
        f(&mut c);
        sign(&key, &c)
    };
    refused(
        &app,
        &with(&|c| c["aud"] = json!("https://other.example")),
        "wrong aud",
    )
    .await;
    refused(
        &app,
        &with(&|c| c["aud"] = json!(format!("{ISSUER}/oauth/revoke"))),
        "another endpoint",
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
        &with(&|c| c["nbf"] = json!(now() + 600)),
        "not valid yet",
    )
    .await;
    refused(
        &app,
        &with(&|c| c["iat"] = json!(now() + 600)),
        "iat in the future",
    )
    .await;
    refused(
        &app,
        &with(&|c| {
            c.as_object_mut().unwrap().remove("exp");
        }),
        "no exp",
    )
    .await;
    refused(
        &app,
        &with(&|c| {
            c.as_object_mut().unwrap().remove("jti");
        }),
        "no jti",
    )
    .await;
    refused(
        &app,
        &with(&|c| c["sub"] = json!("someone-else")),
        "wrong sub",
    )
    .await;
    // A wrong iss names another client (unknown here).
    refused(
        &app,
        &with(&|c| c["iss"] = json!("client_nobody")),
        "wrong iss",
    )
    .await;
    // alg none: header and claims, no signature.
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","kid":"k1"}"#),
        b64(claims(&id, json!(ISSUER)).to_string().as_bytes())
    );
    refused(&app, &none, "alg none").await;
    // HS256 keyed with the public key (the classic confusion attack).
    let public_as_secret = serde_json::to_vec(&key.jwk).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let hs = jsonwebtoken::encode(
        &header,
        &claims(&id, json!(ISSUER)),
        &EncodingKey::from_secret(&public_as_secret),
    )
    .unwrap();
    refused(&app, &hs, "HS256 with the public key").await;
    // Signed by a key the client never registered, under its kid or another.
    let stranger = make_key(Algorithm::ES256, "k1");
    refused(
        &app,
        &sign(&stranger, &claims(&id, json!(ISSUER))),
        "unregistered key",
    )
    .await;
    let unknown_kid = make_key(Algorithm::ES256, "k2");
    refused(
        &app,
        &sign(&unknown_kid, &claims(&id, json!(ISSUER))),
        "unknown kid",
    )
    .await;
    // Oversized: refused before it is parsed.
    let huge = format!("{}.{}.x", "a".repeat(5000), "b".repeat(5000));
    refused(&app, &huge, "oversized").await;
    // Wrong method: a secret client cannot use an assertion, and this
    // client cannot use a secret.
    let secret_client = confidential_client(&app, json!({})).await;
    let secret_key = make_key(Algorithm::ES256, "k1");
    refused(
        &app,
        &sign(&secret_key, &claims(&secret_client.id, json!(ISSUER))),
        "secret client",
    )
    .await;
    let resp = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some("guess"))
        .form(&CC)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers().contains_key("www-authenticate"),
        "Basic challenge as today"
    );
    // Two methods at once.
    let fresh = sign(&key, &claims(&id, json!(ISSUER)));
    let mut form = CC.to_vec();
    form.push(("client_secret", "x"));
    let (status, body, _) = post_assertion(&app, "/oauth/token", &fresh, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    // And the fresh assertion was not spent by the refused request.
    let (status, _, _) = post_assertion(&app, "/oauth/token", &fresh, &CC).await;
    assert_eq!(status, 200);
}

async fn introspection_and_revocation_take_assertions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = make_key(Algorithm::EdDSA, "ed");
    let id = jwt_client(&app, &key).await;
    let (status, tokens, _) = post_assertion(
        &app,
        "/oauth/token",
        &sign(&key, &claims(&id, json!(ISSUER))),
        &CC,
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let introspect_aud = json!(format!("{ISSUER}/oauth/introspect"));
    let (status, info, _) = post_assertion(
        &app,
        "/oauth/introspect",
        &sign(&key, &claims(&id, introspect_aud)),
        &[("token", access)],
    )
    .await;
    assert_eq!((status, &info["active"]), (200, &json!(true)), "{info}");
    assert_eq!(info["client_id"], id.as_str());
    let (status, _, _) = post_assertion(
        &app,
        "/oauth/revoke",
        &sign(&key, &claims(&id, json!(format!("{ISSUER}/oauth/revoke")))),
        &[("token", access)],
    )
    .await;
    assert_eq!(status, 200);
    let (status, info, _) = post_assertion(
        &app,
        "/oauth/introspect",
        &sign(&key, &claims(&id, json!(ISSUER))),
        &[("token", access)],
    )
    .await;
    assert_eq!(
        (status, &info["active"]),
        (200, &json!(false)),
        "revoked: {info}"
    );
}

async fn registration_refuses_bad_keys(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ec = make_key(Algorithm::ES256, "k1");
    let mut private = ec.jwk.clone();
    private["d"] = json!(b64(&[1u8; 32]));
    let base = json!({"name": "Backend", "type": "confidential",
                      "grant_types": ["client_credentials"], "scopes": ["read:users"],
                      "token_endpoint_auth_method": "private_key_jwt"});
    let with = |extra: Value| {
        let mut b = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (body, param) in [
        (with(json!({})), "jwks"),
        (with(json!({"jwks": {"keys": [private]}})), "jwks"),
        (
            with(json!({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}})),
            "jwks",
        ),
        (with(json!({"jwks": {"keys": []}})), "jwks"),
        (with(json!({"jwks": [ec.jwk]})), "jwks"),
        (
            with(json!({"jwks": {"keys": [ec.jwk]}, "token_endpoint_auth_signing_alg": "none"})),
            "token_endpoint_auth_signing_alg",
        ),
        (
            with(json!({"jwks": {"keys": [ec.jwk]}, "token_endpoint_auth_signing_alg": "HS256"})),
            "token_endpoint_auth_signing_alg",
        ),
        // An EC key cannot make RS256 signatures.
        (
            with(json!({"jwks": {"keys": [ec.jwk]}, "token_endpoint_auth_signing_alg": "RS256"})),
            "jwks",
        ),
        // A key source this server may not fetch (jwks_uri.rs has the rest).
        (
            with(json!({"jwks_uri": "https://127.0.0.1/jwks.json"})),
            "jwks_uri",
        ),
        (
            json!({"name": "Web", "type": "confidential", "redirect_uris": [REDIRECT],
                "jwks": {"keys": [ec.jwk]}}),
            "jwks",
        ),
    ] {
        let (status, err) =
            status_json(app.post("/v1/oauth/clients", &app.secret_key, &body).await).await;
        assert_eq!(status, 422, "{body}: {err}");
        assert_eq!(err["error"]["param"], param, "{body}: {err}");
    }
    // A registered algorithm is the only one accepted.
    let rsa = make_key(Algorithm::RS256, "r1");
    let (status, c) = status_json(
        app.post(
            "/v1/oauth/clients",
            &app.secret_key,
            &with(json!({"jwks": {"keys": [rsa.jwk]}, "token_endpoint_auth_signing_alg": "PS256"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{c}");
    let id = c["client_id"].as_str().unwrap();
    refused(
        &app,
        &sign(&rsa, &claims(id, json!(ISSUER))),
        "RS256 when PS256 is registered",
    )
    .await;
    let ps = Key {
        alg: Algorithm::PS256,
        ..rsa
    };
    let (status, _, _) = post_assertion(
        &app,
        "/oauth/token",
        &sign(&ps, &claims(id, json!(ISSUER))),
        &CC,
    )
    .await;
    assert_eq!(status, 200);
    // RFC 7591 registration takes the same metadata.
    let (status, reg) = register_service(
        &app,
        json!({"jwks": {"keys": [ec.jwk]}, "token_endpoint_auth_signing_alg": "ES256"}),
    )
    .await;
    assert_eq!(status, 201, "{reg}");
    assert!(reg.get("client_secret").is_none(), "{reg}");
    assert_eq!(reg["token_endpoint_auth_signing_alg"], "ES256");
    let rid = reg["client_id"].as_str().unwrap();
    let (status, _, _) = post_assertion(
        &app,
        "/oauth/token",
        &sign(&ec, &claims(rid, json!(ISSUER))),
        &CC,
    )
    .await;
    assert_eq!(status, 200);
}
