use crate::fresh_db;
use serde_json::json;
use trusec_storage::Clock;
use trusec_storage::audit::{self, Actor, AuditLog, EventType, NewAuditEvent};
use trusec_testdb::{Backend, on_every_backend};

on_every_backend!(concurrent_writers_keep_one_chain);

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
