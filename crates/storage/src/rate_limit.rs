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

/// The endpoint families the contract limits separately
/// (`TRUSEC_RATE_LIMIT_*`, `[rate_limits]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// Failed sign-ins on the hosted login page.
    Login,
    /// `POST /oauth/token`, revocation, introspection.
    Token,
    /// The `/v1` management API.
    Management,
    /// Anonymous RFC 7591 registration.
    Registration,
    /// `/oauth/authorize` and `/oauth/logout`: anonymous requests that
    /// store an interaction for minutes.
    Authorize,
    /// `/saml/sso` and `/saml/slo`: anonymous messages that cost XML parsing
    /// and signature checks, and may store a pending request.
    Saml,
    /// Wrong user codes typed on the hosted `/device` page (RFC 8628 §5.1:
    /// guessing must be impractical), per IP.
    DeviceCode,
}

impl Family {
    /// Every family (a new variant must be added here: the dashboard sums
    /// refusals over these).
    pub const ALL: [Self; 6] = [
        Self::Login,
        Self::Token,
        Self::Management,
        Self::Registration,
        Self::Authorize,
        Self::Saml,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Token => "token",
            Self::Management => "management",
            Self::Registration => "registration",
            Self::Authorize => "authorize",
            Self::Saml => "saml",
            Self::DeviceCode => "device_code",
        }
    }

    /// How many subjects' worth of the configured limit `subject` gets.
    ///
    /// - The machine surfaces (`Token`, `Management`) give an IP ten callers'
    ///   worth: several services may share an address.
    /// - `Login` counts failed sign-ins only, and its tight budget (the
    ///   configured limit) is per account *and* address, so an attacker on
    ///   one address slows down only their own guesses there and cannot lock
    ///   the account out of sign-ins from another. Two looser ceilings bound
    ///   what is left: per account, ten addresses' worth, so guessing spread
    ///   over many addresses is still slow (10/min by default gives 100
    ///   failures a minute, about 144,000 a day, far below what a password
    ///   list needs); per IP, a hundred accounts' worth, so a hundred people
    ///   behind one office NAT who each mistype once still stay far below it
    ///   (the contract), while one address still cannot try a password
    ///   against thousands of accounts a minute.
    /// - `Registration`, `Authorize`, `Saml` and `DeviceCode` are anonymous and per IP by
    ///   nature.
    pub fn multiplier(self, subject: &Subject<'_>) -> u32 {
        match (self, subject) {
            (Self::Token | Self::Management, Subject::Ip(_)) => 10,
            (Self::Login, Subject::Ip(_)) => 100,
            (Self::Login, Subject::Account { .. }) => 10,
            (
                _,
                Subject::Ip(_)
                | Subject::Caller(_)
                | Subject::Account { .. }
                | Subject::AccountAtIp { .. }
                | Subject::CallerAtIp { .. },
            ) => 1,
        }
    }

    /// `limit` scaled for `subject` ([`Self::multiplier`]).
    pub fn budget(self, limit: Limit, subject: &Subject<'_>) -> Limit {
        Limit {
            count: limit.count.saturating_mul(self.multiplier(subject)),
            period: limit.period,
        }
    }
}

/// The configured limit of each family; `None` switches one off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimits {
    pub login: Option<Limit>,
    pub token: Option<Limit>,
    pub management: Option<Limit>,
    pub registration: Option<Limit>,
    pub authorize: Option<Limit>,
    pub saml: Option<Limit>,
    pub device_code: Option<Limit>,
}

impl RateLimits {
    pub fn of(&self, family: Family) -> Option<Limit> {
        match family {
            Family::Login => self.login,
            Family::Token => self.token,
            Family::Management => self.management,
            Family::Registration => self.registration,
            Family::Authorize => self.authorize,
            Family::Saml => self.saml,
            Family::DeviceCode => self.device_code,
        }
    }
}

