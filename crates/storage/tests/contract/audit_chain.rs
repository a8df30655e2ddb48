use crate::fresh_db;
use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use diesel::RunQueryDsl;
use serde_json::json;
use trusec_storage::Clock;
use trusec_storage::audit::{self, Actor, AuditLog, EventType, NewAuditEvent};
use trusec_storage::audit::{Head, Pruning};
use trusec_testdb::{Backend, on_every_backend};

on_every_backend!(concurrent_writers_keep_one_chain);
on_every_backend!(a_pruned_chain_still_verifies_and_tampering_shows);
on_every_backend!(a_broken_chain_is_not_pruned);

/// Two writers (as two instances would be) append at once; the chain must
/// stay a single unbroken line.
async fn concurrent_writers_keep_one_chain(backend: Backend) {
    let (test_db, db) = fresh_db(&backend);
    let second_pool = test_db.connect();
    let key = audit::AuditKey::derive(&[3; 32]).unwrap();
    let (a, task_a) = AuditLog::start(db.clone(), Clock::System, key.clone());
    let (b, task_b) = AuditLog::start(second_pool, Clock::System, key.clone());
    let mut jobs = Vec::new();
    for i in 0..40 {
        let log = if i % 2 == 0 { a.clone() } else { b.clone() };
        jobs.push(tokio::spawn(async move {
            log.record(
                NewAuditEvent::new(EventType::UserCreated, Some("env_live"), Actor::cli())
                    .data(json!({"n": i})),
            )
            .await
        }));
    }
    for job in jobs {
        job.await.unwrap().unwrap();
    }
    drop((a, b));
    task_a.await.unwrap();
    task_b.await.unwrap();
    let report = db
        .run(move |conn| audit::verify_chain(conn, &key, None))
        .await
        .unwrap();
    assert_eq!(report.first_broken, None);
    assert_eq!(report.checked, 40);
}

fn day(n: i64) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 1, 1)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap()
        + TimeDelta::days(n)
}

/// Appends one event per day for `days` days, from day 0.
async fn events_on_days(db: &trusec_storage::Db, key: &audit::AuditKey, days: i64) {
    for n in 0..days {
        let key = key.clone();
        db.run(move |conn| {
            audit::append(
                conn,
                &key,
                &[
                    NewAuditEvent::new(EventType::UserCreated, Some("env_live"), Actor::cli())
                        .data(json!({"day": n})),
                ],
                day(n),
            )
        })
        .await
        .unwrap();
    }
}

async fn sql(db: &trusec_storage::Db, statement: String) {
    db.run(move |conn| {
        diesel::sql_query(statement)
            .execute(conn)
            .map_err(trusec_storage::StorageError::from)
    })
    .await
    .unwrap();
}

async fn head_at(db: &trusec_storage::Db, seq: i64) -> Head {
    use diesel::{ExpressionMethods, QueryDsl};
    use trusec_storage::schema::audit_events;
    let hash: String = db
        .run(move |conn| {
            audit_events::table
                .filter(audit_events::seq.eq(seq))
                .select(audit_events::hash)
                .first(conn)
                .map_err(trusec_storage::StorageError::from)
        })
        .await
        .unwrap();
    Head { seq, hash }
}

async fn verify(
    db: &trusec_storage::Db,
    key: &audit::AuditKey,
    expect: Option<Head>,
) -> audit::ChainReport {
    let key = key.clone();
    db.run(move |conn| audit::verify_chain(conn, &key, expect.as_ref()))
        .await
        .unwrap()
}

async fn prune(db: &trusec_storage::Db, key: &audit::AuditKey, before: NaiveDateTime) -> Pruning {
    let key = key.clone();
    db.run(move |conn| audit::prune(conn, &key, before, day(100)))
        .await
        .unwrap()
}

