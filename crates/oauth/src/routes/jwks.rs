//! `GET /.well-known/jwks.json` (RFC 7517): current, next and still-valid
//! retired keys, as pre-serialised bytes.

use crate::OAuthState;
use actix_web::HttpResponse;
use actix_web::web::Data;

pub async fn get(state: Data<OAuthState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/jwk-set+json")
        // Short: clients refetch on an unknown kid anyway, and a rotation
        // should be visible within minutes.
        .insert_header(("cache-control", "public, max-age=300"))
        .insert_header(("access-control-allow-origin", "*"))
        .body(state.keyring.keys().jwks.clone())
}
