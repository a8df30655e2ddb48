//! Single logout (SAML profiles §4.4) at `/saml/slo`, both bindings in, the
//! HTTP-Redirect binding out: an SP's LogoutRequest ends the IdP session
//! and the other SPs of that session are told one after another before the
//! initiator gets its LogoutResponse; a logout at the IdP's own `/logout`
//! page tells every SP the same way.

use super::sender;
use crate::SamlState;
use crate::error::{About, Flow, Refusal, RefuseAs, SamlError, audited};
use crate::request::{self, Incoming};
use crate::slo::{self, Chain, Initiator};
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use samael::schema::{LogoutRequest, LogoutResponse};
use std::str::FromStr;
use std::time::Duration;
use trusec_storage::audit::{Actor, EventType, NewAuditEvent};
use trusec_storage::rate_limit::Family;
use trusec_storage::refresh_tokens::RevocationReason;
use trusec_storage::service_providers::{self, Binding, Endpoint, ServiceProviderRow};
use trusec_storage::sessions::{self, SessionRow};
use trusec_storage::{StorageError, StoreKey, secrets};
use trusec_ui::cookies::{self, SESSION_COOKIE};
use trusec_ui::error::ErrorChain;
use trusec_ui::http::limit_per_ip;
use trusec_ui::{LogoutIntent, pages};

const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const PARTIAL: &str = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout";
const FRESHNESS: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