/// Pruning deletes exactly the events before the date, records where the
/// chain now starts (a keyed event of its own), and the rest verifies from
/// there; moving that start, or deleting more, is caught.
async fn a_pruned_chain_still_verifies_and_tampering_shows(backend: Backend) {
    let (_test_db, db) = fresh_db(&backend);
    let key = audit::AuditKey::derive(&[5; 32]).unwrap();
    events_on_days(&db, &key, 6).await;
    let before_prune = verify(&db, &key, None).await;
    assert_eq!(before_prune.checked, 6);
    let early = head_at(&db, 2).await;

    // Events of days 0, 1 and 2 go.
    let Pruning::Pruned { events, through } = prune(&db, &key, day(3)).await else {
        unreachable!("expected a prune")
    };
    assert_eq!((events, through.seq), (3, 3));
    let report = verify(&db, &key, None).await;
    assert_eq!(report.first_broken, None, "{report:?}");
    assert_eq!(report.pruned_through, Some(through.clone()));
    // Days 3, 4, 5 and the prune record.
    assert_eq!(report.checked, 4);
    assert_eq!(report.head.seq, 7);
    // The head seen before the prune still holds (the chain grew from it),
    // and one older than the prune point is taken as pruned.
    assert_eq!(
        verify(&db, &key, Some(before_prune.head.clone()))
            .await
            .first_broken,
        None
    );
    assert_eq!(verify(&db, &key, Some(early)).await.first_broken, None);
    // The prune point itself with another hash is rewritten history.
    let forged = Head {
        seq: 3,
        hash: "ab".repeat(32),
    };
    assert!(verify(&db, &key, Some(forged)).await.first_broken.is_some());
    // Pruning again at the same date finds nothing; a later date prunes on
    // from the recorded point.
    assert_eq!(prune(&db, &key, day(3)).await, Pruning::Nothing);
    let Pruning::Pruned {
        events,
        through: second,
    } = prune(&db, &key, day(5)).await
    else {
        unreachable!("expected a second prune")
    };
    assert_eq!((events, second.seq), (2, 5));
    let report = verify(&db, &key, None).await;
    assert_eq!(report.first_broken, None, "{report:?}");
    assert_eq!(report.pruned_through.map(|h| h.seq), Some(5));

    // Someone deletes one more event than was pruned: the gap shows.
    sql(&db, "DELETE FROM audit_events WHERE seq = 6".to_owned()).await;
    let report = verify(&db, &key, None).await;
    assert_eq!(
        report.first_broken.map(|b| b.seq),
        Some(7),
        "the first kept event is missing"
    );

    // Someone moves the recorded start forward past the gap: the prune
    // record's own keyed hash no longer matches.
    sql(
        &db,
        format!(
            "UPDATE audit_events SET data = '{{\"pruned_through\":\"6:{}\"}}' WHERE seq = 9",
            "ab".repeat(32)
        ),
    )
    .await;
    let report = verify(&db, &key, None).await;
    assert!(report.first_broken.is_some(), "{report:?}");
}

/// A chain that does not verify where it would be pruned keeps its
/// evidence: nothing is deleted.
async fn a_broken_chain_is_not_pruned(backend: Backend) {
    let (_test_db, db) = fresh_db(&backend);
    let key = audit::AuditKey::derive(&[6; 32]).unwrap();
    events_on_days(&db, &key, 4).await;
    sql(
        &db,
        "UPDATE audit_events SET ip = '10.0.0.9' WHERE seq = 2".to_owned(),
    )
    .await;
    let Pruning::Refused(broken) = prune(&db, &key, day(3)).await else {
        unreachable!("expected a refusal")
    };
    assert_eq!(broken.seq, 2);
    assert_eq!(verify(&db, &key, None).await.checked, 1);
    let count: i64 = db
        .run(|conn| {
            use diesel::QueryDsl;
            trusec_storage::schema::audit_events::table
                .count()
                .get_result(conn)
                .map_err(trusec_storage::StorageError::from)
        })
        .await
        .unwrap();
    assert_eq!(count, 4, "nothing was deleted");
}
