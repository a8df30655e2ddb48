//! The protocol route table.

pub mod authorize;
mod device;
mod device_authorization;
pub mod discovery;
pub(crate) mod grants;
mod introspect;
mod jwks;
mod logout;
mod par;
mod register;
mod revoke;
mod token;
pub mod userinfo;

use crate::error::OAuthError;
use actix_web::{HttpRequest, web};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/openid-configuration",
        web::get().to(discovery::openid),
    )
    .route(
        "/.well-known/oauth-authorization-server",
        web::get().to(discovery::oauth),
    )
    .route("/.well-known/jwks.json", web::get().to(jwks::get))
    .service(
        web::resource("/oauth/authorize")
            .get(authorize::get)
            .post(authorize::post),
    )
    .route(
        "/oauth/authorize/continue",
        web::get().to(authorize::resume),
    )
    .route("/oauth/token", web::post().to(token::post))
    .route("/oauth/par", web::post().to(par::post))
    .route(
        "/oauth/device_authorization",
        web::post().to(device_authorization::post),
    )
    .service(web::resource("/device").get(device::get).post(device::post))
    .route("/oauth/revoke", web::post().to(revoke::post))
    .route("/oauth/introspect", web::post().to(introspect::post))
    .service(
        web::resource("/oauth/userinfo")
            .get(userinfo::get)
            .post(userinfo::post),
    )
    .route("/oauth/register", web::post().to(register::post))
    .service(
        web::resource("/oauth/logout")
            .get(logout::get)
            .post(logout::post),
    );
}

/// Form bodies of the protocol endpoints must be
/// `application/x-www-form-urlencoded` (RFC 6749 §3.2, RFC 7009 §2.1).
///
/// # Errors
/// `invalid_request` for any other media type.
pub fn require_form(req: &HttpRequest) -> Result<(), OAuthError> {
    let ok = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if ok {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ))
    }
}

/// `application/json` with no-store caching, as token responses require.
pub fn no_store_json(body: &serde_json::Value) -> actix_web::HttpResponse {
    no_store(actix_web::http::StatusCode::OK).json(body)
}

/// A response of `status` that no cache may keep (RFC 6749 §5.1, RFC 9126
/// §2.2).
pub fn no_store(status: actix_web::http::StatusCode) -> actix_web::HttpResponseBuilder {
    let mut builder = actix_web::HttpResponse::build(status);
    builder
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .insert_header((actix_web::http::header::PRAGMA, "no-cache"));
    builder
}
