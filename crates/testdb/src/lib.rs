//! Database test harness: a per-test database (a temp-file SQLite, or a
//! fresh PostgreSQL schema), the backend a test runs on, a fake clock, and
//! the `on_every_backend!` / `on_shared_backend!` macros.
//!
//! PostgreSQL and Redis are used when `TRUSEC_TEST_DATABASE_URL` and
//! `TRUSEC_TEST_REDIS_URL` are set; otherwise those tests print "skipped".
//!
//! It depends only on `trusec-storage`, so the storage contract tests build
//! without the web stack; `trusec-testkit` re-exports all of it next to
//! `TestApp`.

#![expect(
    clippy::expect_used,
    reason = "a test harness: a broken fixture must fail the test loudly"
)]

mod db;
pub mod log;
mod redis;

pub use db::TestDb;
pub use redis::OwnRedis;

use chrono::{DateTime, Utc};
use trusec_storage::Clock;

/// Where a test's state lives.
#[derive(Clone, Debug)]
pub enum Backend {
    /// A temp-file SQLite database and the in-process store.
    Sqlite,
    /// PostgreSQL, plus Redis when its URL is set.
    Shared {
        database_url: String,
        redis_url: Option<String>,
    },
}

impl Backend {
    /// The shared backend, if the environment names one.
    pub fn shared() -> Option<Self> {
        let database_url = std::env::var("TRUSEC_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())?;
        let redis_url = std::env::var("TRUSEC_TEST_REDIS_URL")
            .ok()
            .filter(|u| !u.is_empty());
        Some(Self::Shared {
            database_url,
            redis_url,
        })
    }

    /// The Redis URL alone, for store-level tests.
    pub fn redis_url() -> Option<String> {
        std::env::var("TRUSEC_TEST_REDIS_URL")
            .ok()
            .filter(|u| !u.is_empty())
    }

    pub fn has_redis(&self) -> bool {
        matches!(
            self,
            Self::Shared {
                redis_url: Some(_),
                ..
            }
        )
    }
}

/// A fake clock at a fixed, realistic instant.
pub fn fake_clock() -> Clock {
    Clock::fake(DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default())
}

/// Runs each named `async fn(Backend)` once on SQLite and once on
/// PostgreSQL + Redis (skipped, with a message, when those are not set).
#[macro_export]
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        $(
            mod $test {
                #[tokio::test]
                async fn sqlite() {
                    super::$test($crate::Backend::Sqlite).await;
                }

                #[tokio::test]
                async fn postgres_redis() {
                    match $crate::Backend::shared() {
                        Some(backend) => super::$test(backend).await,
                        None => eprintln!("skipped: TRUSEC_TEST_DATABASE_URL is not set"),
                    }
                }
            }
        )*
    };
}

/// Runs each named `async fn(Backend)` only on PostgreSQL + Redis: tests of
/// behaviour shared across instances.
#[macro_export]
macro_rules! on_shared_backend {
    ($($test:ident),* $(,)?) => {
        $(
            mod $test {
                #[tokio::test]
                async fn postgres_redis() {
                    match $crate::Backend::shared() {
                        Some(backend) if backend.has_redis() => super::$test(backend).await,
                        _ => eprintln!("skipped: TRUSEC_TEST_DATABASE_URL and TRUSEC_TEST_REDIS_URL are not both set"),
                    }
                }
            }
        )*
    };
}
