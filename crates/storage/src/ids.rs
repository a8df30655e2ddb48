//! Prefixed object ids (`user_…`, `sess_…`): a ULID after the prefix, so ids
//! sort by creation time and serve as stable pagination cursors.

/// Live environment, seeded by the first migration.
pub const ENV_LIVE: &str = "env_live";
/// Test environment, seeded by the first migration.
pub const ENV_TEST: &str = "env_test";

pub const USER: &str = "user";
pub const SESSION: &str = "sess";
pub const API_KEY: &str = "key";
pub const EVENT: &str = "evt";
pub const CLIENT: &str = "client";
pub const SIGNING_KEY: &str = "sig";
pub const CONSENT: &str = "consent";
pub const REFRESH_TOKEN: &str = "rt";
pub const TOKEN_FAMILY: &str = "fam";
pub const SERVICE_PROVIDER: &str = "sp";
pub const SAML_KEY: &str = "samlkey";
pub const RESOURCE: &str = "res";
pub const FACTOR: &str = "mfa";
pub const RECOVERY_CODE: &str = "rc";
pub const PASSKEY: &str = "passkey";

static GENERATOR: std::sync::Mutex<ulid::Generator> = std::sync::Mutex::new(ulid::Generator::new());

/// A new id with the given prefix. Ids made by one process are strictly
/// increasing, even within a millisecond, so "creation order" is id order.
#[expect(
    clippy::unwrap_or_default,
    reason = "Ulid::default() is the nil id; Ulid::new() is a fresh one"
)]
pub fn new_id(prefix: &str) -> String {
    let ulid = GENERATOR
        .lock()
        .ok()
        .and_then(|mut g| g.generate().ok())
        .unwrap_or_else(ulid::Ulid::new);
    format!("{prefix}_{}", ulid.to_string().to_ascii_lowercase())
}

/// Whether `id` looks like an id of this kind; ids from outside are checked
/// before they reach a query so a typo is a 404, never a surprise.
pub fn is_valid(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|body| body.len() == 26 && body.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// An id of one kind of object, parsed at the edge: a value of this type has
/// the right prefix and shape, so handlers never check prefixes by hand.
pub trait TypedId: Sized + std::ops::Deref<Target = str> {
    /// The prefix before `_`.
    const PREFIX: &'static str;
    /// What it names, for messages ("no such user").
    const WHAT: &'static str;

    /// The id, when `s` is one of this kind.
    fn parse(s: &str) -> Option<Self>;
}

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh id of this kind.
            pub fn generate() -> Self {
                Self(new_id($prefix))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TypedId for $name {
            const PREFIX: &'static str = $prefix;
            const WHAT: &'static str = $what;

            fn parse(s: &str) -> Option<Self> {
                is_valid($prefix, s).then(|| Self(s.to_owned()))
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

typed_id!(
    /// `user_…`
    UserId, USER, "user"
);
typed_id!(
    /// `sess_…`
    SessionId, SESSION, "session"
);
typed_id!(
    /// `key_…`
    ApiKeyId, API_KEY, "API key"
);
typed_id!(
    /// `evt_…`
    EventId, EVENT, "audit event"
);
typed_id!(
    /// `client_…`
    ClientId, CLIENT, "client"
);
typed_id!(
    /// `consent_…`
    ConsentId, CONSENT, "consent"
);
typed_id!(
    /// `res_…`: an API resource (RFC 8707)
    ResourceId, RESOURCE, "resource"
);
typed_id!(
    /// `sp_…`
    ServiceProviderId, SERVICE_PROVIDER, "service provider"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort() {
        let a = new_id(USER);
        assert!(is_valid(USER, &a));
        assert!(!is_valid(SESSION, &a));
        assert!(!is_valid(USER, "user_../../etc"));
        assert!(!is_valid(USER, "user"));
    }

    #[test]
    fn typed_ids_parse_only_their_kind() {
        let user = UserId::generate();
        assert_eq!(UserId::parse(&user), Some(user.clone()));
        assert_eq!(SessionId::parse(&user), None);
        assert_eq!(ClientId::parse("client_../../etc"), None);
    }
}
