//! The in-process ephemeral store: a mutex-guarded map with lazy expiry and
//! an occasional sweep, timed by the shared [`Clock`].

use crate::clock::Clock;
use crate::rate_limit::{Decision, Limit, gcra_refund, gcra_step};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sweep expired entries after this many writes.
const SWEEP_EVERY: u64 = 4096;

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires_us: i64,
}

#[derive(Debug)]
pub struct MemoryStore {
    map: Mutex<HashMap<String, Entry>>,
    clock: Clock,
    writes: AtomicU64,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl MemoryStore {
    pub fn new(clock: Clock) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            clock,
            writes: AtomicU64::new(0),
        }
    }

    fn now_us(&self) -> i64 {
        self.clock.now().timestamp_micros()
    }

    /// The map, even if a panic elsewhere poisoned the lock: every update
    /// below is a single insert or remove, so the map is never half-changed.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn after_write(&self, map: &mut HashMap<String, Entry>, now: i64) {
        if self.writes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            map.retain(|_, e| e.expires_us > now);
        }
    }

    pub fn put(&self, key: &str, value: &[u8], ttl: Duration) {
        let now = self.now_us();
        let mut map = self.lock();
        map.insert(
            key.to_owned(),
            Entry {
                value: value.to_vec(),
                expires_us: now.saturating_add(micros(ttl)),
            },
        );
        self.after_write(&mut map, now);
    }

    pub fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> bool {
        let now = self.now_us();
        let mut map = self.lock();
        if map.get(key).is_some_and(|e| e.expires_us > now) {
            return false;
        }
        map.insert(
            key.to_owned(),
            Entry {
                value: value.to_vec(),
                expires_us: now.saturating_add(micros(ttl)),
            },
        );
        self.after_write(&mut map, now);
        true
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let now = self.now_us();
        self.lock()
            .get(key)
            .filter(|e| e.expires_us > now)
            .map(|e| e.value.clone())
    }

    pub fn take(&self, key: &str) -> Option<Vec<u8>> {
        let now = self.now_us();
        self.lock()
            .remove(key)
            .filter(|e| e.expires_us > now)
            .map(|e| e.value)
    }

    pub fn delete(&self, keys: &[&str]) {
        let mut map = self.lock();
        for key in keys {
            map.remove(*key);
        }
    }

    pub fn rate_limit(&self, key: &str, limit: &Limit) -> Decision {
        let now = self.now_us();
        let mut map = self.lock();
        let tat = stored_tat(&map, key, now);
        let (decision, new_tat) = gcra_step(tat, now, limit);
        if let Some(tat) = new_tat {
            map.insert(
                key.to_owned(),
                Entry {
                    value: tat.to_be_bytes().to_vec(),
                    expires_us: tat,
                },
            );
            self.after_write(&mut map, now);
        }
        decision
    }

    pub fn rate_limit_refund(&self, key: &str, limit: &Limit) {
        let now = self.now_us();
        let mut map = self.lock();
        let tat = stored_tat(&map, key, now);
        match gcra_refund(tat, now, limit) {
            Some(tat) => {
                map.insert(
                    key.to_owned(),
                    Entry {
                        value: tat.to_be_bytes().to_vec(),
                        expires_us: tat,
                    },
                );
            }
            None => {
                map.remove(key);
            }
        }
    }
}

/// The GCRA arrival time stored under `key`, if it is still live.
fn stored_tat(map: &HashMap<String, Entry>, key: &str, now: i64) -> Option<i64> {
    map.get(key)
        .filter(|e| e.expires_us > now)
        .and_then(|e| <[u8; 8]>::try_from(e.value.as_slice()).ok())
        .map(i64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeDelta};

    #[test]
    fn entries_expire_with_the_clock() {
        let clock = Clock::fake(DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let store = MemoryStore::new(clock.clone());
        store.put("a", b"1", Duration::from_secs(10));
        assert_eq!(store.get("a"), Some(b"1".to_vec()));
        assert!(!store.put_if_absent("a", b"2", Duration::from_secs(10)));
        clock.advance(TimeDelta::seconds(11));
        assert_eq!(store.get("a"), None);
        assert!(store.put_if_absent("a", b"2", Duration::from_secs(10)));
        assert_eq!(store.take("a"), Some(b"2".to_vec()));
        assert_eq!(store.take("a"), None);
    }
}
