//! `/v1`: the management API, authenticated by secret or test API keys or,
//! where a route's [`Access`] says so, by OAuth access tokens with the
//! matching management scope. Every handler sees only its caller's
//! environment.

pub(crate) mod api_keys;
pub(crate) mod audit_events;
pub(crate) mod clients;
pub(crate) mod consents;
pub(crate) mod factors;
pub(crate) mod policies;
pub(crate) mod resources;
pub(crate) mod service_providers;
pub(crate) mod sessions;
pub(crate) mod signing_keys;
pub(crate) mod users;

use crate::error::ApiError;
use crate::extract::Access::{self, ApiKey, Scoped, UserToken};
use crate::extract::Resource::{AuditEvents, Policies, ServiceProviders, Sessions, Users};
use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{Resource, web};

/// A route with who may call it; unknown methods get the JSON 405.
fn resource(path: &str, access: Access) -> Resource {
    web::resource(path)
        .app_data(access)
        .default_service(web::to(|| async {
            Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed)
        }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            // Responses carry secrets shown once; never cache them.
            .wrap(DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store")))
            .configure(user_routes)
            .configure(session_and_key_routes)
            .configure(oauth_routes)
            .configure(saml_routes),
    );
}

/// Users, what they consented to, their factors.
fn user_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/users", Scoped(Users))
            .get(users::list)
            .post(users::create),
    )
    .service(resource("/users/me", UserToken).get(users::me))
    .service(resource("/users/me/consents", UserToken).get(consents::list_mine))
    .service(resource("/users/me/consents/{client_id}", UserToken).delete(consents::revoke_mine))
    .service(
        resource("/users/{id}", Scoped(Users))
            .get(users::get)
            .patch(users::update)
            .delete(users::delete),
    )
    .service(resource("/users/{id}/consents", Scoped(Users)).get(consents::list_for_user))
    .service(
        resource("/users/{id}/consents/{client_id}", Scoped(Users))
            .delete(consents::revoke_for_user),
    )
    .service(
        resource("/users/{id}/factors", Scoped(Users))
            .get(factors::list)
            .delete(factors::reset),
    )
    .service(resource("/users/{id}/factors/{factor_id}", Scoped(Users)).delete(factors::remove));
}

/// Sessions, API keys, the audit log.
fn session_and_key_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/users/{id}/sessions", Scoped(Sessions))
            .get(sessions::list_for_user)
            .delete(sessions::revoke_all_for_user),
    )
    .service(resource("/sessions", Scoped(Sessions)).post(sessions::create))
    .service(resource("/sessions/verify", Scoped(Sessions)).post(sessions::verify))
    .service(resource("/sessions/revoke", Scoped(Sessions)).post(sessions::revoke))
    .service(resource("/sessions/{id}", Scoped(Sessions)).delete(sessions::revoke_by_id))
    .service(
        resource("/api-keys", ApiKey)
            .get(api_keys::list)
            .post(api_keys::create),
    )
    .service(
        resource("/api-keys/{id}", ApiKey)
            .get(api_keys::get)
            .delete(api_keys::revoke),
    )
    .service(resource("/api-keys/{id}/rotate", ApiKey).post(api_keys::rotate))
    .service(resource("/audit-events", Scoped(AuditEvents)).get(audit_events::list))
    .service(
        resource("/policies", Scoped(Policies))
            .get(policies::get)
            .patch(policies::update),
    );
}

/// OAuth clients, API resources, signing keys.
fn oauth_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/oauth/clients", ApiKey)
            .get(clients::list)
            .post(clients::create),
    )
    .service(
        resource("/oauth/clients/{id}", ApiKey)
            .get(clients::get)
            .patch(clients::update)
            .delete(clients::delete),
    )
    .service(resource("/oauth/clients/{id}/rotate-secret", ApiKey).post(clients::rotate))
    // Like clients: what a resource's scopes mean is the operator's to
    // say, never an OAuth token's.
    .service(
        resource("/oauth/resources", ApiKey)
            .get(resources::list)
            .post(resources::create),
    )
    .service(
        resource("/oauth/resources/{id}", ApiKey)
            .get(resources::get)
            .patch(resources::update)
            .delete(resources::delete),
    )
    .service(resource("/signing-keys/rotate", ApiKey).post(signing_keys::rotate));
}

/// SAML service providers.
fn saml_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/saml/service-providers", Scoped(ServiceProviders))
            .get(service_providers::list)
            .post(service_providers::create),
    )
    .service(
        resource("/saml/service-providers/{id}", Scoped(ServiceProviders))
            .get(service_providers::get)
            .patch(service_providers::update)
            .delete(service_providers::delete),
    );
}
