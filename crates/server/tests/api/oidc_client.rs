//! A stock OIDC client library (openidconnect-rs), given only the issuer
//! URL, signs a user in with PKCE, validates the ID token, calls userinfo,
//! refreshes and revokes: what any relying party will do.

use crate::oauth_support::*;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::json;
use trusec_testkit::{Backend, TestApp, on_every_backend};

on_every_backend!(a_stock_oidc_client_works_from_the_issuer_url_alone);

/// A free loopback port (bound and released: the issuer must name the port
/// before the app binds it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn a_stock_oidc_client_works_from_the_issuer_url_alone(backend: Backend) {
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let app_issuer = issuer.clone();
    let app = TestApp::builder(backend)
        .with_settings(move |s| {
            s.bind = ([127, 0, 0, 1], port).into();
            s.issuer = app_issuer;
        })
        .spawn()
        .await;
    make_user(&app, "rp@example.com").await;
    let registered = confidential_client(&app, json!({"name": "Relying party"})).await;

    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(issuer.clone()).unwrap(), &http)
            .await
            .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(registered.id.clone()),
        registered.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let trip = browse(&app, url.as_str(), "rp@example.com", true).await;
    let q = query(&trip.callback);
    assert_eq!(&q["state"], csrf.secret());

    let tokens = client
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        None,
        "claims come from userinfo"
    );
    let user_id = claims.subject().as_str().to_owned();

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.subject().as_str(), user_id);
    assert_eq!(info.email().unwrap().as_str(), "rp@example.com");

    let refresh = tokens.refresh_token().expect("a refresh token").clone();
    let refreshed = client
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let new_refresh = refreshed
        .refresh_token()
        .expect("a rotated refresh token")
        .clone();
    assert_ne!(new_refresh.secret(), refresh.secret());

    // openidconnect-rs refuses to revoke over plain http (RFC 7009 §2
    // requires TLS), which is all a test has: revoke the same way by hand.
    let resp = app
        .client
        .post(format!("{issuer}/oauth/revoke"))
        .basic_auth(&registered.id, registered.secret.as_ref())
        .form(&[
            ("token", new_refresh.secret().as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        client
            .exchange_refresh_token(&new_refresh)
            .unwrap()
            .request_async(&http)
            .await
            .is_err()
    );
}
