//! One database per test: a temp-file SQLite, or a PostgreSQL schema created
//! for the test and dropped with it (CI has one `test` database).

use crate::Backend;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use std::path::PathBuf;
use std::time::Duration;
use trusec_storage::db::DbUrl;
use trusec_storage::{Db, DbSettings};

pub enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres {
        base_url: String,
        schema: String,
    },
}

impl TestDb {
    /// A fresh database of the kind `backend` names.
    pub fn for_backend(backend: &Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::sqlite(),
            Backend::Shared { database_url, .. } => Self::postgres(database_url),
        }
    }

    /// A pool over this database (not migrated).
    ///
    /// # Panics
    /// When the database cannot be reached.
    pub fn connect(&self) -> Db {
        Db::connect(&DbSettings {
            url: self.url(),
            pool_size: 4,
            connect_timeout: Duration::from_secs(5),
        })
        .expect("the test database is reachable")
    }

    /// A fresh SQLite file in a temp dir.
    ///
    /// # Panics
    /// When no temp dir can be made.
    pub fn sqlite() -> Self {
        init_openssl_first();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("trusec.db");
        Self::Sqlite { _dir: dir, path }
    }

    /// A fresh SQLite file, migrated, and a pool over it: where the
    /// criterion benchmarks (`crates/*/benches`) start.
    ///
    /// # Panics
    /// When the database cannot be made or migrated.
    pub fn migrated_sqlite() -> (Self, Db) {
        let test_db = Self::sqlite();
        let db = test_db.connect();
        db.migrate().expect("the migrations apply");
        (test_db, db)
    }

    /// A fresh, empty schema in the database at `base_url`.
    ///
    /// # Panics
    /// When PostgreSQL cannot be reached: a set URL must work.
    pub fn postgres(base_url: &str) -> Self {
        init_openssl_first();
        let schema = format!("t_{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
        let mut conn =
            PgConnection::establish(base_url).expect("TRUSEC_TEST_DATABASE_URL must be reachable");
        conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("create schema");
        Self::Postgres {
            base_url: base_url.to_owned(),
            schema,
        }
    }

    /// The URL the app should use.
    pub fn url(&self) -> DbUrl {
        match self {
            Self::Sqlite { path, .. } => DbUrl::Sqlite(path.clone()),
            Self::Postgres { base_url, schema } => {
                let sep = if base_url.contains('?') { '&' } else { '?' };
                // The schema as the application name too, so a fault test
                // can find (and end) this test's connections alone.
                DbUrl::Postgres(format!(
                    "{base_url}{sep}options=-csearch_path%3D{schema}&application_name={schema}"
                ))
            }
        }
    }

    /// The PostgreSQL schema (and application name) of this database.
    pub fn schema(&self) -> Option<&str> {
        match self {
            Self::Sqlite { .. } => None,
            Self::Postgres { schema, .. } => Some(schema),
        }
    }

    /// The URL as text (for the CLI).
    pub fn url_string(&self) -> String {
        match self.url() {
            DbUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            DbUrl::Postgres(u) => u,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Self::Postgres { base_url, schema } = self
            && let Ok(mut conn) = PgConnection::establish(base_url)
        {
            let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

/// OpenSSL registers a cleanup handler at exit unless its first initialiser
/// asks it not to. rust-openssl asks; libpq (`sslmode=prefer`) and xmlsec do
/// not. Whichever test thread got there first decided, and when libpq won,
/// the cleanup at exit could race threads of still-running test servers and
/// crash the finished test binary (seen once as SIGSEGV after all passed).
fn init_openssl_first() {
    openssl::init();
}
