//! Secrets of the whole deployment, kept in `deployment_secrets`, each
//! sealed under the master key ([`crate::sealed`], bound to its name).
//!
//! Each is made once, on the first start that finds no row, from the
//! master key then in use; from then on it is read from the table and never
//! derived again. So rotating the master key (`trusec master-key rotate`,
//! [`crate::reseal`]) re-seals these values instead of changing them: the
//! persistent NameIDs SPs know and the audit chain's links stay valid.

use crate::audit::AuditKey;
use crate::db::DbConnection;
use crate::error::StorageError;
use crate::schema::deployment_secrets;
use crate::sealed::{self, SealError};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use sha2::{Digest, Sha256};

crate::text_enum! {
    /// Every deployment secret, by its row name.
    pub enum SecretName as "deployment secret" {
        /// The HMAC key of persistent and transient NameIDs and SessionIndex values.
        SamlNameId = "saml_name_id",
        /// The HMAC key of the audit chain.
        AuditHmac = "audit_hmac",
    }
}

/// What a deployment secret could not be.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A row does not open under this master key (or was tampered with).
    #[error("the deployment secret {name} does not open under this master key: {source}")]
    Sealed {
        name: &'static str,
        #[source]
        source: SealError,
    },
    /// No row yet, and the deployment's signing keys do not open under
    /// this master key: storing secrets derived from it would lock the
    /// right key out.
    #[error("the {table} do not open under this master key")]
    NotTheDeploymentsKey { table: &'static str },
}

/// The deployment secrets, opened.
#[derive(Clone)]
pub struct DeploymentSecrets {
    /// The HMAC key of SAML NameIDs (persistent, transient) and SessionIndex values.
    pub saml_name_id: [u8; 32],
    /// The HMAC key of the audit chain.
    pub audit: AuditKey,
}

impl std::fmt::Debug for DeploymentSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeploymentSecrets(..)")
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = deployment_secrets)]
struct SecretRow {
    name: SecretName,
    sealed: String,
    created_at: NaiveDateTime,
}

/// The value a deployment without a row gets: what the code derived from
/// the master key before this table existed, so upgrading changes nothing.
fn initial(name: SecretName, master: &[u8; 32]) -> Result<[u8; 32], StorageError> {
    match name {
        // Not HKDF: SHA-256 of this label and the master key is what
        // persistent NameIDs were keyed with before; keeping it keeps every
        // NameID and SessionIndex an SP already knows.
        SecretName::SamlNameId => {
            let mut h = Sha256::new();
            h.update(b"trusec saml persistent nameid v1\0");
            h.update(master);
            Ok(h.finalize().into())
        }
        // HKDF-SHA-256 with the audit label, exactly the key the chain was
        // keyed with before, so it keeps verifying.
        SecretName::AuditHmac => Ok(*AuditKey::derive(master)?.bytes()),
    }
}

/// Opens every deployment secret, creating (from `master`) any that has
/// no row yet. Safe against another instance creating it at the same time:
/// the first insert wins and both read it back.
///
/// # Errors
/// Backend failures, or a row that does not open under `master`.
pub fn open(
    conn: &mut DbConnection,
    master: &[u8; 32],
    now: NaiveDateTime,
) -> Result<DeploymentSecrets, SecretError> {
    let missing: Vec<SecretName> = SecretName::ALL
        .iter()
        .copied()
        .filter_map(|name| {
            find(conn, name)
                .map(|row| row.is_none().then_some(name))
                .transpose()
        })
        .collect::<Result<_, _>>()?;
    if !missing.is_empty() {
        opens_the_signing_keys(conn, master)?;
    }
    for name in missing {
        create(conn, name, master, now)?;
    }
    stored(conn, master)
}

/// A row's id and its sealed column.
type IdAndSealed = (String, String);
/// The associated data of a sealed column, by row id.
type AadOf = fn(&str) -> Vec<u8>;

