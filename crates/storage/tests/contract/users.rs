//! User search (the console's): case-folded substring of e-mail or name,
//! one environment only, LIKE wildcards in the text taken literally.

use crate::fresh_db;
use trusec_storage::users::{self, NewUser};
use trusec_storage::{Db, ids};
use trusec_testdb::{Backend, fake_clock, on_every_backend};

on_every_backend!(search_finds_by_email_or_name_in_one_environment);

async fn search_finds_by_email_or_name_in_one_environment(backend: Backend) {
    let (_t, db): (_, Db) = fresh_db(&backend);
    let now = fake_clock().now_naive();
    let user = |env: &str, email: &str, name: Option<&str>| NewUser {
        environment_id: env.to_owned(),
        email: email.to_owned(),
        password_hash: None,
        name: name.map(str::to_owned),
        given_name: None,
        family_name: None,
        groups: Vec::new(),
        metadata: serde_json::json!({}),
    };
    for new in [
        user(ids::ENV_LIVE, "Ada@Example.com", Some("Ada Lovelace")),
        user(ids::ENV_LIVE, "grace@navy.example", Some("Grace Hopper")),
        user(ids::ENV_LIVE, "under_score@example.com", None),
        user(ids::ENV_TEST, "ada@test.example", Some("Test Ada")),
    ] {
        db.run(move |c| users::insert(c, new, now)).await.unwrap();
    }
    let find = |text: &'static str| {
        let db = db.clone();
        async move {
            let mut emails: Vec<String> = db
                .run(move |c| users::search(c, ids::ENV_LIVE, text, 10))
                .await
                .unwrap()
                .into_iter()
                .map(|u| u.email)
                .collect();
            emails.sort();
            emails
        }
    };
    assert_eq!(
        find("ada").await,
        ["Ada@Example.com"],
        "case-folded, live only"
    );
    assert_eq!(find("HOPPER").await, ["grace@navy.example"], "by name");
    assert_eq!(find("example").await.len(), 3);
    assert_eq!(
        find("_").await,
        ["under_score@example.com"],
        "`_` is literal"
    );
    assert!(find("%").await.is_empty(), "`%` is literal");
    assert!(find("nobody").await.is_empty());
}

on_every_backend!(a_single_use_claim_succeeds_once_until_it_expires);

/// `single_use::claim`: once per artifact and kind; an expired claim is
/// purged, so the table does not grow.
async fn a_single_use_claim_succeeds_once_until_it_expires(backend: Backend) {
    use trusec_storage::single_use::{ClaimKind, claim};
    let (_t, db): (_, Db) = fresh_db(&backend);
    let now = fake_clock().now_naive();
    let later = now + chrono::TimeDelta::minutes(10);
    let kind = ClaimKind::AuthorizationCode;
    let first = db
        .run(move |c| claim(c, kind, "h1", later, now))
        .await
        .unwrap();
    let again = db
        .run(move |c| claim(c, kind, "h1", later, now))
        .await
        .unwrap();
    let other = db
        .run(move |c| claim(c, kind, "h2", later, now))
        .await
        .unwrap();
    assert!(first && !again && other);
    // After it expired, the row is gone: the artifact is long unusable by
    // its own expiry.
    let after = later + chrono::TimeDelta::seconds(1);
    let fresh = db
        .run(move |c| claim(c, kind, "h1", after, after))
        .await
        .unwrap();
    assert!(fresh, "the expired claim was purged");
}
