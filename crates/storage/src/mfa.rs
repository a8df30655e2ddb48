//! Second factors of hosted sign-in: RFC 6238 TOTP (through `totp-rs`) and
//! recovery codes.
//!
//! - A TOTP factor is a `user_factors` row whose secret (160 random bits,
//!   RFC 4226 §4) is sealed under the master key ([`sealed::totp_secret_aad`]).
//!   It is pending until the user types a first code, and only a confirmed
//!   factor is asked for at sign-in.
//! - A code is accepted once (RFC 6238 §5.2): the row keeps the last time
//!   step accepted, and [`accept_step`] moves it forward with a conditional
//!   `UPDATE`, so of two concurrent sign-ins with one code exactly one wins.
//!   The database is the only authority: a flushed or evicted Redis cannot
//!   make a used code valid again, and no second copy can disagree with it.
//! - Recovery codes: ten at a time, 80 random bits each (so, like the other
//!   generated secrets, stored as SHA-256 and found by their hash), each
//!   usable once; made again only all together.

use crate::db::DbConnection;
use crate::error::StorageError;
use crate::ids;
use crate::passkeys::PasskeyRow;
use crate::schema::{recovery_codes, user_factors};
use crate::sealed::{self, SealError, SealKey};
use crate::secrets;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// How many recovery codes a user gets at a time.
pub const RECOVERY_CODES: usize = 10;
/// RFC 6238 §5.2: one step of clock drift either way.
const SKEW_STEPS: u16 = 1;
/// RFC 6238 §4.1: X = 30 seconds.
const STEP_SECS: u64 = 30;
/// RFC 4226 §5.3: six digits.
const DIGITS: u8 = 6;
/// The alphabet of recovery codes: Crockford's base32 (no I, L, O or U,
/// so nothing reads as another symbol).
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 16 symbols of 32: 80 bits.
const RECOVERY_SYMBOLS: usize = 16;

crate::text_enum! {
    /// A kind of second factor stored in `user_factors` (passkeys have a
    /// table of their own, [`crate::passkeys`]).
    pub enum FactorKind as "factor kind" {
        Totp = "totp",
    }
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = user_factors)]
pub struct FactorRow {
    pub id: String,
    pub environment_id: String,
    pub user_id: String,
    pub kind: FactorKind,
    pub secret_sealed: String,
    pub confirmed_at: Option<NaiveDateTime>,
    pub last_used_step: Option<i64>,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
}