fn now_text(state: &SamlState) -> String {
    state
        .core()
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
pub async fn redirect(req: HttpRequest, state: Data<SamlState>) -> Result<HttpResponse, SamlError> {
    limit_per_ip(state.core(), &req, Family::Saml).await?;
    let query = req.query_string();
    let outcome = if query.split('&').any(|p| p.starts_with("SAMLResponse=")) {
        response_in(&state, request::from_redirect(query, "SAMLResponse")).await
    } else {
        request_in(&req, &state, request::from_redirect(query, "SAMLRequest")).await
    };
    audited(&state, &req, outcome).await
}

/// `POST /saml/slo`: HTTP-POST binding.
pub async fn post(
    req: HttpRequest,
    state: Data<SamlState>,
    body: Bytes,
) -> Result<HttpResponse, SamlError> {
    limit_per_ip(state.core(), &req, Family::Saml).await?;
    let outcome = match post_message(&body) {
        Posted::Response(incoming) => response_in(&state, incoming).await,
        Posted::Request(incoming) => request_in(&req, &state, incoming).await,
    };
    audited(&state, &req, outcome).await
}

/// What an HTTP-POST to `/saml/slo` carries.
enum Posted {
    Request(Result<Incoming, Refusal>),
    Response(Result<Incoming, Refusal>),
}

fn post_message(body: &[u8]) -> Posted {
    if body.len() > request::MAX_ENCODED + 4096 {
        return Posted::Request(Err(Refusal::TooLarge));
    }
    let (mut message, mut response, mut relay) = (None, None, None);
    for (k, v) in url::form_urlencoded::parse(body) {
        match k.as_ref() {
            "SAMLRequest" => message = Some(v.into_owned()),
            "SAMLResponse" => response = Some(v.into_owned()),
            "RelayState" => relay = Some(v.into_owned()),
            _ => {}
        }
    }
    match response {
        Some(r) => Posted::Response(request::from_post(Some(&r), relay.as_deref())),
        None => Posted::Request(request::from_post(message.as_deref(), relay.as_deref())),
    }
}

/// Checks a logout message's signature with the SP's certificate and
/// returns the XML to trust: the whole message for the redirect binding
/// (the signature covers it), only the signed content for an embedded
/// signature (no wrapping). `Ok(None)`: the SP has no certificate.
fn verified_xml(sp: &ServiceProviderRow, incoming: &Incoming) -> Result<Option<String>, Refusal> {
    let Some(pem) = sp.certificate_pem.as_deref() else {
        return Ok(None);
    };
    if let Some(sig) = &incoming.redirect_signature {
        return if request::verify_redirect(sig, pem) {
            Ok(Some(incoming.xml.clone()))
        } else {
            Err(Refusal::BadSignature)
        };
    }
    if !request::has_embedded_signature(&incoming.xml) {
        return Err(Refusal::Unsigned);
    }
    request::signed_content(&incoming.xml, pem).map(Some)
}

/// An SP asks to end the session (SP-initiated single logout). It must be
/// signed (SAML profiles §4.4.4.1), so an SP without a registered
/// certificate cannot log anyone out: a link alone must never do that.
async fn request_in(
    http: &HttpRequest,
    state: &SamlState,
    incoming: Result<Incoming, Refusal>,
) -> Result<HttpResponse, SamlError> {
    // Parse.
    let about = About::sign_out();
    let incoming = incoming.refused(&about)?;
    let outer = LogoutRequest::from_str(&incoming.xml)
        .map_err(|_| about.refuse(Refusal::Malformed("not a LogoutRequest".into())))?;
    let issuer = sender::issuer(&about, outer.issuer.as_ref())?;
    let (sp, about) = sender::registered(state, about, &issuer).await?;
    // Decide.
    let accepted = accept(state, &sp, &incoming, &outer).refused(&about)?;
    if !state
        .core()
        .store
        .put_if_absent(
            &StoreKey::saml_logout(&sp.id, &accepted.id),
            b"1",
            Duration::from_secs(900),
        )
        .await?
    {
        return Err(about.refuse(Refusal::Replayed));
    }
    let cookie_hash = http
        .cookie(SESSION_COOKIE)
        .map(|c| secrets::hash_secret(c.value()));
    let ended = end_session(state, &sp, &accepted, cookie_hash.as_deref()).await?;
    // Respond: tell the session's other SPs, then answer this one.
    let clear = ended
        .as_ref()
        .is_some_and(|(row, _)| cookie_hash.as_deref() == Some(row.token_hash.as_str()));
    let chain = chain_after(state, &sp, accepted, incoming.relay_state, ended).await?;
    let mut resp = next_step(state, chain).await?;
    if clear && let Err(e) = resp.add_cookie(&cookies::clear_session(state.ui.secure_cookies)) {
        tracing::warn!(error = %e, "could not clear the session cookie after a logout");
    }
    Ok(resp)
}

/// A LogoutRequest that passed every check, and the XML its signature covers.
struct Accepted {
    id: String,
    trusted_xml: String,
}

/// Signature, ID, destination and age of a LogoutRequest: every later
/// decision reads only the signed XML.
fn accept(
    state: &SamlState,
    sp: &ServiceProviderRow,
    incoming: &Incoming,
    outer: &LogoutRequest,
) -> Result<Accepted, Refusal> {
    let trusted_xml = verified_xml(sp, incoming)?.ok_or(Refusal::Unsigned)?;
    let logout = LogoutRequest::from_str(&trusted_xml).map_err(|_| Refusal::BadSignature)?;
    let id = logout.id.clone().unwrap_or_default();
    // The signed element must be the request itself (no wrapping).
    if id.is_empty() || outer.id.as_deref() != Some(id.as_str()) {
        return Err(Refusal::BadSignature);
    }
    if logout.destination.as_deref() != Some(format!("{}/saml/slo", state.issuer).as_str()) {
        return Err(Refusal::WrongDestination);
    }
    if logout
        .issue_instant
        .is_none_or(|t| (state.core().clock.now() - t).abs() > FRESHNESS)
    {
        return Err(Refusal::Stale);
    }
    Ok(Accepted { id, trusted_xml })
}

/// Ends the session the request names: the one this SP knows by the
/// (signed) SessionIndex — a cross-site POST carries no cookie — else the
/// browser's own. Returns it, and whether this call revoked it.
async fn end_session(
    state: &SamlState,
    sp: &ServiceProviderRow,
    accepted: &Accepted,
    cookie_hash: Option<&str>,
) -> Result<Option<(SessionRow, bool)>, StorageError> {
    let by_index = match slo::session_index_of(&accepted.trusted_xml) {
        Some(index) => slo::session_for_index(&state.core().store, &sp.id, &index).await?,
        None => None,
    };
    let (env, now) = (sp.environment_id.clone(), state.core().clock.now_naive());
    let db = &state.core().db;
    let ended = match (by_index, cookie_hash.map(str::to_owned)) {
        (Some(sid), _) => {
            db.run(move |c| sessions::revoke_by_id(c, &env, &sid, now))
                .await?
        }
        (None, Some(hash)) => {
            db.run(move |c| sessions::revoke_by_token_hash(c, &env, &hash, now))
                .await?
        }
        (None, None) => None,
    };
    let Some(ended) = ended else {
        return Ok(None);
    };
    // The session's refresh tokens end with it (contract).
    let by = NewAuditEvent::new(
        EventType::SamlLogout,
        Some(&sp.environment_id),
        Actor::user(&ended.session.user_id),
    )
    .user(&ended.session.user_id);
    state
        .core()
        .refresh_families_revoked(&ended.refresh, RevocationReason::SessionEnded, by)
        .await?;
    let row = &ended.session;
    if let Err(e) = state
        .core()
        .forget_sessions([row.token_hash.as_str()])
        .await
    {
        tracing::error!(error = %e, "could not mark a signed-out session stale in the cache");
    }
    // This logout tells the session's SPs itself.
    if let Err(e) = trusec_ui::after_logout::cancel(&state.core().store, &row.id).await {
        tracing::warn!(error = %e, "could not drop the after-logout step");
    }
    Ok(Some((ended.session, ended.newly)))
}

/// The logout chain after `ended`: the session's other SPs to tell, then
/// the initiator's answer — Success, or PartialLogout when no session was
/// found to end. A session this request revoked is audited as `saml.logout`.
async fn chain_after(
    state: &SamlState,
    sp: &ServiceProviderRow,
    accepted: Accepted,
    relay_state: Option<String>,
    ended: Option<(SessionRow, bool)>,
) -> Result<Chain, SamlError> {
    let mut chain = Chain {
        session_id: String::new(),
        remaining: Vec::new(),
        initiator: Some(Initiator {
            sp_id: sp.id.clone(),
            environment_id: sp.environment_id.clone(),
            request_id: accepted.id,
            relay_state,
            status: if ended.is_some() { SUCCESS } else { PARTIAL }.into(),
        }),
        intent: None,
        awaiting: None,
    };
    let Some((row, newly)) = ended else {
        return Ok(chain);
    };
    chain.remaining = slo::take_participants(&state.core().store, &row.id)
        .await?
        .into_iter()
        .filter(|p| p.sp_id != sp.id)
        .collect();
    if newly {
        let event = NewAuditEvent::new(EventType::SamlLogout, Some(&sp.environment_id), Actor::user(&row.user_id))
            .user(&row.user_id)
            .data(serde_json::json!({"initiated_by": sp.entity_id, "session_id": row.id, "notify": chain.remaining.len()}));
        state.core().audit(event).await?;
    }
    chain.session_id = row.id;
    Ok(chain)
}

/// An SP answers our LogoutRequest: check it is the answer we wait for,
/// from that SP (signed, when it registered a certificate), then go on.
async fn response_in(
    state: &SamlState,
    incoming: Result<Incoming, Refusal>,
) -> Result<HttpResponse, SamlError> {
    let about = About::sign_out();
    let incoming = incoming.refused(&about)?;
    let response = LogoutResponse::from_str(&incoming.xml)
        .map_err(|_| about.refuse(Refusal::Malformed("not a LogoutResponse".into())))?;
    let chain_id = incoming.relay_state.clone().unwrap_or_default();
    let chain = slo::take_chain(&state.core().store, &chain_id)
        .await?
        .ok_or_else(|| SamlError::page(Flow::SignOut, "This sign-out has expired."))?;
    let Some((awaited, sp_id, env)) = chain.awaiting.clone() else {
        return Err(SamlError::page(
            Flow::SignOut,
            "No sign-out response was expected.",
        ));
    };
    let sp = sender::still_registered(state, Flow::SignOut, &env, &sp_id).await?;
    let about = about.issuer(&sp.entity_id).sp(&sp);
    let trusted = match verified_xml(&sp, &incoming).refused(&about)? {
        Some(xml) => {
            LogoutResponse::from_str(&xml).map_err(|_| about.refuse(Refusal::BadSignature))?
        }
        None => response,
    };
    let issuer = trusted.issuer.as_ref().and_then(|i| i.value.clone());
    if trusted.in_response_to.as_deref() != Some(awaited.as_str())
        || issuer.as_deref() != Some(sp.entity_id.as_str())
    {
        return Err(about.refuse(Refusal::Malformed(
            "the response does not answer our request".into(),
        )));
    }
    next_step(state, chain).await
}

/// `GET /saml/slo/propagate?session_ref=…[&intent=…]`: the hosted logout
/// page hands over here after ending a session that signed in to SPs.
pub async fn propagate(
    req: HttpRequest,
    state: Data<SamlState>,
) -> Result<HttpResponse, SamlError> {
    let (mut reference, mut intent) = (String::new(), None);
    for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        match k.as_ref() {
            "session_ref" => reference = v.into_owned(),
            "intent" if !v.is_empty() => intent = Some(v.into_owned()),
            _ => {}
        }
    }
    let Some(session_id) = slo::resolve_ref(&state.core().store, &reference).await? else {
        return Ok(finish_page(&state, intent.as_deref()).await);
    };
    let remaining = slo::take_participants(&state.core().store, &session_id).await?;
    let chain = Chain {
        session_id,
        remaining,
        initiator: None,
        intent,
        awaiting: None,
    };
    next_step(&state, chain).await
}

