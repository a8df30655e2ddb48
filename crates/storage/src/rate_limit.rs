//! GCRA (generic cell rate algorithm) rate limiting. A limit of `count` per
//! `period` admits bursts of `count` and refills smoothly; the only state per
//! key is one timestamp (the "theoretical arrival time"), which the ephemeral
//! store keeps, so limits hold across instances when that store is Redis.

use std::time::Duration;

/// `count` requests per `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub count: u32,
    pub period: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("expected N/s, N/min, N/h or \"off\", e.g. 60/min")]
pub struct LimitParseError;

impl Limit {
    /// Parses `N/s`, `N/min`, `N/h` (or `N/sec`, `N/minute`, `N/hour`).
    /// `off` yields `None`.
    ///
    /// # Errors
    /// Anything else, or a zero count.
    pub fn parse(s: &str) -> Result<Option<Self>, LimitParseError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (count, unit) = s.split_once('/').ok_or(LimitParseError)?;
        let count: u32 = count.trim().parse().map_err(|_| LimitParseError)?;
        let secs = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "min" | "m" | "minute" => 60,
            "h" | "hour" => 3600,
            _ => return Err(LimitParseError),
        };
        if count == 0 {
            return Err(LimitParseError);
        }
        Ok(Some(Self {
            count,
            period: Duration::from_secs(secs),
        }))
    }

    /// Microseconds between two requests at the sustained rate.
    pub fn emission_interval_us(&self) -> i64 {
        let period = i64::try_from(self.period.as_micros()).unwrap_or(i64::MAX);
        (period / i64::from(self.count)).max(1)
    }

    /// How far ahead of now the arrival time may run: the whole burst.
    pub fn tolerance_us(&self) -> i64 {
        self.emission_interval_us()
            .saturating_mul(i64::from(self.count))
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.period.as_secs() {
            1 => write!(f, "{}/s", self.count),
            60 => write!(f, "{}/min", self.count),
            _ => write!(f, "{}/h", self.count),
        }
    }
}

/// The verdict for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed { remaining: u32 },
    Limited { retry_after: Duration },
}

/// One GCRA step. `tat` is the stored arrival time (if any), all in
/// microseconds. Returns the verdict and, when allowed, the new `tat` to store
/// (it may expire at that instant: past it the key is as good as fresh).
pub fn gcra_step(tat: Option<i64>, now: i64, limit: &Limit) -> (Decision, Option<i64>) {
    let interval = limit.emission_interval_us();
    let tat = tat.map_or(now, |t| t.max(now));
    let new_tat = tat.saturating_add(interval);
    let allow_at = new_tat.saturating_sub(limit.tolerance_us());
    if now < allow_at {
        let wait = u64::try_from(allow_at - now).unwrap_or(0);
        return (
            Decision::Limited {
                retry_after: Duration::from_micros(wait),
            },
            None,
        );
    }
    let remaining = u32::try_from((now - allow_at) / interval).unwrap_or(u32::MAX);
    (Decision::Allowed { remaining }, Some(new_tat))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_limits() {
        assert_eq!(
            Limit::parse("60/min"),
            Ok(Some(Limit {
                count: 60,
                period: Duration::from_secs(60)
            }))
        );
        assert_eq!(Limit::parse("off"), Ok(None));
        assert_eq!(Limit::parse("0/s"), Err(LimitParseError));
        assert_eq!(Limit::parse("10/day"), Err(LimitParseError));
        assert_eq!(Limit::parse("ten/s"), Err(LimitParseError));
        assert_eq!(Limit::parse("5/h").unwrap().unwrap().to_string(), "5/h");
    }

    #[test]
    fn burst_then_refill() {
        let limit = Limit::parse("3/s").unwrap().unwrap();
        let mut tat = None;
        let now = 1_000_000;
        for expected in [2, 1, 0] {
            let (d, t) = gcra_step(tat, now, &limit);
            assert_eq!(
                d,
                Decision::Allowed {
                    remaining: expected
                }
            );
            tat = t;
        }
        let (d, t) = gcra_step(tat, now, &limit);
        assert!(
            matches!(d, Decision::Limited { retry_after } if retry_after == Duration::from_micros(333_333))
        );
        assert_eq!(t, None);
        // One interval later exactly one more request fits.
        let (d, _) = gcra_step(tat, now + 333_333, &limit);
        assert_eq!(d, Decision::Allowed { remaining: 0 });
    }
}
