//! `GET /v1/audit-events`: the caller's environment's audit log, newest
//! first, filtered by type, user and time.

use crate::error::ApiError;
use crate::extract::{Caller, PageQuery, list_response};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use trusec_storage::audit::{self, AuditFilter, EventType, Outcome};
use trusec_storage::ids::TypedId;
use trusec_storage::ids::{EventId, UserId};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(rename = "type")]
    pub(crate) event_type: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) since: Option<String>,
    /// `success` or `failure`.
    pub(crate) outcome: Option<String>,
    pub(crate) limit: Option<String>,
    pub(crate) after: Option<String>,
}

/// The filters of a query, parsed: the one parse `/v1` and the console's
/// audit page share.
///
/// # Errors
/// `InvalidRequest` naming the parameter at fault.
pub(crate) fn filter(query: &AuditQuery) -> Result<AuditFilter, ApiError> {
    // The one catalog of event types (trusec_storage::audit::EventType).
    let event_type = query
        .event_type
        .as_deref()
        .map(|t| {
            EventType::parse(t).ok_or_else(|| {
                ApiError::invalid("type", "must be an event type such as user.created")
            })
        })
        .transpose()?;
    if let Some(u) = &query.user_id
        && UserId::parse(u).is_none()
    {
        return Err(ApiError::invalid("user_id", "must be a user id (user_…)"));
    }
    let since = query
        .since
        .as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.naive_utc())
                .map_err(|_| {
                    ApiError::invalid(
                        "since",
                        "must be an RFC 3339 time such as 2026-01-01T00:00:00Z",
                    )
                })
        })
        .transpose()?;
    let outcome = query
        .outcome
        .as_deref()
        .map(|o| {
            Outcome::parse(o)
                .ok_or_else(|| ApiError::invalid("outcome", "must be success or failure"))
        })
        .transpose()?;
    Ok(AuditFilter {
        event_type,
        user_id: query.user_id.clone(),
        since,
        outcome,
    })
}

#[utoipa::path(get, path = "/v1/audit-events", tag = "audit", params(("type" = Option<String>, Query), ("user_id" = Option<String>, Query), ("since" = Option<String>, Query, description = "RFC 3339"), ("outcome" = Option<String>, Query, description = "success or failure"), ("limit" = Option<u32>, Query), ("after" = Option<String>, Query)), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "Events, newest first", body = crate::extract::ListOf<trusec_storage::audit::AuditEvent>), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let filter = filter(&query)?;
    let page = PageQuery {
        limit: query.limit,
        after: query.after,
    }
    .to_request::<EventId>()?;
    let env = caller.environment.clone();
    let rows = state
        .core
        .db
        .run(move |conn| audit::list(conn, &env, &filter, &page))
        .await
        .map_err(|e| match e {
            trusec_storage::StorageError::NotFound => ApiError::invalid(
                "after",
                "after must be the id of an event of this environment",
            ),
            other => other.into(),
        })?;
    list_response(rows, |r| r.to_event(), |e| e.id.clone())
}
