//! The password-hashing pool: a fixed set of threads, each with its own
//! Argon2 working memory ([`secrets::HashMemory`], 19 MiB, made on its first
//! hash and reused), behind a bounded queue.
//!
//! Why: Argon2id at the OWASP parameters takes a core for 20–30 ms and
//! 19 MiB while it runs. Allocating that per hash on whichever blocking
//! thread is free left the allocator holding a block per thread it had ever
//! used (glibc keeps one arena per thread and does not give a 19 MiB chunk
//! below its mmap threshold back), so a burst of sign-ups took the process
//! to a gigabyte and kept it there. Here the memory is `threads × 19 MiB`
//! whatever the load; requests beyond `threads + queue` are refused at once
//! with [`Busy`] (503 and `Retry-After` on every surface) instead of piling
//! up.
//!
//! [`crate::Core::hash_password`] and [`crate::Core::verify_password`] are
//! the only callers.

use crate::error::StorageError;
use crate::secrets::{self, HashMemory};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::oneshot;

/// How many hashes run at once and how many may wait
/// (`TRUSEC_PASSWORD_HASH_THREADS`, `TRUSEC_PASSWORD_HASH_QUEUE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordHashing {
    pub threads: usize,
    pub queue: usize,
}

/// Upper estimate of one hash on a loaded core, for `Retry-After`.
const HASH_MILLIS: u64 = 50;

/// Every hashing thread is busy and the queue is full: try again after
/// `retry_after_secs` (about the time the queue takes to drain).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("password hashing is at capacity; try again in {retry_after_secs} s")]
pub struct Busy {
    pub retry_after_secs: u64,
}

enum Work {
    Hash {
        password: String,
    },
    /// With no stored hash (an unknown account), against the decoy.
    Verify {
        password: String,
        phc: Option<String>,
    },
}

enum Done {
    Hashed(Result<String, secrets::SecretError>),
    Verified(bool),
}

struct Job {
    work: Work,
    reply: oneshot::Sender<Done>,
}

/// A handle to the pool; clones share it. The threads end when the last
/// handle is dropped.
#[derive(Clone)]
pub struct HashPool {
    jobs: SyncSender<Job>,
    busy: Busy,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPool")
            .field("busy", &self.busy)
            .finish_non_exhaustive()
    }
}

impl HashPool {
    /// Starts `config.threads` hashing threads (at least one).
    ///
    /// # Errors
    /// When the OS refuses a thread.
    pub fn start(config: PasswordHashing) -> std::io::Result<Self> {
        let threads = config.threads.max(1);
        let (jobs, queue) = mpsc::sync_channel(config.queue);
        let queue = Arc::new(Mutex::new(queue));
        // One decoy per pool, made by the first unknown account with the
        // same parameters as every real hash, so both cost the same.
        let decoy = Arc::new(OnceLock::new());
        for i in 0..threads {
            let (queue, decoy) = (Arc::clone(&queue), Arc::clone(&decoy));
            std::thread::Builder::new()
                .name(format!("trusec-hash-{i}"))
                .spawn(move || work(&queue, &decoy))?;
        }
        let drain_millis = HASH_MILLIS * u64::try_from(config.queue.div_ceil(threads)).unwrap_or(0);
        Ok(Self {
            jobs,
            busy: Busy {
                retry_after_secs: drain_millis.div_ceil(1000).max(1),
            },
        })
    }

    /// An Argon2id PHC string of `password`.
    ///
    /// # Errors
    /// [`StorageError::Busy`] when the queue is full; hashing failures.
    pub async fn hash(&self, password: String) -> Result<String, StorageError> {
        match self.run(Work::Hash { password }).await? {
            Done::Hashed(hashed) => hashed.map_err(StorageError::backend),
            Done::Verified(_) => Err(lost()),
        }
    }

    /// Whether `password` matches `phc`; with no `phc`, one verification
    /// against the decoy and `false`.
    ///
    /// # Errors
    /// [`StorageError::Busy`] when the queue is full.
    pub async fn verify(
        &self,
        password: String,
        phc: Option<String>,
    ) -> Result<bool, StorageError> {
        match self.run(Work::Verify { password, phc }).await? {
            Done::Verified(ok) => Ok(ok),
            Done::Hashed(_) => Err(lost()),
        }
    }

    async fn run(&self, work: Work) -> Result<Done, StorageError> {
        let (reply, done) = oneshot::channel();
        match self.jobs.try_send(Job { work, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(StorageError::Busy(self.busy)),
            Err(TrySendError::Disconnected(_)) => return Err(lost()),
        }
        done.await.map_err(|_| lost())
    }
}

/// The pool's threads are gone (a panic in one): a backend failure.
fn lost() -> StorageError {
    StorageError::backend(std::io::Error::other("the password-hashing pool stopped"))
}

fn work(queue: &Mutex<Receiver<Job>>, decoy: &OnceLock<String>) {
    let mut memory = HashMemory::default();
    loop {
        // The lock is held only while waiting for the next job.
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = next else {
            return; // every handle dropped
        };
        // A request that gave up (its client went away) needs no hash.
        if job.reply.is_closed() {
            continue;
        }
        let done = match job.work {
            Work::Hash { password } => {
                Done::Hashed(secrets::hash_password_with(&mut memory, &password))
            }
            Work::Verify {
                password,
                phc: Some(phc),
            } => Done::Verified(secrets::verify_password_with(&mut memory, &password, &phc)),
            Work::Verify {
                password,
                phc: None,
            } => {
                let decoy = decoy.get_or_init(|| {
                    secrets::hash_password_with(&mut memory, "decoy password for timing")
                        .unwrap_or_default()
                });
                secrets::verify_password_with(&mut memory, &password, decoy);
                Done::Verified(false)
            }
        };
        // The requester may have gone meanwhile; nothing to tell it then.
        drop(job.reply.send(done));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_accounts_never_do() -> Result<(), StorageError> {
        let pool = HashPool::start(PasswordHashing {
            threads: 1,
            queue: 4,
        })
        .map_err(StorageError::backend)?;
        let phc = pool.hash("correct horse".into()).await?;
        assert!(
            pool.verify("correct horse".into(), Some(phc.clone()))
                .await?
        );
        assert!(!pool.verify("wrong horse".into(), Some(phc)).await?);
        assert!(!pool.verify("correct horse".into(), None).await?);
        Ok(())
    }

    #[test]
    fn retry_after_is_the_time_the_queue_takes_to_drain_and_at_least_a_second()
    -> std::io::Result<()> {
        let busy = |threads, queue| {
            HashPool::start(PasswordHashing { threads, queue }).map(|p| p.busy.retry_after_secs)
        };
        assert_eq!(busy(2, 8)?, 1);
        assert_eq!(busy(1, 100)?, 5);
        Ok(())
    }
}
