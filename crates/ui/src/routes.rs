//! Route table of the hosted pages.

mod consent;
mod login;
pub mod logout;

use actix_web::{HttpResponse, web};

const STYLESHEET: &str = include_str!("../../../static/trusec.css");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/login").get(login::get).post(login::post))
        .service(
            web::resource("/consent")
                .get(consent::get)
                .post(consent::post),
        )
        .service(web::resource("/logout").get(logout::get).post(logout::post))
        .route("/static/trusec.css", web::get().to(stylesheet));
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(STYLESHEET)
}

/// The client's address for audit and rate limits (the peer, never a
/// forwarded header a client could forge).
fn client_ip(req: &actix_web::HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}

fn user_agent(req: &actix_web::HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect())
}