/// Why a TOTP secret is not usable.
#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error(transparent)]
    Sealed(#[from] SealError),
    #[error("TOTP: {0}")]
    Totp(#[from] totp_rs::TotpError),
    #[error(transparent)]
    Random(#[from] secrets::SecretError),
}

impl From<TotpError> for StorageError {
    fn from(e: TotpError) -> Self {
        Self::backend(e)
    }
}

/// A TOTP secret in the clear, only between unsealing and use.
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    /// 160 random bits, as RFC 4226 §4 recommends.
    ///
    /// # Errors
    /// When the random source fails.
    pub fn generate() -> Result<Self, TotpError> {
        let mut bytes = vec![0u8; 20];
        secrets::random_bytes(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// Opens a factor's sealed secret.
    ///
    /// # Errors
    /// When it does not open under `key`.
    pub fn unseal(key: &SealKey, row: &FactorRow) -> Result<Self, TotpError> {
        let aad = sealed::totp_secret_aad(&row.id);
        Ok(Self(sealed::unseal(
            key.expose(),
            &aad,
            &row.secret_sealed,
        )?))
    }

    /// Seals it for the factor `id`.
    ///
    /// # Errors
    /// OpenSSL failures.
    pub fn seal(&self, key: &SealKey, id: &str) -> Result<String, TotpError> {
        Ok(sealed::seal(
            key.expose(),
            &sealed::totp_secret_aad(id),
            &self.0,
        )?)
    }

    fn totp(&self, issuer: &str, account: &str) -> Result<totp_rs::Totp, TotpError> {
        // `:` separates issuer and account in the otpauth label; neither may hold one.
        Ok(totp_rs::Builder::new()
            .with_algorithm(totp_rs::Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_skew(SKEW_STEPS)
            .with_step_duration(STEP_SECS)
            .with_secret(self.0.clone())
            .with_issuer(Some(issuer.replace(':', " ")))
            .with_account_name(account.replace(':', " "))
            .build()?)
    }

    /// The key as people type it into an app (RFC 4648 base32).
    ///
    /// # Errors
    /// Never for a generated secret (it is long enough).
    pub fn base32(&self) -> Result<String, TotpError> {
        Ok(self.totp("TruSec", "")?.secret().to_base32())
    }

    /// The `otpauth://totp/…` URI authenticator apps read from a QR code.
    ///
    /// # Errors
    /// Never for a generated secret.
    pub fn otpauth_url(&self, issuer: &str, account: &str) -> Result<String, TotpError> {
        Ok(self.totp(issuer, account)?.to_url()?)
    }

    /// The time step `code` belongs to at `unix_time`, within one step of
    /// drift either way (RFC 6238 §5.2), compared in constant time
    /// (`totp_rs::Token`); `None` for a wrong or malformed code.
    ///
    /// # Errors
    /// Never for a generated secret.
    pub fn step_of(&self, code: &str, unix_time: u64) -> Result<Option<i64>, TotpError> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        Ok(self
            .totp("TruSec", "")?
            .check(&code, unix_time)
            .and_then(|step| i64::try_from(step).ok()))
    }
}

/// What a code typed at the second-factor step turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeCheck {
    /// The TOTP code of a step not used before: accepted (and now used).
    Totp,
    /// An unused recovery code: accepted (and now used), with how many
    /// are left.
    RecoveryCode { left: i64 },
    /// A right TOTP code of a step already used (RFC 6238 §5.2).
    Replayed,
    /// Neither a current TOTP code nor an unused recovery code.
    Wrong,
}

impl CodeCheck {
    pub fn accepted(self) -> bool {
        match self {
            Self::Totp | Self::RecoveryCode { .. } => true,
            Self::Replayed | Self::Wrong => false,
        }
    }

    /// For the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode { .. } => "recovery_code",
            Self::Replayed => "replayed",
            Self::Wrong => "wrong",
        }
    }
}

/// Checks a code the user typed against their confirmed TOTP factor, then
/// their unused recovery codes, and uses it up when it is accepted: the
/// one check behind sign-in and every change that asks for a code.
///
/// # Errors
/// Backend failures, or a secret that does not open under `key`.
pub fn check_code(
    conn: &mut DbConnection,
    key: &SealKey,
    env: &str,
    user_id: &str,
    code: &str,
    now: NaiveDateTime,
) -> Result<CodeCheck, StorageError> {
    if code.len() > 64 {
        return Ok(CodeCheck::Wrong);
    }
    if let Some(factor) = confirmed(conn, env, user_id, FactorKind::Totp)? {
        let unix = u64::try_from(now.and_utc().timestamp()).unwrap_or_default();
        if let Some(step) = TotpSecret::unseal(key, &factor)?.step_of(code, unix)? {
            return Ok(if accept_step(conn, &factor.id, step, now)? {
                CodeCheck::Totp
            } else {
                CodeCheck::Replayed
            });
        }
    }
    let Some(code) = normalize_recovery_code(code) else {
        return Ok(CodeCheck::Wrong);
    };
    Ok(
        match use_recovery_code(conn, env, user_id, &secrets::hash_secret(&code), now)? {
            Some(left) => CodeCheck::RecoveryCode { left },
            None => CodeCheck::Wrong,
        },
    )
}

/// Whether a user must give a second factor at sign-in.
///
/// # Errors
/// Backend failures.
pub fn has_factor(conn: &mut DbConnection, env: &str, user_id: &str) -> Result<bool, StorageError> {
    Ok(!list(conn, env, user_id)?.is_empty() || crate::passkeys::any(conn, env, user_id)?)
}

