//! API resources (RFC 8707, issue 15 item 1): `/v1/oauth/resources`, the
//! `resource` parameter at the authorization and token endpoints, tokens
//! audience-restricted to one resource (checked with jsonwebtoken), and
//! introspection by that resource's server only.

use crate::oauth_support::*;
use serde_json::{Value, json};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    resources_are_managed_and_validated,
    client_credentials_tokens_are_for_one_resource,
    the_code_flow_binds_its_resources_through_refresh,
    a_client_gets_tokens_only_for_the_apis_it_is_registered_for,
);

const ISSUER: &str = "http://127.0.0.1:8080";
const ORDERS: &str = "https://api.example.com/orders";
const BILLING: &str = "https://api.example.com/billing";
const OTHER: &str = "https://api.example.com/other";

async fn create_resource(app: &TestApp, body: Value) -> Value {
    let (status, r) = status_json(
        app.post("/v1/oauth/resources", &app.secret_key, &body)
            .await,
    )
    .await;
    assert_eq!(status, 201, "{r}");
    r
}

/// Orders (ES256 by default, five-minute tokens), billing (RS256) and a
/// third API no grant below asks for.
async fn three_apis(app: &TestApp) -> Value {
    let orders = create_resource(
        app,
        json!({"identifier": ORDERS, "name": "Orders", "access_token_lifetime_seconds": 300,
               "scopes": [{"name": "orders:read", "description": "Read your orders"},
                          {"name": "orders:write", "description": "Place orders for you"}]}),
    )
    .await;
    create_resource(
        app,
        json!({"identifier": BILLING, "name": "Billing", "signing_alg": "RS256",
               "scopes": [{"name": "billing:read", "description": "See your invoices"}]}),
    )
    .await;
    create_resource(
        app,
        json!({"identifier": OTHER, "name": "Other",
               "scopes": [{"name": "other:read", "description": "Other things"}]}),
    )
    .await;
    orders
}

