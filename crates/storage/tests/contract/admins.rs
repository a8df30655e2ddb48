//! Administrators and their setup links: a link is stored only hashed,
//! works once, only in its environment and only before it expires; a new
//! first-run link replaces the earlier ones.

use crate::fresh_db;
use chrono::TimeDelta;
use trusec_storage::admins::{self, ADMIN_GROUP, SETUP_TOKEN_TTL};
use trusec_storage::users::{self, NewUser};
use trusec_storage::{Db, ids};
use trusec_testdb::{Backend, fake_clock, on_every_backend};

on_every_backend!(
    setup_links_work_once_in_their_environment,
    any_admin_reads_the_group
);

async fn setup_links_work_once_in_their_environment(backend: Backend) {
    let (_t, db): (_, Db) = fresh_db(&backend);
    let now = fake_clock().now_naive();
    let (live, test) = (ids::ENV_LIVE, ids::ENV_TEST);
    let first = db
        .run(move |c| admins::create_setup_token(c, live, None, now))
        .await
        .unwrap();
    let bound = db
        .run(move |c| admins::create_setup_token(c, live, Some("a@example.com"), now))
        .await
        .unwrap();
    // Another environment's link does not open this one.
    let (f, b) = (first.clone(), bound.clone());
    assert!(
        db.run(move |c| admins::find_setup_token(c, test, &f, now))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        db.run(move |c| admins::take_setup_token(c, test, &b, now))
            .await
            .unwrap()
            .is_none()
    );
    // A new first-run link replaces the earlier one; bound links stay.
    let second = db
        .run(move |c| admins::create_setup_token(c, live, None, now))
        .await
        .unwrap();
    let f = first.clone();
    assert!(
        db.run(move |c| admins::find_setup_token(c, live, &f, now))
            .await
            .unwrap()
            .is_none()
    );
    let b = bound.clone();
    let row = db
        .run(move |c| admins::find_setup_token(c, live, &b, now))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.email.as_deref(), Some("a@example.com"));
    assert_ne!(row.token_hash, bound, "stored hashed");
    // Used once.
    let s = second.clone();
    assert!(
        db.run(move |c| admins::take_setup_token(c, live, &s, now))
            .await
            .unwrap()
            .is_some()
    );
    let s = second.clone();
    assert!(
        db.run(move |c| admins::take_setup_token(c, live, &s, now))
            .await
            .unwrap()
            .is_none()
    );
    // Dead once expired.
    let later = now + SETUP_TOKEN_TTL + TimeDelta::seconds(1);
    let b = bound.clone();
    assert!(
        db.run(move |c| admins::take_setup_token(c, live, &b, later))
            .await
            .unwrap()
            .is_none()
    );
}

async fn any_admin_reads_the_group(backend: Backend) {
    let (_t, db): (_, Db) = fresh_db(&backend);
    let now = fake_clock().now_naive();
    let user = |email: &str, groups: Vec<&str>| NewUser {
        environment_id: ids::ENV_LIVE.to_owned(),
        email: email.to_owned(),
        password_hash: None,
        name: None,
        given_name: None,
        family_name: None,
        groups: groups.into_iter().map(str::to_owned).collect(),
        metadata: serde_json::json!({}),
    };
    let near_miss = user("x@example.com", vec!["trusec-admins-old"]);
    db.run(move |c| users::insert(c, near_miss, now))
        .await
        .unwrap();
    assert!(
        !db.run(|c| admins::any_admin(c, ids::ENV_LIVE))
            .await
            .unwrap()
    );
    let admin = user("y@example.com", vec!["staff", ADMIN_GROUP]);
    db.run(move |c| users::insert(c, admin, now)).await.unwrap();
    assert!(
        db.run(|c| admins::any_admin(c, ids::ENV_LIVE))
            .await
            .unwrap()
    );
    assert!(
        !db.run(|c| admins::any_admin(c, ids::ENV_TEST))
            .await
            .unwrap()
    );
}
