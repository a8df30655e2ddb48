//! `application/x-www-form-urlencoded` parameters with RFC 6749 §3.1 rules:
//! a parameter may appear once, and one sent without a value is as if
//! omitted.

use crate::error::OAuthError;
use std::collections::HashMap;

/// Parsed parameters.
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses a body or query string.
    ///
    /// # Errors
    /// `invalid_request` naming a repeated parameter.
    pub fn parse(input: &[u8]) -> Result<Self, OAuthError> {
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(input) {
            if v.is_empty() {
                continue;
            }
            if map.insert(k.to_string(), v.into_owned()).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {k} included more than once"
                )));
            }
        }
        Ok(Self(map))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
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
    }
}
