//! API resources (RFC 8707): the APIs that apps protect with this server's
//! access tokens. Each belongs to an environment; its `identifier` (an
//! absolute URI, unique per environment) is the `aud` of the tokens minted
//! for it, and its scopes (a JSON array of name and description) are the
//! only ones such a token carries. What makes a valid resource is the OAuth
//! crate's business; this module stores and finds them.

use crate::clock::rfc3339;
use crate::db::DbConnection;
use crate::error::StorageError;
use crate::ids;
use crate::page::{Page, PageRequest};
use crate::schema::{oauth_clients, oauth_resources};
use crate::signing_keys::Alg;
use crate::sql_types::Json;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

/// One scope of a resource and the words the consent page shows for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResourceScope {
    pub name: String,
    pub description: String,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = oauth_resources)]
pub struct ResourceRow {
    pub id: String,
    pub environment_id: String,
    pub identifier: String,
    pub name: String,
    pub scopes: Json<Vec<ResourceScope>>,
    /// `None`: the server's access-token lifetime.
    pub access_token_lifetime_seconds: Option<i64>,
    pub signing_alg: Alg,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The `/v1` view of a resource.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Resource {
    pub id: String,
    pub environment: String,
    /// The token's `aud` (RFC 8707 §2).
    pub identifier: String,
    pub name: String,
    pub scopes: Vec<ResourceScope>,
    pub access_token_lifetime_seconds: Option<i64>,
    pub signing_alg: String,
    pub created_at: String,
    pub updated_at: String,
}

impl ResourceRow {
    /// Whether `scope` is one of this resource's.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s.name == scope)
    }

