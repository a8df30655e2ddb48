//! Single sign-on: SP-initiated (`/saml/sso`, HTTP-Redirect and HTTP-POST
//! bindings) and IdP-initiated (`/saml/sso/init`). After the hosted login,
//! the browser posts a signed `Response` to the SP's registered ACS.

use super::post_form::{self, Outgoing, Param, Purpose};
use super::sender;
use crate::SamlState;
use crate::authn_context::{self, Accepted};
use crate::error::{About, Flow, Refusal, RefuseAs, SamlError, audited};
use crate::request::{self, Incoming, Verified};
use crate::response::{self, AssertionInput, Failure, Signing};
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use samael::schema::AuthnRequest;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::time::Duration;
use trusec_storage::StoreKey;
use trusec_storage::assurance::AuthnContextClass;
use trusec_storage::audit::{Actor, EventType, NewAuditEvent};
use trusec_storage::rate_limit::Family;
use trusec_storage::service_providers::{Binding, NameIdFormat, ServiceProviderRow, UserAttribute};
use trusec_storage::users::UserRow;
use trusec_ui::http::limit_per_ip;
use trusec_ui::step_up::{self, StepUp};
use trusec_ui::{Interaction, LoginSession, pages};

/// How far an `IssueInstant` may be from now.
const FRESHNESS: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
const REPLAY_WINDOW: Duration = Duration::from_secs(15 * 60);

/// What the browser is on its way to receive.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pending {
    sp_id: String,
    environment_id: String,
    request_id: Option<String>,
    acs_url: String,
    relay_state: Option<String>,
    force_authn: bool,
    /// The classes the request's `RequestedAuthnContext` accepts; `None`:
    /// it named none (the session's default class is asserted).
    #[serde(default)]
    accepted: Option<Accepted>,
}

/// What a signed-in browser gets.
enum Next {
    /// An assertion of this class.
    Assert(AuthnContextClass),
    /// The second-factor page first (step-up).
    StepUp,
    /// The account page first: the MFA policy requires a second factor
    /// the user has not added yet.
    Enrol,
    /// A failed Response.
    Fail(Failure),
}

/// `GET /saml/sso`: HTTP-Redirect binding.
pub async fn redirect(req: HttpRequest, state: Data<SamlState>) -> Result<HttpResponse, SamlError> {
    limit_per_ip(state.core(), &req, Family::Saml).await?;
    let incoming = request::from_redirect(req.query_string(), "SAMLRequest");
    audited(&state, &req, handle(&req, &state, incoming).await).await
}

/// `POST /saml/sso`: HTTP-POST binding.
pub async fn post(
    req: HttpRequest,
    state: Data<SamlState>,
    body: Bytes,
) -> Result<HttpResponse, SamlError> {
    limit_per_ip(state.core(), &req, Family::Saml).await?;
    let incoming = post_message(&body);
    audited(&state, &req, handle(&req, &state, incoming).await).await
}

fn post_message(body: &[u8]) -> Result<Incoming, Refusal> {
    if body.len() > request::MAX_ENCODED + 4096 {
        return Err(Refusal::TooLarge);
    }
    let mut message = None;
    let mut relay = None;
    for (k, v) in url::form_urlencoded::parse(body) {
        match k.as_ref() {
            "SAMLRequest" => message = Some(v.into_owned()),
            "RelayState" => relay = Some(v.into_owned()),
            _ => {}
        }
    }
    request::from_post(message.as_deref(), relay.as_deref())
}

/// Picks the ACS: the URL or index the request names (it must be
/// registered), else the SP's default HTTP-POST endpoint.
fn choose_acs(sp: &ServiceProviderRow, authn: &AuthnRequest) -> Result<String, Refusal> {
    let post = || {
        sp.acs_endpoints
            .iter()
            .filter(|e| e.binding == Binding::HttpPost)
    };
    if let Some(url) = &authn.assertion_consumer_service_url {
        return post()
            .find(|e| &e.url == url)
            .map(|e| e.url.clone())
            .ok_or(Refusal::UnregisteredAcs);
    }
    if let Some(index) = authn.assertion_consumer_service_index {
        return post()
            .find(|e| e.index.map(usize::from) == Some(index))
            .map(|e| e.url.clone())
            .ok_or(Refusal::UnregisteredAcs);
    }
    post()
        .find(|e| e.is_default)
        .or_else(|| post().min_by_key(|e| e.index.unwrap_or(u16::MAX)))
        .map(|e| e.url.clone())
        .ok_or(Refusal::UnregisteredAcs)
}

