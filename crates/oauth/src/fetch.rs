//! The one owner of outbound HTTP: every document TruSec fetches from a URL
//! someone else chose (a client's `jwks_uri`, a client ID metadata
//! document) goes through [`Fetcher`], so every such fetch has the same
//! bounds:
//!
//! - https only (http only with `TRUSEC_OUTBOUND_ALLOW_HTTP`);
//! - an SSRF guard (draft-ietf-oauth-client-id-metadata-document §8.6, RFC
//!   7591 §5): the host is resolved here, and every address it resolves to
//!   must be public — not loopback, private, link-local, unique-local,
//!   CGNAT, multicast, unspecified, documentation or reserved, nor an
//!   IPv4-mapped, NAT64 or 6to4 form of one — unless
//!   `TRUSEC_OUTBOUND_ALLOW_PRIVATE` says otherwise. The guard is the
//!   client's DNS resolver, so the connection goes to exactly the addresses
//!   that were checked: a name that rebinds between check and connect
//!   cannot swap them. IP-literal hosts are checked before the request;
//! - no proxies from the environment, no redirects (a 3xx is refused);
//! - a connect and a total timeout; a body size cap enforced while the body
//!   streams in, not after;
//! - a cache that honours `Cache-Control` (`max-age` within a floor and a
//!   ceiling; `no-store` and `no-cache` get the floor), bounded in entries,
//!   holding only what the caller found valid ([`Fetcher::keep`]). It is
//!   per process: each instance fetches a document at most once per its
//!   lifetime in the cache, which costs little and needs no shared state.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::{Host, Url};

/// How long establishing a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a whole fetch may take, body included.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long resolving a host may take.
const DNS_TIMEOUT: Duration = Duration::from_secs(3);
/// Documents cached without a `max-age` are kept this long.
const DEFAULT_TTL: i64 = 300;
/// A `max-age` below this is raised to it: nobody can make every request
/// fetch again by asking.
const TTL_FLOOR: i64 = 60;
/// A `max-age` above this is lowered to it: a document changed at its URL
/// is picked up within a day whatever it said.
const TTL_CEILING: i64 = 86_400;
/// Documents kept at most (each at most its size cap).
const MAX_ENTRIES: usize = 1024;
/// A forced refetch of one URL (an unknown `kid`) at most this often.
pub const REFETCH_INTERVAL: i64 = 60;
const MAX_URL_LEN: usize = 2048;

/// What outbound fetches may reach (settings).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboundSettings {
    /// Fetch from loopback, private and other non-public addresses too
    /// (tests, or a deployment whose clients live on its own network).
    pub allow_private: bool,
    /// Fetch http:// URLs too (tests only: the document could be altered
    /// on the way).
    pub allow_http: bool,
}

/// Why a fetch was refused or failed; each says so in words a client
/// developer can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the URL is not an absolute URL without user info or fragment")]
    BadUrl,
    #[error("the URL must use https")]
    NotHttps,
    #[error("the host resolves to a non-public address ({0}), which this server does not fetch")]
    NonPublicAddress(IpAddr),
    #[error("the host could not be resolved")]
    Unresolved,
    #[error("the fetch timed out")]
    Timeout,
    #[error("the server could not be reached")]
    Unreachable,
    #[error("the URL answered with a redirect ({0}); redirects are not followed")]
    Redirect(u16),
    #[error("the URL answered with status {0}, not 200")]
    Status(u16),
    #[error("the document is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the fetch failed while reading the body")]
    Body,
    #[error("outbound fetches are unavailable on this server")]
    Unavailable,
}

/// A document as [`Fetcher::get`] returns it.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The body, at most the size asked for.
    pub body: Arc<[u8]>,
    /// Seconds it may be kept (`Cache-Control` within our bounds).
    ttl: i64,
    from_cache: bool,
}

struct Entry {
    body: Arc<[u8]>,
    expires_at: i64,
}

struct Inner {
    client: Option<reqwest::Client>,
    settings: OutboundSettings,
    cache: Mutex<HashMap<String, Entry>>,
    /// When each URL was last refetched on demand.
    forced: Mutex<HashMap<String, i64>>,
}

/// The outbound HTTP client and its cache; cheap to clone (one per
/// process, shared by every environment).
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Default for Fetcher {
    fn default() -> Self {
        Self::new(OutboundSettings::default())
    }
}

