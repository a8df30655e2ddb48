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
use std::future::Future;
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

impl EphemeralStore {
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
        match self.get(&cached.key).await {
            Ok(Some(bytes)) => {
                if let Ok(Entry::Live(value)) = serde_json::from_slice::<Entry<T>>(&bytes) {
                    return Ok(Some(value));
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, cache = cached.what, "cache unavailable"),
        }
        let value = load().await?;
        if let Some(value) = &value {
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
        Ok(value)
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
