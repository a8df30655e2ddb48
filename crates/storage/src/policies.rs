//! Security policies (issue 14): one typed document per environment,
//! `GET/PATCH /v1/policies`. An environment without a row has
//! [`Policy::default`]; a change is one transaction, serialised with every
//! other change of the environment's policy, and read from the database by
//! every instance (nothing is cached, so a change is seen everywhere at
//! once; passwords are checked only where one is set, so the read costs
//! little).
//!
//! Only what is enforced is in the document: the password rules today.
//! Sign-in lockout, session lifetimes, MFA and sign-up join it as each is
//! enforced; until then they are settings (`TRUSEC_RATE_LIMIT_LOGIN`, …) or
//! each user's own choice.

use crate::db::DbConnection;
use crate::error::StorageError;
use crate::schema::policies;
use crate::sql_types::Json;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// The bounds an environment's minimum password length may be set within:
/// NIST SP 800-63B §3.1.1.2 asks for at least 8, and a longer minimum than
/// 64 only locks out passphrase managers' defaults.
pub const MIN_LENGTH_RANGE: std::ops::RangeInclusive<u16> = 8..=64;

const PG_POLICIES_LOCK: i64 = 0x7275_7365_635f_706f;

/// An environment's security policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    pub password: PasswordPolicy,
    pub mfa: MfaPolicy,
}

/// Who must sign in with a second factor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MfaPolicy {
    /// `optional` or `required`.
    #[schema(value_type = String)]
    pub mode: MfaMode,
    /// Members of `trusec-admins` must, whatever the mode (they can change
    /// every other account).
    pub required_for_admins: bool,
}

crate::text_enum! {
    /// Whether users must have a second factor.
    pub enum MfaMode as "MFA mode" {
        /// Each user's own choice (the default).
        Optional = "optional",
        /// Every sign-in needs one; a user without a factor adds one first.
        Required = "required",
    }
}

#[expect(
    clippy::derivable_impls,
    reason = "text_enum! defines the enum; a derive cannot be added to it"
)]
impl Default for MfaMode {
    fn default() -> Self {
        Self::Optional
    }
}

impl MfaPolicy {
    /// Whether a user (an administrator or not) must give a second factor.
    pub fn requires(&self, is_admin: bool) -> bool {
        match self.mode {
            MfaMode::Required => true,
            MfaMode::Optional => self.required_for_admins && is_admin,
        }
    }
}

/// What a new password must be (NIST SP 800-63B §3.1.1.2: a minimum
/// length and a check against passwords known from breaches; no
/// composition rules, no expiry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordPolicy {
    /// At least this many characters (8 to 64; default 8).
    pub min_length: u16,
    /// Refuse the 20,000 most common passwords of known breaches (shipped
    /// with the binary; no network call). Default true.
    pub refuse_common: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 8,
            refuse_common: true,
        }
    }
}

/// Why a password does not meet the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordRefusal {
    TooShort { min: u16 },
    Common,
}

impl std::fmt::Display for PasswordRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooShort { min } => write!(f, "must be at least {min} characters"),
            Self::Common => f.write_str(
                "is one of the most common passwords, which attackers try first: choose another",
            ),
        }
    }
}

/// The bundled list, sorted (see `policies/README.md`).
static COMMON: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    include_str!("policies/common-passwords.txt")
        .lines()
        .filter(|l| !l.is_empty())
        .collect()
});

/// Whether `password` is on the bundled list (compared in lower case, as
/// the list is).
pub fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    COMMON.binary_search(&lower.as_str()).is_ok()
}

impl PasswordPolicy {
    /// Whether `password` may be set.
    ///
    /// # Errors
    /// The first rule it breaks.
    pub fn check(&self, password: &str) -> Result<(), PasswordRefusal> {
        if password.chars().count() < usize::from(self.min_length) {
            return Err(PasswordRefusal::TooShort {
                min: self.min_length,
            });
        }
        if self.refuse_common && is_common(password) {
            return Err(PasswordRefusal::Common);
        }
        Ok(())
    }
}

/// A change to a policy: only the members given change.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyPatch {
    pub password: Option<PasswordPatch>,
    pub mfa: Option<MfaPatch>,
}

#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaPatch {
    #[schema(value_type = Option<String>)]
    pub mode: Option<MfaMode>,
    pub required_for_admins: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordPatch {
    pub min_length: Option<u16>,
    pub refuse_common: Option<bool>,
}

/// A field of a patch that is out of bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

