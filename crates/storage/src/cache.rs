//! Read-through caches in the ephemeral store, with one discipline for every
//! cached kind (session verifications, API keys, OAuth clients, access-token
//! revocation status):
//!
//! - an entry is typed: [`Entry::Live`] holds the row as the database had it,
//!   [`Entry::Stale`] marks a row that changed;
//! - a read serves a `Live` entry; a `Stale` one, a missing one or one that
//!   does not parse is a miss that goes to the database, the authority;
//! - a fill is set-if-absent, so a fill that read the row before a change
//!   can never overwrite the change's `Stale` marker;
//! - a change (revocation, rotation, update, deletion) writes `Stale` for the
//!   entry's whole lifetime, on every instance sharing the store at once; if
//!   it cannot, it deletes the entry; if it cannot do that either, the
//!   change's caller must report failure (503) rather than a change that
//!   other instances would not see for up to a TTL.
//!
//! Store outages cost only the cache: reads fall through to the database.

use crate::ephemeral::{EphemeralStore, StoreKey};
use crate::error::StorageError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "entry", content = "value", rename_all = "snake_case")]
enum Entry<T> {
    Live(T),
    Stale,
}

/// One cached object: where it lives and for how long.
#[derive(Clone, Debug)]
pub struct Cached {
    key: StoreKey,
    ttl: Duration,
    what: &'static str,
}

impl Cached {
    /// Where the entry lives (to read it together with other keys).
    pub(crate) fn key(&self) -> &StoreKey {
        &self.key
    }

    /// The value of an entry read by hand, if it is live and parses; a
    /// miss otherwise (see the module docs).
    pub(crate) fn live<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
        match serde_json::from_slice::<Entry<T>>(bytes) {
            Ok(Entry::Live(value)) => Some(value),
            Ok(Entry::Stale) | Err(_) => None,
        }
    }

    /// A session verification (row and user), by token hash.
    pub fn session(token_hash: &str) -> Self {
        Self {
            key: StoreKey::session_cache(token_hash),
            ttl: Duration::from_secs(300),
            what: "session",
        }
    }

    /// An API key row, by secret hash.
    pub fn api_key(secret_hash: &str) -> Self {
        Self {
            key: StoreKey::api_key_cache(secret_hash),
            ttl: Duration::from_secs(60),
            what: "API key",
        }
    }

    /// Whether an access token is revoked (`crate::access_tokens`), by
    /// `jti`. Short-lived: a family revocation does not mark it stale (its
    /// tokens are not known by `jti`), so this bounds how long a family's
    /// access token outlives a lost `revoked-family` marker.
    pub fn access_token(jti: &str) -> Self {
        Self {
            key: StoreKey::access_token_status(jti),
            ttl: Duration::from_secs(30),
            what: "access token",
        }
    }

    /// An OAuth client row, by client id.
    pub fn client(client_id: &str) -> Self {
        Self {
            key: StoreKey::client_cache(client_id),
            ttl: Duration::from_secs(60),
            what: "client",
        }
    }
}

/// A decoded value and the stored bytes it was decoded from.
type Decoded<T> = (Vec<u8>, Arc<T>);

/// The values of one cached kind as last parsed, each with the bytes it
/// was parsed from, so that a hot entry is not decoded again on every
/// request: a read still asks the store (which stays the one authority on
/// staleness, shared by every instance) and reuses the parsed value only
/// when the store returned exactly the same bytes. Bounded: when full, it
/// starts again empty.
pub struct Parsed<T> {
    entries: Mutex<HashMap<StoreKey, Decoded<T>>>,
    max_entries: usize,
}

impl<T> Parsed<T> {
    pub fn new(max_entries: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            max_entries,
        }
    }

    fn get(&self, key: &StoreKey, bytes: &[u8]) -> Option<Arc<T>> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(seen, _)| seen.as_slice() == bytes)
            .map(|(_, value)| Arc::clone(value))
    }

    fn remember(&self, key: &StoreKey, bytes: Vec<u8>, value: &Arc<T>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.max_entries {
                entries.clear();
            }
            entries.insert(key.clone(), (bytes, Arc::clone(value)));
        }
    }
}

impl<T> std::fmt::Debug for Parsed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parsed")
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

