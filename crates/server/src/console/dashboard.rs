//! The dashboard: sign-ins, failed sign-ins, tokens and assertions issued
//! and rate-limit refusals, per hour over the last twelve, from the same
//! counters as `/metrics` (`storage::metrics::Metrics::totals`, sampled
//! every ten minutes by `startup::spawn_metrics_sampler`). Counters are a
//! process's own: the page says this instance, since it started, for the
//! whole deployment (the counters have no environment label).

use super::page::{Layout, render};
use super::session::{Admin, ConsoleError};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use trusec_storage::metrics::Totals;

/// Hours the table shows.
const HOURS: i64 = 12;

/// One hour of counts (the current one up to now).
pub struct Hour {
    pub label: String,
    pub counts: Totals,
}

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct DashboardPage {
    layout: Layout,
    since_start: Totals,
    started: String,
    hours: Vec<Hour>,
}

/// The totals as they were at `at`: the last sample at or before it, or
/// the first one (the process had not started, or its samples were
/// dropped: count from the oldest known).
fn at_or_before(history: &[(DateTime<Utc>, Totals)], at: DateTime<Utc>) -> Totals {
    history
        .iter()
        .rev()
        .find(|(t, _)| *t <= at)
        .or_else(|| history.first())
        .map(|(_, totals)| *totals)
        .unwrap_or_default()
}

/// The last [`HOURS`] hours, newest first: each the difference of the
/// totals at its end (now, for the current hour) and at its start.
fn hours(history: &[(DateTime<Utc>, Totals)], now: DateTime<Utc>, current: Totals) -> Vec<Hour> {
    let this_hour = now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now);
    (0..HOURS)
        .map(|back| {
            let start = this_hour - TimeDelta::hours(back);
            let end = start + TimeDelta::hours(1);
            let at_end = if back == 0 {
                current
            } else {
                at_or_before(history, end)
            };
            Hour {
                label: start.format("%H:00").to_string(),
                counts: at_end.since(at_or_before(history, start)),
            }
        })
        .collect()
}

/// `GET /console/dashboard`.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
) -> Result<HttpResponse, ConsoleError> {
    let metrics = state.core.metrics();
    let (history, current) = (metrics.history(), metrics.totals());
    let now = state.core.clock.now();
    let started = history
        .first()
        .map(|(t, _)| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    let (layout, cookie) = Layout::of(&req, &state, &admin);
    let page = DashboardPage {
        layout,
        since_start: current.since(history.first().map(|(_, t)| *t).unwrap_or_default()),
        started,
        hours: hours(&history, now, current),
    };
    Ok(render(&page, StatusCode::OK, cookie))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(sign_ins: u64) -> Totals {
        Totals {
            sign_ins,
            ..Totals::default()
        }
    }

    #[test]
    fn hours_are_differences_of_samples() {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let t0 = t0.duration_trunc(TimeDelta::hours(1)).unwrap_or(t0);
        let history = vec![
            (t0, totals(0)),
            (t0 + TimeDelta::minutes(50), totals(4)),
            (t0 + TimeDelta::minutes(70), totals(9)),
        ];
        let now = t0 + TimeDelta::minutes(90);
        let rows = hours(&history, now, totals(12));
        assert_eq!(rows.len(), 12);
        // This hour: 12 now minus 4 at its start (the sample at 00:50).
        assert_eq!(rows.first().map(|h| h.counts.sign_ins), Some(8));
        // The hour before: 4 at its end minus 0 at its start.
        assert_eq!(rows.get(1).map(|h| h.counts.sign_ins), Some(4));
        // Before the first sample: nothing.
        assert_eq!(rows.get(2).map(|h| h.counts.sign_ins), Some(0));
    }
}
