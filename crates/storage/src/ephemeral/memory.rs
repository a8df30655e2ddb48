//! The in-process ephemeral store: a mutex-guarded map with lazy expiry,
//! timed by the shared [`Clock`], and bounded in bytes.
//!
//! Bound: once the entries take `max_bytes` (keys, values and a fixed
//! overhead each), a *new* key of a kind that [`WhenFull::Refuse`]s (state
//! anyone can make without signing in) is refused with
//! [`StoreFull`]; everything else — revocations, replay markers, rate
//! limits — is stored all the same, so nothing already promised is ever
//! evicted or refused. Overwriting a key that exists is never refused (a
//! sign-in in progress goes on).
//!
//! Expiry: an index ordered by expiry lets each write sweep a bounded
//! number of expired entries (and a refused write a bounded number more
//! before it gives up), so no request pays for the whole map.

use super::keys::WhenFull;
use crate::clock::Clock;
use crate::rate_limit::{Decision, Limit, gcra_refund, gcra_step};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

/// Expired entries removed per write, and before refusing one.
const SWEEP_PER_WRITE: usize = 32;
const SWEEP_WHEN_FULL: usize = 1024;
/// What an entry costs beyond its key and value: two map slots and the
/// index entry, roughly.
const ENTRY_OVERHEAD: usize = 96;
/// The default bound (`TRUSEC_MEMORY_STORE_MAX_MB`).
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

/// A write refused because the store is at its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreFull;

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires_us: i64,
    /// Its place in the expiry index (`(expires_us, serial)`).
    serial: u64,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<String, Entry>,
    by_expiry: BTreeMap<(i64, u64), String>,
    bytes: usize,
    serial: u64,
}

fn cost(key: &str, value: &[u8]) -> usize {
    // The key is held twice: in the map and in the expiry index.
    2 * key.len() + value.len() + ENTRY_OVERHEAD
}

impl Inner {
    fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.map.remove(key)?;
        self.by_expiry.remove(&(entry.expires_us, entry.serial));
        self.bytes = self.bytes.saturating_sub(cost(key, &entry.value));
        Some(entry)
    }

    /// Removes up to `budget` entries that expired by `now`.
    fn sweep(&mut self, now: i64, budget: usize) {
        for _ in 0..budget {
            let Some((&(expires_us, _), _)) = self.by_expiry.first_key_value() else {
                return;
            };
            if expires_us > now {
                return;
            }
            if let Some((_, key)) = self.by_expiry.pop_first() {
                self.remove(&key);
            }
        }
    }

    fn live(&self, key: &str, now: i64) -> Option<&Entry> {
        self.map.get(key).filter(|e| e.expires_us > now)
    }

    /// Inserts or overwrites `key`, unless it is new, of a kind refused
    /// when full, and the store is full (after a bounded sweep).
    fn insert(
        &mut self,
        key: &str,
        value: &[u8],
        expires_us: i64,
        when_full: WhenFull,
        now: i64,
        max_bytes: usize,
    ) -> Result<(), StoreFull> {
        self.sweep(now, SWEEP_PER_WRITE);
        let is_new = self.live(key, now).is_none();
        if is_new && when_full == WhenFull::Refuse && self.bytes >= max_bytes {
            self.sweep(now, SWEEP_WHEN_FULL);
            if self.bytes >= max_bytes {
                return Err(StoreFull);
            }
        }
        self.remove(key);
        self.serial += 1;
        let serial = self.serial;
        self.by_expiry.insert((expires_us, serial), key.to_owned());
        self.bytes += cost(key, value);
        self.map.insert(
            key.to_owned(),
            Entry {
                value: value.to_vec(),
                expires_us,
                serial,
            },
        );
        Ok(())
    }
}

