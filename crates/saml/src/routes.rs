//! The SAML route table.

mod metadata;
mod slo;
mod sso;

use actix_web::{HttpResponse, web};

const AUTOPOST: &str = include_str!("../../../static/autopost.js");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/saml/metadata", web::get().to(metadata::get))
        .service(
            web::resource("/saml/sso")
                .get(sso::redirect)
                .post(sso::post),
        )
        .route("/saml/sso/init", web::get().to(sso::idp_initiated))
        .route("/saml/sso/continue", web::get().to(sso::resume))
        .service(
            web::resource("/saml/slo")
                .get(slo::redirect)
                .post(slo::post),
        )
        .route("/saml/slo/propagate", web::get().to(slo::propagate))
        .route("/static/autopost.js", web::get().to(autopost));
}

async fn autopost() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(AUTOPOST)
}