/// The request to act on and whether it was signed: checks its signature
/// (if any; one is required when the SP asked for signed requests) and,
/// for an embedded XML signature, re-reads the request from the signed
/// content alone, which must be the request itself from the SP it was
/// looked up as (no signature wrapping, no borrowed signatures). Runs on
/// the XML pool.
fn signed_request(
    incoming: &Incoming,
    sp: &SpSigning,
    authn: AuthnRequest,
) -> Result<(bool, AuthnRequest), Refusal> {
    match request::verify(incoming, sp.certificate_pem.as_deref())? {
        Verified::Whole => Ok((true, authn)),
        Verified::Content(xml) => {
            let signed = AuthnRequest::from_str(&xml).map_err(|_| Refusal::BadSignature)?;
            if signed.id != authn.id {
                return Err(Refusal::BadSignature);
            }
            let issuer = signed.issuer.as_ref().and_then(|i| i.value.as_deref());
            if issuer != Some(sp.entity_id.as_str()) {
                return Err(Refusal::IssuerMismatch);
            }
            Ok((true, signed))
        }
        Verified::Unsigned if sp.wants_signed => Err(Refusal::Unsigned),
        Verified::Unsigned => Ok((false, authn)),
    }
}

/// What checking an SP's signature needs, owned for the XML pool.
struct SpSigning {
    entity_id: String,
    certificate_pem: Option<String>,
    wants_signed: bool,
}

async fn handle(
    http: &HttpRequest,
    state: &SamlState,
    incoming: Result<Incoming, Refusal>,
) -> Result<HttpResponse, SamlError> {
    // Parse.
    let about = About::sign_in();
    let incoming = incoming.refused(&about)?;
    let xml = incoming.xml.clone();
    let authn = state
        .xml
        .run(move || AuthnRequest::from_str(&xml).map_err(|e| Refusal::Malformed(e.to_string())))
        .await?
        .refused(&about)?;
    let issuer = sender::issuer(&about, authn.issuer.as_ref())?;
    let (sp, about) = sender::registered(state, about, &issuer).await?;
    // Decide.
    let signing = SpSigning {
        entity_id: sp.entity_id.clone(),
        certificate_pem: sp.certificate_pem.clone(),
        wants_signed: sp.want_authn_requests_signed,
    };
    let checked = incoming.clone();
    let (signed, authn) = state
        .xml
        .run(move || signed_request(&checked, &signing, authn))
        .await?
        .refused(&about)?;
    let acs_url = accept(state, &sp, &authn, signed).refused(&about)?;
    let replay_key = StoreKey::saml_request(&sp.id, &authn.id);
    if !state
        .core()
        .store
        .put_if_absent(&replay_key, b"1", REPLAY_WINDOW)
        .await?
    {
        return Err(about.refuse(Refusal::Replayed));
    }
    let accepted = authn_context::accepted(authn.requested_authn_context.as_ref());
    let pending = Pending {
        sp_id: sp.id.clone(),
        environment_id: sp.environment_id.clone(),
        request_id: Some(authn.id.clone()),
        acs_url,
        relay_state: incoming.relay_state,
        force_authn: authn.force_authn.unwrap_or(false),
        accepted: accepted.clone().unwrap_or(None),
    };
    // Respond.
    if accepted.is_err() {
        return fail(state, &sp, &pending, Failure::NoAuthnContext).await;
    }
    answer(http, state, &sp, pending, authn.is_passive.unwrap_or(false)).await
}

