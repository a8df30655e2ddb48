//! SAML service providers registered with the IdP, and the IdP's own
//! signing keys (sealed elsewhere; this module only stores them).

use crate::clock::rfc3339;
use crate::db::DbConnection;
use crate::error::StorageError;
use crate::ids;
use crate::key_lifecycle::{KeyState, RotationLock};
use crate::page::{Page, PageRequest};
use crate::schema::{saml_idp_keys, saml_service_providers};
use crate::sql_types::Json;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

mod values;

pub use values::{
    AssertionCipher, AttributeMap, AttributeNameFormat, AttributeProfile, Binding, Endpoint,
    NameIdFormat, Released, UserAttribute,
};

/// A registered SP, its columns typed: the endpoint lists and the attribute
/// mapping are JSON, the NameID format a closed set, each parsed once as
/// the row loads (a corrupt stored value fails the query: see
/// [`crate::sql_types`]), and the flags booleans.
///
/// The flags are read from the BOOLEAN columns of
/// `2026-12-01-000000_sp_flags_boolean`; every write also sets the 0/1
/// BIGINT columns they replace ([`legacy_flags`]), which the previous
/// release reads, until a contract migration drops them.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = saml_service_providers)]
pub struct ServiceProviderRow {
    pub id: String,
    pub environment_id: String,
    pub entity_id: String,
    pub name: String,
    pub acs_endpoints: Json<Vec<Endpoint>>,
    pub slo_endpoints: Json<Vec<Endpoint>>,
    pub certificate_pem: Option<String>,
    pub name_id_format: NameIdFormat,
    pub attributes: Json<AttributeMap>,
    pub attribute_profile: AttributeProfile,
    #[diesel(column_name = signs_response)]
    pub sign_response: bool,
    #[diesel(column_name = signs_assertion)]
    pub sign_assertion: bool,
    #[diesel(column_name = requires_signed_authn_requests)]
    pub want_authn_requests_signed: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The certificate the SP publishes for encryption (PEM, RSA key).
    pub encryption_certificate_pem: Option<String>,
    /// Whether assertions to it are encrypted (only with a certificate).
    pub encrypt_assertions: bool,
    pub assertion_cipher: AssertionCipher,
}

/// The 0/1 BIGINT flag columns, written next to the BOOLEAN ones so that
/// an instance of the previous release, which reads only these, sees the
/// same SP during a rolling upgrade (expand → contract, migrations/README.md).
fn legacy_flags(
    r: &ServiceProviderRow,
) -> (
    diesel::dsl::Eq<saml_service_providers::sign_response, i64>,
    diesel::dsl::Eq<saml_service_providers::sign_assertion, i64>,
    diesel::dsl::Eq<saml_service_providers::want_authn_requests_signed, i64>,
) {
    (
        saml_service_providers::sign_response.eq(i64::from(r.sign_response)),
        saml_service_providers::sign_assertion.eq(i64::from(r.sign_assertion)),
        saml_service_providers::want_authn_requests_signed
            .eq(i64::from(r.want_authn_requests_signed)),
    )
}

/// A service provider as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceProvider {
    pub id: String,
    pub environment: String,
    pub entity_id: String,
    pub name: String,
    pub acs_endpoints: Vec<Endpoint>,
    pub slo_endpoints: Vec<Endpoint>,
    pub certificate_pem: Option<String>,
    /// The format's URN.
    pub name_id_format: String,
    /// Our attribute name → the `Name` the SP wants (basic name format),
    /// or `{name, name_format, friendly_name}`.
    #[schema(value_type = std::collections::BTreeMap<String, Object>)]
    pub attributes: AttributeMap,
    /// `basic`, `oid` or `microsoft`: the names attributes are released under.
    #[schema(value_type = String)]
    pub attribute_profile: AttributeProfile,
    pub sign_response: bool,
    pub sign_assertion: bool,
    pub want_authn_requests_signed: bool,
    /// The SP's encryption certificate (PEM), from its metadata or given.
    pub encryption_certificate_pem: Option<String>,
    /// Assertions to this SP are encrypted for that certificate.
    pub encrypt_assertions: bool,
    /// `aes256-gcm` or `aes256-cbc`: the content cipher.
    #[schema(value_type = String)]
    pub assertion_cipher: AssertionCipher,
    pub created_at: String,
    pub updated_at: String,
}

