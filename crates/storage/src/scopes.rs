//! Scope sets (RFC 6749 §3.3): what a client may ask for, what a code or a
//! token was granted. Stored as a JSON array of the tokens, shown to
//! clients space-separated. Which scopes exist is the OAuth crate's
//! business; the syntax is checked here, so a set can only ever hold
//! well-formed tokens, however it was made (a request, a stored row, a
//! cache entry).

use serde::{Deserialize, Serialize};

/// Distinct scope tokens in the order they were first given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeSet(Vec<String>);

/// A token RFC 6749 §3.3 does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope {0:?} has characters RFC 6749 §3.3 does not allow")]
pub struct MalformedScope(pub String);

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn well_formed(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

impl ScopeSet {
    /// Parses a space-separated `scope` parameter (RFC 6749 §3.3); repeated
    /// spaces and repeated tokens are tolerated, the latter kept once.
    ///
    /// # Errors
    /// The first malformed token.
    pub fn parse(text: &str) -> Result<Self, MalformedScope> {
        Self::from_tokens(text.split(' ').filter(|t| !t.is_empty()))
    }

    /// A set of these tokens; a repeated one is kept once.
    ///
    /// # Errors
    /// The first malformed token.
    pub fn from_tokens<S: AsRef<str>>(
        tokens: impl IntoIterator<Item = S>,
    ) -> Result<Self, MalformedScope> {
        let mut set = Self::default();
        for token in tokens {
            let token = token.as_ref();
            if !well_formed(token) {
                return Err(MalformedScope(token.to_owned()));
            }
            if !set.contains(token) {
                set.0.push(token.to_owned());
            }
        }
        Ok(set)
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The first scope of this set that `allowed` lacks.
    pub fn first_not_in(&self, allowed: &Self) -> Option<&str> {
        self.iter().find(|s| !allowed.contains(s))
    }

    /// The scopes of this set that `keep` accepts, in order.
    #[must_use]
    pub fn filtered(&self, keep: impl Fn(&str) -> bool) -> Self {
        Self(self.0.iter().filter(|s| keep(s)).cloned().collect())
    }
}

/// The `scope` parameter form: space-separated.
impl std::fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

impl From<ScopeSet> for Vec<String> {
    fn from(set: ScopeSet) -> Self {
        set.0
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let tokens = Vec::<String>::deserialize(d)?;
        Self::from_tokens(&tokens).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_in_order_once_each() -> Result<(), MalformedScope> {
        let set = ScopeSet::parse("openid  email openid")?;
        assert_eq!(set.as_slice(), ["openid", "email"]);
        assert_eq!(set.to_string(), "openid email");
        assert_eq!(ScopeSet::parse("")?, ScopeSet::default());
        assert_eq!(
            ScopeSet::parse("ok bad\"scope"),
            Err(MalformedScope("bad\"scope".into()))
        );
        assert!(ScopeSet::parse("back\\slash").is_err());
        assert!(ScopeSet::parse("read:users").is_ok());
        Ok(())
    }

    #[test]
    fn stored_form_is_a_json_array_and_is_checked() -> Result<(), serde_json::Error> {
        let set = ScopeSet::parse("openid email").map_err(serde::de::Error::custom)?;
        assert_eq!(serde_json::to_string(&set)?, r#"["openid","email"]"#);
        assert_eq!(
            serde_json::from_str::<ScopeSet>(r#"["openid","email"]"#)?,
            set
        );
        assert!(serde_json::from_str::<ScopeSet>(r#"["two words"]"#).is_err());
        assert!(serde_json::from_str::<ScopeSet>(r#""openid""#).is_err());
        Ok(())
    }

    #[test]
    fn subsets() -> Result<(), MalformedScope> {
        let allowed = ScopeSet::parse("openid email")?;
        assert_eq!(ScopeSet::parse("email")?.first_not_in(&allowed), None);
        assert_eq!(
            ScopeSet::parse("email admin")?.first_not_in(&allowed),
            Some("admin")
        );
        assert_eq!(allowed.filtered(|s| s != "openid").as_slice(), ["email"]);
        Ok(())
    }
}
