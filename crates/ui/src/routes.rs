//! Route table of the hosted pages.

mod account;
mod account_passkeys;
mod consent;
mod login;
pub mod logout;
mod passkey_login;
mod second_factor;

use actix_web::{HttpResponse, web};

const STYLESHEET: &str = include_str!("../../../static/trusec.css");
const PASSKEY_SCRIPT: &str = include_str!("../../../static/passkeys.js");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/login").get(login::get).post(login::post))
        .service(web::resource("/login/passkey/options").post(passkey_login::options))
        .service(web::resource("/login/passkey").post(passkey_login::post))
        .service(
            web::resource("/second-factor")
                .get(second_factor::get)
                .post(second_factor::post),
        )
        .service(
            web::resource("/second-factor/passkey/options").post(second_factor::passkey_options),
        )
        .service(
            web::resource("/account/security/passkeys/options").post(account_passkeys::options),
        )
        .service(web::resource("/account/security/passkeys").post(account_passkeys::add))
        .service(web::resource("/account/security/passkeys/rename").post(account_passkeys::rename))
        .service(web::resource("/account/security/passkeys/remove").post(account_passkeys::remove))
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
        .route("/static/trusec.css", web::get().to(stylesheet))
        .route("/static/passkeys.js", web::get().to(passkey_script));
}

/// The one script of the hosted pages: passkey ceremonies
/// (`navigator.credentials`), progressive (the pages work without it).
async fn passkey_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(PASSKEY_SCRIPT)
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(STYLESHEET)
}