impl EphemeralStore {
    /// [`Self::read_through`], reusing the value `parsed` holds for the
    /// same stored bytes instead of decoding them again.
    ///
    /// # Errors
    /// `load`'s errors.
    pub async fn read_through_parsed<T, E, Fut>(
        &self,
        cached: &Cached,
        parsed: &Parsed<T>,
        load: impl FnOnce() -> Fut,
    ) -> Result<Option<Arc<T>>, E>
    where
        T: Serialize + DeserializeOwned,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        if let Some(bytes) = self.read_cached(cached).await {
            if let Some(value) = parsed.get(&cached.key, &bytes) {
                return Ok(Some(value));
            }
            if let Some(value) = Cached::live::<T>(&bytes) {
                let value = Arc::new(value);
                parsed.remember(&cached.key, bytes, &value);
                return Ok(Some(value));
            }
        }
        Ok(self.load_and_fill(cached, load).await?.map(Arc::new))
    }

    /// The cached value when a live one parses, else `load`'s, filled
    /// set-if-absent.
    ///
    /// # Errors
    /// `load`'s errors.
    pub async fn read_through<T, E, Fut>(
        &self,
        cached: &Cached,
        load: impl FnOnce() -> Fut,
    ) -> Result<Option<T>, E>
    where
        T: Serialize + DeserializeOwned,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let bytes = self.read_cached(cached).await;
        if let Some(value) = bytes.as_deref().and_then(Cached::live::<T>) {
            return Ok(Some(value));
        }
        self.load_and_fill(cached, load).await
    }

    /// The entry's bytes; a store failure is a miss (it costs only the cache).
    async fn read_cached(&self, cached: &Cached) -> Option<Vec<u8>> {
        self.get(&cached.key).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, cache = cached.what, "cache unavailable");
            None
        })
    }

    /// A miss: the authority's value, filled set-if-absent.
    async fn load_and_fill<T, E, Fut>(
        &self,
        cached: &Cached,
        load: impl FnOnce() -> Fut,
    ) -> Result<Option<T>, E>
    where
        T: Serialize,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let value = load().await?;
        if let Some(value) = &value {
            self.fill(cached, value).await;
        }
        Ok(value)
    }

    /// Fills an entry set-if-absent (see the module docs); a failure costs
    /// only the cache.
    pub(crate) async fn fill<T: Serialize>(&self, cached: &Cached, value: &T) {
        match serde_json::to_vec(&Entry::Live(value)) {
            Ok(bytes) => {
                if let Err(e) = self.put_if_absent(&cached.key, &bytes, cached.ttl).await {
                    tracing::warn!(error = %e, cache = cached.what, "could not fill the cache");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, cache = cached.what, "could not encode a cache entry");
            }
        }
    }

    /// Marks entries stale after their rows changed (see the module docs).
    ///
    /// # Errors
    /// When an entry can be neither marked nor deleted.
    pub async fn invalidate(&self, entries: &[Cached]) -> Result<(), StorageError> {
        let marker = serde_json::to_vec(&Entry::<()>::Stale)?;
        for cached in entries {
            if let Err(e) = self.put(&cached.key, &marker, cached.ttl).await {
                tracing::error!(error = %e, cache = cached.what, "could not mark a cache entry stale; deleting it");
                self.delete(std::slice::from_ref(&cached.key)).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Clock;

    #[tokio::test]
    async fn a_change_is_never_undone_by_a_racing_fill() -> Result<(), StorageError> {
        let store = EphemeralStore::memory(Clock::System);
        let entry = Cached::client("client_1");
        // A fill that read version 1, then the change, then the racing fill
        // lands: the reader after it must reload (and see version 2).
        store.invalidate(std::slice::from_ref(&entry)).await?;
        let racing: Option<u32> = store
            .read_through(&entry, || async { Ok::<_, StorageError>(Some(1)) })
            .await?;
        assert_eq!(racing, Some(1));
        let after: Option<u32> = store
            .read_through(&entry, || async { Ok::<_, StorageError>(Some(2)) })
            .await?;
        assert_eq!(after, Some(2));
        Ok(())
    }

    #[tokio::test]
    async fn parsed_values_are_reused_only_for_the_same_stored_bytes() -> Result<(), StorageError> {
        let store = EphemeralStore::memory(Clock::System);
        let parsed = Parsed::new(8);
        let entry = Cached::client("client_1");
        let load =
            |v: &'static str| move || async move { Ok::<_, StorageError>(Some(v.to_owned())) };
        // A miss loads and fills; the next read decodes the entry once, and
        // every later one reuses that decoding.
        let first = store
            .read_through_parsed(&entry, &parsed, load("v1"))
            .await?;
        let decoded = store
            .read_through_parsed(&entry, &parsed, load("x"))
            .await?;
        let reused = store
            .read_through_parsed(&entry, &parsed, load("x"))
            .await?;
        assert_eq!(first.as_deref().map(String::as_str), Some("v1"));
        assert_eq!(decoded.as_deref().map(String::as_str), Some("v1"));
        assert!(Arc::ptr_eq(
            decoded.as_ref().unwrap(),
            reused.as_ref().unwrap()
        ));
        // A change marks the entry stale: the parsed value is not served.
        store.invalidate(std::slice::from_ref(&entry)).await?;
        let after = store
            .read_through_parsed(&entry, &parsed, load("v2"))
            .await?;
        assert_eq!(after.as_deref().map(String::as_str), Some("v2"));
        Ok(())
    }

    #[tokio::test]
    async fn live_entries_are_served_from_the_store() -> Result<(), StorageError> {
        let store = EphemeralStore::memory(Clock::System);
        let entry = Cached::api_key("hash");
        let first: Option<String> = store
            .read_through(&entry, || async { Ok::<_, StorageError>(Some("a".into())) })
            .await?;
        let second: Option<String> = store
            .read_through(&entry, || async { Ok::<_, StorageError>(Some("b".into())) })
            .await?;
        assert_eq!(
            (first.as_deref(), second.as_deref()),
            (Some("a"), Some("a"))
        );
        Ok(())
    }
}
