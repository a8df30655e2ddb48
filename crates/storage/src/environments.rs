//! Environments: rows (`env_…`), each its own issuer. The first migration
//! seeds `live` and `test`; more are added as rows, never by a schema change.

use crate::db::DbConnection;
use crate::error::StorageError;
use crate::schema::environments;
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = environments)]
pub struct EnvironmentRow {
    pub id: String,
    pub name: String,
    pub created_at: NaiveDateTime,
}

/// Every environment, oldest first.
///
/// # Errors
/// Backend failures.
pub fn list(conn: &mut DbConnection) -> Result<Vec<EnvironmentRow>, StorageError> {
    Ok(environments::table
        .select(EnvironmentRow::as_select())
        .order((environments::created_at.asc(), environments::id.asc()))
        .load(conn)?)
}