/// ACS, age and destination of a (signature-checked) AuthnRequest.
/// Returns the ACS to answer at.
fn accept(
    state: &SamlState,
    sp: &ServiceProviderRow,
    authn: &AuthnRequest,
    signed: bool,
) -> Result<String, Refusal> {
    let acs_url = choose_acs(sp, authn)?;
    if (state.core().clock.now() - authn.issue_instant).abs() > FRESHNESS {
        return Err(Refusal::Stale);
    }
    let sso_url = format!("{}/saml/sso", state.issuer);
    // Bindings §3.4.5.2 / §3.5.5.2: a signed request must name its destination.
    let destination_ok = match &authn.destination {
        Some(d) => d == &sso_url,
        None => !signed,
    };
    if !destination_ok {
        return Err(Refusal::WrongDestination);
    }
    Ok(acs_url)
}

/// Sends the browser on: to the ACS with an assertion when it is signed in
/// (and no fresh login is forced) at the level asked for, to the
/// second-factor page when it is not, with a NoPassive failure when the SP
/// forbade showing a page, else to the login page.
async fn answer(
    http: &HttpRequest,
    state: &SamlState,
    sp: &ServiceProviderRow,
    pending: Pending,
    is_passive: bool,
) -> Result<HttpResponse, SamlError> {
    encryption_current(state, sp)?;
    let login = LoginSession::from_request(http, &state.ui).await?;
    match login {
        Some(login) if !pending.force_authn => {
            match next(state, &pending, &login, is_passive).await? {
                Next::Assert(class) => respond(state, sp, &pending, &login, class).await,
                Next::Fail(failure) => fail(state, sp, &pending, failure).await,
                Next::StepUp => to_hosted(state, sp, pending, Interaction::second_factor_url).await,
                Next::Enrol => to_hosted(state, sp, pending, Interaction::enrol_url).await,
            }
        }
        _ if is_passive => fail(state, sp, &pending, Failure::NoPassive).await,
        _ => to_hosted(state, sp, pending, Interaction::login_url).await,
    }
}

/// What a signed-in session gets for this request: the first accepted
/// class that is true of it; else a step-up when the user has the factor
/// (and may be asked); else `NoAuthnContext` (core §3.3.2.2.1).
async fn next(
    state: &SamlState,
    pending: &Pending,
    login: &LoginSession,
    is_passive: bool,
) -> Result<Next, SamlError> {
    // The environment's MFA policy first, whatever the SP asked for.
    match step_up::policy(&state.ui, login).await? {
        step_up::PolicyStep::Met => {}
        step_up::PolicyStep::Ask | step_up::PolicyStep::Enrol if is_passive => {
            return Ok(Next::Fail(Failure::NoPassive));
        }
        step_up::PolicyStep::Ask => return Ok(Next::StepUp),
        step_up::PolicyStep::Enrol => return Ok(Next::Enrol),
        step_up::PolicyStep::Unreachable => return Ok(Next::Fail(Failure::NoAuthnContext)),
    }
    let methods = &login.session.amr;
    let Some(accepted) = &pending.accepted else {
        return Ok(Next::Assert(AuthnContextClass::default_for(methods)));
    };
    if let Some(class) = accepted.class_for(methods) {
        return Ok(Next::Assert(class));
    }
    Ok(
        match step_up::check(&state.ui, login, accepted.level()).await? {
            StepUp::Ask if is_passive => Next::Fail(Failure::NoPassive),
            StepUp::Ask => Next::StepUp,
            // At the level, yet no accepted class is true of the session (a
            // recovery code is no `TimeSyncToken`), or out of the user's reach.
            StepUp::Met | StepUp::Unreachable => Next::Fail(Failure::NoAuthnContext),
        },
    )
}

/// A signed failed Response (core §3.2.2.2) to the ACS.
async fn fail(
    state: &SamlState,
    sp: &ServiceProviderRow,
    pending: &Pending,
    failure: Failure,
) -> Result<HttpResponse, SamlError> {
    let failed = response::failure(
        &state.entity_id(),
        &pending.acs_url,
        pending.request_id.as_deref(),
        failure,
        state.core().clock.now(),
    );
    post_page(state, sp, pending, failed).await
}