impl ServiceProviderRow {
    pub fn to_sp(&self) -> ServiceProvider {
        ServiceProvider {
            id: self.id.clone(),
            environment: self.environment_id.clone(),
            entity_id: self.entity_id.clone(),
            name: self.name.clone(),
            acs_endpoints: self.acs_endpoints.0.clone(),
            slo_endpoints: self.slo_endpoints.0.clone(),
            certificate_pem: self.certificate_pem.clone(),
            name_id_format: self.name_id_format.urn().to_owned(),
            attributes: self.attributes.0.clone(),
            attribute_profile: self.attribute_profile,
            sign_response: self.sign_response,
            sign_assertion: self.sign_assertion,
            want_authn_requests_signed: self.want_authn_requests_signed,
            encryption_certificate_pem: self.encryption_certificate_pem.clone(),
            encrypt_assertions: self.encrypt_assertions,
            assertion_cipher: self.assertion_cipher,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }

    /// The SP's configuration, to update it.
    pub fn fields(&self) -> SpFields {
        SpFields {
            entity_id: self.entity_id.clone(),
            name: self.name.clone(),
            acs_endpoints: self.acs_endpoints.0.clone(),
            slo_endpoints: self.slo_endpoints.0.clone(),
            certificate_pem: self.certificate_pem.clone(),
            name_id_format: self.name_id_format,
            attributes: self.attributes.0.clone(),
            attribute_profile: self.attribute_profile,
            sign_response: self.sign_response,
            sign_assertion: self.sign_assertion,
            want_authn_requests_signed: self.want_authn_requests_signed,
            encryption_certificate_pem: self.encryption_certificate_pem.clone(),
            encrypt_assertions: self.encrypt_assertions,
            assertion_cipher: self.assertion_cipher,
        }
    }
}

/// A validated service provider (new, or the whole of an updated one).
#[derive(Clone, Debug)]
pub struct SpFields {
    pub entity_id: String,
    pub name: String,
    pub acs_endpoints: Vec<Endpoint>,
    pub slo_endpoints: Vec<Endpoint>,
    pub certificate_pem: Option<String>,
    pub name_id_format: NameIdFormat,
    pub attributes: AttributeMap,
    pub attribute_profile: AttributeProfile,
    pub sign_response: bool,
    pub sign_assertion: bool,
    pub want_authn_requests_signed: bool,
    pub encryption_certificate_pem: Option<String>,
    pub encrypt_assertions: bool,
    pub assertion_cipher: AssertionCipher,
}

fn row(
    id: String,
    env: &str,
    f: SpFields,
    created: NaiveDateTime,
    now: NaiveDateTime,
) -> ServiceProviderRow {
    ServiceProviderRow {
        id,
        environment_id: env.to_owned(),
        entity_id: f.entity_id,
        name: f.name,
        acs_endpoints: Json(f.acs_endpoints),
        slo_endpoints: Json(f.slo_endpoints),
        certificate_pem: f.certificate_pem,
        name_id_format: f.name_id_format,
        attributes: Json(f.attributes),
        attribute_profile: f.attribute_profile,
        sign_response: f.sign_response,
        sign_assertion: f.sign_assertion,
        want_authn_requests_signed: f.want_authn_requests_signed,
        created_at: created,
        updated_at: now,
        encryption_certificate_pem: f.encryption_certificate_pem,
        encrypt_assertions: f.encrypt_assertions,
        assertion_cipher: f.assertion_cipher,
    }
}

fn conflict(e: diesel::result::Error) -> StorageError {
    match StorageError::from(e) {
        StorageError::Conflict(_) => {
            StorageError::Conflict("saml_sp_environment_entity_key".into())
        }
        other => other,
    }
}

/// Registers an SP.
///
/// # Errors
/// `Conflict` when the entity id is registered in this environment already
/// (the `saml_sp_environment_entity_key` constraint). Other environments
/// may have it: each is its own IdP.
pub fn insert(
    conn: &mut DbConnection,
    env: &str,
    fields: SpFields,
    now: NaiveDateTime,
) -> Result<ServiceProviderRow, StorageError> {
    let r = row(ids::new_id(ids::SERVICE_PROVIDER), env, fields, now, now);
    diesel::insert_into(saml_service_providers::table)
        .values((&r, legacy_flags(&r)))
        .execute(conn)
        .map_err(conflict)?;
    Ok(r)
}

/// Replaces an SP's fields.
///
/// # Errors
/// `NotFound`, or `Conflict` when another SP of this environment has the
/// entity id (as for [`insert`]).
pub fn replace(
    conn: &mut DbConnection,
    env: &str,
    id: &str,
    fields: SpFields,
    now: NaiveDateTime,
) -> Result<ServiceProviderRow, StorageError> {
    conn.transaction(|conn| {
        crate::db::begin_write(conn)?;
        let old = get(conn, env, id)?;
        let r = row(old.id, env, fields, old.created_at, now);
        diesel::update(saml_service_providers::table.filter(saml_service_providers::id.eq(id)))
            .set((
                saml_service_providers::entity_id.eq(&r.entity_id),
                saml_service_providers::name.eq(&r.name),
                saml_service_providers::acs_endpoints.eq(&r.acs_endpoints),
                saml_service_providers::slo_endpoints.eq(&r.slo_endpoints),
                saml_service_providers::certificate_pem.eq(&r.certificate_pem),
                saml_service_providers::name_id_format.eq(r.name_id_format),
                saml_service_providers::attributes.eq(&r.attributes),
                saml_service_providers::attribute_profile.eq(r.attribute_profile),
                saml_service_providers::signs_response.eq(r.sign_response),
                saml_service_providers::signs_assertion.eq(r.sign_assertion),
                saml_service_providers::requires_signed_authn_requests
                    .eq(r.want_authn_requests_signed),
                saml_service_providers::encryption_certificate_pem
                    .eq(&r.encryption_certificate_pem),
                saml_service_providers::encrypt_assertions.eq(r.encrypt_assertions),
                saml_service_providers::assertion_cipher.eq(r.assertion_cipher),
                legacy_flags(&r),
                saml_service_providers::updated_at.eq(now),
            ))
            .execute(conn)
            .map_err(conflict)?;
        Ok(r)
    })
}

/// # Errors
/// `NotFound` when there is no such SP in this environment.
pub fn get(
    conn: &mut DbConnection,
    env: &str,
    id: &str,
) -> Result<ServiceProviderRow, StorageError> {
    Ok(saml_service_providers::table
        .filter(saml_service_providers::environment_id.eq(env))
        .filter(saml_service_providers::id.eq(id))
        .select(ServiceProviderRow::as_select())
        .first(conn)?)
}

/// The SP with this entity id in this environment, if registered.
///
/// # Errors
/// Backend failures.
pub fn find_by_entity_id(
    conn: &mut DbConnection,
    env: &str,
    entity_id: &str,
) -> Result<Option<ServiceProviderRow>, StorageError> {
    Ok(saml_service_providers::table
        .filter(saml_service_providers::environment_id.eq(env))
        .filter(saml_service_providers::entity_id.eq(entity_id))
        .select(ServiceProviderRow::as_select())
        .first(conn)
        .optional()?)
}

/// # Errors
/// Backend failures.
pub fn list(
    conn: &mut DbConnection,
    env: &str,
    page: &PageRequest,
) -> Result<Page<ServiceProviderRow>, StorageError> {
    let mut query = saml_service_providers::table
        .filter(saml_service_providers::environment_id.eq(env))
        .select(ServiceProviderRow::as_select())
        .order(saml_service_providers::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(saml_service_providers::id.gt(after.clone()));
    }
    Ok(Page::from_overfetch(query.load(conn)?, page.limit))
}

/// # Errors
/// `NotFound` when there is no such SP in this environment.
pub fn delete(conn: &mut DbConnection, env: &str, id: &str) -> Result<(), StorageError> {
    let n = diesel::delete(
        saml_service_providers::table
            .filter(saml_service_providers::environment_id.eq(env))
            .filter(saml_service_providers::id.eq(id)),
    )
    .execute(conn)?;
    if n == 0 {
        Err(StorageError::NotFound)
    } else {
        Ok(())
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = saml_idp_keys)]
pub struct IdpKeyRow {
    pub id: String,
    pub state: KeyState,
    pub private_key: String,
    pub certificate_pem: String,
    pub created_at: NaiveDateTime,
    pub not_after: NaiveDateTime,
    /// Each environment is its own IdP, with its own key and certificate.
    pub environment_id: String,
}

/// The IdP keys of `env` still in use or announced (current and next).
///
/// # Errors
/// Backend failures.
pub fn idp_keys(conn: &mut DbConnection, env: &str) -> Result<Vec<IdpKeyRow>, StorageError> {
    Ok(saml_idp_keys::table
        .filter(saml_idp_keys::environment_id.eq(env))
        .filter(saml_idp_keys::state.eq_any([KeyState::Current, KeyState::Next]))
        .select(IdpKeyRow::as_select())
        .order(saml_idp_keys::created_at.asc())
        .load(conn)?)
}

/// One step of IdP key rotation in `new_next`'s environment: promote an
/// announced `next` key to `current` (retiring the old one), or — when none
/// is announced — add `new_next` so metadata publishes it before it signs
/// anything. Returns "promoted" or "announced".
///
/// # Errors
/// Backend failures.
pub fn rotate_idp_key(
    conn: &mut DbConnection,
    new_next: &IdpKeyRow,
) -> Result<&'static str, StorageError> {
    let env = new_next.environment_id.as_str();
    RotationLock::SamlIdpKey.run(conn, |conn| {
        let of_env = || saml_idp_keys::table.filter(saml_idp_keys::environment_id.eq(env));
        let next: i64 = of_env()
            .filter(saml_idp_keys::state.eq(KeyState::Next))
            .count()
            .get_result(conn)?;
        if next > 0 {
            diesel::update(of_env().filter(saml_idp_keys::state.eq(KeyState::Current)))
                .set(saml_idp_keys::state.eq(KeyState::Retired))
                .execute(conn)?;
            diesel::update(of_env().filter(saml_idp_keys::state.eq(KeyState::Next)))
                .set(saml_idp_keys::state.eq(KeyState::Current))
                .execute(conn)?;
            Ok("promoted")
        } else {
            let mut row = new_next.clone();
            row.state = KeyState::Next;
            diesel::insert_into(saml_idp_keys::table)
                .values(&row)
                .execute(conn)?;
            Ok("announced")
        }
    })
}

/// Installs the first IdP key of `key`'s environment unless another
/// instance did first.
///
/// # Errors
/// Backend failures.
pub fn install_first_idp_key(
    conn: &mut DbConnection,
    key: &IdpKeyRow,
) -> Result<bool, StorageError> {
    RotationLock::SamlIdpKey.run(conn, |conn| {
        let n: i64 = saml_idp_keys::table
            .filter(saml_idp_keys::environment_id.eq(&key.environment_id))
            .filter(saml_idp_keys::state.eq(KeyState::Current))
            .count()
            .get_result(conn)?;
        if n > 0 {
            return Ok(false);
        }
        diesel::insert_into(saml_idp_keys::table)
            .values(key)
            .execute(conn)?;
        Ok(true)
    })
}
