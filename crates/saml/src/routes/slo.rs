//! Single logout (SAML profiles §4.4) at `/saml/slo`, both bindings in, the
//! HTTP-Redirect binding out: an SP's LogoutRequest ends the IdP session
//! and the other SPs of that session are told one after another before the
//! initiator gets its LogoutResponse; a logout at the IdP's own `/logout`
//! page tells every SP the same way.

use crate::SamlState;
use crate::metadata::BINDING_REDIRECT;
use crate::request::{self, Incoming, Refusal};
use crate::slo::{self, Chain, Initiator};
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use samael::crypto::{CertificateDer, Crypto, CryptoProvider};
use samael::schema::{LogoutRequest, LogoutResponse};
use std::str::FromStr;
use std::time::Duration;
use trusec_storage::audit::{Actor, NewAuditEvent};
use trusec_storage::service_providers::{self, ServiceProviderRow};
use trusec_storage::{secrets, sessions};
use trusec_ui::cookies::{self, SESSION_COOKIE};
use trusec_ui::{LogoutIntent, pages};

const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const FRESHNESS: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

fn failed(status: StatusCode, message: &str) -> HttpResponse {
    pages::message(status, "Sign-out failed", message)
}

fn unavailable() -> HttpResponse {
    failed(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again in a moment.",
    )
}

fn now_text(state: &SamlState) -> String {
    state
        .ui
        .clock
        .now()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn new_id() -> String {
    format!(
        "_{}",
        trusec_storage::ids::new_id("l").trim_start_matches("l_")
    )
}

/// `GET /saml/slo`: HTTP-Redirect binding.
pub async fn redirect(req: HttpRequest, state: Data<SamlState>) -> HttpResponse {
    let query = req.query_string();
    if query.split('&').any(|p| p.starts_with("SAMLResponse=")) {
        return match request::from_redirect(query, "SAMLResponse") {
            Ok(incoming) => response_in(&state, incoming).await,
            Err(r) => failed(StatusCode::BAD_REQUEST, &r.to_string()),
        };
    }
    match request::from_redirect(query, "SAMLRequest") {
        Ok(incoming) => request_in(&req, &state, incoming).await,
        Err(r) => failed(StatusCode::BAD_REQUEST, &r.to_string()),
    }
}

/// `POST /saml/slo`: HTTP-POST binding.
pub async fn post(req: HttpRequest, state: Data<SamlState>, body: Bytes) -> HttpResponse {
    if body.len() > request::MAX_ENCODED + 4096 {
        return failed(StatusCode::BAD_REQUEST, &Refusal::TooLarge.to_string());
    }
    let (mut message, mut response, mut relay) = (None, None, None);
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "SAMLRequest" => message = Some(v.into_owned()),
            "SAMLResponse" => response = Some(v.into_owned()),
            "RelayState" => relay = Some(v.into_owned()),
            _ => {}
        }
    }
    if response.is_some() {
        return match request::from_post(response.as_deref(), relay.as_deref()) {
            Ok(incoming) => response_in(&state, incoming).await,
            Err(r) => failed(StatusCode::BAD_REQUEST, &r.to_string()),
        };
    }
    match request::from_post(message.as_deref(), relay.as_deref()) {
        Ok(incoming) => request_in(&req, &state, incoming).await,
        Err(r) => failed(StatusCode::BAD_REQUEST, &r.to_string()),
    }
}

async fn find_sp(state: &SamlState, entity: &str) -> Option<ServiceProviderRow> {
    for env in [trusec_storage::ids::ENV_LIVE, trusec_storage::ids::ENV_TEST] {
        let e = entity.to_owned();
        if let Ok(Some(sp)) = state
            .ui
            .db
            .run(move |c| service_providers::find_by_entity_id(c, env, &e))
            .await
        {
            return Some(sp);
        }
    }
    None
}

/// A logout message must be signed when the SP registered a certificate
/// (SAML profiles §4.4.4.1); the embedded signature must cover the message.
fn signature_ok(sp: &ServiceProviderRow, incoming: &Incoming, id: &str, embedded: bool) -> bool {
    let Some(pem) = sp.certificate_pem.as_deref() else {
        return true;
    };
    if let Some(sig) = &incoming.redirect_signature {
        return request::verify_redirect(sig, pem);
    }
    if !embedded {
        return false;
    }
    let Ok(der) = openssl::x509::X509::from_pem(pem.as_bytes()).and_then(|c| c.to_der()) else {
        return false;
    };
    Crypto::verify_signed_xml(&incoming.xml, &CertificateDer::from(der), Some("ID")).is_ok()
        && incoming.xml.contains(&format!("URI=\"#{id}\""))
}