/// Parks the request in an interaction and sends the browser to the
/// hosted page `page` names (the login, or the second factor).
async fn to_hosted(
    state: &SamlState,
    sp: &ServiceProviderRow,
    pending: Pending,
    page: fn(&Interaction) -> String,
) -> Result<HttpResponse, SamlError> {
    let payload = serde_json::to_value(&pending).map_err(|e| SamlError::internal(&e))?;
    let mut interaction =
        Interaction::new(state.env(), "/saml/sso/continue?interaction=", payload)?;
    interaction.client_name = Some(sp.name.clone());
    interaction.force_login = pending.force_authn;
    interaction.save(&state.core().store).await?;
    Ok(found(&page(&interaction)))
}

/// `GET /saml/sso/continue?interaction=…`: back from the login page.
pub async fn resume(http: HttpRequest, state: Data<SamlState>) -> Result<HttpResponse, SamlError> {
    let outcome = resume_sign_in(&http, &state).await;
    audited(&state, &http, outcome).await
}

async fn resume_sign_in(http: &HttpRequest, state: &SamlState) -> Result<HttpResponse, SamlError> {
    let id = url::form_urlencoded::parse(http.query_string().as_bytes())
        .find(|(k, _)| k == "interaction")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let interaction = Interaction::load(&state.core().store, state.env(), &id)
        .await?
        .ok_or_else(|| {
            SamlError::page(
                Flow::SignIn,
                "This sign-in has expired. Start again from the application.",
            )
        })?;
    let pending = serde_json::from_value::<Pending>(interaction.payload.clone())
        .map_err(|_| SamlError::page(Flow::SignIn, "This sign-in request is corrupt."))?;
    let Some(login) = LoginSession::from_request(http, &state.ui).await? else {
        return Ok(to_login_again(&interaction));
    };
    // ForceAuthn: the password must have been typed for this very request.
    if pending.force_authn
        && interaction.logged_in_session.as_deref() != Some(login.session.id.as_str())
    {
        return Ok(to_login_again(&interaction));
    }
    let sp = sender::still_registered(state, Flow::SignIn, &pending.environment_id, &pending.sp_id)
        .await?;
    match next(state, &pending, &login, false).await? {
        // The same interaction brings the browser back here after it.
        Next::StepUp => Ok(found(&interaction.second_factor_url())),
        Next::Enrol => Ok(found(&interaction.enrol_url())),
        Next::Assert(class) => {
            finished(state, &interaction).await;
            respond(state, &sp, &pending, &login, class).await
        }
        Next::Fail(failure) => {
            finished(state, &interaction).await;
            fail(state, &sp, &pending, failure).await
        }
    }
}

/// Drops an interaction that was acted on (it expires by itself anyway).
async fn finished(state: &SamlState, interaction: &Interaction) {
    if let Err(e) = interaction.finish(&state.core().store).await {
        tracing::warn!(error = %trusec_ui::error::ErrorChain(&e), "could not drop a finished SAML sign-in");
    }
}

fn to_login_again(interaction: &Interaction) -> HttpResponse {
    found(&interaction.login_url())
}

fn found(location: &str) -> HttpResponse {
    pages::page_response(StatusCode::FOUND)
        .insert_header((actix_web::http::header::LOCATION, location.to_owned()))
        .finish()
}

/// `GET /saml/sso/init?sp=ENTITY_ID[&RelayState=]`: IdP-initiated SSO.
pub async fn idp_initiated(
    http: HttpRequest,
    state: Data<SamlState>,
) -> Result<HttpResponse, SamlError> {
    limit_per_ip(state.core(), &http, Family::Saml).await?;
    let outcome = idp_initiated_sign_in(&http, &state).await;
    audited(&state, &http, outcome).await
}

