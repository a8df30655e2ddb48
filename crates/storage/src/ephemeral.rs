//! Short-lived state that may be lost without losing anything durable:
//! rate-limit counters, the session cache, single-use codes, replay caches.
//! In-process by default (one instance); Redis when configured, shared by
//! every instance.

mod keys;
mod memory;
mod redis;

pub use self::keys::{KeyKind, StoreKey, WhenFull};
pub use self::memory::{DEFAULT_MAX_BYTES, MemoryStore, StoreFull};
pub use self::redis::RedisStore;

use crate::clock::Clock;
use crate::error::StorageError;
use crate::rate_limit::{Decision, Limit};
use std::sync::Arc;
use std::time::Duration;

impl From<StoreFull> for StorageError {
    fn from(_: StoreFull) -> Self {
        Self::Full
    }
}

#[derive(Clone, Debug)]
pub enum EphemeralStore {
    Redis(RedisStore),
    Memory(Arc<MemoryStore>),
}

impl EphemeralStore {
    /// The in-process store with the default bound; expiry follows `clock`.
    pub fn memory(clock: Clock) -> Self {
        Self::memory_bounded(clock, DEFAULT_MAX_BYTES)
    }

    /// The in-process store, refusing new refusable state (see
    /// [`KeyKind::when_full`]) once its entries take `max_bytes`.
    pub fn memory_bounded(clock: Clock, max_bytes: usize) -> Self {
        Self::Memory(Arc::new(MemoryStore::new(clock, max_bytes)))
    }

    /// Connects to Redis; every key is put under `prefix` (tests use a random one).
    ///
    /// # Errors
    /// `Unavailable` when Redis cannot be reached.
    pub async fn redis(url: &str, prefix: &str) -> Result<Self, StorageError> {
        Ok(Self::Redis(RedisStore::connect(url, prefix).await?))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Redis(_) => "redis",
            Self::Memory(_) => "memory",
        }
    }

    /// Stores `value` under `key` for `ttl`.
    ///
    /// # Errors
    /// Store failures; [`StorageError::Full`] when the in-process store is
    /// full and `key` is new state it refuses then.
    pub async fn put(
        &self,
        key: &StoreKey,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), StorageError> {
        match self {
            Self::Redis(r) => r.put(key.as_str(), value, ttl).await,
            Self::Memory(m) => Ok(m.put(key.as_str(), key.kind().when_full(), value, ttl)?),
        }
    }

    /// Stores `value` only if `key` is absent; returns whether it was stored
    /// (replay caches: the first writer wins).
    ///
    /// # Errors
    /// Store failures; [`StorageError::Full`] as for [`Self::put`].
    pub async fn put_if_absent(
        &self,
        key: &StoreKey,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StorageError> {
        match self {
            Self::Redis(r) => r.put_if_absent(key.as_str(), value, ttl).await,
            Self::Memory(m) => {
                Ok(m.put_if_absent(key.as_str(), key.kind().when_full(), value, ttl)?)
            }
        }
    }

    /// Reads `key`.
    ///
    /// # Errors
    /// Store failures.
    pub async fn get(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StorageError> {
        match self {
            Self::Redis(r) => r.get(key.as_str()).await,
            Self::Memory(m) => Ok(m.get(key.as_str())),
        }
    }

    /// Reads several keys at once: one round trip (Redis MGET), one lock
    /// (in-process); the values in the order of `keys`.
    ///
    /// # Errors
    /// Store failures.
    pub async fn get_many(&self, keys: &[StoreKey]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let keys: Vec<&str> = keys.iter().map(StoreKey::as_str).collect();
        match self {
            Self::Redis(r) => r.get_many(&keys).await,
            Self::Memory(m) => Ok(m.get_many(&keys)),
        }
    }

    /// Reads and deletes `key` atomically, so single-use values are used once.
    ///
    /// # Errors
    /// Store failures.
    pub async fn take(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StorageError> {
        match self {
            Self::Redis(r) => r.take(key.as_str()).await,
            Self::Memory(m) => Ok(m.take(key.as_str())),
        }
    }

    /// Deletes keys (missing ones are fine).
    ///
    /// # Errors
    /// Store failures.
    pub async fn delete(&self, keys: &[StoreKey]) -> Result<(), StorageError> {
        if keys.is_empty() {
            return Ok(());
        }
        let keys: Vec<&str> = keys.iter().map(StoreKey::as_str).collect();
        match self {
            Self::Redis(r) => r.delete(&keys).await,
            Self::Memory(m) => {
                m.delete(&keys);
                Ok(())
            }
        }
    }

    /// One GCRA step for `key` under `limit`.
    ///
    /// # Errors
    /// Store failures (callers decide whether to fail open or closed).
    pub async fn rate_limit(
        &self,
        key: &StoreKey,
        limit: &Limit,
    ) -> Result<Decision, StorageError> {
        match self {
            Self::Redis(r) => r.rate_limit(key.as_str(), limit).await,
            Self::Memory(m) => Ok(m.rate_limit(key.as_str(), limit)),
        }
    }

    /// Gives back one GCRA step of `key` under `limit`.
    ///
    /// # Errors
    /// Store failures.
    pub async fn rate_limit_refund(
        &self,
        key: &StoreKey,
        limit: &Limit,
    ) -> Result<(), StorageError> {
        match self {
            Self::Redis(r) => r.rate_limit_refund(key.as_str(), limit).await,
            Self::Memory(m) => {
                m.rate_limit_refund(key.as_str(), limit);
                Ok(())
            }
        }
    }

    /// Warns (one line) when Redis may evict keys under memory pressure.
    ///
    /// Every key TruSec writes has a TTL — revocations and replay markers
    /// too, since they matter only until what they block expires — so any
    /// policy but `noeviction` (the `volatile-*` ones included) may drop a
    /// replay marker or a revocation marker before its time. With `noeviction` a full Redis refuses
    /// writes instead: the request fails (503), nothing is silently lost.
    /// Not fatal: `CONFIG` may be disabled (managed Redis), and the
    /// database stays the authority for sessions, API keys and refresh
    /// tokens whatever happens (`docs/security.md`).
    pub async fn warn_if_it_may_evict(&self) {
        let Self::Redis(r) = self else {
            return;
        };
        match r.maxmemory_policy().await.as_deref() {
            Some("noeviction") => {}
            Some(policy) => tracing::warn!(
                policy,
                "Redis maxmemory-policy may evict TruSec's keys (revocations, replay markers); set it to noeviction"
            ),
            None => tracing::info!(
                "could not read Redis maxmemory-policy (CONFIG disabled?); TruSec needs noeviction"
            ),
        }
    }

    /// Readiness.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn ping(&self) -> Result<(), StorageError> {
        match self {
            Self::Redis(r) => r.ping().await,
            Self::Memory(_) => Ok(()),
        }
    }
}
