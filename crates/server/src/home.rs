//! `GET /` (contract, Operations): a small page saying what this server is,
//! with links to its discovery document, SAML metadata, API reference,
//! documentation and admin console.

use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

/// Where the documentation lives (the repository's `docs/`).
pub const DOCS_URL: &str = "https://github.com/trusec-dev/trusec/tree/main/docs";

/// One environment's entry points.
struct EnvLinks {
    name: String,
    is_live: bool,
    issuer: String,
    console: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    environments: Vec<EnvLinks>,
    version: &'static str,
    docs_url: &'static str,
}

/// `GET /`.
pub async fn get(state: web::Data<AppState>) -> HttpResponse {
    let page = HomePage {
        environments: state
            .environments
            .iter()
            .map(|e| EnvLinks {
                name: e.env().name.clone(),
                is_live: e.env().is_live(),
                issuer: e.env().issuer.clone(),
                console: e.env().path("/console"),
            })
            .collect(),
        version: env!("CARGO_PKG_VERSION"),
        docs_url: DOCS_URL,
    };
    trusec_ui::pages::render(&page, StatusCode::OK, Vec::new())
}
