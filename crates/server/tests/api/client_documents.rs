//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document
//! -01, the MCP authorization profile; issue 15 item 6): a `client_id` that
//! is a URL names the document there, fetched from a server the test runs
//! on loopback (allowed by `TRUSEC_OUTBOUND_ALLOW_PRIVATE` and
//! `…_ALLOW_HTTP`). The code flow with PKCE at `/oauth/authorize`,
//! `/oauth/par` and `/oauth/token`; every refusal a page, never a redirect
//! (RFC 6749 §4.1.2.1).

use crate::client_jwt::{ISSUER, claims, make_key, post_assertion, sign};
use crate::doc_server::{Doc, DocServer, open_app};
use crate::oauth_support::*;
use crate::par::{pushed, refused_page, signs_in};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    a_document_client_signs_in_with_pkce,
    a_document_client_may_sign_with_its_own_key,
    documents_that_may_not_be_used_are_refused,
);

/// A document as MCP clients publish them, unknown members included.
fn document(client_id: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "Example MCP client",
        "client_uri": "https://mcp-client.example",
        "logo_uri": "https://mcp-client.example/logo.png",
        "redirect_uris": [REDIRECT],
        "post_logout_redirect_uris": ["https://app.example.com/bye"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": "openid profile email",
        "software_id": "7d2c0e0a-example",
        "software_version": "1.4.2",
        "x-vendor": {"anything": ["goes", 1, true]}
    })
}

/// The client `path` on `docs` names, with its document put there.
fn publish(docs: &DocServer, path: &str, change: impl FnOnce(&mut Value)) -> TestClient {
    let id = docs.url(path);
    let mut doc = document(&id);
    change(&mut doc);
    docs.put(
        path,
        Doc::json(&doc).with_header("cache-control", "max-age=600"),
    );
    TestClient { id, secret: None }
}

