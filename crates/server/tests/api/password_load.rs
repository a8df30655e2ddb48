//! Password hashing under load: a fixed pool of hashing threads behind a
//! bounded queue (`trusec_storage::hashing`). Past the queue a request is
//! refused at once with 503 and `Retry-After` — `/v1` JSON and the hosted
//! sign-in page alike — and once the flood is over the next one succeeds.

use crate::oauth_support::{PASSWORD, hidden, make_user};
use serde_json::json;
use tokio::task::JoinSet;
use trusec_storage::hashing::PasswordHashing;
use trusec_testkit::{Backend, TestApp, status_json};

/// One hashing thread and room for one more hash: a burst of concurrent
/// requests is bound to overflow it.
async fn small_pool() -> TestApp {
    TestApp::builder(Backend::Sqlite)
        .with_settings(|s| {
            s.password_hashing = PasswordHashing {
                threads: 1,
                queue: 1,
            };
        })
        .spawn()
        .await
}

const BURST: usize = 12;

/// Sends bursts of `BURST` concurrent requests (made by `request`) until
/// one is refused; returns the refusal. Every other answer must be
/// `accepted`. No timing is assumed: a burst that happens to fit is
/// followed by another.
async fn flood<F, Fut>(accepted: u16, request: F) -> reqwest::Response
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = reqwest::Response> + Send + 'static,
{
    for round in 0..50 {
        let mut burst = JoinSet::new();
        for i in 0..BURST {
            burst.spawn(request(format!("flood-{round}-{i}@example.com")));
        }
        let mut refused = None;
        while let Some(resp) = burst.join_next().await {
            let resp = resp.unwrap();
            match resp.status().as_u16() {
                503 => refused = Some(resp),
                status => assert_eq!(status, accepted, "{:?}", resp.text().await),
            }
        }
        if let Some(resp) = refused {
            return resp;
        }
    }
    panic!("{BURST} concurrent hashes never overflowed one thread and a queue of one");
}

fn retry_after(resp: &reqwest::Response) -> u64 {
    resp.headers()
        .get("retry-after")
        .expect("a 503 for a full hashing queue carries Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn new_passwords_past_the_queue_get_503_with_retry_after_then_succeed() {
    let app = small_pool().await;
    let (client, url, key) = (
        app.client.clone(),
        app.url("/v1/users"),
        app.secret_key.clone(),
    );
    let refused = flood(201, move |email| {
        let request = client
            .post(&url)
            .bearer_auth(&key)
            .json(&json!({"email": email, "password": PASSWORD}));
        async move { request.send().await.unwrap() }
    })
    .await;
    assert!(retry_after(&refused) >= 1);
    let (_, body) = status_json(refused).await;
    assert_eq!(body["error"]["type"], "unavailable", "{body}");
    assert!(
        body["error"]["error_id"]
            .as_str()
            .unwrap()
            .starts_with("err_")
    );

    // The flood is over: the next password is hashed.
    let (status, user) = status_json(
        app.post(
            "/v1/users",
            &app.secret_key,
            &json!({"email": "after@example.com", "password": PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{user}");
}

#[tokio::test]
async fn sign_ins_past_the_queue_get_a_503_page_with_retry_after_then_succeed() {
    let app = small_pool().await;
    make_user(&app, "ada@example.com").await;
    let (client, login) = (app.client.clone(), app.url("/login"));
    let form = client.get(&login).send().await.unwrap();
    let csrf = hidden(&form.text().await.unwrap(), "csrf_token");
    let sign_in = {
        let (client, login, csrf) = (client.clone(), login.clone(), csrf.clone());
        move |_email: String| {
            let request = client.post(&login).form(&[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("csrf_token", csrf.as_str()),
                ("interaction", ""),
            ]);
            async move { request.send().await.unwrap() }
        }
    };
    // A sign-in without an interaction lands on the account page (303).
    let accepted = sign_in(String::new()).await.status().as_u16();
    assert!(accepted == 303 || accepted == 200, "{accepted}");
    let refused = flood(accepted, sign_in.clone()).await;
    assert!(retry_after(&refused) >= 1);
    let page = refused.text().await.unwrap();
    assert!(page.contains("busy") && page.contains("err_"), "{page}");

    // A refusal is not a failed attempt, and the flood is over: it works.
    assert_eq!(sign_in(String::new()).await.status().as_u16(), accepted);
}
