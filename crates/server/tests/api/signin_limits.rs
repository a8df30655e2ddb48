//! Sign-in and public-client limits count failures only, per account (or
//! client) and address: they stop guessing without locking out people who
//! share an address, or an account from another address.

use crate::oauth_support::{self, PASSWORD, hidden, make_user};
use std::net::IpAddr;
use trusec_server::settings::{DEFAULT_RATE_LIMIT_LOGIN, Settings};
use trusec_storage::rate_limit::Limit;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

/// A browser whose connections come from `ip` (any 127/8 address is
/// loopback on Linux, and the server sees it as the peer).
fn browser_at(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// One sign-in attempt on the hosted page; its status, and `Retry-After`.
async fn sign_in(
    app: &TestApp,
    browser: &reqwest::Client,
    email: &str,
    password: &str,
) -> (u16, Option<u64>) {
    let page = browser.get(app.url("/login")).send().await.unwrap();
    let csrf = hidden(&page.text().await.unwrap(), "csrf_token");
    let resp = browser
        .post(app.url("/login"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", csrf.as_str()),
            ("interaction", ""),
        ])
        .send()
        .await
        .unwrap();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (resp.status().as_u16(), retry_after)
}

fn default_login_limit(s: &mut Settings) {
    s.rate_limits.login = Limit::parse(DEFAULT_RATE_LIMIT_LOGIN).unwrap();
}

on_every_backend!(eleven_colleagues_behind_one_address_all_sign_in);

/// The contract: people behind one office NAT can all sign in within a
/// minute, even when each of them mistypes once.
async fn eleven_colleagues_behind_one_address_all_sign_in(backend: Backend) {
    let app = TestApp::builder(backend)
        .with_settings(default_login_limit)
        .spawn()
        .await;
    let office = browser_at("127.0.0.2");
    for n in 0..11 {
        let email = format!("colleague{n}@example.com");
        make_user(&app, &email).await;
        assert_eq!(sign_in(&app, &office, &email, "typo").await.0, 401, "{n}");
        assert_eq!(sign_in(&app, &office, &email, PASSWORD).await.0, 200, "{n}");
    }
}

on_every_backend!(failures_from_one_address_do_not_lock_out_another);

async fn failures_from_one_address_do_not_lock_out_another(backend: Backend) {
    let app = TestApp::builder(backend)
        .with_settings(default_login_limit)
        .spawn()
        .await;
    make_user(&app, "victim@example.com").await;
    let attacker = browser_at("127.0.0.2");
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(
            sign_in(&app, &attacker, "victim@example.com", "guess")
                .await
                .0,
        );
    }
    assert_eq!(statuses[..10], [401; 10], "{statuses:?}");
    assert_eq!(statuses[10..], [429; 2], "{statuses:?}");
    // The owner, from another address, signs in at once.
    let owner = browser_at("127.0.0.3");
    assert_eq!(
        sign_in(&app, &owner, "victim@example.com", PASSWORD)
            .await
            .0,
        200
    );
}

on_every_backend!(repeated_failures_are_refused_and_successes_are_not_counted);

async fn repeated_failures_are_refused_and_successes_are_not_counted(backend: Backend) {
    let app = TestApp::builder(backend)
        .with_settings(default_login_limit)
        .spawn()
        .await;
    make_user(&app, "ada@example.com").await;
    let browser = browser_at("127.0.0.2");
    // More successes than the limit: none of them counts.
    for n in 0..15 {
        let (status, _) = sign_in(&app, &browser, "ada@example.com", PASSWORD).await;
        assert_eq!(status, 200, "sign-in {n}");
    }
    // So the whole budget of failures is still there, and then it is spent:
    // even the right password waits, with the existing 429 page.
    for n in 0..10 {
        let (status, _) = sign_in(&app, &browser, "ada@example.com", "guess").await;
        assert_eq!(status, 401, "failure {n}");
    }
    for password in ["guess", PASSWORD] {
        let (status, retry_after) = sign_in(&app, &browser, "ada@example.com", password).await;
        assert_eq!(status, 429);
        let secs = retry_after.expect("Retry-After");
        assert!((1..=60).contains(&secs), "{secs}");
    }
}

on_every_backend!(a_public_clients_budget_is_not_spent_by_others);

/// Anyone can send a public client's `client_id`: their failed grants are
/// theirs, and the client's users still get tokens. Successful grants are
/// not counted either.
async fn a_public_clients_budget_is_not_spent_by_others(backend: Backend) {
    let app = TestApp::builder(backend)
        .with_settings(|s| s.rate_limits.token = Limit::parse("2/min").unwrap())
        .spawn()
        .await;
    let client = oauth_support::public_client(&app).await;
    make_user(&app, "ada@example.com").await;
    let attacker = browser_at("127.0.0.2");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let resp = attacker
            .post(app.url("/oauth/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", "guessed"),
                ("redirect_uri", oauth_support::REDIRECT),
                ("code_verifier", "v".repeat(43).as_str()),
                ("client_id", client.id.as_str()),
            ])
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(resp).await;
        if status == 400 {
            assert_eq!(body["error"], "invalid_grant", "{body}");
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [400, 400, 429]);
    // From the client's users' address: more grants than the limit, all
    // served.
    for _ in 0..3 {
        let tokens =
            oauth_support::login_and_redeem(&app, &client, "ada@example.com", "openid").await;
        assert!(tokens["access_token"].is_string(), "{tokens}");
    }
}

trusec_testkit::on_shared_backend!(deployments_sharing_one_redis_keep_their_own_limits);

/// `TRUSEC_REDIS_KEY_PREFIX`: two deployments on one Redis, each with its
/// own prefix, never share state — failures that lock an account out of one
/// leave the same e-mail address on the other alone.
async fn deployments_sharing_one_redis_keep_their_own_limits(backend: Backend) {
    let run = ulid::Ulid::new();
    let prefixed = |name: &'static str| {
        move |s: &mut Settings| {
            default_login_limit(s);
            s.redis_prefix = format!("{name}-{run}:");
        }
    };
    let a = TestApp::builder(backend.clone())
        .with_settings(prefixed("deploy-a"))
        .spawn()
        .await;
    let b = TestApp::builder(backend)
        .with_settings(prefixed("deploy-b"))
        .spawn()
        .await;
    for app in [&a, &b] {
        make_user(app, "shared@example.com").await;
    }
    let browser = browser_at("127.0.0.61");
    let mut refused = false;
    for _ in 0..12 {
        let (status, _) = sign_in(&a, &browser, "shared@example.com", "wrong").await;
        refused |= status == 429;
    }
    assert!(refused, "deployment A limits the failures");
    let (status, _) = sign_in(
        &b,
        &browser_at("127.0.0.61"),
        "shared@example.com",
        PASSWORD,
    )
    .await;
    assert_ne!(status, 429, "deployment B shares nothing with A");
    assert!(status == 200 || status == 303, "{status}");
}
