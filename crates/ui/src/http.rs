//! The HTTP facts every surface reads the same way: the `Authorization`
//! header (RFC 7235 §2.1, RFC 6750 §2.1, RFC 7617) and who is calling
//! (client IP and user agent). One parser, so no two endpoints disagree on
//! what a header means.

use actix_web::HttpRequest;
use actix_web::http::header;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ipnet::IpNet;
use std::net::IpAddr;
use trusec_storage::audit::ClientInfo;

/// The credentials in the `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub enum Authorization {
    /// No `Authorization` header.
    Missing,
    /// `Bearer <token>` (the scheme is case-insensitive).
    Bearer(String),
    /// `DPoP <token>` (RFC 9449 §7.1): a DPoP-bound access token, sent
    /// with its proof in the `DPoP` header.
    Dpop(String),
    /// `Basic <base64(user:password)>`, decoded but not otherwise unescaped.
    Basic { user: String, password: String },
    /// A `Basic` header whose payload is not base64 of `user:password`.
    MalformedBasic,
    /// Another scheme, an empty token, or a header that is not visible ASCII.
    Other,
}

impl std::fmt::Debug for Authorization {
    // Never print credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Missing => "Missing",
            Self::Bearer(_) => "Bearer(..)",
            Self::Dpop(_) => "DPoP(..)",
            Self::Basic { .. } => "Basic(..)",
            Self::MalformedBasic => "MalformedBasic",
            Self::Other => "Other",
        })
    }
}

impl Authorization {
    pub fn of(req: &HttpRequest) -> Self {
        let Some(value) = req.headers().get(header::AUTHORIZATION) else {
            return Self::Missing;
        };
        let Ok(value) = value.to_str() else {
            return Self::Other;
        };
        Self::parse(value)
    }

    pub fn parse(value: &str) -> Self {
        let Some((scheme, rest)) = value.trim().split_once(' ') else {
            return Self::Other;
        };
        let rest = rest.trim();
        if rest.is_empty() {
            return Self::Other;
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            return Self::Bearer(rest.to_owned());
        }
        if scheme.eq_ignore_ascii_case("dpop") {
            return Self::Dpop(rest.to_owned());
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Self::Other;
        }
        STANDARD
            .decode(rest)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|decoded| {
                decoded.split_once(':').map(|(u, p)| Self::Basic {
                    user: u.to_owned(),
                    password: p.to_owned(),
                })
            })
            .unwrap_or(Self::MalformedBasic)
    }

    /// The bearer token, if that is what was sent.
    pub fn bearer(&self) -> Option<&str> {
        match self {
            Self::Bearer(token) => Some(token),
            Self::Missing
            | Self::Dpop(_)
            | Self::Basic { .. }
            | Self::MalformedBasic
            | Self::Other => None,
        }
    }

    /// The access token of a `Bearer` or `DPoP` header, with its scheme.
    pub fn access_token(&self) -> Option<(TokenScheme, &str)> {
        match self {
            Self::Bearer(token) => Some((TokenScheme::Bearer, token)),
            Self::Dpop(token) => Some((TokenScheme::Dpop, token)),
            Self::Missing | Self::Basic { .. } | Self::MalformedBasic | Self::Other => None,
        }
    }
}

/// How an access token was presented (RFC 6750 §2.1, RFC 9449 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenScheme {
    Bearer,
    Dpop,
}

/// The reverse proxies whose forwarding headers are believed
/// (`TRUSEC_TRUSTED_PROXIES`), registered once as app data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(std::sync::Arc<Vec<IpNet>>);

impl TrustedProxies {
    /// Comma-separated CIDRs (a bare address is a /32 or /128); empty for none.
    ///
    /// # Errors
    /// The first entry that is not an address or CIDR.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = part
                .parse::<IpNet>()
                .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{part:?} is not an IP address or CIDR"))?;
            nets.push(net);
        }
        Ok(Self(std::sync::Arc::new(nets)))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the TCP peer, unless the peer is a trusted
    /// proxy; then the right-most forwarded address that is not itself
    /// trusted (contract). Forwarded headers from anyone else are ignored:
    /// a client can write whatever it likes into them.
    pub fn client_ip(&self, peer: IpAddr, req: &HttpRequest) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut hops = forwarded_hops(req);
        // Right to left: the nearest hop first.
        hops.reverse();
        let mut client = peer;
        for hop in hops {
            let Some(ip) = hop else {
                // A hop we cannot read: nothing to its left can be believed.
                return client;
            };
            client = ip;
            if !self.trusts(ip) {
                return ip;
            }
        }
        client
    }
}