async fn a_document_client_signs_in_with_pkce(backend: Backend) {
    let app = open_app(backend).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let (_, meta) = status_json(app.get(path, "").await).await;
        assert_eq!(
            meta["client_id_metadata_document_supported"], true,
            "{path}"
        );
        let methods = meta["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap();
        assert!(methods.contains(&json!("none")), "{path}");
    }
    let docs = DocServer::start();
    let client = publish(&docs, "/mcp/client.json", |_| {});
    make_user(&app, "ada@example.com").await;
    let (start, verifier) = pkce_authorize_url(&app, &client.id, "openid email");
    let trip = browse(&app, &start, "ada@example.com", true).await;
    // The user sees who asks: the document's name and the URL's host.
    assert!(trip.saw_consent);
    assert!(trip.consent_html.contains("Example MCP client"));
    assert!(trip.consent_html.contains("<strong>127.0.0.1</strong>"));
    let code = query(&trip.callback).remove("code").unwrap();
    let (status, tokens) = redeem(&app, &client, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    let (_, id_token) = verify_jwt(&app, tokens["id_token"].as_str().unwrap(), &client.id).await;
    assert_eq!(id_token["aud"], client.id.as_str());
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.get("/oauth/userinfo", access).await.status(), 200);
    // Fetched once, then cached; the consent is not remembered (no row).
    assert_eq!(docs.hits("/mcp/client.json"), 1);
    let again = browse(&app, &start, "ada@example.com", true).await;
    assert!(again.saw_consent, "consent is asked every time");
    assert_eq!(docs.hits("/mcp/client.json"), 1);
    // Not stored as a registered client.
    let (_, list) = status_json(app.get("/v1/oauth/clients", &app.secret_key).await).await;
    assert!(!list.to_string().contains(&client.id), "{list}");
    // PKCE is required of it, as of any public client; refused on a page.
    let no_pkce = authorize_url(&app, &client.id, &[("scope", "openid")]);
    refused_page(&app, &no_pkce, "PKCE").await;
    // Pushed authorization requests take it too.
    let (request_uri, verifier) = pushed(&app, &client).await;
    let code = signs_in(&app, &client, &request_uri).await;
    let (status, tokens) = redeem(&app, &client, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    mcp_server_tokens(&app, &docs).await;
    // An MCP client on the user's machine: a loopback redirect URI, no
    // application_type (RFC 8252 §7.3 for a public client).
    let loopback = "http://127.0.0.1:33418/callback";
    let local = publish(&docs, "/local.json", |d| {
        d["redirect_uris"] = json!([loopback])
    });
    let challenge = pkce().1;
    let pkce_params = [
        ("scope", "openid"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let url = authorize_url_to(&app, &local.id, loopback, &pkce_params);
    let resp = new_browser().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 302, "{url}");
    assert!(location(&resp).contains("/login"));
    // The same URL is a client of every environment: the test
    // environment's issuer resolves it for itself.
    let in_test = url.replace("/oauth/authorize", "/env/test/oauth/authorize");
    let resp = new_browser().get(&in_test).send().await.unwrap();
    assert_eq!(resp.status(), 302, "{in_test}");
    assert!(location(&resp).starts_with("/env/test/login?"));
    rp_initiated_logout(&app, tokens["id_token"].as_str().unwrap()).await;
    // RFC 9449 §5.2 in a document: its tokens need a DPoP proof.
    let bound = publish(&docs, "/bound.json", |d| {
        d["dpop_bound_access_tokens"] = json!(true);
    });
    let (code, verifier) =
        authorize_code(&app, &app.client, &bound, "ada@example.com", "openid").await;
    let (status, body) = redeem(&app, &bound, &code, &verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
}

/// RP-initiated logout (OIDC RP-Initiated Logout §2) with the document's
/// `post_logout_redirect_uris`, named by an ID token of the client.
async fn rp_initiated_logout(app: &TestApp, id_token: &str) {
    let bye = "https://app.example.com/bye";
    let mut url = url::Url::parse(&app.url("/oauth/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", bye)
        .append_pair("state", "later");
    let resp = app.client.get(url.as_str()).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let confirm = app.url(resp.headers()["location"].to_str().unwrap());
    let (html, resp) = confirm_logout(app, &app.client, &confirm).await;
    assert!(html.contains("Example MCP client"), "{html}");
    assert_eq!(
        resp.headers()["location"],
        format!("{bye}?state=later").as_str()
    );
}

/// docs/oauth.md's worked example: an MCP server registered as a resource,
/// a document without `scope`, a token for the server with `resource`.
async fn mcp_server_tokens(app: &TestApp, docs: &DocServer) {
    let mcp = "https://mcp.example.com/mcp";
    let (status, r) = status_json(
        app.post(
            "/v1/oauth/resources",
            &app.secret_key,
            &json!({"identifier": mcp, "name": "Example MCP server",
                    "scopes": [{"name": "mcp:tools", "description": "Use the tools of Example MCP"}]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{r}");
    let client = publish(docs, "/claude-like.json", |d| {
        d.as_object_mut().unwrap().remove("scope");
    });
    let (verifier, challenge) = pkce();
    let start = authorize_url(
        app,
        &client.id,
        &[
            ("scope", "mcp:tools"),
            ("resource", mcp),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let trip = browse(app, &start, "ada@example.com", true).await;
    assert!(trip.consent_html.contains("Use the tools of Example MCP"));
    let code = query(&trip.callback).remove("code").unwrap();
    let (status, tokens) = redeem(app, &client, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let (_, at) = verify_jwt(app, tokens["access_token"].as_str().unwrap(), mcp).await;
    assert_eq!(at["client_id"], client.id.as_str());
    assert_eq!(at["scope"], "mcp:tools");
}

/// §6.2: a document may establish a key instead (`private_key_jwt`), inline
/// or at a `jwks_uri`; the client then authenticates at the token endpoint
/// with an assertion whose `iss` is its URL.
async fn a_document_client_may_sign_with_its_own_key(backend: Backend) {
    let app = open_app(backend).await;
    let docs = DocServer::start();
    let key = make_key(Algorithm::ES256, "doc-key");
    docs.put("/jwks.json", Doc::json(&json!({"keys": [key.jwk]})));
    make_user(&app, "ada@example.com").await;
    let keys_at = docs.url("/jwks.json");
    for (path, keys) in [
        ("/inline.json", json!({"jwks": {"keys": [key.jwk]}})),
        ("/by-uri.json", json!({"jwks_uri": keys_at})),
    ] {
        let client = publish(&docs, path, |d| {
            d["token_endpoint_auth_method"] = json!("private_key_jwt");
            for (k, v) in keys.as_object().unwrap() {
                d[k] = v.clone();
            }
        });
        let (code, verifier) =
            authorize_code(&app, &app.client, &client, "ada@example.com", "openid").await;
        let form = code_form(&code, &verifier);
        // Without its assertion it is refused: it registered a key.
        let (status, body) = token(&app, &client, &form).await;
        assert_eq!(status, 401, "{path}: {body}");
        let assertion = sign(&key, &claims(&client.id, json!(ISSUER)));
        let (status, tokens, _) = post_assertion(&app, "/oauth/token", &assertion, &form).await;
        assert_eq!(status, 200, "{path}: {tokens}");
    }
}

async fn documents_that_may_not_be_used_are_refused(backend: Backend) {
    let app = open_app(backend.clone()).await;
    let docs = DocServer::start();
    let ok = publish(&docs, "/ok.json", |_| {});
    let challenge = pkce().1;
    let start = |client_id: &str, redirect_uri: &str| {
        let pkce_params = [
            ("scope", "openid"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        authorize_url_to(&app, client_id, redirect_uri, &pkce_params)
    };
    // A redirect URI the document does not list: a page, not a redirect.
    let listed = publish(&docs, "/listed.json", |_| {});
    refused_page(
        &app,
        &start(&listed.id, "https://evil.example/cb"),
        "redirect URI is not registered",
    )
    .await;
    let mut big = document(&docs.url("/big.json"));
    big["x-padding"] = json!("a".repeat(6 * 1024));
    docs.put("/big.json", Doc::json(&big));
    let mut streamed = big.clone();
    streamed["client_id"] = json!(docs.url("/streamed.json"));
    docs.put("/streamed.json", Doc::streamed_json(&streamed));
    docs.put("/moved.json", Doc::redirect(&ok.id));
    let other = publish(&docs, "/other.json", |d| {
        d["client_id"] = json!("https://mcp-client.example/client.json");
    });
    let secret = publish(&docs, "/secret.json", |d| {
        d["token_endpoint_auth_method"] = json!("client_secret_basic");
    });
    let carries = publish(&docs, "/carries.json", |d| {
        d["client_secret"] = json!("s3cret")
    });
    let no_uris = publish(&docs, "/no-uris.json", |d| {
        d.as_object_mut().unwrap().remove("redirect_uris");
    });
    for (id, says) in [
        (docs.url("/big.json"), "larger than 5120 bytes"),
        (docs.url("/streamed.json"), "larger than 5120 bytes"),
        (docs.url("/moved.json"), "redirect"),
        (docs.url("/missing.json"), "status 404"),
        (other.id, "its client_id is not the URL"),
        (secret.id, "none or private_key_jwt"),
        (carries.id, "client_secret"),
        (no_uris.id, "redirect_uris are required"),
        (format!("{}/../ok.json", docs.base), "dot segments"),
    ] {
        refused_page(&app, &start(&id, REDIRECT), says).await;
        // The token endpoint says the same as invalid_client.
        let client = TestClient {
            id: id.clone(),
            secret: None,
        };
        let (status, body) = redeem(&app, &client, "code", "verifier").await;
        assert_eq!(status, 401, "{id}: {body}");
        assert_eq!(body["error"], "invalid_client", "{id}: {body}");
    }
    // The redirect was not followed.
    assert_eq!(docs.hits("/ok.json"), 0);
    // A document on a loopback address, where private addresses are not
    // allowed: never fetched.
    let strict = TestApp::builder(backend.clone())
        .with_settings(|s| s.outbound.allow_http = true)
        .spawn()
        .await;
    let url = authorize_url(&strict, &ok.id, &[]);
    refused_page(&strict, &url, "non-public address").await;
    assert_eq!(docs.hits("/ok.json"), 0);
    // Switched off, such a client_id is only an unknown client.
    let off = TestApp::builder(backend)
        .with_settings(|s| {
            s.client_id_metadata_documents = false;
            s.outbound.allow_private = true;
            s.outbound.allow_http = true;
        })
        .spawn()
        .await;
    let (_, meta) = status_json(off.get("/.well-known/oauth-authorization-server", "").await).await;
    assert_eq!(meta["client_id_metadata_document_supported"], false);
    refused_page(&off, &authorize_url(&off, &ok.id, &[]), "not registered").await;
    assert_eq!(docs.hits("/ok.json"), 0);
}