async fn idp_initiated_sign_in(
    http: &HttpRequest,
    state: &SamlState,
) -> Result<HttpResponse, SamlError> {
    let mut sp_entity = None;
    let mut relay = None;
    for (k, v) in url::form_urlencoded::parse(http.query_string().as_bytes()) {
        match k.as_ref() {
            "sp" => sp_entity = Some(v.into_owned()),
            "RelayState" => relay = Some(v.into_owned()),
            _ => {}
        }
    }
    let entity = sp_entity
        .ok_or_else(|| SamlError::page(Flow::SignIn, "Name the application: ?sp=ENTITY_ID."))?;
    let (sp, about) = sender::registered(state, About::sign_in(), &entity).await?;
    let acs_url = choose_acs(&sp, &AuthnRequest::default()).refused(&about)?;
    let pending = Pending {
        sp_id: sp.id.clone(),
        environment_id: sp.environment_id.clone(),
        request_id: None,
        acs_url,
        relay_state: crate::request::relay_state(relay).refused(&about)?,
        force_authn: false,
        accepted: None,
    };
    answer(http, state, &sp, pending, false).await
}

/// The user's values of one of our attributes, as this SP sees them.
fn attribute_values(
    state: &SamlState,
    sp: &ServiceProviderRow,
    user: &UserRow,
    attribute: UserAttribute,
) -> Result<Vec<String>, SamlError> {
    Ok(match attribute {
        UserAttribute::SubjectId => vec![state.subject_id(&user.id)?],
        UserAttribute::PairwiseId => vec![state.pairwise_id(&sp.entity_id, &user.id)?],
        UserAttribute::Email => vec![user.email.clone()],
        UserAttribute::Name => user.name.clone().into_iter().collect(),
        UserAttribute::GivenName => user.given_name.clone().into_iter().collect(),
        UserAttribute::FamilyName => user.family_name.clone().into_iter().collect(),
        UserAttribute::Groups => serde_json::from_str(&user.groups).unwrap_or_default(),
    })
}

/// The NameID this SP knows the user by, in its format.
fn name_id(
    state: &SamlState,
    sp: &ServiceProviderRow,
    login: &LoginSession,
) -> Result<String, SamlError> {
    let user = &login.user;
    match sp.name_id_format {
        NameIdFormat::EmailAddress => Ok(user.email.clone()),
        NameIdFormat::Persistent => state.persistent_name_id(&sp.entity_id, &user.id),
        NameIdFormat::Transient => state.transient_name_id(&sp.entity_id, &login.session.id),
        NameIdFormat::Unspecified => Ok(user.id.clone()),
    }
}

/// The response `sp` receives for `login` at `acs_url`, unsigned, with the
/// NameID it names the user by and the session index it holds.
fn assertion_for(
    state: &SamlState,
    sp: &ServiceProviderRow,
    acs_url: &str,
    in_response_to: Option<&str>,
    login: &LoginSession,
    class: AuthnContextClass,
) -> Result<(samael::schema::Response, String, String), SamlError> {
    let user = &login.user;
    let name_id = name_id(state, sp, login)?;
    let mut attributes = Vec::with_capacity(sp.attributes.len());
    for (ours, released) in sp.attributes.iter() {
        let values = attribute_values(state, sp, user, *ours)?;
        if !values.is_empty() {
            attributes.push((released.clone(), values));
        }
    }
    let session_index = state.session_index(&sp.entity_id, &login.session.id)?;
    let input = AssertionInput {
        idp_entity_id: &state.entity_id(),
        sp_entity_id: &sp.entity_id,
        acs_url,
        in_response_to,
        name_id: &name_id,
        name_id_format: sp.name_id_format.urn(),
        session_index: &session_index,
        auth_instant: login.session.authenticated_at().and_utc(),
        authn_context: class.uri(),
        now: state.core().clock.now(),
        attributes,
    };
    Ok((response::success(&input), name_id, session_index))
}

/// Refuses a sign-in to an SP that gets encrypted assertions when its
/// encryption certificate has expired since it was registered: checked
/// before the login page and again before an assertion is made. The
/// refusal names the SP, so its console trace lists it.
fn encryption_current(state: &SamlState, sp: &ServiceProviderRow) -> Result<(), SamlError> {
    let Some(encryption) = response::Encryption::of(sp) else {
        return Ok(());
    };
    match encryption.expired_on(state.core().clock.now()) {
        Ok(None) => Ok(()),
        Ok(Some(date)) => Err(About::sign_in()
            .issuer(&sp.entity_id)
            .sp(sp)
            .refuse(Refusal::EncryptionCertificateExpired(date))),
        Err(message) => Err(SamlError::internal(&std::io::Error::other(message))),
    }
}