/// What one budget is counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject<'a> {
    /// A client IP (`None`: the peer address is unknown, which all such
    /// requests share).
    Ip(Option<&'a str>),
    /// An API key, an OAuth client: the authenticated caller's id.
    Caller(&'a str),
    /// A sign-in account, per environment, by normalised e-mail.
    Account {
        environment: &'a str,
        email: &'a str,
    },
    /// A sign-in account from one client IP: the tight budget of failed
    /// sign-ins, so failures from one address do not lock out another.
    AccountAtIp {
        environment: &'a str,
        email: &'a str,
        ip: Option<&'a str>,
    },
    /// A (public) OAuth client from one client IP: failed grants of a client
    /// that cannot authenticate, so nobody can spend its budget elsewhere by
    /// sending its `client_id`.
    CallerAtIp {
        caller: &'a str,
        ip: Option<&'a str>,
    },
}

impl Subject<'_> {
    /// The part of the store key after the family.
    pub fn key_part(&self) -> String {
        match self {
            Self::Ip(ip) => format!("ip:{}", budget_of(*ip)),
            Self::Caller(id) => format!("id:{id}"),
            Self::Account { environment, email } => format!("account:{environment}:{email}"),
            // The fixed-format parts (IP, environment id) go first and the
            // free-form one (an e-mail, a client id) last, so two subjects
            // cannot spell the same key.
            Self::AccountAtIp {
                environment,
                email,
                ip,
            } => format!("account-ip:{}:{environment}:{email}", budget_of(*ip)),
            Self::CallerAtIp { caller, ip } => {
                format!("id-ip:{}:{caller}", budget_of(*ip))
            }
        }
    }
}

fn budget_of(ip: Option<&str>) -> String {
    ip.map_or_else(|| "unknown".to_owned(), ip_budget)
}

/// The budget an address spends: an IPv4 address its own, an IPv6 address
/// its /64 (one subscriber or host usually holds a whole /64, and could
/// otherwise rotate through 2^64 budgets).
fn ip_budget(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => {
            let [a, b, c, d, ..] = v6.segments();
            format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
        }
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_owned(),
    }
}

/// A refusal: the limit of `family` is exhausted for now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rate limit exceeded")]
pub struct Limited {
    pub family: Family,
    pub retry_after: Duration,
}

impl Limited {
    /// The `Retry-After` value in whole seconds, the one rule for every
    /// surface: rounded up (a client that waits exactly this long must be
    /// let through), and at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
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

/// Gives back one step of `limit` to a budget whose stored arrival time is
/// `tat` (a reservation the request turned out not to need, such as a sign-in
/// that succeeded). Returns the arrival time to store, or `None` when the key
/// is as good as fresh and can go.
pub fn gcra_refund(tat: Option<i64>, now: i64, limit: &Limit) -> Option<i64> {
    let tat = tat?.saturating_sub(limit.emission_interval_us());
    (tat > now).then_some(tat)
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
    fn ipv6_clients_share_their_slash_64() {
        let a = Subject::Ip(Some("2001:db8:1:2:aaaa::1")).key_part();
        let b = Subject::Ip(Some("2001:db8:1:2:bbbb::9")).key_part();
        let c = Subject::Ip(Some("2001:db8:1:3::1")).key_part();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(Subject::Ip(Some("192.0.2.1")).key_part(), "ip:192.0.2.1");
    }

    #[test]
    fn retry_after_rounds_up_and_is_at_least_one_second() {
        let at = |ms| Limited {
            family: Family::Login,
            retry_after: Duration::from_millis(ms),
        };
        assert_eq!(at(1500).retry_after_secs(), 2);
        assert_eq!(at(2000).retry_after_secs(), 2);
        assert_eq!(at(1).retry_after_secs(), 1);
        assert_eq!(at(0).retry_after_secs(), 1);
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

    #[test]
    fn a_refund_gives_back_exactly_one_step() {
        let limit = Limit::parse("2/s").unwrap().unwrap();
        let now = 1_000_000;
        let (_, tat) = gcra_step(None, now, &limit);
        let (_, tat) = gcra_step(tat, now, &limit);
        assert!(matches!(
            gcra_step(tat, now, &limit).0,
            Decision::Limited { .. }
        ));
        let tat = gcra_refund(tat, now, &limit);
        assert_eq!(
            gcra_step(tat, now, &limit).0,
            Decision::Allowed { remaining: 0 }
        );
        // Refunding the last step leaves nothing to store.
        assert_eq!(gcra_refund(Some(now + 500_000), now, &limit), None);
        assert_eq!(gcra_refund(None, now, &limit), None);
    }
}