async fn refuse(state: &SamlState, sp: Option<&ServiceProviderRow>, reason: &str) -> HttpResponse {
    let event = NewAuditEvent::new("saml.request.refused", sp.map(|s| s.environment_id.as_str()), Actor::anonymous())
        .failed()
        .data(serde_json::json!({"reason": reason, "message": "LogoutRequest", "sp_id": sp.map(|s| s.id.clone())}));
    if let Err(e) = state.ui.audit(event).await {
        tracing::error!(error = %e, "could not audit a refused logout");
    }
    failed(StatusCode::BAD_REQUEST, "The sign-out request was refused.")
}

/// An SP asks to end the session (SP-initiated single logout).
async fn request_in(http: &HttpRequest, state: &SamlState, incoming: Incoming) -> HttpResponse {
    let Ok(logout) = LogoutRequest::from_str(&incoming.xml) else {
        return refuse(state, None, "malformed").await;
    };
    let Some(issuer) = logout.issuer.as_ref().and_then(|i| i.value.clone()) else {
        return refuse(state, None, "unknown_issuer").await;
    };
    let Some(sp) = find_sp(state, &issuer).await else {
        return refuse(state, None, "unknown_issuer").await;
    };
    let id = logout.id.clone().unwrap_or_default();
    if id.is_empty() || !signature_ok(&sp, &incoming, &id, logout.signature.is_some()) {
        return refuse(state, Some(&sp), "bad_signature").await;
    }
    if logout
        .issue_instant
        .is_none_or(|t| (state.ui.clock.now() - t).abs() > FRESHNESS)
    {
        return refuse(state, Some(&sp), "stale").await;
    }
    match state
        .ui
        .store
        .put_if_absent(
            &format!("saml-logout:{}:{id}", sp.id),
            b"1",
            Duration::from_secs(900),
        )
        .await
    {
        Ok(true) => {}
        Ok(false) => return refuse(state, Some(&sp), "replayed").await,
        Err(_) => return unavailable(),
    }
    let mut chain = Chain {
        session_id: String::new(),
        remaining: Vec::new(),
        initiator: Some(Initiator {
            sp_id: sp.id.clone(),
            environment_id: sp.environment_id.clone(),
            request_id: id,
            relay_state: incoming.relay_state.clone(),
        }),
        intent: None,
        awaiting: None,
    };
    let mut clear = false;
    if let Some(cookie) = http.cookie(SESSION_COOKIE) {
        let hash = secrets::hash_secret(cookie.value());
        let (env, now) = (sp.environment_id.clone(), state.ui.clock.now_naive());
        let lookup = hash.clone();
        match state
            .ui
            .db
            .run(move |c| sessions::revoke_by_token_hash(c, &env, &lookup, now))
            .await
        {
            Ok(Some((row, _))) => {
                clear = true;
                let _ = state
                    .ui
                    .store
                    .put(
                        &sessions::cache_key(&hash),
                        &sessions::tombstone(&sp.environment_id),
                        sessions::CACHE_TTL,
                    )
                    .await;
                let _ = state.ui.store.take(&slo::hook_key(&row.id)).await;
                chain.session_id.clone_from(&row.id);
                chain.remaining = match slo::take_participants(&state.ui.store, &row.id).await {
                    Ok(p) => p.into_iter().filter(|p| p.sp_id != sp.id).collect(),
                    Err(_) => return unavailable(),
                };
                let event = NewAuditEvent::new("saml.logout", Some(&sp.environment_id), Actor::user(&row.user_id))
                    .user(&row.user_id)
                    .data(serde_json::json!({"initiated_by": sp.entity_id, "session_id": row.id, "notify": chain.remaining.len()}));
                if state.ui.audit(event).await.is_err() {
                    return unavailable();
                }
            }
            Ok(None) => {}
            Err(_) => return unavailable(),
        }
    }
    let mut resp = next_step(state, None, chain).await;
    if clear {
        let _ = resp.add_cookie(&cookies::clear_session(state.ui.secure_cookies));
    }
    resp
}

