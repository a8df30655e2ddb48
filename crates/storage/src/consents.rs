//! Remembered consent: the scopes a user granted a client, so a second
//! authorization for the same (or fewer) scopes skips the consent page.

use crate::db::DbConnection;
use crate::error::StorageError;
use crate::ids;
use crate::schema::oauth_consents;
use chrono::NaiveDateTime;
use diesel::prelude::*;

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
