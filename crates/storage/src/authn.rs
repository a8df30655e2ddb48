//! API-key authentication: the one authenticator behind every surface that
//! takes a key (`/v1`, `POST /oauth/register`). It finds the key through the
//! read-through cache (one store read on the hot path), compares in constant
//! time, checks type, revocation and expiry, spends the key's management
//! budget, and records `last_used_at` at most once a minute per key across
//! instances. Each surface turns a [`KeyRefusal`] into its own wire format.

use crate::Core;
use crate::api_keys::{self, ApiKeyRow, KeyRejection, KeyType};
use crate::audit::{Actor, ClientInfo, EventType, NewAuditEvent};
use crate::cache::Cached;
use crate::ephemeral::StoreKey;
use crate::error::StorageError;
use crate::rate_limit::{Family, Limited, Subject};
use crate::secrets;
use std::time::Duration;

/// An authenticated API key.
#[derive(Clone, Debug)]
pub struct KeyCaller {
    pub row: ApiKeyRow,
    pub key_type: KeyType,
}

impl KeyCaller {
    pub fn actor(&self) -> Actor {
        Actor::api_key(&self.row.id)
    }
}

/// Why a presented key does not authenticate.
#[derive(Debug, thiserror::Error)]
pub enum KeyRefusal {
    /// Not a key of this server (unknown, wrong prefix for its row).
    #[error("invalid API key")]
    Invalid,
    #[error("this API key has been revoked")]
    Revoked,
    #[error("this API key has expired")]
    Expired,
    #[error(transparent)]
    Limited(Limited),
    #[error(transparent)]
    Storage(StorageError),
}

impl From<StorageError> for KeyRefusal {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

impl Core {
    /// Authenticates `key` (the bearer value, any `trusec_*_` key type).
    ///
    /// # Errors
    /// A [`KeyRefusal`] saying why.
    pub async fn authenticate_api_key(
        &self,
        key: &str,
        client: &ClientInfo,
    ) -> Result<KeyCaller, KeyRefusal> {
        let claimed = KeyType::from_key(key).ok_or(KeyRefusal::Invalid)?;
        // The key has 256 bits of entropy, so SHA-256 is enough to store and
        // find it (see crate::secrets); the lookup by hash leaks nothing.
        let hash = secrets::hash_secret(key);
        let row = self
            .cached_api_key(&hash)
            .await?
            .filter(|row| secrets::constant_time_eq(row.secret_hash.as_bytes(), hash.as_bytes()))
            .ok_or(KeyRefusal::Invalid)?;
        let key_type = Some(row.key_type)
            .filter(|t| *t == claimed)
            .ok_or(KeyRefusal::Invalid)?;
        let now = self.clock.now_naive();
        row.check(now).map_err(|r| match r {
            KeyRejection::Revoked => KeyRefusal::Revoked,
            KeyRejection::Expired => KeyRefusal::Expired,
            KeyRejection::Unknown => KeyRefusal::Invalid,
        })?;
        let caller = KeyCaller { row, key_type };
        self.limit(Family::Management, Subject::Caller(&caller.row.id), || {
            NewAuditEvent::new(
                EventType::RateLimitExceeded,
                Some(&caller.row.environment_id),
                caller.actor(),
            )
            .client(client)
        })
        .await
        .map_err(KeyRefusal::Limited)?;
        self.record_key_use(&caller.row, now).await?;
        Ok(caller)
    }

    async fn cached_api_key(&self, hash: &str) -> Result<Option<ApiKeyRow>, StorageError> {
        let lookup = hash.to_owned();
        self.store
            .read_through(&Cached::api_key(hash), || async move {
                self.db
                    .run(move |conn| api_keys::find_by_hash(conn, &lookup))
                    .await
            })
            .await
    }

    /// After a key changed (revocation, or a rotation shortening the old
    /// key's life): every instance sees the change at once.
    ///
    /// # Errors
    /// When the cache can be neither marked nor cleared: the caller answers
    /// 503 rather than report a change other instances cannot see.
    pub async fn forget_api_key(&self, row: &ApiKeyRow) -> Result<(), StorageError> {
        self.store
            .invalidate(&[Cached::api_key(&row.secret_hash)])
            .await
    }

    /// Records `last_used_at` at most once a minute per key, across instances.
    async fn record_key_use(
        &self,
        row: &ApiKeyRow,
        now: chrono::NaiveDateTime,
    ) -> Result<(), StorageError> {
        let first_this_minute = self
            .store
            .put_if_absent(
                &StoreKey::api_key_used(&row.id),
                b"1",
                Duration::from_secs(60),
            )
            .await
            .unwrap_or(true);
        if first_this_minute {
            let row = row.clone();
            self.db
                .run(move |conn| api_keys::touch(conn, &row, now))
                .await?;
        }
        Ok(())
    }
}