/// An SP answers our LogoutRequest: go on to the next one.
async fn response_in(state: &SamlState, incoming: Incoming) -> HttpResponse {
    let Ok(response) = LogoutResponse::from_str(&incoming.xml) else {
        return failed(
            StatusCode::BAD_REQUEST,
            "The sign-out response is malformed.",
        );
    };
    let chain_id = incoming.relay_state.clone().unwrap_or_default();
    let chain = match slo::load_chain(&state.ui.store, &chain_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return failed(StatusCode::BAD_REQUEST, "This sign-out has expired."),
        Err(_) => return unavailable(),
    };
    if chain.awaiting.is_some() && response.in_response_to != chain.awaiting {
        return failed(
            StatusCode::BAD_REQUEST,
            "The sign-out response answers another request.",
        );
    }
    next_step(state, Some(&chain_id), chain).await
}

/// `GET /saml/slo/propagate?session_ref=…[&intent=…]`: the hosted logout
/// page hands over here after ending a session that signed in to SPs.
pub async fn propagate(req: HttpRequest, state: Data<SamlState>) -> HttpResponse {
    let (mut reference, mut intent) = (String::new(), None);
    for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        match k.as_ref() {
            "session_ref" => reference = v.into_owned(),
            "intent" if !v.is_empty() => intent = Some(v.into_owned()),
            _ => {}
        }
    }
    let session_id = match slo::resolve_ref(&state.ui.store, &reference).await {
        Ok(Some(s)) => s,
        Ok(None) => return finish_page(&state, intent.as_deref()).await,
        Err(_) => return unavailable(),
    };
    let remaining = match slo::take_participants(&state.ui.store, &session_id).await {
        Ok(p) => p,
        Err(_) => return unavailable(),
    };
    let chain = Chain {
        session_id,
        remaining,
        initiator: None,
        intent,
        awaiting: None,
    };
    next_step(&state, None, chain).await
}

/// Tells the next SP, or finishes.
async fn next_step(state: &SamlState, chain_id: Option<&str>, mut chain: Chain) -> HttpResponse {
    while let Some(p) = chain.remaining.pop() {
        let (env, sp_id) = (p.environment_id.clone(), p.sp_id.clone());
        let Ok(sp) = state
            .ui
            .db
            .run(move |c| service_providers::get(c, &env, &sp_id))
            .await
        else {
            continue;
        };
        let Some(endpoint) = sp
            .slo()
            .unwrap_or_default()
            .into_iter()
            .find(|e| e.binding == BINDING_REDIRECT)
        else {
            // Only the HTTP-Redirect binding is sent; an SP without it is skipped.
            continue;
        };
        let id = new_id();
        let xml = slo::logout_request(
            &id,
            &now_text(state),
            &endpoint.url,
            &state.entity_id(),
            &p,
            &chain.session_id,
        );
        chain.awaiting = Some(id);
        let Ok(saved) = slo::save_chain(&state.ui.store, chain_id, &chain).await else {
            return unavailable();
        };
        return match slo::redirect_url(
            &endpoint.url,
            "SAMLRequest",
            &xml,
            Some(&saved),
            &state.keys.current().private_der,
        ) {
            Ok(url) => found(&url),
            Err(_) => unavailable(),
        };
    }
    if let Some(initiator) = &chain.initiator {
        let (env, sp_id) = (initiator.environment_id.clone(), initiator.sp_id.clone());
        if let Ok(sp) = state
            .ui
            .db
            .run(move |c| service_providers::get(c, &env, &sp_id))
            .await
            && let Some(endpoint) = sp
                .slo()
                .unwrap_or_default()
                .into_iter()
                .find(|e| e.binding == BINDING_REDIRECT)
        {
            let target = endpoint
                .response_url
                .clone()
                .unwrap_or(endpoint.url.clone());
            let xml = slo::logout_response(
                &new_id(),
                &now_text(state),
                &target,
                &state.entity_id(),
                &initiator.request_id,
                SUCCESS,
            );
            return match slo::redirect_url(
                &target,
                "SAMLResponse",
                &xml,
                initiator.relay_state.as_deref(),
                &state.keys.current().private_der,
            ) {
                Ok(url) => found(&url),
                Err(_) => unavailable(),
            };
        }
    }
    finish_page(state, chain.intent.as_deref()).await
}

fn found(url: &str) -> HttpResponse {
    pages::page_response(StatusCode::FOUND)
        .insert_header((actix_web::http::header::LOCATION, url.to_owned()))
        .finish()
}

async fn finish_page(state: &SamlState, intent: Option<&str>) -> HttpResponse {
    if let Some(id) = intent
        && let Some(url) = LogoutIntent::load(&state.ui, id)
            .await
            .and_then(|i| i.return_url)
    {
        return pages::see_other(&url, Vec::new());
    }
    pages::message(
        StatusCode::OK,
        "You are signed out",
        "You can close this window.",
    )
}