/// A user's confirmed factor of `kind`, if any.
///
/// # Errors
/// Backend failures.
pub fn confirmed(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
    kind: FactorKind,
) -> Result<Option<FactorRow>, StorageError> {
    Ok(of_kind(conn, env, user_id, kind)?.filter(|f| f.confirmed_at.is_some()))
}

/// A user's pending (unconfirmed) factor of `kind`, if any.
///
/// # Errors
/// Backend failures.
pub fn pending(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
    kind: FactorKind,
) -> Result<Option<FactorRow>, StorageError> {
    Ok(of_kind(conn, env, user_id, kind)?.filter(|f| f.confirmed_at.is_none()))
}

fn of_kind(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
    kind: FactorKind,
) -> Result<Option<FactorRow>, StorageError> {
    Ok(user_factors::table
        .filter(user_factors::environment_id.eq(env))
        .filter(user_factors::user_id.eq(user_id))
        .filter(user_factors::kind.eq(kind))
        .select(FactorRow::as_select())
        .first(conn)
        .optional()?)
}

/// The confirmed factors of a user, oldest first.
///
/// # Errors
/// Backend failures.
pub fn list(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
) -> Result<Vec<FactorRow>, StorageError> {
    Ok(user_factors::table
        .filter(user_factors::environment_id.eq(env))
        .filter(user_factors::user_id.eq(user_id))
        .filter(user_factors::confirmed_at.is_not_null())
        .order(user_factors::id.asc())
        .select(FactorRow::as_select())
        .load(conn)?)
}

/// Starts a TOTP enrolment: a pending factor with a new secret sealed under
/// `key`, replacing a pending one; returns the row and the secret to show.
///
/// # Errors
/// `Conflict` when the user already has a confirmed TOTP factor (remove it
/// first); `NotFound` for an unknown user; backend failures.
pub fn start_totp(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
    key: &SealKey,
    now: NaiveDateTime,
) -> Result<(FactorRow, TotpSecret), StorageError> {
    let secret = TotpSecret::generate()?;
    let id = ids::new_id(ids::FACTOR);
    let sealed = secret.seal(key, &id)?;
    conn.transaction(|conn| {
        crate::db::begin_write(conn)?;
        crate::users::get(conn, env, user_id)?;
        match of_kind(conn, env, user_id, FactorKind::Totp)? {
            Some(f) if f.confirmed_at.is_some() => {
                return Err(StorageError::Conflict(
                    "the user already has an authenticator app".into(),
                ));
            }
            Some(f) => {
                diesel::delete(user_factors::table.find(&f.id)).execute(conn)?;
            }
            None => {}
        }
        let row = FactorRow {
            id: id.clone(),
            environment_id: env.to_owned(),
            user_id: user_id.to_owned(),
            kind: FactorKind::Totp,
            secret_sealed: sealed.clone(),
            confirmed_at: None,
            last_used_step: None,
            created_at: now,
            last_used_at: None,
        };
        diesel::insert_into(user_factors::table)
            .values((
                user_factors::id.eq(&row.id),
                user_factors::environment_id.eq(&row.environment_id),
                user_factors::user_id.eq(&row.user_id),
                user_factors::kind.eq(row.kind),
                user_factors::secret_sealed.eq(&row.secret_sealed),
                user_factors::created_at.eq(row.created_at),
            ))
            .execute(conn)?;
        Ok(row)
    })
    .map(|row| (row, secret))
}

/// Confirms a pending factor with the step of its first code, and gives the
/// user `codes` (hashes of new recovery codes) in place of any old ones, in
/// one transaction. `false` when the factor is no longer pending (confirmed
/// by a concurrent request, or replaced): nothing changed.
///
/// # Errors
/// Backend failures.
pub fn confirm(
    conn: &mut DbConnection,
    factor: &FactorRow,
    step: i64,
    code_hashes: &[String],
    now: NaiveDateTime,
) -> Result<bool, StorageError> {
    conn.transaction(|conn| {
        let confirmed = diesel::update(
            user_factors::table
                .find(&factor.id)
                .filter(user_factors::confirmed_at.is_null()),
        )
        .set((
            user_factors::confirmed_at.eq(now),
            user_factors::last_used_step.eq(step),
            user_factors::last_used_at.eq(now),
        ))
        .execute(conn)?;
        if confirmed == 0 {
            return Ok(false);
        }
        replace_recovery_codes(
            conn,
            &factor.environment_id,
            &factor.user_id,
            code_hashes,
            now,
        )?;
        Ok(true)
    })
}

