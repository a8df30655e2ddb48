//! `GET/POST /oauth/logout`: OIDC RP-Initiated Logout 1.0. Validates
//! `id_token_hint` (our signature; expiry does not matter), the client, and
//! `post_logout_redirect_uri` (registered, exact match), then hands over to
//! the hosted `/logout` page, which asks before signing out and returns to
//! the app only when that URI was validated.

use crate::form::Params;
use crate::{OAuthState, jwt};
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use trusec_storage::clients;
use trusec_ui::{LogoutIntent, pages};

pub async fn get(req: HttpRequest, state: Data<OAuthState>) -> HttpResponse {
    match Params::parse(req.query_string().as_bytes()) {
        Ok(p) => handle(&state, &p).await,
        Err(e) => pages::message(
            StatusCode::BAD_REQUEST,
            "Invalid sign-out request",
            &e.description,
        ),
    }
}

pub async fn post(state: Data<OAuthState>, body: Bytes) -> HttpResponse {
    match Params::parse(&body) {
        Ok(p) => handle(&state, &p).await,
        Err(e) => pages::message(
            StatusCode::BAD_REQUEST,
            "Invalid sign-out request",
            &e.description,
        ),
    }
}

async fn handle(state: &OAuthState, params: &Params) -> HttpResponse {
    let bad = |msg: &str| pages::message(StatusCode::BAD_REQUEST, "Invalid sign-out request", msg);
    let mut client_id = params.get("client_id").map(str::to_owned);
    if let Some(hint) = params.get("id_token_hint") {
        let Ok((_, claims)) = jwt::verify_signature(&state.keyring, hint).await else {
            return bad("id_token_hint is not an ID token issued here.");
        };
        let aud = claims
            .get("aud")
            .and_then(|a| a.as_str())
            .map(str::to_owned);
        match (&client_id, aud) {
            (Some(c), Some(a)) if *c != a => return bad("client_id does not match id_token_hint."),
            (_, Some(a)) => client_id = Some(a),
            _ => {}
        }
    }
    let client = match &client_id {
        Some(id) => {
            let id = id.clone();
            match state.core().db.run(move |c| clients::find(c, &id)).await {
                Ok(c) => c,
                Err(_) => {
                    return pages::message(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Something went wrong",
                        "Please try again.",
                    );
                }
            }
        }
        None => None,
    };
    let return_url = match (params.get("post_logout_redirect_uri"), &client) {
        (Some(uri), Some(client)) => {
            if !client.post_logout_redirect_uris.iter().any(|r| r == uri) {
                return bad("post_logout_redirect_uri is not registered for this application.");
            }
            let mut url = match url::Url::parse(uri) {
                Ok(u) => u,
                Err(_) => return bad("post_logout_redirect_uri is malformed."),
            };
            if let Some(s) = params.get("state") {
                url.query_pairs_mut().append_pair("state", s);
            }
            Some(url.to_string())
        }
        (Some(_), None) => {
            return bad("post_logout_redirect_uri needs client_id or id_token_hint.");
        }
        (None, _) => None,
    };
    let intent = LogoutIntent {
        client_name: client.map(|c| c.name),
        return_url,
    };
    match intent.save(&state.ui).await {
        Ok(id) => pages::page_response(StatusCode::FOUND)
            .insert_header((
                actix_web::http::header::LOCATION,
                format!("/logout?intent={id}"),
            ))
            .finish(),
        Err(_) => pages::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Something went wrong",
            "Please try again.",
        ),
    }
}
