//! The one source of "now". Production uses the system clock; tests use a
//! [`Clock::fake`] they can move forward, so expiry is tested without sleeping.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    /// Microseconds since the epoch, shared by every clone.
    Fake(Arc<AtomicI64>),
}

impl Clock {
    /// A fake clock starting at `start`.
    pub fn fake(start: DateTime<Utc>) -> Self {
        Self::Fake(Arc::new(AtomicI64::new(start.timestamp_micros())))
    }

    /// Now, truncated to whole microseconds: the precision both databases keep,
    /// so a value read back equals the value written (the audit chain hashes it).
    pub fn now(&self) -> DateTime<Utc> {
        let micros = match self {
            #[expect(clippy::disallowed_methods, reason = "the one sanctioned call")]
            Self::System => Utc::now().timestamp_micros(),
            Self::Fake(t) => t.load(Ordering::SeqCst),
        };
        DateTime::from_timestamp_micros(micros).unwrap_or_default()
    }

    /// Now as the naive UTC value stored in TIMESTAMP columns.
    pub fn now_naive(&self) -> NaiveDateTime {
        self.now().naive_utc()
    }

    /// Moves a fake clock forward; does nothing to the system clock.
    pub fn advance(&self, by: TimeDelta) {
        if let Self::Fake(t) = self {
            t.fetch_add(by.num_microseconds().unwrap_or(i64::MAX), Ordering::SeqCst);
        }
    }
}

/// Formats a stored timestamp as RFC 3339 UTC with microseconds.
pub fn rfc3339(t: NaiveDateTime) -> String {
    t.and_utc().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_advances_and_truncates() {
        let start = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        let clock = Clock::fake(start);
        assert_eq!(clock.now().timestamp_subsec_nanos(), 123_456_000);
        clock.advance(TimeDelta::seconds(5));
        assert_eq!(clock.now().timestamp(), 1_700_000_005);
        assert_eq!(rfc3339(clock.now_naive()), "2023-11-14T22:13:25.123456Z");
    }
}
