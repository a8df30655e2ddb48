//! Remembered consent: the scopes a user granted a client, so a second
//! authorization for the same (or fewer) scopes skips the consent page.
//! A user (or an administrator) can list the grants and take one back;
//! taking it back also ends the refresh tokens the client holds for the
//! user, so the grant does not live on in them.

use crate::clock::rfc3339;
use crate::db::DbConnection;
use crate::error::StorageError;
use crate::ids;
use crate::page::{Page, PageRequest};
use crate::schema::oauth_consents;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = oauth_consents)]
pub struct ConsentRow {
    pub id: String,
    pub environment_id: String,
    pub user_id: String,
    pub client_id: String,
    pub scopes: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A grant as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Consent {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub environment: String,
    pub created_at: String,
    pub updated_at: String,
}

impl ConsentRow {
    /// The API view.
    ///
    /// # Errors
    /// A stored scope list that is not JSON.
    pub fn to_consent(&self) -> Result<Consent, StorageError> {
        Ok(Consent {
            id: self.id.clone(),
            user_id: self.user_id.clone(),
            client_id: self.client_id.clone(),
            scopes: serde_json::from_str(&self.scopes)?,
            environment: self.environment_id.clone(),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        })
    }
}

/// The grants of a user of this environment, by id, or only the one to
/// `only_client`. `NotFound` when the user is not there.
///
/// # Errors
/// Backend failures; `NotFound`.
pub fn list_for_user(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
    only_client: Option<&str>,
    page: &PageRequest,
) -> Result<Page<ConsentRow>, StorageError> {
    crate::users::get(conn, env, user_id)?;
    let mut query = oauth_consents::table
        .filter(oauth_consents::environment_id.eq(env))
        .filter(oauth_consents::user_id.eq(user_id))
        .select(ConsentRow::as_select())
        .order(oauth_consents::id.asc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(client) = only_client {
        query = query.filter(oauth_consents::client_id.eq(client.to_owned()));
    }
    if let Some(after) = &page.after {
        query = query.filter(oauth_consents::id.gt(after.clone()));
    }
    Ok(Page::from_overfetch(query.load(conn)?, page.limit))
}

/// Takes back the user's grant to a client and, in the same transaction,
/// revokes every refresh token the client holds for the user (offline ones
/// too: they rest on this grant). Returns the grant and the families it
/// revoked (whose access tokens the caller then marks revoked);
/// `NotFound` when there was no grant.
///
/// # Errors
/// Backend failures; `NotFound`.
pub fn revoke(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
    client_id: &str,
    now: NaiveDateTime,
) -> Result<(ConsentRow, crate::refresh_tokens::Revoked), StorageError> {
    conn.transaction(|conn| {
        crate::db::begin_write(conn)?;
        let row = oauth_consents::table
            .filter(oauth_consents::environment_id.eq(env))
            .filter(oauth_consents::user_id.eq(user_id))
            .filter(oauth_consents::client_id.eq(client_id))
            .select(ConsentRow::as_select())
            .first(conn)
            .optional()?
            .ok_or(StorageError::NotFound)?;
        diesel::delete(oauth_consents::table.filter(oauth_consents::id.eq(&row.id)))
            .execute(conn)?;
        let revoked = crate::refresh_tokens::revoke_for_user(conn, user_id, Some(client_id), now)?;
        Ok((row, revoked))
    })
}

/// The scopes this user has granted this client, if any.
///
/// # Errors
/// Backend failures.
pub fn find(
    conn: &mut DbConnection,
    user_id: &str,
    client_id: &str,
) -> Result<Option<Vec<String>>, StorageError> {
    let scopes: Option<String> = oauth_consents::table
        .filter(oauth_consents::user_id.eq(user_id))
        .filter(oauth_consents::client_id.eq(client_id))
        .select(oauth_consents::scopes)
        .first(conn)
        .optional()?;
    scopes
        .map(|s| serde_json::from_str(&s).map_err(StorageError::from))
        .transpose()
}

/// Records a grant, widening an earlier one to the union of both.
///
/// # Errors
/// Backend failures.
pub fn grant(
    conn: &mut DbConnection,
    env: &str,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
    now: NaiveDateTime,
) -> Result<Vec<String>, StorageError> {
    conn.transaction(|conn| {
        crate::db::begin_write(conn)?;
        let existing = find(conn, user_id, client_id)?;
        let mut all = existing.clone().unwrap_or_default();
        for s in scopes {
            if !all.contains(s) {
                all.push(s.clone());
            }
        }
        let text = serde_json::to_string(&all)?;
        if existing.is_some() {
            diesel::update(
                oauth_consents::table
                    .filter(oauth_consents::user_id.eq(user_id))
                    .filter(oauth_consents::client_id.eq(client_id)),
            )
            .set((
                oauth_consents::scopes.eq(&text),
                oauth_consents::updated_at.eq(now),
            ))
            .execute(conn)?;
        } else {
            diesel::insert_into(oauth_consents::table)
                .values((
                    oauth_consents::id.eq(ids::new_id(ids::CONSENT)),
                    oauth_consents::environment_id.eq(env),
                    oauth_consents::user_id.eq(user_id),
                    oauth_consents::client_id.eq(client_id),
                    oauth_consents::scopes.eq(&text),
                    oauth_consents::created_at.eq(now),
                    oauth_consents::updated_at.eq(now),
                ))
                .execute(conn)?;
        }
        Ok(all)
    })
}
