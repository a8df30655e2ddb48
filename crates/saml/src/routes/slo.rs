//! Single logout (SAML profiles §4.4) at `/saml/slo`, the HTTP-Redirect and
//! HTTP-POST bindings both in and out (each SP is sent messages by the
//! binding of the endpoint it registered): an SP's LogoutRequest ends the IdP session
//! and the other SPs of that session are told one after another before the
//! initiator gets its LogoutResponse; a logout at the IdP's own `/logout`
//! page tells every SP the same way.

use super::post_form::{self, Outgoing, Param, Purpose};
use super::sender;
use crate::SamlState;
use crate::error::{About, Flow, Refusal, RefuseAs, SamlError, audited};
use crate::request::{self, Incoming, Verified};
use crate::response;
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
use trusec_storage::service_providers::{self, Binding, ServiceProviderRow};
use trusec_storage::sessions::{self, SessionRow};
use trusec_storage::{StorageError, StoreKey, secrets};
use trusec_ui::cookies;
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
/// signature (no wrapping). `Ok(None)`: the SP has no certificate. Runs on
/// the XML pool.
fn verified_xml(
    certificate_pem: Option<&str>,
    incoming: &Incoming,
) -> Result<Option<String>, Refusal> {
    let Some(pem) = certificate_pem else {
        return Ok(None);
    };
    match request::verify(incoming, Some(pem))? {
        Verified::Whole => Ok(Some(incoming.xml.clone())),
        Verified::Content(xml) => Ok(Some(xml)),
        Verified::Unsigned => Err(Refusal::Unsigned),
    }
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
    let xml = incoming.xml.clone();
    let outer = state
        .xml
        .run(move || LogoutRequest::from_str(&xml))
        .await?
        .map_err(|_| about.refuse(Refusal::Malformed("not a LogoutRequest".into())))?;
    let issuer = sender::issuer(&about, outer.issuer.as_ref())?;
    let (sp, about) = sender::registered(state, about, &issuer).await?;
    // Decide.
    let (pem, checked) = (sp.certificate_pem.clone(), incoming.clone());
    let signed = state
        .xml
        .run(move || signed_logout(pem.as_deref(), &checked))
        .await?
        .refused(&about)?;
    let accepted = accept(state, &sp, outer.id.as_deref(), signed).refused(&about)?;
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
    let cookie_hash = cookies::session_token(http, &state.ui).map(|t| secrets::hash_secret(&t));
    let ended = end_session(state, &sp, &accepted, cookie_hash.as_deref()).await?;
    // Respond: tell the session's other SPs, then answer this one.
    let clear = ended
        .as_ref()
        .is_some_and(|(row, _)| cookie_hash.as_deref() == Some(row.token_hash.as_str()));
    let chain = chain_after(state, &sp, accepted, incoming.relay_state, ended).await?;
    let mut resp = next_step(state, chain).await?;
    if clear && let Err(e) = resp.add_cookie(&cookies::clear_session(&state.ui)) {
        tracing::warn!(error = %e, "could not clear the session cookie after a logout");
    }
    Ok(resp)
}

/// The signed LogoutRequest, re-read from the XML its signature covers.
fn signed_logout(certificate_pem: Option<&str>, incoming: &Incoming) -> Result<Signed, Refusal> {
    let xml = verified_xml(certificate_pem, incoming)?.ok_or(Refusal::Unsigned)?;
    let request = LogoutRequest::from_str(&xml).map_err(|_| Refusal::BadSignature)?;
    let session_index = slo::session_index_of(&xml);
    Ok(Signed {
        request,
        session_index,
    })
}

/// A LogoutRequest read from its signed content only.
struct Signed {
    request: LogoutRequest,
    /// samael reads `SessionIndex` as an attribute; it is an element
    /// (SAML core §3.7.1), so it is taken from the signed XML itself.
    session_index: Option<String>,
}

/// A LogoutRequest that passed every check: what it names, from its
/// signed content.
struct Accepted {
    id: String,
    name_id: Option<String>,
    session_index: Option<String>,
}