/// Tells the next SP, or answers the initiator, or finishes.
async fn next_step(state: &SamlState, mut chain: Chain) -> Result<HttpResponse, SamlError> {
    while let Some(p) = chain.remaining.pop() {
        let Some((sp, endpoint)) = redirect_endpoint(state, &p.environment_id, &p.sp_id).await
        else {
            continue;
        };
        let id = new_id();
        let xml = slo::logout_request(&id, &now_text(state), &endpoint.url, &state.entity_id(), &p);
        chain.awaiting = Some((id, sp.id, sp.environment_id));
        let saved = slo::save_chain(&state.core().store, &chain).await?;
        return signed_redirect(state, &endpoint.url, "SAMLRequest", &xml, Some(&saved));
    }
    if let Some(initiator) = &chain.initiator
        && let Some((_, endpoint)) =
            redirect_endpoint(state, &initiator.environment_id, &initiator.sp_id).await
    {
        let target = endpoint.response_url.unwrap_or(endpoint.url);
        let xml = slo::logout_response(
            &new_id(),
            &now_text(state),
            &target,
            &state.entity_id(),
            &initiator.request_id,
            &initiator.status,
        );
        let relay = initiator.relay_state.as_deref();
        return signed_redirect(state, &target, "SAMLResponse", &xml, relay);
    }
    Ok(finish_page(state, chain.intent.as_deref()).await)
}