async fn resources_are_managed_and_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let orders = three_apis(&app).await;
    let id = orders["id"].as_str().unwrap();
    assert!(id.starts_with("res_"), "{orders}");
    assert_eq!(orders["signing_alg"], "ES256");
    assert_eq!(orders["environment"], "env_live");
    let path = format!("/v1/oauth/resources/{id}");
    let (status, got) = status_json(app.get(&path, &app.secret_key).await).await;
    assert_eq!((status, &got["identifier"]), (200, &json!(ORDERS)));
    let (status, list) = status_json(
        app.get("/v1/oauth/resources?limit=2", &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(list["has_more"], true);
    // Resources belong to an environment: the test key sees none of live's.
    let (status, _) = status_json(app.get(&path, &app.test_key).await).await;
    assert_eq!(status, 404);
    // Refusals, each naming the field.
    for (body, status, param) in [
        (
            json!({"identifier": ORDERS, "name": "Again"}),
            409,
            "identifier",
        ),
        (
            json!({"identifier": "orders", "name": "X"}),
            422,
            "identifier",
        ),
        (
            json!({"identifier": "https://a.example/#f", "name": "X"}),
            422,
            "identifier",
        ),
        (
            json!({"identifier": ISSUER, "name": "X"}),
            422,
            "identifier",
        ),
        (
            json!({"identifier": "https://a.example", "name": "X",
                   "scopes": [{"name": "read:users", "description": "Users"}]}),
            422,
            "scopes",
        ),
        (
            json!({"identifier": "https://a.example", "name": "X",
                   "scopes": [{"name": "a:b", "description": ""}]}),
            422,
            "scopes",
        ),
        (
            json!({"identifier": "https://a.example", "name": "X", "signing_alg": "none"}),
            422,
            "signing_alg",
        ),
        (
            json!({"identifier": "https://a.example", "name": "X",
                   "access_token_lifetime_seconds": 86_400}),
            422,
            "access_token_lifetime_seconds",
        ),
    ] {
        let (got, err) = status_json(
            app.post("/v1/oauth/resources", &app.secret_key, &body)
                .await,
        )
        .await;
        assert_eq!(
            (got, &err["error"]["param"]),
            (status, &json!(param)),
            "{body}: {err}"
        );
    }
    // A client may now be allowed the resource's scopes, never unknown ones.
    let client = json!({"name": "Backend", "type": "confidential", "grant_types": ["client_credentials"],
                        "scopes": ["orders:read"], "default_resource": ORDERS});
    let (status, c) = status_json(
        app.post("/v1/oauth/clients", &app.secret_key, &client)
            .await,
    )
    .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["default_resource"], ORDERS);
    for (field, value) in [
        ("scopes", json!(["orders:delete"])),
        ("default_resource", json!("https://unknown.example")),
    ] {
        let mut body = client.clone();
        body[field] = value;
        let (status, err) =
            status_json(app.post("/v1/oauth/clients", &app.secret_key, &body).await).await;
        assert_eq!(
            (status, &err["error"]["param"]),
            (422, &json!(field)),
            "{err}"
        );
    }
    let client_path = format!("/v1/oauth/clients/{}", c["client_id"].as_str().unwrap());
    // PATCH renames; a new identifier is followed by the clients' default.
    let (status, patched) = status_json(
        app.patch(
            &path,
            &app.secret_key,
            &json!({"identifier": "https://orders.example"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, &patched["name"]),
        (200, &json!("Orders")),
        "{patched}"
    );
    let (_, c2) = status_json(app.get(&client_path, &app.secret_key).await).await;
    assert_eq!(c2["default_resource"], "https://orders.example");
    // Deleting it leaves the client without a default.
    let (status, _) = status_json(app.delete(&path, &app.secret_key).await).await;
    assert_eq!(status, 200);
    let (_, c3) = status_json(app.get(&client_path, &app.secret_key).await).await;
    assert_eq!(c3["default_resource"], Value::Null);
    let (status, _) = status_json(app.get(&path, &app.secret_key).await).await;
    assert_eq!(status, 404);
    // Audited.
    let (_, events) = status_json(
        app.get(
            "/v1/audit-events?type=oauth.resource.created",
            &app.secret_key,
        )
        .await,
    )
    .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 3, "{events}");
    for t in ["oauth.resource.updated", "oauth.resource.deleted"] {
        let (_, events) = status_json(
            app.get(&format!("/v1/audit-events?type={t}"), &app.secret_key)
                .await,
        )
        .await;
        assert_eq!(events["data"].as_array().unwrap().len(), 1, "{t}: {events}");
    }
}

/// A `client_credentials` token request with these extra fields.
async fn cc(app: &TestApp, client: &TestClient, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    token(app, client, &form).await
}

async fn client_credentials_tokens_are_for_one_resource(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    three_apis(&app).await;
    let client = confidential_client(
        &app,
        json!({"scopes": ["orders:read", "orders:write", "billing:read", "read:users"]}),
    )
    .await;
    let keys = jwks(&app, "/.well-known/jwks.json").await;
    let (status, body) = cc(
        &app,
        &client,
        &[("resource", ORDERS), ("scope", "orders:read")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["scope"], &body["expires_in"]),
        (&json!("orders:read"), &json!(300))
    );
    let orders_token = body["access_token"].as_str().unwrap().to_owned();
    let header = jsonwebtoken::decode_header(&orders_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let claims = accepted_by(&orders_token, &keys, ISSUER, ORDERS).unwrap();
    assert_eq!(claims["aud"], ORDERS);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    // Another API's audience check refuses it, and so does this server's.
    assert!(accepted_by(&orders_token, &keys, ISSUER, BILLING).is_err());
    assert!(accepted_by(&orders_token, &keys, ISSUER, ISSUER).is_err());
    // Billing signs RS256; without `scope` the token has all of billing's
    // scopes the client may use, and none of another resource's.
    let (status, body) = cc(&app, &client, &[("resource", BILLING)]).await;
    assert_eq!(
        (status, &body["scope"]),
        (200, &json!("billing:read")),
        "{body}"
    );
    let billing_token = body["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(billing_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    accepted_by(billing_token, &keys, ISSUER, BILLING).unwrap();
    assert!(accepted_by(billing_token, &keys, ISSUER, ORDERS).is_err());
    // This server's own scopes stay its own audience.
    let (status, body) = cc(&app, &client, &[("scope", "read:users")]).await;
    assert_eq!(status, 200, "{body}");
    let own = body["access_token"].as_str().unwrap();
    accepted_by(own, &keys, ISSUER, ISSUER).unwrap();
    let (status, _) = status_json(
        app.client
            .get(app.url("/v1/users"))
            .bearer_auth(own)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    // A resource's token is no token for `/v1` or userinfo.
    for path in ["/v1/users", "/oauth/userinfo"] {
        let resp = app
            .client
            .get(app.url(path))
            .bearer_auth(&orders_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{path}");
    }
    // Refusals (RFC 8707 §2, RFC 6749 §5.2).
    for (extra, error) in [
        (
            vec![("resource", ORDERS), ("scope", "billing:read")],
            "invalid_scope",
        ),
        (
            vec![("resource", ORDERS), ("scope", "orders:delete")],
            "invalid_scope",
        ),
        (
            vec![("resource", ORDERS), ("scope", "other:read")],
            "invalid_scope",
        ),
        (
            vec![("resource", "https://unknown.example")],
            "invalid_target",
        ),
        (vec![("resource", "not a uri")], "invalid_target"),
        (
            vec![("resource", ORDERS), ("resource", BILLING)],
            "invalid_target",
        ),
        // Resource scopes without `resource` and without a default.
        (vec![("scope", "orders:read")], "invalid_target"),
    ] {
        let (status, body) = cc(&app, &client, &extra).await;
        assert_eq!(
            (status, &body["error"]),
            (400, &json!(error)),
            "{extra:?}: {body}"
        );
    }
    // Introspection: the token's own client, and the orders API's server,
    // learn its audience; billing's server learns nothing.
    let own_view = introspect(&app, &client, &orders_token).await;
    assert_eq!(
        (&own_view["active"], &own_view["aud"]),
        (&json!(true), &json!(ORDERS))
    );
    let server_of = |resource: &str| {
        json!({"name": "API", "type": "confidential", "grant_types": ["client_credentials"],
               "scopes": [], "resource_server": true, "default_resource": resource})
    };
    let orders_api = create_client(&app, server_of(ORDERS)).await;
    let billing_api = create_client(&app, server_of(BILLING)).await;
    let seen = introspect(&app, &orders_api, &orders_token).await;
    assert_eq!(
        (&seen["active"], &seen["aud"]),
        (&json!(true), &json!(ORDERS)),
        "{seen}"
    );
    assert_eq!(
        introspect(&app, &billing_api, &orders_token).await,
        json!({"active": false})
    );
    assert_eq!(
        introspect(&app, &orders_api, own).await,
        json!({"active": false})
    );
    // A client's default resource is used when it names none.
    let backend_client = create_client(
        &app,
        json!({"name": "Worker", "type": "confidential", "grant_types": ["client_credentials"],
               "scopes": ["orders:read", "read:users"], "default_resource": ORDERS}),
    )
    .await;
    for extra in [vec![], vec![("scope", "orders:read")]] {
        let (status, body) = cc(&app, &backend_client, &extra).await;
        assert_eq!(
            (status, &body["scope"]),
            (200, &json!("orders:read")),
            "{body}"
        );
        accepted_by(
            body["access_token"].as_str().unwrap(),
            &keys,
            ISSUER,
            ORDERS,
        )
        .unwrap();
    }
    let (status, body) = cc(&app, &backend_client, &[("scope", "read:users")]).await;
    assert_eq!(status, 200, "{body}");
    accepted_by(
        body["access_token"].as_str().unwrap(),
        &keys,
        ISSUER,
        ISSUER,
    )
    .unwrap();
}

/// The client's callback after an authorization request with `extra`.
async fn authorize(app: &TestApp, client: &TestClient, extra: &[(&str, &str)]) -> Trip {
    browse(
        app,
        &authorize_url(app, &client.id, extra),
        "res@example.com",
        true,
    )
    .await
}

async fn the_code_flow_binds_its_resources_through_refresh(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    three_apis(&app).await;
    make_user(&app, "res@example.com").await;
    let client = confidential_client(
        &app,
        json!({"scopes": ["openid", "offline_access", "orders:read", "billing:read", "other:read", "read:users"]}),
    )
    .await;
    let keys = jwks(&app, "/.well-known/jwks.json").await;
    let (verifier, challenge) = pkce();
    let scope = "openid offline_access orders:read billing:read";
    let trip = authorize(
        &app,
        &client,
        &[
            ("scope", scope),
            ("resource", ORDERS),
            ("resource", BILLING),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    // The consent page words a resource's scopes as the resource does.
    assert!(
        trip.consent_html.contains("Read your orders"),
        "{}",
        trip.consent_html
    );
    assert!(trip.consent_html.contains("See your invoices"));
    let code = query(&trip.callback).remove("code").unwrap();
    // The token request narrows to one of the authorized resources.
    let (status, tokens) = token(
        &app,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("resource", BILLING),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "billing:read");
    assert!(tokens["id_token"].is_string());
    accepted_by(
        tokens["access_token"].as_str().unwrap(),
        &keys,
        ISSUER,
        BILLING,
    )
    .unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    // Refreshing keeps the binding: another of the grant's resources is
    // fine, one outside it is not.
    let refresh = |rt: String, resource: &'static str| {
        let (app, client) = (&app, &client);
        async move {
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
            ];
            if !resource.is_empty() {
                form.push(("resource", resource));
            }
            token(app, client, &form).await
        }
    };
    let (status, err) = refresh(rt.clone(), OTHER).await;
    assert_eq!(
        (status, &err["error"]),
        (400, &json!("invalid_target")),
        "{err}"
    );
    let (status, next) = refresh(rt, ORDERS).await;
    assert_eq!(
        (status, &next["scope"]),
        (200, &json!("orders:read")),
        "{next}"
    );
    accepted_by(
        next["access_token"].as_str().unwrap(),
        &keys,
        ISSUER,
        ORDERS,
    )
    .unwrap();
    // Without `resource`: the grant's first resource.
    let (status, last) = refresh(next["refresh_token"].as_str().unwrap().to_owned(), "").await;
    assert_eq!(status, 200, "{last}");
    accepted_by(
        last["access_token"].as_str().unwrap(),
        &keys,
        ISSUER,
        ORDERS,
    )
    .unwrap();
    // Refusals go back to the client (RFC 6749 §4.1.2.1, RFC 8707 §2).
    for (extra, error) in [
        (
            vec![
                ("scope", "openid orders:read"),
                ("resource", "https://unknown.example"),
            ],
            "invalid_target",
        ),
        (
            vec![("scope", "openid read:users"), ("resource", ORDERS)],
            "invalid_scope",
        ),
        (vec![("scope", "openid orders:read")], "invalid_target"),
    ] {
        let trip = authorize(&app, &client, &extra).await;
        let q = query(&trip.callback);
        assert_eq!(
            q.get("error").map(String::as_str),
            Some(error),
            "{extra:?}: {}",
            trip.callback
        );
    }
}

/// A client allowed none of an API's scopes gets no token for it, not even
/// one with an empty scope (which an API checking only `aud` would take);
/// and no two APIs of an environment share a scope name, so a client's
/// scope names one API.
async fn a_client_gets_tokens_only_for_the_apis_it_is_registered_for(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    three_apis(&app).await;
    let client = confidential_client(&app, json!({"scopes": ["orders:read"]})).await;
    for extra in [
        vec![("resource", BILLING)],
        vec![("resource", OTHER), ("scope", "orders:read")],
    ] {
        let (status, body) = cc(&app, &client, &extra).await;
        assert_eq!(
            (status, &body["error"]),
            (400, &json!("invalid_target")),
            "{body}"
        );
    }
    let (status, body) = cc(&app, &client, &[("resource", ORDERS)]).await;
    assert_eq!(
        (status, &body["scope"]),
        (200, &json!("orders:read")),
        "{body}"
    );

    // Another API claiming orders:read is refused, on create and on update.
    let (status, body) = status_json(
        app.post(
            "/v1/oauth/resources",
            &app.secret_key,
            &json!({"identifier": "https://api.example.com/shadow", "name": "Shadow",
                    "scopes": [{"name": "orders:read", "description": "Also orders"}]}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, &body["error"]["param"]),
        (409, &json!("scopes")),
        "{body}"
    );
    let (_, list) = status_json(app.get("/v1/oauth/resources", &app.secret_key).await).await;
    let other = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["identifier"] == OTHER)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = status_json(
        app.patch(
            &format!("/v1/oauth/resources/{other}"),
            &app.secret_key,
            &json!({"scopes": [{"name": "orders:read", "description": "Also orders"}]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 409, "{body}");
}
