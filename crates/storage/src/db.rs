//! One diesel code path over PostgreSQL and SQLite.
//!
//! The backend is chosen from the URL scheme, never by trial: diesel's derived
//! `MultiConnection::establish` tries each backend in turn and swallows the
//! errors, and SQLite would happily treat a mistyped Postgres URL as a file
//! name. Blocking diesel work runs on tokio's blocking pool through [`Db::run`].

use crate::error::StorageError;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::path::PathBuf;
use std::time::Duration;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
/// Serialises migrations when several instances start at once on one database.
const PG_MIGRATION_LOCK: i64 = 0x7275_7365_635f_6d67;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// A parsed database URL.
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    Postgres(String),
    Sqlite(PathBuf),
}

impl std::fmt::Debug for DbUrl {
    /// Never prints a Postgres URL: it may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Postgres(_) => f.write_str("Postgres(<redacted>)"),
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DbUrlError {
    #[error("expected sqlite://PATH or postgres://…, got scheme {0:?}")]
    UnknownScheme(String),
    #[error("sqlite:// URL has an empty path")]
    EmptySqlitePath,
}

impl DbUrl {
    /// Parses `sqlite://PATH` (relative or, with a third slash, absolute) or
    /// `postgres://…` / `postgresql://…`.
    ///
    /// # Errors
    /// Any other scheme, or an empty SQLite path.
    pub fn parse(url: &str) -> Result<Self, DbUrlError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(DbUrlError::EmptySqlitePath);
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        let scheme = url.split_once(':').map_or(url, |(s, _)| s);
        Err(DbUrlError::UnknownScheme(scheme.to_owned()))
    }
}

/// What the pool needs to know.
#[derive(Clone, Debug)]
pub struct DbSettings {
    pub url: DbUrl,
    pub pool_size: u32,
    pub connect_timeout: Duration,
}

/// Opens connections of the kind the URL names and applies SQLite's pragmas.
#[derive(Debug)]
pub struct DbManager {
    url: DbUrl,
}

impl ManageConnection for DbManager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match &self.url {
            DbUrl::Postgres(url) => PgConnection::establish(url)
                .map(DbConnection::Postgres)
                .map_err(r2d2::Error::ConnectionError),
            DbUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(r2d2::Error::ConnectionError)?;
                // batch_execute: sql_query would run only the first statement.
                // WAL lets readers run beside the writer; NORMAL sync in WAL
                // mode survives a process crash (kill -9), losing nothing
                // committed.
                conn.batch_execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                )
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        // A closed socket or a transaction left half-done: never reuse it.
        diesel::r2d2::R2D2Connection::is_broken(conn)
    }
}

/// A pool of connections to one database.
#[derive(Clone)]
pub struct Db {
    pool: Pool<DbManager>,
    url: DbUrl,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: name the backend only.
        f.debug_struct("Db")
            .field("backend", &self.backend_name())
            .finish()
    }
}

impl Db {
    /// Builds the pool and opens a first connection, so an unreachable
    /// database is reported at start-up rather than on the first request.
    ///
    /// # Errors
    /// `Unavailable` when no connection can be opened in time.
    pub fn connect(settings: &DbSettings) -> Result<Self, StorageError> {
        if let DbUrl::Sqlite(path) = &settings.url
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(StorageError::unavailable)?;
        }
        let manager = DbManager {
            url: settings.url.clone(),
        };
        let pool = Pool::builder()
            .max_size(settings.pool_size.max(1))
            // No idle minimum: r2d2 would open connections on its own
            // threads, and one still inside libpq when the process exits
            // races OpenSSL's exit handlers (seen as SIGSEGV at exit).
            // Connections open on demand, on the thread that needs one.
            .min_idle(Some(0))
            .connection_timeout(settings.connect_timeout)
            .test_on_check_out(false)
            // Failures surface as errors from Db::connect/run; r2d2's own
            // logging would repeat them as multi-line noise.
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(manager)?;
        // Fail now, not on the first request, when the database is unreachable.
        drop(pool.get()?);
        Ok(Self {
            pool,
            url: settings.url.clone(),
        })
    }

    /// "postgres" or "sqlite".
    pub fn backend_name(&self) -> &'static str {
        match self.url {
            DbUrl::Postgres(_) => "postgres",
            DbUrl::Sqlite(_) => "sqlite",
        }
    }

    /// A connection for synchronous callers (CLI commands, tests).
    ///
    /// # Errors
    /// `Unavailable` when the pool cannot hand one out in time.
    pub fn get(&self) -> Result<PooledConnection<DbManager>, StorageError> {
        Ok(self.pool.get()?)
    }

    /// Runs blocking diesel work on tokio's blocking pool.
    ///
    /// # Errors
    /// Whatever `f` returns, or `Unavailable` when no connection is free.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, StorageError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(StorageError::backend)?
    }

    /// Applies pending migrations; returns how many ran.
    ///
    /// # Errors
    /// When a migration fails (it is rolled back where the backend allows).
    pub fn migrate(&self) -> Result<usize, StorageError> {
        let mut conn = self.pool.get()?;
        run_migrations(&mut conn)
    }

    /// Reverts every migration (tests of down.sql only).
    ///
    /// # Errors
    /// When a down migration fails.
    pub fn revert_all(&self) -> Result<usize, StorageError> {
        let mut conn = self.pool.get()?;
        let reverted = match &mut *conn {
            DbConnection::Postgres(c) => c.revert_all_migrations(PG_MIGRATIONS),
            DbConnection::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS),
        };
        reverted.map(|v| v.len()).map_err(StorageError::Backend)
    }

    /// Reverts the latest migration (tests of down.sql only); returns its
    /// version (the digits of its directory name before the first `_`).
    ///
    /// # Errors
    /// When the down migration fails.
    pub fn revert_last(&self) -> Result<String, StorageError> {
        let mut conn = self.pool.get()?;
        let reverted = match &mut *conn {
            DbConnection::Postgres(c) => c.revert_last_migration(PG_MIGRATIONS),
            DbConnection::Sqlite(c) => c.revert_last_migration(SQLITE_MIGRATIONS),
        };
        reverted
            .map(|version| version.to_string())
            .map_err(StorageError::Backend)
    }

    /// Readiness: a trivial round trip.
    ///
    /// # Errors
    /// `Unavailable` when the database does not answer.
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.run(|conn| {
            conn.batch_execute("SELECT 1")
                .map_err(StorageError::unavailable)
        })
        .await
    }
}