impl PolicyPatch {
    /// The patch, once every member given is within its bounds (parse,
    /// don't validate: [`update`] takes only a [`ValidPatch`]).
    ///
    /// # Errors
    /// The first member out of bounds.
    pub fn validate(self) -> Result<ValidPatch, Invalid> {
        let min = self.password.as_ref().and_then(|p| p.min_length);
        if let Some(min) = min
            && !MIN_LENGTH_RANGE.contains(&min)
        {
            return Err(Invalid {
                field: "password.min_length",
                message: format!(
                    "must be between {} and {}",
                    MIN_LENGTH_RANGE.start(),
                    MIN_LENGTH_RANGE.end()
                ),
            });
        }
        Ok(ValidPatch(self))
    }
}

/// A [`PolicyPatch`] whose members are within their bounds.
#[derive(Clone, Debug)]
pub struct ValidPatch(PolicyPatch);

impl Policy {
    /// This policy with `patch` applied.
    pub fn patched(&self, patch: &ValidPatch) -> Self {
        let mut next = self.clone();
        if let Some(p) = &patch.0.password {
            if let Some(min) = p.min_length {
                next.password.min_length = min;
            }
            if let Some(on) = p.refuse_common {
                next.password.refuse_common = on;
            }
        }
        if let Some(m) = &patch.0.mfa {
            if let Some(mode) = m.mode {
                next.mfa.mode = mode;
            }
            if let Some(on) = m.required_for_admins {
                next.mfa.required_for_admins = on;
            }
        }
        next
    }
}

/// The policy of `env` (the defaults when it never changed).
///
/// # Errors
/// Backend failures, or a stored document that no longer parses.
pub fn get(conn: &mut DbConnection, env: &str) -> Result<Policy, StorageError> {
    let stored: Option<Json<Policy>> = policies::table
        .find(env)
        .select(policies::document)
        .first(conn)
        .optional()?;
    Ok(stored.map(|j| j.0).unwrap_or_default())
}

/// A policy as it was and as it is after a change.
#[derive(Clone, Debug)]
pub struct Change {
    pub before: Policy,
    pub after: Policy,
}

/// Applies `patch` to `env`'s policy, serialised with every other change
/// of it (two administrators' patches both apply, one after the other).
///
/// # Errors
/// Backend failures.
pub fn update(
    conn: &mut DbConnection,
    env: &str,
    patch: &ValidPatch,
    now: NaiveDateTime,
) -> Result<Change, StorageError> {
    conn.transaction(|conn| {
        crate::db::serialize_writers(conn, PG_POLICIES_LOCK)?;
        let before = get(conn, env)?;
        let after = before.patched(patch);
        let document = Json(after.clone());
        let updated = diesel::update(policies::table.find(env))
            .set((
                policies::document.eq(&document),
                policies::updated_at.eq(now),
            ))
            .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(policies::table)
                .values((
                    policies::environment_id.eq(env),
                    policies::document.eq(&document),
                    policies::updated_at.eq(now),
                ))
                .execute(conn)?;
        }
        Ok(Change { before, after })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_list_is_sorted_and_found() {
        assert!(COMMON.len() > 19_000);
        assert!(COMMON.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
        assert!(is_common("password123"));
        assert!(is_common("Password123"), "compared in lower case");
        assert!(!is_common("correct horse battery"));
    }

    #[test]
    fn passwords_are_checked_against_the_rules() {
        let policy = PasswordPolicy::default();
        assert_eq!(policy.check("letmein123"), Err(PasswordRefusal::Common));
        assert_eq!(
            policy.check("short"),
            Err(PasswordRefusal::TooShort { min: 8 })
        );
        assert_eq!(policy.check("correct horse battery"), Ok(()));
        let lax = PasswordPolicy {
            min_length: 8,
            refuse_common: false,
        };
        assert_eq!(lax.check("letmein123"), Ok(()));
        let long = PasswordPolicy {
            min_length: 24,
            refuse_common: true,
        };
        assert_eq!(
            long.check("correct horse battery"),
            Err(PasswordRefusal::TooShort { min: 24 })
        );
        // Characters, not bytes.
        let twelve = PasswordPolicy {
            min_length: 12,
            refuse_common: true,
        };
        assert_eq!(
            twelve.check("ééééééééééé"),
            Err(PasswordRefusal::TooShort { min: 12 })
        );
    }

    #[test]
    fn patches_apply_within_bounds() {
        let p = Policy::default();
        let patch = PolicyPatch {
            password: Some(PasswordPatch {
                min_length: Some(12),
                refuse_common: None,
            }),
            mfa: None,
        };
        let next = p.patched(&patch.validate().unwrap());
        assert_eq!(next.password.min_length, 12);
        assert!(next.password.refuse_common);
        for bad in [0, 7, 65] {
            let patch = PolicyPatch {
                password: Some(PasswordPatch {
                    min_length: Some(bad),
                    refuse_common: None,
                }),
                mfa: None,
            };
            assert_eq!(patch.validate().unwrap_err().field, "password.min_length");
        }
    }
}