/// ID, issuer, destination and age of a signed LogoutRequest.
fn accept(
    state: &SamlState,
    sp: &ServiceProviderRow,
    outer_id: Option<&str>,
    signed: Signed,
) -> Result<Accepted, Refusal> {
    let logout = signed.request;
    let id = logout.id.clone().unwrap_or_default();
    // The signed element must be the request itself (no wrapping)...
    if id.is_empty() || outer_id != Some(id.as_str()) {
        return Err(Refusal::BadSignature);
    }
    // ...signed by the SP it names.
    if logout.issuer.as_ref().and_then(|i| i.value.as_deref()) != Some(sp.entity_id.as_str()) {
        return Err(Refusal::IssuerMismatch);
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
    Ok(Accepted {
        id,
        name_id: logout
            .name_id
            .and_then(|n| Some(n.value).filter(|v| !v.is_empty())),
        session_index: signed.session_index,
    })
}

/// Ends the session the request names. With a (signed) SessionIndex, only
/// the session this SP knows by it — never the browser's cookie instead,
/// which a cross-site POST would carry for another user's session; without
/// one, the browser's own session. Either way the request's NameID must be
/// the one this SP was given for that session (SAML core §3.7.3.2), so an
/// SP can end only sessions of the user it names. Returns the session, and
/// whether this call revoked it.
async fn end_session(
    state: &SamlState,
    sp: &ServiceProviderRow,
    accepted: &Accepted,
    cookie_hash: Option<&str>,
) -> Result<Option<(SessionRow, bool)>, StorageError> {
    let (env, now) = (sp.environment_id.clone(), state.core().clock.now_naive());
    let db = &state.core().db;
    let session_id = match (&accepted.session_index, cookie_hash) {
        (Some(index), _) => slo::session_for_index(&state.core().store, &sp.id, index).await?,
        (None, Some(hash)) => {
            let (env, hash) = (env.clone(), hash.to_owned());
            db.run(move |c| sessions::find_by_token_hash(c, &env, &hash))
                .await?
                .map(|(row, _)| row.id)
        }
        (None, None) => None,
    };
    let Some(session_id) = session_id else {
        return Ok(None);
    };
    let known_as = slo::participant(&state.core().store, &session_id, &sp.id).await?;
    if known_as.is_none_or(|p| Some(&p.name_id) != accepted.name_id.as_ref()) {
        return Ok(None);
    }
    let ended = db
        .run(move |c| sessions::revoke_by_id(c, &env, &session_id, now))
        .await?;
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
    let xml = incoming.xml.clone();
    let response = state
        .xml
        .run(move || LogoutResponse::from_str(&xml))
        .await?
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
    let (pem, checked) = (sp.certificate_pem.clone(), incoming.clone());
    let signed = state
        .xml
        .run(move || {
            verified_xml(pem.as_deref(), &checked)?
                .map(|xml| LogoutResponse::from_str(&xml).map_err(|_| Refusal::BadSignature))
                .transpose()
        })
        .await?
        .refused(&about)?;
    let trusted = signed.unwrap_or(response);
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
        let Some((sp, endpoint)) = slo_endpoint(state, &p.environment_id, &p.sp_id).await else {
            continue;
        };
        let id = new_id();
        chain.awaiting = Some((id.clone(), sp.id.clone(), sp.environment_id.clone()));
        let saved = slo::save_chain(&state.core().store, &chain).await?;
        let message = Message {
            param: Param::SamlRequest,
            target: &endpoint.url,
            relay_state: Some(&saved),
        };
        let build = move |h: &slo::Header<'_>| slo::logout_request(h, &p);
        return send(state, &sp, endpoint.binding, &id, &message, build).await;
    }
    if let Some(initiator) = chain.initiator
        && let Some((sp, endpoint)) =
            slo_endpoint(state, &initiator.environment_id, &initiator.sp_id).await
    {
        let target = endpoint.response_url.clone().unwrap_or(endpoint.url);
        let message = Message {
            param: Param::SamlResponse,
            target: &target,
            relay_state: initiator.relay_state.as_deref(),
        };
        let (request_id, status) = (initiator.request_id.clone(), initiator.status.clone());
        let build = move |h: &slo::Header<'_>| slo::logout_response(h, &request_id, &status);
        return send(state, &sp, endpoint.binding, &new_id(), &message, build).await;
    }
    Ok(finish_page(state, chain.intent.as_deref()).await)
}

