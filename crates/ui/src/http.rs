//! The HTTP facts every surface reads the same way: the `Authorization`
//! header (RFC 7235 §2.1, RFC 6750 §2.1, RFC 7617) and who is calling
//! (client IP and user agent). One parser, so no two endpoints disagree on
//! what a header means.

use actix_web::HttpRequest;
use actix_web::http::header;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use trusec_storage::audit::ClientInfo;

/// The credentials in the `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub enum Authorization {
    /// No `Authorization` header.
    Missing,
    /// `Bearer <token>` (the scheme is case-insensitive).
    Bearer(String),
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
            Self::Missing | Self::Basic { .. } | Self::MalformedBasic | Self::Other => None,
        }
    }
}

/// The caller's address and user agent. The address is the TCP peer:
/// forwarded headers are trivially forged unless a trusted proxy sets them.
pub fn client_info(req: &HttpRequest) -> ClientInfo {
    ClientInfo {
        ip: req.peer_addr().map(|a| a.ip().to_string()),
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
