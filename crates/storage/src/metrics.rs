//! Prometheus metrics: HTTP traffic by route pattern (never by raw path, so
//! ids cannot blow up the label set), rate-limit refusals, refusals of
//! anonymous requests, audit events.
//!
//! Owned by [`crate::Core`]: rate limiting and auditing count here on every
//! surface (hosted pages, OAuth, SAML, `/v1`), so an operator's alert on
//! `trusec_rate_limited_total{family="login"}` sees every refusal. Labels
//! come from closed enums ([`Family`], [`EventType`], [`RefusalReason`]),
//! never from request text.

use crate::audit::EventType;
use crate::rate_limit::Family;
use crate::refusal::RefusalReason;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family as Series;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FamilyLabels {
    family: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    kind: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event_type: String,
}

fn latency_histogram() -> Histogram {
    // 100 µs … ~1.6 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

/// How many samples of [`Totals`] are kept: a day at one every ten
/// minutes (the sampler's period, `startup::spawn_metrics_sampler`).
pub const HISTORY: usize = 144;

/// The counts the console's dashboard shows, read off the same counters
/// as `/metrics` (so since this process started, on this instance).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub sign_ins: u64,
    pub sign_in_failures: u64,
    pub tokens_issued: u64,
    pub assertions_issued: u64,
    pub rate_limited: u64,
}

impl Totals {
    /// What was counted between `earlier` and `self`.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            sign_ins: self.sign_ins.saturating_sub(earlier.sign_ins),
            sign_in_failures: self
                .sign_in_failures
                .saturating_sub(earlier.sign_in_failures),
            tokens_issued: self.tokens_issued.saturating_sub(earlier.tokens_issued),
            assertions_issued: self
                .assertions_issued
                .saturating_sub(earlier.assertions_issued),
            rate_limited: self.rate_limited.saturating_sub(earlier.rate_limited),
        }
    }
}

pub struct Metrics {
    /// Samples of [`Totals`], oldest first, at most [`HISTORY`].
    history: std::sync::Mutex<std::collections::VecDeque<(chrono::DateTime<chrono::Utc>, Totals)>>,
    registry: Registry,
    requests: Series<HttpLabels, Counter>,
    latency: Series<RouteLabels, Histogram, fn() -> Histogram>,
    rate_limited: Series<FamilyLabels, Counter>,
    rate_limiter_unavailable: Series<FamilyLabels, Counter>,
    audit_events: Series<EventLabels, Counter>,
    refusals: Series<RefusalLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("trusec");
        let requests = Series::<HttpLabels, Counter>::default();
        let latency: Series<RouteLabels, Histogram, fn() -> Histogram> =
            Series::new_with_constructor(latency_histogram);
        let rate_limited = Series::<FamilyLabels, Counter>::default();
        let rate_limiter_unavailable = Series::<FamilyLabels, Counter>::default();
        let audit_events = Series::<EventLabels, Counter>::default();
        let refusals = Series::<RefusalLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit",
            rate_limited.clone(),
        );
        registry.register(
            "rate_limiter_unavailable",
            "Rate-limit checks that could not reach the store and let the request through",
            rate_limiter_unavailable.clone(),
        );
        registry.register(
            "audit_events",
            "Audit events recorded",
            audit_events.clone(),
        );
        registry.register(
            "refusals",
            "Anonymous requests refused (rate limits, SAML messages), by kind and reason; each address, reason and minute is audited once",
            refusals.clone(),
        );
        Self {
            history: std::sync::Mutex::default(),
            registry,
            requests,
            latency,
            rate_limited,
            rate_limiter_unavailable,
            audit_events,
            refusals,
        }
    }

    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&HttpLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    pub fn rate_limited(&self, family: Family) {
        self.rate_limited
            .get_or_create(&FamilyLabels {
                family: family.as_str().to_owned(),
            })
            .inc();
    }

    /// A rate-limit check that could not reach the store (and let the
    /// request through).
    pub fn rate_limiter_unavailable(&self, family: Family) {
        self.rate_limiter_unavailable
            .get_or_create(&FamilyLabels {
                family: family.as_str().to_owned(),
            })
            .inc();
    }

    /// A refused request, audited or not.
    pub fn refused(&self, reason: RefusalReason) {
        self.refusals
            .get_or_create(&RefusalLabels {
                kind: reason.kind().as_str(),
                reason: reason.code(),
            })
            .inc();
    }

    pub fn audit_event(&self, event_type: EventType) {
        self.audit_events
            .get_or_create(&EventLabels {
                event_type: event_type.as_str().to_owned(),
            })
            .inc();
    }

    fn event_count(&self, event_type: EventType) -> u64 {
        self.audit_events
            .get_or_create(&EventLabels {
                event_type: event_type.as_str().to_owned(),
            })
            .get()
    }

    /// The dashboard's counts now.
    pub fn totals(&self) -> Totals {
        Totals {
            sign_ins: self.event_count(EventType::UserLoginSucceeded),
            sign_in_failures: self.event_count(EventType::UserLoginFailed)
                + self.event_count(EventType::UserMfaFailed),
            tokens_issued: self.event_count(EventType::OAuthTokenIssued)
                + self.event_count(EventType::OAuthTokenRefreshed),
            assertions_issued: self.event_count(EventType::SamlAssertionIssued),
            rate_limited: Family::ALL
                .iter()
                .map(|f| {
                    self.rate_limited
                        .get_or_create(&FamilyLabels {
                            family: f.as_str().to_owned(),
                        })
                        .get()
                })
                .sum(),
        }
    }

    /// Records the totals at `at`, dropping the oldest beyond [`HISTORY`].
    pub fn sample(&self, at: chrono::DateTime<chrono::Utc>) {
        let totals = self.totals();
        let mut history = self
            .history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back((at, totals));
    }

    /// The samples, oldest first.
    pub fn history(&self) -> Vec<(chrono::DateTime<chrono::Utc>, Totals)> {
        self.history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }

    /// The OpenMetrics text exposition.
    ///
    /// # Errors
    /// When encoding fails (it writes to a String, so only on a bug).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
