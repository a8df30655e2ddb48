//! API keys for the management API. The key is shown once; the row keeps its
//! SHA-256 (see [`crate::secrets`] for why a fast hash is right here), the
//! last four characters for recognition, and its environment.

use crate::clock::rfc3339;
use crate::db::DbConnection;
use crate::error::StorageError;
use crate::ids;
use crate::page::{Page, PageRequest};
use crate::schema::api_keys;
use crate::secrets::{self, SecretError};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

crate::text_enum! {
    /// The three kinds of key of the contract.
    pub enum KeyType as "API key type" {
        /// `trusec_sk_`: server-side, full management API, live environment.
        Secret = "secret",
        /// `trusec_pk_`: browser-safe, never the management API.
        Public = "public",
        /// `trusec_test_`: like a secret key, inside the test environment.
        Test = "test",
    }
}

impl KeyType {
    /// The visible prefix of keys of this type.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Secret => "trusec_sk_",
            Self::Public => "trusec_pk_",
            Self::Test => "trusec_test_",
        }
    }

    /// The environment whose objects keys of this type see.
    pub fn environment(self) -> &'static str {
        match self {
            Self::Secret | Self::Public => ids::ENV_LIVE,
            Self::Test => ids::ENV_TEST,
        }
    }

    /// Whether a key of this type may create keys of type `new` (contract):
    /// a live secret key is the operator's root credential and creates every
    /// type; a test key creates only test keys; a public key creates nothing.
    pub fn may_create(self, new: Self) -> bool {
        match (self, new) {
            (Self::Secret, _) | (Self::Test, Self::Test) => true,
            (Self::Test, Self::Secret | Self::Public) | (Self::Public, _) => false,
        }
    }

    /// The type a presented key claims by its prefix.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| key.starts_with(t.prefix()))
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Serialize, serde::Deserialize)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: String,
    pub environment_id: String,
    pub key_type: KeyType,
    pub name: String,
    pub secret_hash: String,
    pub last_four: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub rotated_to: Option<String>,
}

/// A key as lists show it: recognisable, never usable.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: String,
    #[serde(rename = "type")]
    pub key_type: String,
    pub name: String,
    pub environment: String,
    pub prefix: String,
    pub last_four: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub rotated_to: Option<String>,
}

/// Why a presented key is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRejection {
    Unknown,
    Revoked,
    Expired,
}

impl ApiKeyRow {
    pub fn to_api_key(&self) -> ApiKey {
        ApiKey {
            id: self.id.clone(),
            key_type: self.key_type.as_str().to_owned(),
            name: self.name.clone(),
            environment: self.environment_id.clone(),
            prefix: self.key_type.prefix().to_owned(),
            last_four: self.last_four.clone(),
            created_at: rfc3339(self.created_at),
            last_used_at: self.last_used_at.map(rfc3339),
            expires_at: self.expires_at.map(rfc3339),
            revoked_at: self.revoked_at.map(rfc3339),
            rotated_to: self.rotated_to.clone(),
        }
    }

    /// Whether the key may be used at `now`.
    pub fn check(&self, now: NaiveDateTime) -> Result<(), KeyRejection> {
        if self.revoked_at.is_some() {
            Err(KeyRejection::Revoked)
        } else if self.expires_at.is_some_and(|e| e <= now) {
            Err(KeyRejection::Expired)
        } else {
            Ok(())
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateKeyError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

impl From<diesel::result::Error> for CreateKeyError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Storage(e.into())
    }
}

/// A freshly minted key: the row and the one-time plaintext.
pub struct MintedKey {
    pub row: ApiKeyRow,
    pub key: String,
}

impl std::fmt::Debug for MintedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedKey")
            .field("row", &self.row)
            .finish_non_exhaustive()
    }
}

/// Mints and stores a new key.
///
/// # Errors
/// Random source or backend failures.
pub fn create(
    conn: &mut DbConnection,
    key_type: KeyType,
    name: &str,
    now: NaiveDateTime,
    expires_at: Option<NaiveDateTime>,
) -> Result<MintedKey, CreateKeyError> {
    let key = secrets::generate_secret(key_type.prefix())?;
    let last_four = key
        .get(key.len().saturating_sub(4)..)
        .unwrap_or_default()
        .to_owned();
    let row = ApiKeyRow {
        id: ids::new_id(ids::API_KEY),
        environment_id: key_type.environment().to_owned(),
        key_type,
        name: name.to_owned(),
        secret_hash: secrets::hash_secret(&key),
        last_four,
        created_at: now,
        last_used_at: None,
        expires_at,
        revoked_at: None,
        rotated_to: None,
    };
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::id.eq(&row.id),
            api_keys::environment_id.eq(&row.environment_id),
            api_keys::key_type.eq(row.key_type),
            api_keys::name.eq(&row.name),
            api_keys::secret_hash.eq(&row.secret_hash),
            api_keys::last_four.eq(&row.last_four),
            api_keys::created_at.eq(row.created_at),
            api_keys::expires_at.eq(row.expires_at),
        ))
        .execute(conn)?;
    Ok(MintedKey { row, key })
}

