//! Test harness: the real app on port 0 over a per-test database (a temp-file
//! SQLite, or a fresh PostgreSQL schema), an isolated Redis key prefix, a fake
//! clock, and a reqwest client with redirects off and a cookie store.
//!
//! PostgreSQL and Redis are used when `TRUSEC_TEST_DATABASE_URL` and
//! `TRUSEC_TEST_REDIS_URL` are set; otherwise those tests print "skipped".

#![expect(
    clippy::expect_used,
    reason = "a test harness: a broken fixture must fail the test loudly"
)]

mod app;
mod db;
pub mod keys;

pub use app::{TestApp, TestAppBuilder, status_json};
pub use db::TestDb;

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
