//! Test harness: the real app on port 0 over a per-test database (a temp-file
//! SQLite, or a fresh PostgreSQL schema), an isolated Redis key prefix, a fake
//! clock, and a reqwest client with redirects off and a cookie store.
//!
//! PostgreSQL and Redis are used when `TRUSEC_TEST_DATABASE_URL` and
//! `TRUSEC_TEST_REDIS_URL` are set; otherwise those tests print "skipped".
//!
//! The database part (`TestDb`, `Backend`, `fake_clock`, `on_every_backend!`,
//! `on_shared_backend!`) lives in `trusec-testdb`, which needs only the
//! storage crate, and is re-exported here so server tests use one path.

#![expect(
    clippy::expect_used,
    reason = "a test harness: a broken fixture must fail the test loudly"
)]

mod app;
pub mod keys;

pub use app::{TestApp, TestAppBuilder, status_json};
pub use trusec_testdb::*;
