//! Storage errors. Callers map them to their own wire format; database text
//! is kept in the source chain for logs and never shown to clients.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// Every failure a repository or store can report.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object does not exist (or is not visible in this environment).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken; the string names the constraint.
    #[error("conflict on {0}")]
    Conflict(String),
    /// The database or the ephemeral store cannot be reached.
    #[error("storage unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Any other backend failure.
    #[error("storage backend error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The in-process store is at its bound (`TRUSEC_MEMORY_STORE_MAX_MB`)
    /// and refused new short-lived state that anyone can make
    /// (`KeyKind::when_full`): try again later (503).
    #[error("the in-process store is full: new sign-ins are refused until entries expire")]
    Full,
    /// Every password-hashing thread is busy and the queue is full
    /// (`crate::hashing`): 503 with `Retry-After`.
    #[error(transparent)]
    Busy(#[from] crate::hashing::Busy),
    /// The user was disabled by an administrator: no new session or grant
    /// (`sessions::insert` and every user-bound grant refuse).
    #[error("the user is disabled")]
    UserDisabled,
}

impl StorageError {
    /// Wraps any error as a backend failure.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(e))
    }

    /// Whether running the same transaction again may succeed: a lost race on
    /// a unique key, or SQLite refusing a write while another connection
    /// holds the write lock.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Conflict(_) => true,
            Self::Backend(e) => {
                let text = e.to_string();
                text.contains("database is locked") || text.contains("database is busy")
            }
            _ => false,
        }
    }

    /// Wraps any error as an availability failure.
    pub fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(e))
    }
}

impl From<DieselError> for StorageError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => Self::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                Self::Conflict(info.constraint_name().unwrap_or("unique").to_owned())
            }
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => {
                Self::unavailable(e)
            }
            // A server ending the connection while a statement runs (a
            // restart, `pg_terminate_backend`, a failover: SQLSTATE class 57,
            // "operator intervention") arrives as an error of that statement
            // rather than as a closed connection; diesel does not expose the
            // SQLSTATE, only libpq's words.
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, ref info)
                if connection_lost(info.message()) =>
            {
                Self::unavailable(e)
            }
            other => Self::backend(other),
        }
    }
}

/// Whether a database error's message says the connection to the server
/// went away (PostgreSQL's and libpq's wording).
fn connection_lost(message: &str) -> bool {
    const LOST: [&str; 5] = [
        "terminating connection",
        "server closed the connection unexpectedly",
        "could not receive data from server",
        "no connection to the server",
        "the database system is shutting down",
    ];
    LOST.iter().any(|m| message.contains(m))
}

impl From<diesel::r2d2::PoolError> for StorageError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        Self::unavailable(e)
    }
}

impl From<redis::RedisError> for StorageError {
    fn from(e: redis::RedisError) -> Self {
        if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
            Self::unavailable(e)
        } else {
            Self::backend(e)
        }
    }
}

impl From<serde_json::Error> for StorageError {
    fn from(e: serde_json::Error) -> Self {
        Self::backend(e)
    }
}
