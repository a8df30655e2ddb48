//! The lifecycle every signing key shares, whether a JWT key of the OAuth
//! keyring (one chain per algorithm, [`crate::signing_keys`]) or the SAML
//! IdP key and certificate ([`crate::service_providers::IdpKeyRow`]):
//!
//! `next` (published in JWKS or metadata, not yet signing, so relying
//! parties that refresh learn it before it is used) → `current` (signing) →
//! `retired` (published only while what it signed may still be checked).
//!
//! A rotation step runs under a named [`RotationLock`]: one transaction that
//! is the only rotation of its kind among every instance, so instances
//! racing on a schedule rotate once.

use crate::db::{DbConnection, serialize_writers};
use crate::error::StorageError;
use diesel::Connection;

crate::text_enum! {
    /// Where a key is in its lifecycle.
    pub enum KeyState as "key state" {
        Next = "next",
        Current = "current",
        Retired = "retired",
    }
}

/// The rotation locks, one per kind of key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotationLock {
    JwtSigningKeys,
    SamlIdpKey,
}

impl RotationLock {
    /// The PostgreSQL advisory lock id (SQLite has one writer anyway).
    fn advisory_id(self) -> i64 {
        match self {
            Self::JwtSigningKeys => 0x7275_7365_635f_6b79,
            Self::SamlIdpKey => 0x7275_7365_635f_7361,
        }
    }

    /// Runs `step` in one transaction holding this lock.
    ///
    /// # Errors
    /// `step`'s errors, or backend failures.
    pub fn run<T>(
        self,
        conn: &mut DbConnection,
        step: impl FnOnce(&mut DbConnection) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        conn.transaction(|conn| {
            serialize_writers(conn, self.advisory_id())?;
            step(conn)
        })
    }
}
