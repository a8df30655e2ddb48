//! The audit log page: this environment's events newest first, filtered
//! by type, user, outcome and time (parsed by the same function as `GET
//! /v1/audit-events`, `audit_events::filter`), with links to the users,
//! applications and service providers they name; and verifying the whole
//! chain (one per deployment) from the page, as `trusec audit verify` does.

use super::page::{CsrfForm, Layout, check_csrf, non_empty, render};
use super::session::{Admin, ConsoleError};
use crate::api::v1::audit_events::{AuditQuery, filter};
use crate::error::ApiError;
use crate::extract::PageQuery;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use trusec_storage::audit::{self, AuditRow, EventType, Outcome};
use trusec_storage::ids::EventId;

/// Events per page.
const PAGE: &str = "50";

/// The filter form, as typed (empty: no filter).
#[derive(Debug, Default, Deserialize)]
pub struct FilterForm {
    #[serde(default, rename = "type")]
    event_type: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    outcome: String,
    /// A `datetime-local` value (`2026-12-02T10:00`), read as UTC; or RFC 3339.
    #[serde(default)]
    since: String,
    #[serde(default)]
    after: String,
}

impl FilterForm {
    fn query(&self) -> AuditQuery {
        let since = non_empty(&self.since).map(|s| match s.len() {
            // `YYYY-MM-DDTHH:MM`, as browsers send datetime-local.
            16 => format!("{s}:00Z"),
            _ => s,
        });
        AuditQuery {
            event_type: non_empty(&self.event_type),
            user_id: non_empty(&self.user_id),
            since,
            outcome: non_empty(&self.outcome),
            limit: Some(PAGE.to_owned()),
            after: non_empty(&self.after),
        }
    }

    /// This filter's query string with `after` set to `cursor`.
    fn older(&self, cursor: &str) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("type", &self.event_type),
            ("user_id", &self.user_id),
            ("outcome", &self.outcome),
            ("since", &self.since),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        q.append_pair("after", cursor);
        q.finish()
    }
}

/// An event as a row of the log, with a link to what it is about.
pub struct EventLine {
    pub at: String,
    pub event_type: &'static str,
    pub failed: bool,
    pub actor: String,
    pub user: Option<String>,
    pub object: Option<(String, String)>,
    pub ip: String,
    pub data: String,
}

/// The members of `data` that name an object the console has a page for.
#[derive(Debug, Default, Deserialize)]
struct Names {
    client_id: Option<String>,
    sp_id: Option<String>,
}

impl EventLine {
    fn of(row: &AuditRow, base: &str) -> Self {
        let names: Names = serde_json::from_str(&row.data).unwrap_or_default();
        let object = match (names.client_id, names.sp_id) {
            (Some(c), _) => Some((format!("{base}/applications/{c}"), c)),
            (None, Some(sp)) => Some((format!("{base}/saml/{sp}"), sp)),
            (None, None) => None,
        };
        Self {
            at: row
                .created_at
                .and_utc()
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
            event_type: row.event_type.as_str(),
            failed: row.outcome == Outcome::Failure,
            actor: match &row.actor_id {
                Some(id) => format!("{} {id}", row.actor_type.as_str()),
                None => row.actor_type.as_str().to_owned(),
            },
            user: row.user_id.clone(),
            object,
            ip: row.ip.clone().unwrap_or_default(),
            data: row.data.clone(),
        }
    }
}

/// The result of verifying the chain, as the page says it.
pub struct Verdict {
    pub ok: bool,
    pub text: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct LogPage {
    layout: Layout,
    events: Vec<EventLine>,
    types: Vec<&'static str>,
    form: FilterForm,
    older: Option<String>,
    error: Option<String>,
    verdict: Option<Verdict>,
}

async fn log_page(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    form: FilterForm,
    verdict: Option<Verdict>,
) -> Result<HttpResponse, ConsoleError> {
    let query = form.query();
    let parsed = filter(&query).and_then(|f| {
        let page = PageQuery {
            limit: query.limit.clone(),
            after: query.after.clone(),
        };
        Ok((f, page.to_request::<EventId>()?))
    });
    let (events, older, error, status) = match parsed {
        Ok((f, page)) => {
            let env = admin.ui.env.id.clone();
            let rows = admin
                .ui
                .core
                .db
                .run(move |conn| audit::list(conn, &env, &f, &page))
                .await?;
            let base = admin.path("/console");
            let older = rows
                .data
                .last()
                .filter(|_| rows.has_more)
                .map(|last| form.older(&last.id));
            let events = rows.data.iter().map(|r| EventLine::of(r, &base)).collect();
            (events, older, None, StatusCode::OK)
        }
        Err(ApiError::InvalidRequest { message, .. }) => {
            (Vec::new(), None, Some(message), StatusCode::BAD_REQUEST)
        }
        Err(other) => return Err(other.into()),
    };
    let (layout, cookie) = Layout::of(req, state, admin);
    let page = LogPage {
        layout,
        events,
        types: EventType::ALL.iter().map(|t| t.as_str()).collect(),
        form,
        older,
        error,
        verdict,
    };
    Ok(render(&page, status, cookie))
}

/// `GET /console/audit?type=&user_id=&outcome=&since=&after=`.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    form: web::Query<FilterForm>,
) -> Result<HttpResponse, ConsoleError> {
    log_page(&req, &state, &admin, form.into_inner(), None).await
}

/// `POST /console/audit/verify`: checks every link of the chain.
pub async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let report = state.core.verify_audit(None).await?;
    let verdict = match &report.first_broken {
        None => Verdict {
            ok: true,
            text: format!(
                "The chain verifies: {} events checked, head {}.",
                report.checked, report.head
            ),
        },
        Some(broken) => Verdict {
            ok: false,
            text: format!(
                "The chain is broken at event {} ({}): {}. The events before it verify.",
                broken.seq, broken.id, broken.reason
            ),
        },
    };
    log_page(&req, &state, &admin, FilterForm::default(), Some(verdict)).await
}