/// Before the first secret is stored: the master key must be the one the
/// deployment's private keys (if any) were sealed with.
fn opens_the_signing_keys(conn: &mut DbConnection, master: &[u8; 32]) -> Result<(), SecretError> {
    use crate::schema::{saml_idp_keys, signing_keys};
    let jwt: Option<(String, String)> = signing_keys::table
        .select((signing_keys::id, signing_keys::private_key))
        .first(conn)
        .optional()
        .map_err(StorageError::from)?;
    let saml: Option<(String, String)> = saml_idp_keys::table
        .select((saml_idp_keys::id, saml_idp_keys::private_key))
        .first(conn)
        .optional()
        .map_err(StorageError::from)?;
    let samples: [(&'static str, Option<IdAndSealed>, AadOf); 2] = [
        ("JWT signing keys", jwt, sealed::signing_key_aad),
        ("SAML IdP keys", saml, sealed::saml_idp_key_aad),
    ];
    for (table, sample, aad) in samples {
        if let Some((id, text)) = sample
            && sealed::unseal(master, &aad(&id), &text).is_err()
        {
            return Err(SecretError::NotTheDeploymentsKey { table });
        }
    }
    Ok(())
}

/// Opens every deployment secret without writing: a secret with no row
/// yet is the value [`open`] would store (for commands that only read).
///
/// # Errors
/// Backend failures, or a row that does not open under `master`.
pub fn peek(conn: &mut DbConnection, master: &[u8; 32]) -> Result<DeploymentSecrets, SecretError> {
    read(conn, master, Missing::Derive)
}

/// Opens every deployment secret, each of which must have its row.
pub(crate) fn stored(
    conn: &mut DbConnection,
    master: &[u8; 32],
) -> Result<DeploymentSecrets, SecretError> {
    read(conn, master, Missing::Refuse)
}

/// What to do about a secret without a row.
#[derive(Clone, Copy)]
enum Missing {
    Refuse,
    Derive,
}

fn read(
    conn: &mut DbConnection,
    master: &[u8; 32],
    missing: Missing,
) -> Result<DeploymentSecrets, SecretError> {
    let mut value = |name: SecretName| -> Result<[u8; 32], SecretError> {
        match (find(conn, name)?, missing) {
            (Some(row), _) => unseal(name, master, &row.sealed),
            (None, Missing::Derive) => Ok(initial(name, master)?),
            (None, Missing::Refuse) => Err(StorageError::NotFound.into()),
        }
    };
    Ok(DeploymentSecrets {
        saml_name_id: value(SecretName::SamlNameId)?,
        audit: AuditKey::from_bytes(value(SecretName::AuditHmac)?),
    })
}

fn find(conn: &mut DbConnection, name: SecretName) -> Result<Option<SecretRow>, StorageError> {
    Ok(deployment_secrets::table
        .find(name)
        .select(SecretRow::as_select())
        .first(conn)
        .optional()?)
}

fn create(
    conn: &mut DbConnection,
    name: SecretName,
    master: &[u8; 32],
    now: NaiveDateTime,
) -> Result<(), SecretError> {
    let value = initial(name, master)?;
    let row = SecretRow {
        name,
        sealed: seal(name, master, &value)?,
        created_at: now,
    };
    match diesel::insert_into(deployment_secrets::table)
        .values(&row)
        .execute(conn)
    {
        Ok(_) => Ok(()),
        // Another instance stored it first: theirs is the one.
        Err(e) => match StorageError::from(e) {
            StorageError::Conflict(_) => Ok(()),
            other => Err(other.into()),
        },
    }
}

fn seal(name: SecretName, master: &[u8; 32], value: &[u8; 32]) -> Result<String, SecretError> {
    sealed::seal(master, &sealed::deployment_secret_aad(name.as_str()), value).map_err(|source| {
        SecretError::Sealed {
            name: name.as_str(),
            source,
        }
    })
}

fn unseal(name: SecretName, master: &[u8; 32], text: &str) -> Result<[u8; 32], SecretError> {
    let sealed_err = |source| SecretError::Sealed {
        name: name.as_str(),
        source,
    };
    let plain = sealed::unseal(master, &sealed::deployment_secret_aad(name.as_str()), text)
        .map_err(sealed_err)?;
    plain.try_into().map_err(|_| sealed_err(SealError::Unseal))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The first values are what earlier releases derived on every start
    /// (fixed vectors, computed outside this code): an upgrade keeps every
    /// NameID and the audit chain.
    #[test]
    fn first_values_are_those_earlier_releases_derived() {
        let master = [0u8; 32];
        assert_eq!(
            hex(&initial(SecretName::SamlNameId, &master).unwrap()),
            "39e31507b23edc79b0fe883ead751fcd5f7568e223b9792c960583e72443ec2a"
        );
        assert_eq!(
            hex(&initial(SecretName::AuditHmac, &master).unwrap()),
            "0bab79fc490f5764992578b1f6820d5877aa8955fc428aa410bc88146512e04e"
        );
    }
}