async fn respond(
    state: &SamlState,
    sp: &ServiceProviderRow,
    pending: &Pending,
    login: &LoginSession,
    class: AuthnContextClass,
) -> Result<HttpResponse, SamlError> {
    encryption_current(state, sp)?;
    let user = &login.user;
    let (resp, name_id, session_index) = assertion_for(
        state,
        sp,
        &pending.acs_url,
        pending.request_id.as_deref(),
        login,
        class,
    )?;
    let event = NewAuditEvent::new(EventType::SamlAssertionIssued, Some(&sp.environment_id), Actor::user(&user.id))
        .user(&user.id)
        .data(serde_json::json!({"sp_id": sp.id, "sp_entity_id": sp.entity_id, "name_id": name_id, "in_response_to": pending.request_id}));
    state.core().audit(event).await?;
    let participant = crate::slo::Participant {
        sp_id: sp.id.clone(),
        environment_id: sp.environment_id.clone(),
        name_id: name_id.clone(),
        name_id_format: sp.name_id_format.urn().to_owned(),
        session_index,
    };
    crate::slo::joined(state, &login.session.id, participant).await?;
    post_page(state, sp, pending, resp).await
}

/// Signs the response (encrypting the assertion for an SP that has that
/// on) and renders the auto-submitting form to the ACS.
async fn post_page(
    state: &SamlState,
    sp: &ServiceProviderRow,
    pending: &Pending,
    resp: impl Into<response::Outgoing>,
) -> Result<HttpResponse, SamlError> {
    let signed = signed(state, sp, resp, Sealing::AsSent).await?;
    post_form::page(&Outgoing {
        purpose: Purpose::SignIn,
        action: &pending.acs_url,
        param: Param::SamlResponse,
        xml: &signed,
        relay_state: pending.relay_state.as_deref(),
        sp_name: &sp.name,
    })
}

/// The response signed as `sp` asked (on the XML pool), and with
/// `Sealing::AsSent` its assertion encrypted for an SP that has that on.
async fn signed(
    state: &SamlState,
    sp: &ServiceProviderRow,
    resp: impl Into<response::Outgoing>,
    sealing: Sealing,
) -> Result<String, SamlError> {
    let resp = resp.into();
    let signing = Signing {
        response: sp.sign_response,
        assertion: sp.sign_assertion,
    };
    let encryption = match sealing {
        Sealing::AsSent => response::Encryption::of(sp),
        Sealing::Readable => None,
    };
    // One key for both: a rotation between two reads must not mix them.
    let key = state.keys.current();
    state
        .xml
        .run(move || {
            response::sign(
                resp,
                signing,
                encryption.as_ref(),
                &key.certificate_der,
                &key.private_der,
            )
        })
        .await?
        .map_err(|e| SamlError::internal(&e))
}

/// Whether [`signed`] encrypts the assertion as the SP asked.
#[derive(Clone, Copy)]
enum Sealing {
    /// As it goes to the SP.
    AsSent,
    /// Signed only, for the administrator to read (the console's test).
    Readable,
}