/// An SP of the chain and its HTTP-Redirect single-logout endpoint: the
/// only binding we send. An SP without one, or deleted since, is skipped:
/// the logout goes on without it.
async fn redirect_endpoint(
    state: &SamlState,
    env: &str,
    sp_id: &str,
) -> Option<(ServiceProviderRow, Endpoint)> {
    let (env, id) = (env.to_owned(), sp_id.to_owned());
    let sp = match state
        .core()
        .db
        .run(move |c| service_providers::get(c, &env, &id))
        .await
    {
        Ok(sp) => sp,
        Err(StorageError::NotFound) => return None,
        Err(e) => {
            tracing::warn!(error = %ErrorChain(&e), "could not load an SP to tell it about a logout; skipped");
            return None;
        }
    };
    let endpoint = sp
        .slo_endpoints
        .iter()
        .find(|e| e.binding == Binding::HttpRedirect)?
        .clone();
    Some((sp, endpoint))
}

/// A redirect carrying `xml` by the HTTP-Redirect binding, signed with the IdP key.
fn signed_redirect(
    state: &SamlState,
    endpoint: &str,
    param: &str,
    xml: &str,
    relay_state: Option<&str>,
) -> Result<HttpResponse, SamlError> {
    let key = state.keys.current();
    let url = slo::redirect_url(endpoint, param, xml, relay_state, &key.private_der)
        .map_err(|e| SamlError::internal(&e))?;
    Ok(found(&url))
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
