//! Master-key rotation: every value sealed under the master key
//! ([`crate::sealed`]) re-sealed under a new one, in one transaction, with
//! its audit event. The values themselves do not change, so tokens, SAML
//! assertions, NameIDs and the audit chain stay valid across a rotation.
//!
//! The sealed values: the private JWT signing keys (`signing_keys`) and the
//! SAML IdP keys (`saml_idp_keys`) of every environment, the deployment
//! secrets ([`crate::deployment_secrets`]), the users' TOTP secrets
//! (`user_factors`, [`crate::mfa`]), and the secrets of `client_secret_jwt`
//! clients (`oauth_clients.secret_sealed`, [`crate::clients`]).

use crate::audit::{self, Actor, EventType, NewAuditEvent};
use crate::db::DbConnection;
use crate::deployment_secrets::{self as secrets, SecretError};
use crate::error::StorageError;
use crate::schema::{deployment_secrets, oauth_clients, saml_idp_keys, signing_keys, user_factors};
use crate::sealed::{self, SealError};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// How many values a rotation re-sealed, by table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Resealed {
    pub signing_keys: usize,
    pub saml_idp_keys: usize,
    pub deployment_secrets: usize,
    pub totp_secrets: usize,
    pub client_secrets: usize,
}

/// Why a rotation changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A value does not open under the current master key.
    #[error("{table} row {id} does not open under the current master key: {source}")]
    Sealed {
        table: &'static str,
        id: String,
        #[source]
        source: SealError,
    },
}

impl From<diesel::result::Error> for ResealError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Storage(e.into())
    }
}

impl From<SecretError> for ResealError {
    fn from(e: SecretError) -> Self {
        match e {
            SecretError::Storage(s) => Self::Storage(s),
            SecretError::Sealed { name, source } => Self::Sealed {
                table: "deployment_secrets",
                id: name.to_owned(),
                source,
            },
            SecretError::NotTheDeploymentsKey { table } => Self::Sealed {
                table,
                id: "(first)".to_owned(),
                source: SealError::Unseal,
            },
        }
    }
}

/// Re-seals the `$sealed` column of every row of `$table` (keyed by `$id`,
/// associated data `$aad(id)`); evaluates to how many, or the first error.
/// A macro because diesel's columns are types: one body for every table.
macro_rules! reseal_table {
    ($conn:expr, $table:ident, $id:ident, $sealed:ident, $aad:path, $old:expr, $new:expr) => {{
        let rows: Vec<(String, String)> = $table::table
            .select(($table::$id, $table::$sealed))
            .load($conn)
            .map_err(StorageError::from)?;
        let resealed = reseal_rows(stringify!($table), &rows, $aad, $old, $new)?;
        for (id, text) in &resealed {
            diesel::update($table::table.find(id))
                .set($table::$sealed.eq(text))
                .execute($conn)
                .map_err(StorageError::from)?;
        }
        resealed.len()
    }};
}

/// Re-seals every sealed value from `old` to `new` and audits
/// `master_key.rotated`, all in one transaction: any value that does not
/// open under `old` rolls everything back. The deployment secrets must
/// exist already ([`secrets::open`] under `old`), or a secret
/// still derived from the master key would change with it.
///
/// # Errors
/// Backend failures, or a value that does not open under `old`.
pub fn rotate_master_key(
    conn: &mut DbConnection,
    old: &[u8; 32],
    new: &[u8; 32],
    now: NaiveDateTime,
) -> Result<Resealed, ResealError> {
    conn.transaction(|conn| {
        // Opens (and checks) every deployment secret under `old` first.
        let stored = secrets::stored(conn, old)?;
        let resealed = Resealed {
            signing_keys: reseal_table!(
                conn,
                signing_keys,
                id,
                private_key,
                sealed::signing_key_aad,
                old,
                new
            ),
            saml_idp_keys: reseal_table!(
                conn,
                saml_idp_keys,
                id,
                private_key,
                sealed::saml_idp_key_aad,
                old,
                new
            ),
            deployment_secrets: reseal_table!(
                conn,
                deployment_secrets,
                name,
                sealed,
                sealed::deployment_secret_aad,
                old,
                new
            ),
            totp_secrets: reseal_table!(
                conn,
                user_factors,
                id,
                secret_sealed,
                sealed::totp_secret_aad,
                old,
                new
            ),
            client_secrets: reseal_client_secrets(conn, old, new)?,
        };
        // Recorded in live, where a deployment's operators read the log
        // (`/v1/audit-events` lists one environment): a test key must not
        // see deployment operations.
        let event = NewAuditEvent::new(
            EventType::MasterKeyRotated,
            Some(crate::ids::ENV_LIVE),
            Actor::cli(),
        )
        .data(serde_json::json!({"resealed": resealed}));
        audit::append(conn, &stored.audit, &[event], now)?;
        Ok(resealed)
    })
}

/// The one nullable sealed column: only the rows that keep a secret.
fn reseal_client_secrets(
    conn: &mut DbConnection,
    old: &[u8; 32],
    new: &[u8; 32],
) -> Result<usize, ResealError> {
    let rows: Vec<(String, Option<String>)> = oauth_clients::table
        .filter(oauth_clients::secret_sealed.is_not_null())
        .select((oauth_clients::id, oauth_clients::secret_sealed))
        .load(conn)
        .map_err(StorageError::from)?;
    let rows: Vec<(String, String)> = rows
        .into_iter()
        .filter_map(|(id, text)| text.map(|t| (id, t)))
        .collect();
    let resealed = reseal_rows("oauth_clients", &rows, sealed::client_secret_aad, old, new)?;
    for (id, text) in &resealed {
        diesel::update(oauth_clients::table.find(id))
            .set(oauth_clients::secret_sealed.eq(text))
            .execute(conn)
            .map_err(StorageError::from)?;
    }
    Ok(resealed.len())
}

/// `(id, sealed)` rows re-sealed under `new`, with the same associated data;
/// all of them or an error, before anything is written.
fn reseal_rows(
    table: &'static str,
    rows: &[(String, String)],
    aad: fn(&str) -> Vec<u8>,
    old: &[u8; 32],
    new: &[u8; 32],
) -> Result<Vec<(String, String)>, ResealError> {
    rows.iter()
        .map(|(id, text)| {
            let failed = |source| ResealError::Sealed {
                table,
                id: id.clone(),
                source,
            };
            let label = aad(id);
            let plain = sealed::unseal(old, &label, text).map_err(failed)?;
            let text = sealed::seal(new, &label, &plain).map_err(failed)?;
            Ok((id.clone(), text))
        })
        .collect()
}