/// The key whose secret hashes to `hash`, if any.
///
/// # Errors
/// Backend failures.
pub fn find_by_hash(
    conn: &mut DbConnection,
    hash: &str,
) -> Result<Option<ApiKeyRow>, StorageError> {
    Ok(api_keys::table
        .filter(api_keys::secret_hash.eq(hash))
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// One key of this environment.
///
/// # Errors
/// `NotFound` when there is none.
pub fn get(conn: &mut DbConnection, env: &str, id: &str) -> Result<ApiKeyRow, StorageError> {
    Ok(api_keys::table
        .filter(api_keys::environment_id.eq(env))
        .filter(api_keys::id.eq(id))
        .select(ApiKeyRow::as_select())
        .first(conn)?)
}

/// Keys of this environment in creation order.
///
/// # Errors
/// Backend failures.
pub fn list(
    conn: &mut DbConnection,
    env: &str,
    page: &PageRequest,
) -> Result<Page<ApiKeyRow>, StorageError> {
    let mut query = api_keys::table
        .filter(api_keys::environment_id.eq(env))
        .select(ApiKeyRow::as_select())
        .order(api_keys::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(api_keys::id.gt(after.clone()));
    }
    Ok(Page::from_overfetch(query.load(conn)?, page.limit))
}

/// Revokes a key at once; revoking twice is harmless. Returns the row and
/// whether this call revoked it.
///
/// # Errors
/// `NotFound` when the key is not in this environment.
pub fn revoke(
    conn: &mut DbConnection,
    env: &str,
    id: &str,
    now: NaiveDateTime,
) -> Result<(ApiKeyRow, bool), StorageError> {
    conn.transaction(|conn| {
        crate::db::begin_write(conn)?;
        get(conn, env, id)?;
        // Conditional: of two concurrent revokes exactly one reports it.
        let revoked = diesel::update(
            api_keys::table
                .filter(api_keys::id.eq(id))
                .filter(api_keys::revoked_at.is_null()),
        )
        .set(api_keys::revoked_at.eq(Some(now)))
        .execute(conn)?;
        Ok((get(conn, env, id)?, revoked == 1))
    })
}

/// Replaces a key with a new one of the same type and name. The old key keeps
/// working until `grace_until` (or its own expiry, if sooner), then stops.
///
/// # Errors
/// `NotFound` when the key is unknown, revoked, expired or already rotated;
/// `Conflict` when a concurrent rotation of the same key won.
pub fn rotate(
    conn: &mut DbConnection,
    env: &str,
    id: &str,
    now: NaiveDateTime,
    grace_until: NaiveDateTime,
    new_expires_at: Option<NaiveDateTime>,
) -> Result<(ApiKeyRow, MintedKey), CreateKeyError> {
    conn.transaction(|conn| {
        crate::db::begin_write(conn)?;
        let old = get(conn, env, id)?;
        let key_type = old.key_type;
        if old.check(now).is_err() || old.rotated_to.is_some() {
            return Err(StorageError::NotFound.into());
        }
        let minted = create(conn, key_type, &old.name, now, new_expires_at)?;
        let old_expiry = old.expires_at.map_or(grace_until, |e| e.min(grace_until));
        // Conditional: of two concurrent rotations one wins; the other rolls
        // back, new key and all.
        let claimed = diesel::update(
            api_keys::table
                .filter(api_keys::id.eq(id))
                .filter(api_keys::rotated_to.is_null())
                .filter(api_keys::revoked_at.is_null()),
        )
        .set((
            api_keys::expires_at.eq(Some(old_expiry)),
            api_keys::rotated_to.eq(Some(&minted.row.id)),
        ))
        .execute(conn)?;
        if claimed == 0 {
            return Err(StorageError::Conflict("api_keys_rotated_to".into()).into());
        }
        Ok((get(conn, env, id)?, minted))
    })
}

/// Records use. Callers rate this to once a minute per key so that
/// authentication does not turn every request into a write.
///
/// # Errors
/// Backend failures.
pub fn touch(
    conn: &mut DbConnection,
    row: &ApiKeyRow,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    diesel::update(api_keys::table.filter(api_keys::id.eq(&row.id)))
        .set(api_keys::last_used_at.eq(Some(now)))
        .execute(conn)?;
    Ok(())
}