/// Gives a user `code_hashes` as their recovery codes when they have no
/// unused one (a first passkey: it is a second factor, and losing it must
/// not lock the user out); `false`, nothing changed, when they have some.
///
/// # Errors
/// Backend failures.
pub fn recovery_codes_if_none(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
    code_hashes: &[String],
    now: NaiveDateTime,
) -> Result<bool, StorageError> {
    conn.transaction(|conn| {
        crate::db::begin_write(conn)?;
        if recovery_codes_left(conn, env, user_id)? > 0 {
            return Ok(false);
        }
        replace_recovery_codes(conn, env, user_id, code_hashes, now)?;
        Ok(true)
    })
}

/// Accepts the code of `step` for a confirmed factor: `true` once, when
/// `step` is later than every step accepted before (RFC 6238 §5.2), in one
/// conditional update; `false` for a replayed (or older) code.
///
/// # Errors
/// Backend failures.
pub fn accept_step(
    conn: &mut DbConnection,
    factor_id: &str,
    step: i64,
    now: NaiveDateTime,
) -> Result<bool, StorageError> {
    let updated = diesel::update(
        user_factors::table
            .find(factor_id)
            .filter(user_factors::confirmed_at.is_not_null())
            .filter(
                user_factors::last_used_step
                    .is_null()
                    .or(user_factors::last_used_step.lt(step)),
            ),
    )
    .set((
        user_factors::last_used_step.eq(step),
        user_factors::last_used_at.eq(now),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Removes one factor of a user; the last one (passkeys count) takes the
/// recovery codes with it (they recover a second factor, and there is none
/// left).
///
/// # Errors
/// `NotFound` when the user has no such confirmed factor.
pub fn remove(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
    factor_id: &str,
) -> Result<FactorRow, StorageError> {
    conn.transaction(|conn| {
        let row: FactorRow = user_factors::table
            .find(factor_id)
            .filter(user_factors::environment_id.eq(env))
            .filter(user_factors::user_id.eq(user_id))
            .filter(user_factors::confirmed_at.is_not_null())
            .select(FactorRow::as_select())
            .first(conn)
            .optional()?
            .ok_or(StorageError::NotFound)?;
        diesel::delete(user_factors::table.find(&row.id)).execute(conn)?;
        if !has_factor(conn, env, user_id)? {
            delete_recovery_codes(conn, env, user_id)?;
        }
        Ok(row)
    })
}

/// Removes every factor (pending ones too), passkey and recovery code of a
/// user (the help-desk reset); returns the factors and passkeys removed.
///
/// # Errors
/// `NotFound` for an unknown user; backend failures.
pub fn reset(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
) -> Result<(Vec<FactorRow>, Vec<PasskeyRow>), StorageError> {
    conn.transaction(|conn| {
        crate::users::get(conn, env, user_id)?;
        let rows: Vec<FactorRow> = user_factors::table
            .filter(user_factors::environment_id.eq(env))
            .filter(user_factors::user_id.eq(user_id))
            .select(FactorRow::as_select())
            .load(conn)?;
        diesel::delete(
            user_factors::table
                .filter(user_factors::environment_id.eq(env))
                .filter(user_factors::user_id.eq(user_id)),
        )
        .execute(conn)?;
        let passkeys = crate::passkeys::remove_all(conn, env, user_id)?;
        delete_recovery_codes(conn, env, user_id)?;
        Ok((rows, passkeys))
    })
}

/// New recovery codes in the clear (to show once) and their hashes (to
/// store).
///
/// # Errors
/// When the random source fails.
pub fn new_recovery_codes() -> Result<(Vec<String>, Vec<String>), StorageError> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        codes.push(recovery_code().map_err(StorageError::backend)?);
    }
    let hashes = codes
        .iter()
        .map(|c| secrets::hash_secret(&normalize_recovery_code(c).unwrap_or_default()))
        .collect();
    Ok((codes, hashes))
}

fn recovery_code() -> Result<String, secrets::SecretError> {
    let mut bytes = [0u8; RECOVERY_SYMBOLS];
    secrets::random_bytes(&mut bytes)?;
    let symbols: Vec<char> = bytes
        .iter()
        .filter_map(|b| RECOVERY_ALPHABET.get(usize::from(b % 32)).copied())
        .map(char::from)
        .collect();
    // Groups of four, as people read them off paper.
    Ok(symbols
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

/// A typed recovery code as stored (dashes and spaces dropped, upper case),
/// or `None` when it cannot be one.
pub fn normalize_recovery_code(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == RECOVERY_SYMBOLS && code.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)))
        .then_some(code)
}

