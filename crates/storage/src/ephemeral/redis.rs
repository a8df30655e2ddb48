//! The Redis ephemeral store, over a `ConnectionManager` that reconnects by
//! itself. Every key lives under a prefix.

use crate::error::StorageError;
use crate::rate_limit::{Decision, Limit};
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// GCRA in one atomic step, timed by the Redis server's own clock so that
/// every instance agrees on "now". Returns {allowed, remaining_or_wait_us}.
const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if now < allow_at then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return {1, math.floor((now - allow_at) / interval)}
";

/// Gives back one GCRA step (`rate_limit::gcra_refund`), atomically and on
/// the same server clock.
const GCRA_REFUND_SCRIPT: &str = r"
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local new_tat = tat - tonumber(ARGV[1])
if new_tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
end
return 1
";

#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    gcra: std::sync::Arc<redis::Script>,
    gcra_refund: std::sync::Arc<redis::Script>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish()
    }
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisStore {
    /// Connects and checks the connection once.
    ///
    /// # Errors
    /// `Unavailable` when Redis cannot be reached.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StorageError> {
        let client = redis::Client::open(url).map_err(StorageError::unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(StorageError::unavailable)?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            gcra: std::sync::Arc::new(redis::Script::new(GCRA_SCRIPT)),
            gcra_refund: std::sync::Arc::new(redis::Script::new(GCRA_REFUND_SCRIPT)),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StorageError> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl_ms(ttl))
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    pub async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StorageError> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms(ttl))
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let mut conn = self.conn.clone();
        Ok(conn.get(self.key(key)).await?)
    }

    /// Several keys in one round trip (MGET).
    pub async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("MGET");
        for key in keys {
            cmd.arg(self.key(key));
        }
        Ok(cmd.query_async(&mut conn).await?)
    }

    pub async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("GETDEL")
            .arg(self.key(key))
            .query_async(&mut conn)
            .await?)
    }

    pub async fn delete(&self, keys: &[&str]) -> Result<(), StorageError> {
        let mut conn = self.conn.clone();
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        conn.del::<_, ()>(keys).await?;
        Ok(())
    }

    pub async fn rate_limit(&self, key: &str, limit: &Limit) -> Result<Decision, StorageError> {
        let mut conn = self.conn.clone();
        let (allowed, n): (i64, i64) = self
            .gcra
            .key(self.key(key))
            .arg(limit.emission_interval_us())
            .arg(limit.tolerance_us())
            .invoke_async(&mut conn)
            .await?;
        Ok(if allowed == 1 {
            Decision::Allowed {
                remaining: u32::try_from(n).unwrap_or(0),
            }
        } else {
            Decision::Limited {
                retry_after: Duration::from_micros(u64::try_from(n).unwrap_or(0)),
            }
        })
    }

    pub async fn rate_limit_refund(&self, key: &str, limit: &Limit) -> Result<(), StorageError> {
        let mut conn = self.conn.clone();
        self.gcra_refund
            .key(self.key(key))
            .arg(limit.emission_interval_us())
            .invoke_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    /// Redis's `maxmemory-policy`, when `CONFIG GET` is allowed (managed
    /// services often disable it: then `None`).
    pub async fn maxmemory_policy(&self) -> Option<String> {
        let mut conn = self.conn.clone();
        let reply: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut conn)
            .await
            .ok()?;
        reply.into_iter().nth(1)
    }

    pub async fn ping(&self) -> Result<(), StorageError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok(())
    }
}
