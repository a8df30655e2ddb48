//! Group commit for the audit log. Requests hand their event to one writer
//! task and wait; the writer commits whatever has queued up in one
//! transaction and answers everyone in the batch. No request pays an fsync of
//! its own, and none is answered before its event is committed.

use super::{AuditKey, NewAuditEvent, append};
use crate::clock::Clock;
use crate::db::Db;
use crate::error::StorageError;
use tokio::sync::{mpsc, oneshot};

const QUEUE: usize = 4096;
const MAX_BATCH: usize = 256;
const RETRIES: usize = 5;

type Reply = oneshot::Sender<Result<(), AuditFailed>>;

/// A handle to the writer task; cheap to clone. The task ends when the last
/// handle is dropped, after committing what was queued.
#[derive(Clone, Debug)]
pub struct AuditLog {
    tx: mpsc::Sender<(NewAuditEvent, Reply)>,
    key: AuditKey,
}

#[derive(Clone, Debug, thiserror::Error)]
#[error("audit event not recorded: {message}")]
pub struct AuditFailed {
    message: &'static str,
    /// The database could not be reached (a 503 to the caller, who may
    /// retry), rather than refusing the write.
    unavailable: bool,
}

impl AuditFailed {
    const STOPPED: Self = Self {
        message: "the audit writer has stopped",
        unavailable: false,
    };
}

impl From<AuditFailed> for StorageError {
    fn from(e: AuditFailed) -> Self {
        if e.unavailable {
            Self::unavailable(e)
        } else {
            Self::backend(e)
        }
    }
}

impl AuditLog {
    /// Spawns the writer on the current tokio runtime; it chains events
    /// under `key`.
    pub fn start(db: Db, clock: Clock, key: AuditKey) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(db, clock, key.clone(), rx));
        (Self { tx, key }, task)
    }

    /// The key the chain is written under (to verify and anchor it).
    pub(crate) fn key(&self) -> &AuditKey {
        &self.key
    }

    /// Records an event and waits until it is committed.
    ///
    /// # Errors
    /// When the event could not be committed.
    pub async fn record(&self, event: NewAuditEvent) -> Result<(), StorageError> {
        let (reply, done) = oneshot::channel();
        self.tx
            .send((event, reply))
            .await
            .map_err(|_| AuditFailed::STOPPED)?;
        let committed = done.await.map_err(|_| AuditFailed::STOPPED)?;
        Ok(committed?)
    }
}

async fn run(db: Db, clock: Clock, key: AuditKey, mut rx: mpsc::Receiver<(NewAuditEvent, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (events, replies): (Vec<_>, Vec<_>) = std::mem::take(&mut batch).into_iter().unzip();
        let result = commit(&db, &clock, &key, events).await;
        match result {
            Ok(()) => {
                for reply in replies {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(error = ?e, "audit batch failed");
                let failed = AuditFailed {
                    message: "database error",
                    unavailable: matches!(e, StorageError::Unavailable(_)),
                };
                for reply in replies {
                    let _ = reply.send(Err(failed.clone()));
                }
            }
        }
    }
}

async fn commit(
    db: &Db,
    clock: &Clock,
    key: &AuditKey,
    events: Vec<NewAuditEvent>,
) -> Result<(), StorageError> {
    let clock = clock.clone();
    let key = key.clone();
    db.run(move |conn| {
        let mut attempt = 0;
        loop {
            match append(conn, &key, &events, clock.now_naive()).map(drop) {
                // Another writer appended at the same seq (or holds SQLite's
                // write lock): read the new tail and try again.
                Err(e) if attempt < RETRIES && e.is_retryable() => attempt += 1,
                other => return other,
            }
        }
    })
    .await
}