/// First statement of a transaction that reads and then writes: on SQLite it
/// takes the write lock up front (see [`serialize_writers`]) so the later
/// write cannot fail with SQLITE_BUSY; PostgreSQL needs nothing (row locks
/// and conditional updates do the work there).
///
/// # Errors
/// Backend failures (or a lock wait past the busy timeout).
pub fn begin_write(conn: &mut DbConnection) -> Result<(), StorageError> {
    if let DbConnection::Sqlite(lite) = conn {
        lite.batch_execute(SQLITE_TAKE_WRITE_LOCK)?;
    }
    Ok(())
}

const SQLITE_TAKE_WRITE_LOCK: &str = "UPDATE environments SET name = name WHERE id = ''";

/// Inside a transaction: waits until this transaction is the only writer
/// among every instance. On PostgreSQL a transaction-scoped advisory lock
/// named by `lock_id`; on SQLite a write as the first statement takes the
/// database's write lock before anything is read (like BEGIN IMMEDIATE) with
/// the busy timeout applying, where reading first and writing later could
/// fail with SQLITE_BUSY_SNAPSHOT instead of waiting.
///
/// # Errors
/// Backend failures (or a lock wait past the busy timeout).
pub fn serialize_writers(conn: &mut DbConnection, lock_id: i64) -> Result<(), StorageError> {
    match conn {
        DbConnection::Postgres(pg) => {
            pg.batch_execute(&format!("SELECT pg_advisory_xact_lock({lock_id})"))?
        }
        DbConnection::Sqlite(lite) => lite.batch_execute(SQLITE_TAKE_WRITE_LOCK)?,
    }
    Ok(())
}

fn run_migrations(conn: &mut DbConnection) -> Result<usize, StorageError> {
    match conn {
        DbConnection::Postgres(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))?;
            let ran = c.run_pending_migrations(PG_MIGRATIONS).map(|v| v.len());
            c.batch_execute(&format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))?;
            ran.map_err(StorageError::Backend)
        }
        DbConnection::Sqlite(c) => c
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|v| v.len())
            .map_err(StorageError::Backend),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_dispatch_on_scheme() {
        assert_eq!(
            DbUrl::parse("sqlite://data/trusec.db"),
            Ok(DbUrl::Sqlite(PathBuf::from("data/trusec.db")))
        );
        assert_eq!(
            DbUrl::parse("sqlite:///var/lib/trusec.db"),
            Ok(DbUrl::Sqlite(PathBuf::from("/var/lib/trusec.db")))
        );
        assert!(matches!(
            DbUrl::parse("postgres://u@h/db"),
            Ok(DbUrl::Postgres(_))
        ));
        assert_eq!(
            DbUrl::parse("mysql://x"),
            Err(DbUrlError::UnknownScheme("mysql".into()))
        );
        assert_eq!(
            DbUrl::parse("data/trusec.db"),
            Err(DbUrlError::UnknownScheme("data/trusec.db".into()))
        );
        assert_eq!(DbUrl::parse("sqlite://"), Err(DbUrlError::EmptySqlitePath));
        let secret = DbUrl::parse("postgres://u:hunter2@h/db").unwrap();
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