    pub fn to_resource(&self) -> Resource {
        Resource {
            id: self.id.clone(),
            environment: self.environment_id.clone(),
            identifier: self.identifier.clone(),
            name: self.name.clone(),
            scopes: self.scopes.to_vec(),
            access_token_lifetime_seconds: self.access_token_lifetime_seconds,
            signing_alg: self.signing_alg.as_str().to_owned(),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }
}

/// A resource's fields as validated by the caller.
#[derive(Clone, Debug)]
pub struct ResourceFields {
    pub identifier: String,
    pub name: String,
    pub scopes: Vec<ResourceScope>,
    pub access_token_lifetime_seconds: Option<i64>,
    pub signing_alg: Alg,
}

const IDENTIFIER_KEY: &str = "oauth_resources_environment_identifier_key";
/// Orders the writers of one deployment's resources, so that two
/// registrations at once cannot both claim a scope name.
const PG_RESOURCES_LOCK: i64 = 0x7275_7365_635f_7273;
/// `Conflict(SCOPE_TAKEN + name)`: another resource of the environment has
/// that scope.
pub const SCOPE_TAKEN: &str = "scope_taken:";

/// Scope names are unique among an environment's resources: a client's
/// `scopes` are bare names, so a name two APIs share would let a client
/// allowed it for one get tokens for the other. Checked inside the
/// caller's serialised transaction.
fn claim_scopes(
    conn: &mut DbConnection,
    env: &str,
    except_id: Option<&str>,
    scopes: &[ResourceScope],
) -> Result<(), StorageError> {
    crate::db::serialize_writers(conn, PG_RESOURCES_LOCK)?;
    let others = all(conn, env)?;
    let taken = scopes.iter().find(|s| {
        others
            .iter()
            .filter(|r| Some(r.id.as_str()) != except_id)
            .any(|r| r.has_scope(&s.name))
    });
    match taken {
        Some(s) => Err(StorageError::Conflict(format!("{SCOPE_TAKEN}{}", s.name))),
        None => Ok(()),
    }
}

fn conflict(e: diesel::result::Error) -> StorageError {
    match StorageError::from(e) {
        StorageError::Conflict(_) => StorageError::Conflict(IDENTIFIER_KEY.into()),
        other => other,
    }
}

/// Registers a resource in `env`.
///
/// # Errors
/// `Conflict` when the identifier is registered in this environment
/// already, or one of its scope names is another resource's
/// ([`SCOPE_TAKEN`]).
pub fn insert(
    conn: &mut DbConnection,
    env: &str,
    fields: ResourceFields,
    now: NaiveDateTime,
) -> Result<ResourceRow, StorageError> {
    let row = ResourceRow {
        id: ids::new_id(ids::RESOURCE),
        environment_id: env.to_owned(),
        identifier: fields.identifier,
        name: fields.name,
        scopes: Json(fields.scopes),
        access_token_lifetime_seconds: fields.access_token_lifetime_seconds,
        signing_alg: fields.signing_alg,
        created_at: now,
        updated_at: now,
    };
    conn.transaction(|conn| {
        claim_scopes(conn, env, None, &row.scopes.0)?;
        diesel::insert_into(oauth_resources::table)
            .values(&row)
            .execute(conn)
            .map_err(conflict)?;
        Ok(row)
    })
}

/// # Errors
/// `NotFound` when there is no such resource in this environment.
pub fn get(conn: &mut DbConnection, env: &str, id: &str) -> Result<ResourceRow, StorageError> {
    Ok(oauth_resources::table
        .filter(oauth_resources::environment_id.eq(env))
        .filter(oauth_resources::id.eq(id))
        .select(ResourceRow::as_select())
        .first(conn)?)
}

/// The resource of `env` with this identifier, if registered.
///
/// # Errors
/// Backend failures.
pub fn find_by_identifier(
    conn: &mut DbConnection,
    env: &str,
    identifier: &str,
) -> Result<Option<ResourceRow>, StorageError> {
    Ok(oauth_resources::table
        .filter(oauth_resources::environment_id.eq(env))
        .filter(oauth_resources::identifier.eq(identifier))
        .select(ResourceRow::as_select())
        .first(conn)
        .optional()?)
}

/// Every resource of `env`, to check a client's scopes against. An
/// environment has a handful of APIs, so this is not paged.
///
/// # Errors
/// Backend failures.
pub fn all(conn: &mut DbConnection, env: &str) -> Result<Vec<ResourceRow>, StorageError> {
    Ok(oauth_resources::table
        .filter(oauth_resources::environment_id.eq(env))
        .select(ResourceRow::as_select())
        .order(oauth_resources::id.asc())
        .load(conn)?)
}

/// # Errors
/// Backend failures.
pub fn list(
    conn: &mut DbConnection,
    env: &str,
    page: &PageRequest,
) -> Result<Page<ResourceRow>, StorageError> {
    let mut query = oauth_resources::table
        .filter(oauth_resources::environment_id.eq(env))
        .select(ResourceRow::as_select())
        .order(oauth_resources::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(oauth_resources::id.gt(after.clone()));
    }
    Ok(Page::from_overfetch(query.load(conn)?, page.limit))
}

/// Replaces a resource's fields. A changed identifier is followed by the
/// clients that named the old one as their default, in the same
/// transaction; the ids of those clients are returned with the row (their
/// cached rows are stale).
///
/// # Errors
/// `NotFound`, or `Conflict` when another resource of this environment has
/// the identifier or one of the scope names ([`SCOPE_TAKEN`]).
pub fn replace(
    conn: &mut DbConnection,
    env: &str,
    id: &str,
    fields: ResourceFields,
    now: NaiveDateTime,
) -> Result<(ResourceRow, Vec<String>), StorageError> {
    conn.transaction(|conn| {
        // Takes the write lock (SQLite) or the resources lock (PostgreSQL).
        claim_scopes(conn, env, Some(id), &fields.scopes)?;
        let old = get(conn, env, id)?;
        diesel::update(oauth_resources::table.filter(oauth_resources::id.eq(id)))
            .set((
                oauth_resources::identifier.eq(&fields.identifier),
                oauth_resources::name.eq(&fields.name),
                oauth_resources::scopes.eq(Json(fields.scopes.clone())),
                oauth_resources::access_token_lifetime_seconds
                    .eq(fields.access_token_lifetime_seconds),
                oauth_resources::signing_alg.eq(fields.signing_alg),
                oauth_resources::updated_at.eq(now),
            ))
            .execute(conn)
            .map_err(conflict)?;
        let moved = if old.identifier == fields.identifier {
            Vec::new()
        } else {
            set_default(conn, env, &old.identifier, Some(&fields.identifier))?
        };
        Ok((
            ResourceRow {
                identifier: fields.identifier,
                name: fields.name,
                scopes: Json(fields.scopes),
                access_token_lifetime_seconds: fields.access_token_lifetime_seconds,
                signing_alg: fields.signing_alg,
                updated_at: now,
                ..old
            },
            moved,
        ))
    })
}

/// Deletes a resource; clients that named it as their default no longer
/// have one (same transaction). Returns those clients' ids.
///
/// # Errors
/// `NotFound` when there is no such resource in this environment.
pub fn delete(
    conn: &mut DbConnection,
    env: &str,
    id: &str,
) -> Result<(ResourceRow, Vec<String>), StorageError> {
    conn.transaction(|conn| {
        crate::db::begin_write(conn)?;
        let old = get(conn, env, id)?;
        diesel::delete(oauth_resources::table.filter(oauth_resources::id.eq(id))).execute(conn)?;
        let cleared = set_default(conn, env, &old.identifier, None)?;
        Ok((old, cleared))
    })
}

/// Points the clients of `env` whose default resource is `from` at `to`.
fn set_default(
    conn: &mut DbConnection,
    env: &str,
    from: &str,
    to: Option<&str>,
) -> Result<Vec<String>, StorageError> {
    let which = oauth_clients::table
        .filter(oauth_clients::environment_id.eq(env))
        .filter(oauth_clients::default_resource.eq(from));
    let ids: Vec<String> = which.select(oauth_clients::id).load(conn)?;
    diesel::update(which)
        .set(oauth_clients::default_resource.eq(to))
        .execute(conn)?;
    Ok(ids)
}
