//! `GET /saml/metadata`: the IdP's metadata; `?signed=true` signs it.

use crate::{SamlError, SamlState};
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};

pub async fn get(req: HttpRequest, state: Data<SamlState>) -> Result<HttpResponse, SamlError> {
    let signed = url::form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(k, v)| k == "signed" && v == "true");
    let key = state.keys.current();
    let body = if signed {
        crate::metadata::signed_document(
            &state.entity_id(),
            &state.issuer,
            &key.published_pem,
            &key.certificate_der,
            &key.private_der,
        )
        .map_err(|e| SamlError::internal(&e))?
    } else {
        crate::metadata::document(&state.entity_id(), &state.issuer, &key.published_pem, false)
    };
    Ok(HttpResponse::Ok()
        .content_type("application/samlmetadata+xml")
        .insert_header(("cache-control", "public, max-age=300"))
        .body(body))
}
