//! `/v1`: the management API, authenticated by secret or test API keys.
//! Every handler sees only its caller's environment.

pub(crate) mod api_keys;
pub(crate) mod audit_events;
pub(crate) mod clients;
pub(crate) mod service_providers;
pub(crate) mod sessions;
pub(crate) mod signing_keys;
pub(crate) mod users;

use crate::error::ApiError;
use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{Resource, web};

/// A resource that answers unknown methods with the JSON 405.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(|| async {
        Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed)
    }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            // Responses carry secrets shown once; never cache them.
            .wrap(DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store")))
            .service(resource("/users").get(users::list).post(users::create))
            .service(resource("/users/me").get(users::me))
            .service(
                resource("/users/{id}")
                    .get(users::get)
                    .patch(users::update)
                    .delete(users::delete),
            )
            .service(
                resource("/users/{id}/sessions")
                    .get(sessions::list_for_user)
                    .delete(sessions::revoke_all_for_user),
            )
            .service(resource("/sessions").post(sessions::create))
            .service(resource("/sessions/verify").post(sessions::verify))
            .service(resource("/sessions/revoke").post(sessions::revoke))
            .service(
                resource("/api-keys")
                    .get(api_keys::list)
                    .post(api_keys::create),
            )
            .service(
                resource("/api-keys/{id}")
                    .get(api_keys::get)
                    .delete(api_keys::revoke),
            )
            .service(resource("/api-keys/{id}/rotate").post(api_keys::rotate))
            .service(resource("/audit-events").get(audit_events::list))
            .service(
                resource("/oauth/clients")
                    .get(clients::list)
                    .post(clients::create),
            )
            .service(
                resource("/oauth/clients/{id}")
                    .get(clients::get)
                    .patch(clients::update)
                    .delete(clients::delete),
            )
            .service(resource("/signing-keys/rotate").post(signing_keys::rotate))
            .service(
                resource("/saml/service-providers")
                    .get(service_providers::list)
                    .post(service_providers::create),
            )
            .service(
                resource("/saml/service-providers/{id}")
                    .get(service_providers::get)
                    .patch(service_providers::update)
                    .delete(service_providers::delete),
            ),
    );
}
