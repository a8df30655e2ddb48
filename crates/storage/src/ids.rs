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
}