impl Fetcher {
    /// A fetcher with these bounds. If the TLS backend cannot start, every
    /// fetch fails ([`FetchError::Unavailable`]) and the reason is logged
    /// once, here.
    pub fn new(settings: OutboundSettings) -> Self {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(Guard {
                allow_private: settings.allow_private,
            }))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .user_agent(concat!("TruSec/", env!("CARGO_PKG_VERSION")))
            .build();
        if settings.allow_http || settings.allow_private {
            tracing::warn!(
                allow_http = settings.allow_http,
                allow_private = settings.allow_private,
                "outbound fetches (jwks_uri, client ID metadata documents) are not limited to public https URLs"
            );
        }
        let client = match client {
            Ok(c) => Some(c),
            Err(e) => {
                trusec_ui::error::log_error(&e, "the outbound HTTP client could not start");
                None
            }
        };
        Self {
            inner: Arc::new(Inner {
                client,
                settings,
                cache: Mutex::new(HashMap::new()),
                forced: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The settings it enforces.
    pub fn settings(&self) -> OutboundSettings {
        self.inner.settings
    }

    /// Whether `url` may be fetched at all: parses and checks scheme and
    /// literal addresses, without any network traffic.
    ///
    /// # Errors
    /// Why not.
    pub fn check(&self, url: &str) -> Result<Url, FetchError> {
        check_url(url, self.inner.settings)
    }

    /// The document at `url`, from the cache while it is fresh (`now`:
    /// the core clock's seconds), else fetched, at most `max_bytes` long.
    /// A fetched document is not kept until the caller, having found it
    /// valid, hands it to [`Fetcher::keep`]: errors and invalid documents
    /// are never cached (draft-ietf-oauth-client-id-metadata-document
    /// §4.3), so fixing one at its URL takes effect at once.
    ///
    /// # Errors
    /// Why it could not be had.
    pub async fn get(&self, url: &str, now: i64, max_bytes: usize) -> Result<Fetched, FetchError> {
        if let Some(body) = self.cached(url, now, max_bytes) {
            return Ok(Fetched {
                body,
                ttl: 0,
                from_cache: true,
            });
        }
        self.fetch(url, max_bytes).await
    }

    /// The document fetched again, bypassing the cache, unless it was
    /// refetched so less than [`REFETCH_INTERVAL`] ago (then `None`): an
    /// unknown `kid` may mean the keys rotated, but nobody may make us
    /// fetch for every request.
    ///
    /// # Errors
    /// Why it could not be had.
    pub async fn refetch(
        &self,
        url: &str,
        now: i64,
        max_bytes: usize,
    ) -> Result<Option<Fetched>, FetchError> {
        {
            let mut forced = lock(&self.inner.forced);
            if forced
                .get(url)
                .is_some_and(|at| now - *at < REFETCH_INTERVAL)
            {
                return Ok(None);
            }
            if forced.len() >= MAX_ENTRIES {
                forced.retain(|_, at| now - *at < REFETCH_INTERVAL);
            }
            if forced.len() >= MAX_ENTRIES {
                return Ok(None);
            }
            forced.insert(url.to_owned(), now);
        }
        self.fetch(url, max_bytes).await.map(Some)
    }

    /// Keeps a fetched document the caller found valid, for as long as
    /// its `Cache-Control` allows within our bounds.
    pub fn keep(&self, url: &str, now: i64, fetched: &Fetched) {
        if fetched.from_cache {
            return;
        }
        let mut cache = lock(&self.inner.cache);
        if cache.len() >= MAX_ENTRIES && !cache.contains_key(url) {
            evict(&mut cache, now);
        }
        cache.insert(
            url.to_owned(),
            Entry {
                body: fetched.body.clone(),
                expires_at: now.saturating_add(fetched.ttl),
            },
        );
    }

    /// A fresh cached body within this caller's cap: one URL may be read
    /// for two purposes (a `jwks_uri` that is also a `client_id`), each
    /// with its own cap.
    fn cached(&self, url: &str, now: i64, max_bytes: usize) -> Option<Arc<[u8]>> {
        let cache = lock(&self.inner.cache);
        cache
            .get(url)
            .filter(|e| e.expires_at > now && e.body.len() <= max_bytes)
            .map(|e| e.body.clone())
    }

    /// One GET within every bound; the body and how long it may be kept.
    async fn fetch(&self, url: &str, max_bytes: usize) -> Result<Fetched, FetchError> {
        let url = self.check(url)?;
        let client = self.inner.client.as_ref().ok_or(FetchError::Unavailable)?;
        let mut response = client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(classify)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(FetchError::Redirect(status.as_u16()));
        }
        if status != reqwest::StatusCode::OK {
            return Err(FetchError::Status(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > u64::try_from(max_bytes).unwrap_or(u64::MAX))
        {
            return Err(FetchError::TooLarge(max_bytes));
        }
        let ttl = cache_ttl(
            response
                .headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
        );
        let mut body = Vec::new();
        // Counted as it arrives: a server that sends no Content-Length (or
        // a false one) is cut off at the cap.
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len().saturating_add(chunk.len()) > max_bytes {
                return Err(FetchError::TooLarge(max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            body: body.into(),
            ttl,
            from_cache: false,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves only a cache behind: use it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Room for one more: expired entries first, else the one expiring first.
fn evict(cache: &mut HashMap<String, Entry>, now: i64) {
    cache.retain(|_, e| e.expires_at > now);
    if cache.len() >= MAX_ENTRIES
        && let Some(first) = cache
            .iter()
            .min_by_key(|(_, e)| e.expires_at)
            .map(|(k, _)| k.clone())
    {
        cache.remove(&first);
    }
}

/// RFC 9111 §5.2.2: how long a response may be kept. `max-age` is
/// honoured within [`TTL_FLOOR`] and [`TTL_CEILING`]; `no-store` and
/// `no-cache` get the floor, our own lower bound (which the draft allows,
/// §4.3): a URL's owner cannot make every request fetch again.
fn cache_ttl(header: Option<&str>) -> i64 {
    let Some(header) = header else {
        return DEFAULT_TTL;
    };
    let mut ttl = DEFAULT_TTL;
    for directive in header.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if directive == "no-store" || directive == "no-cache" {
            return TTL_FLOOR;
        }
        if let Some(secs) = directive
            .strip_prefix("max-age=")
            .and_then(|v| v.trim_matches('"').parse::<i64>().ok())
        {
            ttl = secs;
        }
    }
    ttl.clamp(TTL_FLOOR, TTL_CEILING)
}

/// The reqwest error as one of ours: the guard's refusal comes back as
/// the source of a connect error.
fn classify(e: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<GuardError>() {
            return match refused {
                GuardError::NonPublic(ip) => FetchError::NonPublicAddress(*ip),
                GuardError::Unresolved => FetchError::Unresolved,
            };
        }
        source = err.source();
    }
    if e.is_timeout() {
        FetchError::Timeout
    } else if e.is_connect() {
        FetchError::Unreachable
    } else {
        FetchError::Body
    }
}

/// Whether `raw` may be fetched under `settings`, before any traffic:
/// absolute, no user info or fragment, https (or allowed http), and not a
/// literal non-public address.
///
/// # Errors
/// Why not.
pub fn check_url(raw: &str, settings: OutboundSettings) -> Result<Url, FetchError> {
    if raw.len() > MAX_URL_LEN {
        return Err(FetchError::BadUrl);
    }
    let url = Url::parse(raw).map_err(|_| FetchError::BadUrl)?;
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::BadUrl);
    }
    match url.scheme() {
        "https" => {}
        "http" if settings.allow_http => {}
        _ => return Err(FetchError::NotHttps),
    }
    let literal = match url.host() {
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        // RFC 6761 §6.3: `localhost` names are loopback whatever DNS says;
        // refused here already, not only when they resolve.
        Some(Host::Domain(name)) if is_localhost(name) => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        Some(Host::Domain(_)) => None,
        None => return Err(FetchError::BadUrl),
    };
    if let Some(ip) = literal
        && !settings.allow_private
        && !is_public(ip)
    {
        return Err(FetchError::NonPublicAddress(ip));
    }
    Ok(url)
}

fn is_localhost(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

#[derive(Debug, thiserror::Error)]
enum GuardError {
    #[error("non-public address {0}")]
    NonPublic(IpAddr),
    #[error("unresolved")]
    Unresolved,
}

/// The DNS resolver of the outbound client: resolves, then refuses the
/// whole name if any address is not public (a name with one private
/// address is someone's way in).
struct Guard {
    allow_private: bool,
}

impl reqwest::dns::Resolve for Guard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let lookup = tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((host, 0)))
                .await
                .map_err(|_| GuardError::Unresolved)?
                .map_err(|_| GuardError::Unresolved)?;
            let addrs: Vec<SocketAddr> = lookup.collect();
            if addrs.is_empty() {
                return Err(GuardError::Unresolved.into());
            }
            if !allow_private && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                return Err(GuardError::NonPublic(bad.ip()).into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn in_net(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let non_public = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        // "This network" 0/8, CGNAT 100.64/10 (RFC 6598), IETF protocol
        // assignments 192.0.0/24, benchmarking 198.18/15, reserved 240/4.
        || in_net(ip, [0, 0, 0, 0], 8)
        || in_net(ip, [100, 64, 0, 0], 10)
        || in_net(ip, [192, 0, 0, 0], 24)
        || in_net(ip, [198, 18, 0, 0], 15)
        || in_net(ip, [240, 0, 0, 0], 4);
    !non_public
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    // IPv4 inside IPv6: mapped ::ffff:a.b.c.d and compatible ::a.b.c.d,
    // NAT64 64:ff9b::/96 (RFC 6052), 6to4 2002::/16 (RFC 3056): judged as
    // the IPv4 address they reach.
    let seg = ip.segments();
    let octets = ip.octets();
    let embedded = |a: usize| {
        octets
            .get(a..a + 4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map(Ipv4Addr::from)
    };
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    if seg.first() == Some(&0x64) && seg.get(1) == Some(&0xff9b) {
        return embedded(12).is_some_and(is_public_v4);
    }
    if seg.first() == Some(&0x2002) {
        return embedded(2).is_some_and(is_public_v4);
    }
    let first = seg.first().copied().unwrap_or(0);
    let non_public = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        // IPv4-compatible ::/96 (deprecated), site-local fec0::/10,
        // documentation 2001:db8::/32, discard 100::/64.
        || seg.iter().take(6).all(|s| *s == 0)
        || (first & 0xffc0) == 0xfec0
        || (first == 0x2001 && seg.get(1) == Some(&0x0db8))
        || (first == 0x0100 && seg.iter().skip(1).take(3).all(|s| *s == 0));
    !non_public
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2001:db8::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!is_public(ip), "{ip} must not be public");
        }
        for ip in [
            "93.184.215.14",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(is_public(ip), "{ip} is public");
        }
    }

    #[test]
    fn urls_are_checked_before_any_traffic() {
        let strict = OutboundSettings::default();
        assert_eq!(
            check_url("http://example.com/x", strict),
            Err(FetchError::NotHttps)
        );
        assert!(matches!(
            check_url("https://127.0.0.1/x", strict),
            Err(FetchError::NonPublicAddress(_))
        ));
        assert!(matches!(
            check_url("https://[::ffff:7f00:1]/x", strict),
            Err(FetchError::NonPublicAddress(_))
        ));
        assert_eq!(
            check_url("https://u:p@example.com/x", strict),
            Err(FetchError::BadUrl)
        );
        for local in [
            "https://localhost/x",
            "https://LocalHost./x",
            "https://a.localhost/x",
        ] {
            assert!(
                matches!(
                    check_url(local, strict),
                    Err(FetchError::NonPublicAddress(_))
                ),
                "{local}"
            );
        }
        assert!(check_url("https://example.com/x", strict).is_ok());
        let open = OutboundSettings {
            allow_private: true,
            allow_http: true,
        };
        assert!(check_url("http://127.0.0.1:1/x", open).is_ok());
    }

    /// The guard is the resolver: a name that resolves to loopback is
    /// refused at the fetch, whatever it looked like before.
    #[tokio::test]
    async fn the_resolver_refuses_names_of_non_public_addresses() {
        use reqwest::dns::Resolve;
        let name = || "localhost".parse::<reqwest::dns::Name>().unwrap();
        let refused = Guard {
            allow_private: false,
        }
        .resolve(name())
        .await;
        assert!(refused.is_err());
        let allowed = Guard {
            allow_private: true,
        }
        .resolve(name())
        .await;
        assert!(allowed.is_ok_and(|mut a| a.next().is_some()));
    }

    #[tokio::test]
    async fn the_cache_keeps_what_it_is_given_for_its_lifetime_within_the_cap() {
        let fetcher = Fetcher::default();
        let url = "https://client.example/doc.json";
        let doc = Fetched {
            body: Arc::from(&b"{\"keys\":[]}"[..]),
            ttl: 60,
            from_cache: false,
        };
        assert!(
            fetcher.cached(url, 1000, 100).is_none(),
            "nothing until kept"
        );
        fetcher.keep(url, 1000, &doc);
        let hit = fetcher.get(url, 1059, 100).await.unwrap();
        assert!(hit.from_cache);
        assert_eq!(&*hit.body, &*doc.body);
        assert!(fetcher.cached(url, 1060, 100).is_none(), "expired");
        assert!(
            fetcher.cached(url, 1000, 4).is_none(),
            "over this caller's cap"
        );
    }

    #[test]
    fn cache_control_is_honoured_within_bounds() {
        assert_eq!(cache_ttl(None), DEFAULT_TTL);
        assert_eq!(cache_ttl(Some("max-age=3600")), 3600);
        assert_eq!(cache_ttl(Some("public, max-age=1")), TTL_FLOOR);
        assert_eq!(cache_ttl(Some("max-age=99999999")), TTL_CEILING);
        assert_eq!(cache_ttl(Some("no-store")), TTL_FLOOR);
        assert_eq!(cache_ttl(Some("max-age=3600, no-cache")), TTL_FLOOR);
    }
}