/// Uses one of a user's recovery codes (by its hash): `Some(remaining)`
/// once, `None` for an unknown or already used code.
///
/// # Errors
/// Backend failures.
pub fn use_recovery_code(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
    code_hash: &str,
    now: NaiveDateTime,
) -> Result<Option<i64>, StorageError> {
    conn.transaction(|conn| {
        let used = diesel::update(
            recovery_codes::table
                .filter(recovery_codes::environment_id.eq(env))
                .filter(recovery_codes::user_id.eq(user_id))
                .filter(recovery_codes::code_hash.eq(code_hash))
                .filter(recovery_codes::used_at.is_null()),
        )
        .set(recovery_codes::used_at.eq(now))
        .execute(conn)?;
        if used == 0 {
            return Ok(None);
        }
        Ok(Some(recovery_codes_left(conn, env, user_id)?))
    })
}

/// How many unused recovery codes a user has.
///
/// # Errors
/// Backend failures.
pub fn recovery_codes_left(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
) -> Result<i64, StorageError> {
    Ok(recovery_codes::table
        .filter(recovery_codes::environment_id.eq(env))
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)?)
}

pub(crate) fn delete_recovery_codes(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
) -> Result<usize, StorageError> {
    Ok(diesel::delete(
        recovery_codes::table
            .filter(recovery_codes::environment_id.eq(env))
            .filter(recovery_codes::user_id.eq(user_id)),
    )
    .execute(conn)?)
}

fn replace_recovery_codes(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
    hashes: &[String],
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    delete_recovery_codes(conn, env, user_id)?;
    for hash in hashes {
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::id.eq(ids::new_id(ids::RECOVERY_CODE)),
                recovery_codes::environment_id.eq(env),
                recovery_codes::user_id.eq(user_id),
                recovery_codes::code_hash.eq(hash),
                recovery_codes::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_matches_its_step_within_one_step_of_drift() {
        let secret = TotpSecret(b"12345678901234567890".to_vec());
        // RFC 6238 Appendix B, SHA-1, T = 59: 94287082 (eight digits); the
        // six-digit code is its last six.
        assert_eq!(secret.step_of("287082", 59).unwrap(), Some(1));
        assert_eq!(secret.step_of("287082", 89).unwrap(), Some(1));
        assert_eq!(secret.step_of("287082", 30 * 3).unwrap(), None);
        assert_eq!(secret.step_of("28708", 59).unwrap(), None);
        assert_eq!(secret.step_of("abcdef", 59).unwrap(), None);
    }

    #[test]
    fn recovery_codes_are_ten_distinct_codes_that_normalise() {
        let (codes, hashes) = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let mut unique = hashes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let first = codes.first().unwrap();
        let typed = first.to_lowercase().replace('-', " ");
        assert_eq!(
            secrets::hash_secret(&normalize_recovery_code(&typed).unwrap()),
            *hashes.first().unwrap()
        );
        assert_eq!(normalize_recovery_code("short"), None);
    }
}
