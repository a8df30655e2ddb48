//! Storage contract tests: the same assertions on every backend. SQLite and
//! the in-process store always; PostgreSQL and Redis when
//! `TRUSEC_TEST_DATABASE_URL` / `TRUSEC_TEST_REDIS_URL` are set.
#![expect(
    clippy::unwrap_used,
    reason = "tests: a failed unwrap is a failed assertion"
)]

mod admins;
mod audit_chain;
mod clients;
mod core_limits;
mod ephemeral;
mod migrations;
mod service_providers;
mod users;

use trusec_storage::Db;
use trusec_testdb::{Backend, TestDb};

/// A fresh database for `backend`, migrated.
pub fn fresh_db(backend: &Backend) -> (TestDb, Db) {
    let test_db = TestDb::for_backend(backend);
    let db = test_db.connect();
    db.migrate().unwrap();
    (test_db, db)
}
