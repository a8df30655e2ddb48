//! `GET /saml/metadata`: the IdP's metadata; `?signed=true` signs it.
//!
//! Anyone may ask for signed metadata, and each signature is an RSA
//! private-key operation, so it is made once per key set (on the XML pool)
//! and served from memory until the published certificates change.

use crate::{SamlError, SamlState};
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use std::sync::Arc;

pub async fn get(req: HttpRequest, state: Data<SamlState>) -> Result<HttpResponse, SamlError> {
    let signed = url::form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(k, v)| k == "signed" && v == "true");
    let key = state.keys.current();
    let body: Arc<str> = if signed {
        let made_for = format!("{}\n{}", state.entity_id(), key.published_pem.concat());
        match state.signed_metadata.get(&made_for) {
            Some(body) => body,
            None => {
                let (entity_id, issuer) = (state.entity_id(), state.issuer.clone());
                let body: Arc<str> = state
                    .xml
                    .run(move || {
                        crate::metadata::signed_document(
                            &entity_id,
                            &issuer,
                            &key.published_pem,
                            &key.certificate_der,
                            &key.private_der,
                        )
                    })
                    .await?
                    .map_err(|e| SamlError::internal(&e))?
                    .into();
                state.signed_metadata.put(made_for, body.clone());
                body
            }
        }
    } else {
        crate::metadata::document(&state.entity_id(), &state.issuer, &key.published_pem, false)
            .into()
    };
    Ok(HttpResponse::Ok()
        .content_type("application/samlmetadata+xml")
        .insert_header(("cache-control", "public, max-age=300"))
        .body(body.to_string()))
}