/// What an IdP-initiated sign-in of `user` to `sp` would send: the
/// administrator's "test the SSO" (the console). Built and signed by the
/// same code as a real sign-in, for a session that does not exist (a fresh
/// random id, a password sign-in now), then checked as the SP would check
/// it: every signature in it verified against this IdP's certificate.
/// Nothing is stored, no session joins single logout, nothing is sent.
pub async fn test_assertion(
    state: &SamlState,
    sp: &ServiceProviderRow,
    user: trusec_storage::users::UserRow,
) -> Result<TestAssertion, SamlError> {
    let acs_url = choose_acs(sp, &AuthnRequest::default()).map_err(|_| {
        SamlError::page(
            Flow::SignIn,
            "This service provider has no HTTP-POST assertion consumer service.",
        )
    })?;
    let now = state.core().clock.now().naive_utc();
    let session = trusec_storage::sessions::SessionRow {
        id: trusec_storage::ids::new_id("test"),
        environment_id: sp.environment_id.clone(),
        user_id: user.id.clone(),
        token_hash: String::new(),
        metadata: "{}".into(),
        created_at: now,
        expires_at: now,
        revoked_at: None,
        amr: trusec_storage::sql_types::Json(vec![trusec_storage::sessions::AuthMethod::Pwd]),
        authenticated_at: None,
    };
    let login = LoginSession { session, user };
    let class = AuthnContextClass::default_for(&login.session.amr);
    let (resp, name_id, _) = assertion_for(state, sp, &acs_url, None, &login, class)?;
    let attributes = resp
        .assertion
        .iter()
        .flat_map(|a| a.attribute_statements.iter().flatten())
        .flat_map(|s| s.attributes.iter())
        .map(|a| TestAttribute {
            name: a.name.clone().unwrap_or_default(),
            name_format: a.name_format.clone().unwrap_or_default(),
            values: a.values.iter().filter_map(|v| v.value.clone()).collect(),
        })
        .collect();
    // Shown before encryption: the administrator reads what the SP will
    // find once it decrypts.
    let xml = signed(state, sp, resp, Sealing::Readable).await?;
    let certificate = state.keys.current().certificate_pem.clone();
    let (checked, signature) = (xml.clone(), sp.sign_response || sp.sign_assertion);
    let verified = match signature {
        true => Some(
            state
                .xml
                .run(move || crate::request::signed_content(&checked, &certificate).is_ok())
                .await?,
        ),
        false => None,
    };
    Ok(TestAssertion {
        encrypted: response::Encryption::of(sp).is_some(),
        acs_url,
        name_id,
        name_id_format: sp.name_id_format.urn(),
        attributes,
        verified,
        xml,
    })
}

/// [`test_assertion`]'s answer.
pub struct TestAssertion {
    /// Where it would be posted.
    pub acs_url: String,
    pub name_id: String,
    pub name_id_format: &'static str,
    /// As the assertion carries them.
    pub attributes: Vec<TestAttribute>,
    /// Whether its signatures verified against this IdP's certificate;
    /// `None` when the SP asked for nothing to be signed.
    pub verified: Option<bool>,
    /// The signed `samlp:Response` as it would be posted, but with the
    /// assertion in the clear.
    pub xml: String,
    /// Whether the assertion is sent encrypted for the SP's certificate.
    pub encrypted: bool,
}

/// One `saml:Attribute` of a [`TestAssertion`].
pub struct TestAttribute {
    pub name: String,
    pub name_format: String,
    pub values: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{another_session, register_sp, sign_in, state};
    use trusec_testdb::TestDb;

    #[tokio::test]
    async fn each_name_id_format_names_the_user_its_own_way() {
        let test_db = TestDb::sqlite();
        let state = state(&test_db).await;
        let login = sign_in(&state, "ada@example.com").await;
        let later = another_session(&state, &login.user).await;
        for format in NameIdFormat::ALL {
            let sp = register_sp(&state, &format!("https://{format}.test"), Some(*format)).await;
            let other = register_sp(
                &state,
                &format!("https://other-{format}.test"),
                Some(*format),
            )
            .await;
            let id = name_id(&state, &sp, &login).unwrap();
            let next_session = name_id(&state, &sp, &later).unwrap();
            let other_sp = name_id(&state, &other, &login).unwrap();
            match format {
                NameIdFormat::EmailAddress => assert_eq!(id, "ada@example.com"),
                NameIdFormat::Unspecified => assert_eq!(id, login.user.id),
                NameIdFormat::Persistent => {
                    assert_eq!(id, next_session, "stable across sessions");
                    assert_ne!(id, other_sp, "different for every SP");
                    assert!(!id.contains("ada") && id != login.user.id);
                }
                NameIdFormat::Transient => {
                    assert_ne!(id, next_session, "new in every session");
                    assert_ne!(id, other_sp, "different for every SP");
                    assert_eq!(
                        id,
                        name_id(&state, &sp, &login).unwrap(),
                        "stable within the session"
                    );
                    assert_ne!(
                        id,
                        state
                            .persistent_name_id(&sp.entity_id, &login.user.id)
                            .unwrap()
                    );
                }
            }
        }
    }
}
