//! `GET /saml/metadata`: the IdP's metadata.

use crate::SamlState;
use actix_web::HttpResponse;
use actix_web::web::Data;

pub async fn get(state: Data<SamlState>) -> HttpResponse {
    let body = crate::metadata::document(
        &state.entity_id(),
        &state.issuer,
        &state.keys.current().published_pem,
        false,
    );
    HttpResponse::Ok()
        .content_type("application/samlmetadata+xml")
        .insert_header(("cache-control", "public, max-age=300"))
        .body(body)
}