/// A logout message on its way out: its form field or query parameter,
/// where it goes, and the RelayState it carries.
struct Message<'a> {
    param: Param,
    target: &'a str,
    relay_state: Option<&'a str>,
}

/// Sends the message `build` makes by the endpoint's binding, signed with
/// the IdP key: HTTP-Redirect signs the query (bindings §3.4.4.1),
/// HTTP-POST carries an enveloped XML signature in an auto-submitting form
/// (bindings §3.5.4, as for SSO).
async fn send(
    state: &SamlState,
    sp: &ServiceProviderRow,
    binding: Out,
    id: &str,
    message: &Message<'_>,
    build: impl FnOnce(&slo::Header<'_>) -> String + Send + 'static,
) -> Result<HttpResponse, SamlError> {
    let key = state.keys.current();
    let (now, issuer) = (now_text(state), state.entity_id());
    let (id, target) = (id.to_owned(), message.target.to_owned());
    match binding {
        Out::HttpRedirect => {
            let xml = build(&slo::Header {
                id: &id,
                now: &now,
                destination: &target,
                issuer: &issuer,
                signature: "",
            });
            let url = slo::redirect_url(
                &target,
                message.param.name(),
                &xml,
                message.relay_state,
                &key.private_der,
            )
            .map_err(|e| SamlError::internal(&e))?;
            Ok(found(&url))
        }
        Out::HttpPost => {
            let signed = state
                .xml
                .run(move || {
                    let template = response::signature_template(&id, &key.certificate_der)?;
                    let xml = build(&slo::Header {
                        id: &id,
                        now: &now,
                        destination: &target,
                        issuer: &issuer,
                        signature: &template,
                    });
                    response::sign_message(&xml, &key.private_der)
                })
                .await?
                .map_err(|e| SamlError::internal(&e))?;
            post_form::page(&Outgoing {
                purpose: Purpose::SignOut,
                action: message.target,
                param: message.param,
                xml: &signed,
                relay_state: message.relay_state,
                sp_name: &sp.name,
            })
        }
    }
}

/// A binding we send logout messages by.
#[derive(Clone, Copy, Debug)]
enum Out {
    HttpRedirect,
    HttpPost,
}

/// A single-logout endpoint we can send to, and by which binding.
struct SloEndpoint {
    url: String,
    response_url: Option<String>,
    binding: Out,
}

/// An SP of the chain and the single-logout endpoint to tell it at: its
/// HTTP-Redirect one, else its HTTP-POST one (the bindings we send by;
/// profiles §4.4.3.1 lets the IdP choose among those the SP registered).
/// An SP with neither, or deleted since, is skipped: the logout goes on
/// without it.
async fn slo_endpoint(
    state: &SamlState,
    env: &str,
    sp_id: &str,
) -> Option<(ServiceProviderRow, SloEndpoint)> {
    // Only this environment's IdP speaks for its SPs.
    if env != state.env().id {
        return None;
    }
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
    let by = |binding: Binding, out: Out| {
        sp.slo_endpoints
            .iter()
            .find(|e| e.binding == binding)
            .map(|e| SloEndpoint {
                url: e.url.clone(),
                response_url: e.response_url.clone(),
                binding: out,
            })
    };
    let endpoint = by(Binding::HttpRedirect, Out::HttpRedirect)
        .or_else(|| by(Binding::HttpPost, Out::HttpPost))?;
    Some((sp, endpoint))
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
