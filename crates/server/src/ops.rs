//! Operations endpoints: liveness, readiness, metrics.

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;

/// `GET /healthz`: the process is alive and serving.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive", body = Object)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database and the ephemeral store answer.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "Ready", body = Object), (status = 503, description = "Database or Redis unreachable", body = Object)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let (db, store) = tokio::join!(state.core.db.ping(), state.core.store.ping());
    let status = |r: &Result<(), _>| if r.is_ok() { "ok" } else { "unavailable" };
    let body = json!({
        "status": if db.is_ok() && store.is_ok() { "ready" } else { "unavailable" },
        "database": status(&db),
        "ephemeral_store": status(&store),
    });
    if db.is_ok() && store.is_ok() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /metrics`: Prometheus (OpenMetrics) text.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String)))]
///
/// # Errors
/// Only if encoding fails.
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = state
        .core
        .metrics()
        .encode()
        .map_err(|e| ApiError::internal(&e))?;
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(body))
}