/// The addresses of `X-Forwarded-For` (every header line, in order) or,
/// when there is none, of the `for=` parameters of `Forwarded` (RFC 7239);
/// `None` for an entry that is not an address.
fn forwarded_hops(req: &HttpRequest) -> Vec<Option<IpAddr>> {
    let xff: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if !xff.is_empty() {
        return xff.into_iter().map(parse_hop).collect();
    }
    req.headers()
        .get_all(header::FORWARDED)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                k.eq_ignore_ascii_case("for")
                    .then(|| parse_hop(v.trim_matches('"')))
            })
        })
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]`, `[2001:db8::1]:80`, `2001:db8::1`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sock) = hop.parse::<std::net::SocketAddr>() {
        return Some(sock.ip());
    }
    hop.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(ip, _)| ip.parse().ok())
}

/// One step of `family`'s per-IP budget for an anonymous browser-facing
/// request (authorize, logout, SAML), before it costs parsing or stores
/// anything; a refusal is the "too many attempts" page with `Retry-After`.
///
/// # Errors
/// [`crate::PageError::RateLimited`].
pub async fn limit_per_ip(
    core: &trusec_storage::Core,
    req: &HttpRequest,
    family: trusec_storage::rate_limit::Family,
) -> Result<(), crate::PageError> {
    core.limit_ip(family, &client_info(req)).await?;
    Ok(())
}

/// The caller's address (see [`TrustedProxies::client_ip`]) and user agent.
pub fn client_info(req: &HttpRequest) -> ClientInfo {
    let proxies = req.app_data::<TrustedProxies>();
    ClientInfo {
        ip: req.peer_addr().map(|a| {
            proxies
                .map_or(a.ip(), |p| p.client_ip(a.ip(), req))
                .to_string()
        }),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn resolve(proxies: &str, peer: &str, headers: &[(&str, &str)]) -> String {
        let mut req = TestRequest::default();
        for (k, v) in headers {
            req = req.append_header((*k, *v));
        }
        let req = req.to_http_request();
        TrustedProxies::parse(proxies)
            .unwrap()
            .client_ip(peer.parse().unwrap(), &req)
            .to_string()
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let xff = [("x-forwarded-for", "198.51.100.9, 203.0.113.5")];
        // Untrusted peer: its headers are ignored.
        assert_eq!(resolve("", "192.0.2.1", &xff), "192.0.2.1");
        assert_eq!(resolve("10.0.0.0/8", "192.0.2.1", &xff), "192.0.2.1");
        // Trusted peer: the right-most untrusted address.
        assert_eq!(resolve("10.0.0.0/8", "10.1.2.3", &xff), "203.0.113.5");
        // A chain of trusted proxies is skipped.
        let chain = [("x-forwarded-for", "203.0.113.5, 10.9.9.9")];
        assert_eq!(resolve("10.0.0.0/8", "10.1.2.3", &chain), "203.0.113.5");
        // A forged left-most entry does not matter.
        let forged = [
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.5"),
        ];
        assert_eq!(resolve("10.0.0.0/8", "10.1.2.3", &forged), "203.0.113.5");
        // RFC 7239 Forwarded, IPv6 with a port.
        let fwd = [("forwarded", "for=\"[2001:db8::7]:4711\";proto=https")];
        assert_eq!(resolve("10.0.0.0/8", "10.1.2.3", &fwd), "2001:db8::7");
        // Garbage stops the walk at the last trusted hop.
        let junk = [("x-forwarded-for", "junk, 10.9.9.9")];
        assert_eq!(resolve("10.0.0.0/8", "10.1.2.3", &junk), "10.9.9.9");
        assert!(TrustedProxies::parse("10.0.0.0/8, nonsense").is_err());
        assert!(TrustedProxies::parse("127.0.0.1, ::1").is_ok());
    }

    #[test]
    fn parses_each_scheme() {
        assert_eq!(
            Authorization::parse("bearer  abc "),
            Authorization::Bearer("abc".into())
        );
        assert_eq!(
            Authorization::parse(&format!("Basic {}", STANDARD.encode("id:se:cret"))),
            Authorization::Basic {
                user: "id".into(),
                password: "se:cret".into()
            }
        );
        assert_eq!(
            Authorization::parse("Basic !!!"),
            Authorization::MalformedBasic
        );
        assert_eq!(Authorization::parse("Bearer "), Authorization::Other);
        assert_eq!(Authorization::parse("Digest x"), Authorization::Other);
        assert_eq!(Authorization::parse("token"), Authorization::Other);
    }
}
