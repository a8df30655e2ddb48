//! Route table of the hosted pages.

mod account;
mod consent;
mod login;
pub mod logout;
mod second_factor;

use actix_web::{HttpResponse, web};

const STYLESHEET: &str = include_str!("../../../static/trusec.css");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/login").get(login::get).post(login::post))
        .service(
            web::resource("/second-factor")
                .get(second_factor::get)
                .post(second_factor::post),
        )
        .service(web::resource("/account/security").get(account::get))
        .service(web::resource("/account/security/totp/start").post(account::start))
        .service(web::resource("/account/security/totp/confirm").post(account::confirm))
        .service(web::resource("/account/security/totp/remove").post(account::remove))
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