#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    clock: Clock,
    max_bytes: usize,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl MemoryStore {
    /// A store holding about `max_bytes` of refusable state at most.
    pub fn new(clock: Clock, max_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            clock,
            max_bytes,
        }
    }

    fn now_us(&self) -> i64 {
        self.clock.now().timestamp_micros()
    }

    /// The map, even if a panic elsewhere poisoned the lock: every update
    /// below keeps the map, the index and the byte count in step before it
    /// can panic (it does not), so the state is never half-changed.
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What the entries take, as the bound counts it.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Stores `value` under `key` for `ttl`.
    ///
    /// # Errors
    /// [`StoreFull`] for a new refusable key while the store is full.
    pub fn put(
        &self,
        key: &str,
        when_full: WhenFull,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), StoreFull> {
        let now = self.now_us();
        let expires = now.saturating_add(micros(ttl));
        self.lock()
            .insert(key, value, expires, when_full, now, self.max_bytes)
    }

    /// Stores `value` only if `key` is absent; whether it was stored.
    ///
    /// # Errors
    /// As [`Self::put`].
    pub fn put_if_absent(
        &self,
        key: &str,
        when_full: WhenFull,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreFull> {
        let now = self.now_us();
        let mut inner = self.lock();
        if inner.live(key, now).is_some() {
            return Ok(false);
        }
        let expires = now.saturating_add(micros(ttl));
        inner.insert(key, value, expires, when_full, now, self.max_bytes)?;
        Ok(true)
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let now = self.now_us();
        self.lock().live(key, now).map(|e| e.value.clone())
    }

    /// Several keys under one lock.
    pub fn get_many(&self, keys: &[&str]) -> Vec<Option<Vec<u8>>> {
        let now = self.now_us();
        let inner = self.lock();
        keys.iter()
            .map(|key| inner.live(key, now).map(|e| e.value.clone()))
            .collect()
    }

    pub fn take(&self, key: &str) -> Option<Vec<u8>> {
        let now = self.now_us();
        self.lock()
            .remove(key)
            .filter(|e| e.expires_us > now)
            .map(|e| e.value)
    }

    pub fn delete(&self, keys: &[&str]) {
        let mut inner = self.lock();
        for key in keys {
            inner.remove(key);
        }
    }

    /// Stores a GCRA arrival time, expiring with it. Always stored
    /// (`WhenFull::Store` is never refused): refusing one would let the
    /// caller through.
    fn set_tat(&self, inner: &mut Inner, key: &str, tat: i64, now: i64) {
        let _never_refused = inner.insert(
            key,
            &tat.to_be_bytes(),
            tat,
            WhenFull::Store,
            now,
            self.max_bytes,
        );
    }

    /// One GCRA step.
    pub fn rate_limit(&self, key: &str, limit: &Limit) -> Decision {
        let now = self.now_us();
        let mut inner = self.lock();
        let tat = stored_tat(&inner, key, now);
        let (decision, new_tat) = gcra_step(tat, now, limit);
        if let Some(tat) = new_tat {
            self.set_tat(&mut inner, key, tat, now);
        }
        decision
    }

    pub fn rate_limit_refund(&self, key: &str, limit: &Limit) {
        let now = self.now_us();
        let mut inner = self.lock();
        let tat = stored_tat(&inner, key, now);
        match gcra_refund(tat, now, limit) {
            Some(tat) => self.set_tat(&mut inner, key, tat, now),
            None => {
                inner.remove(key);
            }
        }
    }
}

/// The GCRA arrival time stored under `key`, if it is still live.
fn stored_tat(inner: &Inner, key: &str, now: i64) -> Option<i64> {
    inner
        .live(key, now)
        .and_then(|e| <[u8; 8]>::try_from(e.value.as_slice()).ok())
        .map(i64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeDelta};

    const TEN: Duration = Duration::from_secs(10);

    fn fake() -> Clock {
        Clock::fake(DateTime::from_timestamp(1_700_000_000, 0).unwrap())
    }

    #[test]
    fn entries_expire_with_the_clock() {
        let clock = fake();
        let store = MemoryStore::new(clock.clone(), DEFAULT_MAX_BYTES);
        store.put("a", WhenFull::Refuse, b"1", TEN).unwrap();
        assert_eq!(store.get("a"), Some(b"1".to_vec()));
        assert_eq!(
            store.put_if_absent("a", WhenFull::Refuse, b"2", TEN),
            Ok(false)
        );
        clock.advance(TimeDelta::seconds(11));
        assert_eq!(store.get("a"), None);
        assert_eq!(
            store.put_if_absent("a", WhenFull::Refuse, b"2", TEN),
            Ok(true)
        );
        assert_eq!(store.take("a"), Some(b"2".to_vec()));
        assert_eq!(store.take("a"), None);
        assert_eq!(store.bytes(), 0);
    }

    #[test]
    fn when_full_only_new_refusable_state_is_refused() {
        let clock = fake();
        let one = cost("k0", b"v");
        let store = MemoryStore::new(clock.clone(), 3 * one);
        for i in 0..3 {
            store
                .put(&format!("k{i}"), WhenFull::Refuse, b"v", TEN)
                .unwrap();
        }
        assert_eq!(store.put("k3", WhenFull::Refuse, b"v", TEN), Err(StoreFull));
        assert_eq!(
            store.put_if_absent("k3", WhenFull::Refuse, b"v", TEN),
            Err(StoreFull)
        );
        // What must be kept is kept, beyond the bound.
        store.put("revoked", WhenFull::Store, b"1", TEN).unwrap();
        assert_eq!(
            store.put_if_absent("replay", WhenFull::Store, b"1", TEN),
            Ok(true)
        );
        // A sign-in in progress goes on.
        store.put("k1", WhenFull::Refuse, b"w", TEN).unwrap();
        assert_eq!(store.get("k1"), Some(b"w".to_vec()));
        // Nothing was evicted.
        for key in ["k0", "k1", "k2", "revoked", "replay"] {
            assert!(store.get(key).is_some(), "{key}");
        }
        // Once entries expire, the sweep makes room again.
        clock.advance(TimeDelta::seconds(11));
        store.put("k3", WhenFull::Refuse, b"v", TEN).unwrap();
        assert_eq!(store.bytes(), one);
    }

    #[test]
    fn each_write_sweeps_a_bounded_number_of_expired_entries() {
        let clock = fake();
        let store = MemoryStore::new(clock.clone(), DEFAULT_MAX_BYTES);
        for i in 0..100 {
            store
                .put(&format!("old{i}"), WhenFull::Store, b"v", TEN)
                .unwrap();
        }
        clock.advance(TimeDelta::seconds(11));
        store.put("new", WhenFull::Store, b"v", TEN).unwrap();
        assert_eq!(store.lock().map.len(), 101 - SWEEP_PER_WRITE);
        for i in 0..3 {
            store
                .put(&format!("n{i}"), WhenFull::Store, b"v", TEN)
                .unwrap();
        }
        assert_eq!(store.lock().map.len(), 4);
        assert_eq!(store.bytes(), cost("new", b"v") + 3 * cost("n0", b"v"));
    }
}
