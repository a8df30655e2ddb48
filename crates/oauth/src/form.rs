//! `application/x-www-form-urlencoded` parameters with RFC 6749 §3.1 rules:
//! a parameter may appear once, and one sent without a value is as if
//! omitted. The exception is RFC 8707's `resource`, which §2 lets a request
//! repeat; it is read with [`Params::all`], never [`Params::get`].

use crate::error::OAuthError;
use std::collections::HashMap;

/// Parameters that may be repeated (RFC 8707 §2: `resource`).
const REPEATABLE: [&str; 1] = ["resource"];
/// More values of a repeatable parameter than any real request needs.
const MAX_REPEATS: usize = 10;

/// Parsed parameters.
#[derive(Debug, Default, Clone)]
pub struct Params {
    single: HashMap<String, String>,
    repeated: HashMap<String, Vec<String>>,
}

impl Params {
    /// Parses a body or query string.
    ///
    /// # Errors
    /// `invalid_request` naming a repeated parameter, or one repeated too
    /// often.
    pub fn parse(input: &[u8]) -> Result<Self, OAuthError> {
        let mut params = Self::default();
        for (k, v) in url::form_urlencoded::parse(input) {
            if v.is_empty() {
                continue;
            }
            if REPEATABLE.contains(&k.as_ref()) {
                let values = params.repeated.entry(k.to_string()).or_default();
                if values.len() == MAX_REPEATS {
                    return Err(OAuthError::invalid_request(format!(
                        "parameter {k} included more than {MAX_REPEATS} times"
                    )));
                }
                values.push(v.into_owned());
            } else if params
                .single
                .insert(k.to_string(), v.into_owned())
                .is_some()
            {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {k} included more than once"
                )));
            }
        }
        Ok(params)
    }

    /// A parameter that may appear once.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.single.get(name).map(String::as_str)
    }

    /// Every value of a repeatable parameter, in request order.
    pub fn all(&self, name: &str) -> &[String] {
        self.repeated.get(name).map_or(&[], Vec::as_slice)
    }

    /// A required parameter.
    ///
    /// # Errors
    /// `invalid_request` naming it.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter {name}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_and_empty_ones_ignored() {
        let p = Params::parse(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
        let e = Params::parse(b"a=1&a=2").unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::InvalidRequest);
        let r = Params::parse(b"resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb").unwrap();
        assert_eq!(r.all("resource"), ["https://a", "https://b"]);
        assert_eq!(r.get("resource"), None);
        let many = "resource=x&".repeat(MAX_REPEATS + 1);
        assert!(Params::parse(many.as_bytes()).is_err());
    }
}
