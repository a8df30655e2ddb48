//! What a valid authorization request needs next: a sign-in (OIDC Core
//! §3.1.2.3), consent (§3.1.2.4), or its code (RFC 6749 §4.1.2). Each step
//! decides from the request and the browser's session, and the flow
//! answers with a hosted page, an error for the client, or the code.

use super::params::Prompt;
use super::request::{AuthzRequest, Ending};
use super::{back_to_client, redirect_error};
use crate::error::ErrorCode;
use crate::routes::grants::code::{self, CodeGrant};
use crate::{OAuthState, scopes};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use trusec_storage::audit::{Actor, EventType, NewAuditEvent};
use trusec_storage::clients::{ClientRow, RegisteredBy};
use trusec_storage::consents;
use trusec_ui::step_up::{self, StepUp};
use trusec_ui::{Interaction, LoginSession, PageError, pages};

/// Why the request cannot go on as the browser's current user.
enum NotSignedIn {
    /// Send the browser to sign in.
    Ask,
    /// `prompt=none`: the client must hear `login_required`.
    Refused,
}

/// Where the user stands on consent for this request.
enum Consent {
    /// An earlier grant covers the scopes.
    Remembered,
    /// Approved during this interaction: remember it, then go on.
    Approved,
    Denied,
    /// Send the browser to the consent page.
    Ask,
    /// `prompt=none`: the client must hear `consent_required`.
    Refused,
}

/// The hosted page to send the browser to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hosted {
    Login,
    /// Step-up: the missing factor only.
    SecondFactor,
    /// The MFA policy requires a factor the user has not added yet.
    Enrol,
    Consent,
}

/// Takes a validated request as far as it can go now.
///
/// # Errors
/// A page when storage fails.
pub async fn proceed(
    http: &HttpRequest,
    state: &OAuthState,
    client: &ClientRow,
    req: AuthzRequest,
    interaction: Option<Interaction>,
) -> Result<HttpResponse, PageError> {
    let login = LoginSession::from_request(http, &state.ui).await?;
    let login = match signed_in(&req, login, interaction.as_ref(), state.now_secs()) {
        Ok(login) => login,
        Err(NotSignedIn::Ask) => {
            return to_hosted_page(state, client, &req, interaction, Hosted::Login).await;
        }
        Err(NotSignedIn::Refused) => {
            let why = "the user is not signed in";
            return refuse(state, &req, ErrorCode::LoginRequired, why).await;
        }
    };
    if let Some(page) = assure(state, client, &req, &login, interaction.as_ref()).await? {
        return Ok(page);
    }
    if !may_grant(&req, &login) {
        let why = "only administrators can grant management scopes";
        return refuse(state, &req, ErrorCode::AccessDenied, why).await;
    }
    match consent(state, client, &req, &login, interaction.as_ref()).await? {
        Consent::Remembered => {}
        Consent::Approved => remember_consent(state, client, &req, &login).await?,
        Consent::Denied => {
            finish(state, interaction.as_ref()).await;
            let why = "the user denied the request";
            return refuse(state, &req, ErrorCode::AccessDenied, why).await;
        }
        Consent::Ask => {
            return to_hosted_page(state, client, &req, interaction, Hosted::Consent).await;
        }
        Consent::Refused => {
            let why = "the user has not consented";
            return refuse(state, &req, ErrorCode::ConsentRequired, why).await;
        }
    }
    match &req.ending {
        Ending::Redirect => issue_code(state, client, &req, &login, interaction.as_ref()).await,
        Ending::Device { user_code_hash } => {
            let page = crate::routes::device::approved(state, user_code_hash, &login).await;
            finish(state, interaction.as_ref()).await;
            page
        }
    }
}

/// Step-up: `None` when the session may go on at its level — it meets the
/// requested `acr`, or it does not and the request was voluntary (OIDC
/// Core §3.1.2.1: the tokens then say the level reached); else the
/// response: the second-factor page, or an essential request's failure —
/// `unmet_authentication_requirements` when the user has no second factor
/// (OIDC Core Unmet Authentication Requirements 1.0), `interaction_required`
/// under `prompt=none` (§3.1.2.6).
async fn assure(
    state: &OAuthState,
    client: &ClientRow,
    req: &AuthzRequest,
    login: &LoginSession,
    interaction: Option<&Interaction>,
) -> Result<Option<HttpResponse>, PageError> {
    if let Some(page) = by_policy(state, client, req, login, interaction).await? {
        return Ok(Some(page));
    }
    let acr = &req.acr;
    if acr.essential && acr.none_known {
        let why = "none of the requested acr values is supported";
        return refuse(state, req, ErrorCode::UnmetAuthenticationRequirements, why)
            .await
            .map(Some);
    }
    let passive = req.prompt.contains(&Prompt::None);
    match step_up::check(&state.ui, login, acr.target()).await? {
        StepUp::Met => Ok(None),
        StepUp::Ask if !passive => {
            let page = to_hosted_page(
                state,
                client,
                req,
                interaction.cloned(),
                Hosted::SecondFactor,
            );
            page.await.map(Some)
        }
        StepUp::Ask | StepUp::Unreachable if !acr.essential => Ok(None),
        StepUp::Ask => {
            let why = "a second factor is needed and prompt=none forbids asking";
            refuse(state, req, ErrorCode::InteractionRequired, why)
                .await
                .map(Some)
        }
        StepUp::Unreachable => {
            let why = "the user has no second factor to reach the requested acr";
            refuse(state, req, ErrorCode::UnmetAuthenticationRequirements, why)
                .await
                .map(Some)
        }
    }
}

/// The environment's MFA policy, before what the request asks for: a user
/// it requires a second factor of gives it (the step-up page), or adds one
/// first (the account page, then back here); under `prompt=none`, or for
/// a passkey-only session (the missing factor is the password), the
/// request fails as an essential `acr` would.
async fn by_policy(
    state: &OAuthState,
    client: &ClientRow,
    req: &AuthzRequest,
    login: &LoginSession,
    interaction: Option<&Interaction>,
) -> Result<Option<HttpResponse>, PageError> {
    let passive = req.prompt.contains(&Prompt::None);
    let hosted = match step_up::policy(&state.ui, login).await? {
        step_up::PolicyStep::Met => return Ok(None),
        step_up::PolicyStep::Ask if !passive => Hosted::SecondFactor,
        step_up::PolicyStep::Enrol if !passive => Hosted::Enrol,
        step_up::PolicyStep::Ask | step_up::PolicyStep::Enrol => {
            let why = "the MFA policy requires a second factor and prompt=none forbids asking";
            return refuse(state, req, ErrorCode::InteractionRequired, why)
                .await
                .map(Some);
        }
        step_up::PolicyStep::Unreachable => {
            let why = "the MFA policy requires the password and a second factor: sign in again";
            return refuse(state, req, ErrorCode::UnmetAuthenticationRequirements, why)
                .await
                .map(Some);
        }
    };
    to_hosted_page(state, client, req, interaction.cloned(), hosted)
        .await
        .map(Some)
}

/// The request cannot go on: the client hears why at its redirect URI, or
/// (device flow) the grant is denied and the user sees a page.
async fn refuse(
    state: &OAuthState,
    req: &AuthzRequest,
    code: ErrorCode,
    why: &str,
) -> Result<HttpResponse, PageError> {
    match &req.ending {
        Ending::Redirect => redirect_error(state, req, code, why),
        Ending::Device { user_code_hash } => {
            crate::routes::device::refused(state, user_code_hash, code, why).await
        }
    }
}

/// The browser's login session, if it satisfies the request: a sign-in
/// made during this interaction satisfies `prompt=login` and `max_age`.
fn signed_in(
    req: &AuthzRequest,
    login: Option<LoginSession>,
    interaction: Option<&Interaction>,
    now: i64,
) -> Result<LoginSession, NotSignedIn> {
    let refused = || {
        if req.prompt.contains(&Prompt::None) {
            NotSignedIn::Refused
        } else {
            NotSignedIn::Ask
        }
    };
    let login = login.ok_or_else(refused)?;
    let fresh = interaction
        .is_some_and(|i| i.logged_in_session.as_deref() == Some(login.session.id.as_str()));
    let too_old = req.max_age.is_some_and(|max| now - login.auth_time() > max);
    if !fresh && (req.prompt.contains(&Prompt::Login) || too_old) {
        return Err(refused());
    }
    Ok(login)
}

/// Management scopes act as an administrator: only administrators may hand
/// them to an app.
fn may_grant(req: &AuthzRequest, login: &LoginSession) -> bool {
    !req.scope.iter().any(scopes::is_management)
        || serde_json::from_str::<Vec<String>>(&login.user.groups)
            .is_ok_and(|g| g.iter().any(|g| g == scopes::ADMIN_GROUP))
}

async fn consent(
    state: &OAuthState,
    client: &ClientRow,
    req: &AuthzRequest,
    login: &LoginSession,
    interaction: Option<&Interaction>,
) -> Result<Consent, PageError> {
    // A decision counts only for the session that made it.
    let decision = interaction
        .filter(|i| i.consent_session.as_deref() == Some(login.session.id.as_str()))
        .and_then(|i| i.consent);
    match decision {
        Some(true) => return Ok(Consent::Approved),
        Some(false) => return Ok(Consent::Denied),
        None => {}
    }
    // TruSec's own console is part of this server, not a third party the
    // user lends their account to: no consent page (as Keycloak's
    // first-party clients), unless the request itself asks for one.
    if crate::client_metadata::is_first_party(client) && !req.prompt.contains(&Prompt::Consent) {
        return Ok(Consent::Remembered);
    }
    // A metadata document's client is never stored, so nor is a consent
    // to it: asked every time (crate::client_document).
    if client.registered_by == RegisteredBy::MetadataDocument {
        return Ok(if req.prompt.contains(&Prompt::None) {
            Consent::Refused
        } else {
            Consent::Ask
        });
    }
    let (uid, cid) = (login.user.id.clone(), client.id.clone());
    let remembered = state
        .core()
        .db
        .run(move |c| consents::find(c, &uid, &cid))
        .await?
        .unwrap_or_default();
    // OIDC Core §11: offline access needs `prompt=consent` "unless other
    // conditions for processing the request permitting offline access ...
    // are in place", and the OP must always obtain consent for it. Here
    // that condition is a consent this user already gave this client for
    // `offline_access` (remembered like every other scope); without one the
    // page is shown whatever `prompt` says, and `prompt=none` is refused.
    let covered = req.scope.iter().all(|s| remembered.iter().any(|r| r == s));
    Ok(if covered && !req.prompt.contains(&Prompt::Consent) {
        Consent::Remembered
    } else if req.prompt.contains(&Prompt::None) {
        Consent::Refused
    } else {
        Consent::Ask
    })
}

/// Stores the user's approval (so the next request skips the page) and
/// audits it.
async fn remember_consent(
    state: &OAuthState,
    client: &ClientRow,
    req: &AuthzRequest,
    login: &LoginSession,
) -> Result<(), PageError> {
    let env = client.environment_id.clone();
    let (uid, cid, scope) = (login.user.id.clone(), client.id.clone(), req.scope.clone());
    let now = state.core().clock.now_naive();
    if client.registered_by != RegisteredBy::MetadataDocument {
        state
            .core()
            .db
            .run(move |c| consents::grant(c, &env, &uid, &cid, scope.as_slice(), now))
            .await?;
    }
    let event = NewAuditEvent::new(
        EventType::OAuthConsentGranted,
        Some(&client.environment_id),
        Actor::user(&login.user.id),
    )
    .user(&login.user.id)
    .data(serde_json::json!({"client_id": client.id, "scope": req.scope}));
    Ok(state.core().audit(event).await?)
}

/// Stores the grant and sends its code back to the client (§4.1.2).
async fn issue_code(
    state: &OAuthState,
    client: &ClientRow,
    req: &AuthzRequest,
    login: &LoginSession,
    interaction: Option<&Interaction>,
) -> Result<HttpResponse, PageError> {
    let grant = CodeGrant {
        client_id: client.id.clone(),
        environment_id: client.environment_id.clone(),
        user_id: login.user.id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        redirect_uri_sent: req.redirect_uri_sent,
        scope: req.scope.clone(),
        nonce: req.nonce.clone(),
        pkce: req.pkce.clone(),
        auth_time: login.auth_time(),
        session_id: Some(login.session.id.clone()),
        resources: req.resources.clone(),
        amr: amr_of(login),
        acr: req.acr.met_by(login.session.assurance()).map(str::to_owned),
        dpop_jkt: req.dpop_jkt.clone(),
    };
    let code = code::store(state, &grant).await?;
    finish(state, interaction).await;
    back_to_client(state, req, &[("code", &code)])
}

/// How the user signed in (RFC 8176 values), as a grant records it.
pub(crate) fn amr_of(login: &LoginSession) -> Vec<String> {
    login
        .session
        .amr_values()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// Ends an interaction whose outcome was acted on. Failing that costs
/// little (it expires by itself, and its decision counts only for the
/// session that made it), so it is logged, not reported.
async fn finish(state: &OAuthState, interaction: Option<&Interaction>) {
    if let Some(i) = interaction
        && let Err(e) = i.finish(&state.core().store).await
    {
        tracing::warn!(error = %e, "could not end an interaction");
    }
}

/// Hands the browser to `/login` or `/consent` with an interaction that
/// brings it back here.
async fn to_hosted_page(
    state: &OAuthState,
    client: &ClientRow,
    req: &AuthzRequest,
    interaction: Option<Interaction>,
    page: Hosted,
) -> Result<HttpResponse, PageError> {
    let mut i = match interaction {
        Some(i) => i,
        None => Interaction::new(
            &state.ui.env,
            "/oauth/authorize/continue?interaction=",
            serde_json::to_value(req).map_err(|e| PageError::internal(&e))?,
        )?,
    };
    i.client_id = Some(client.id.clone());
    i.client_name = Some(client.name.clone());
    // The draft's §6.5: beside the name a document chose, where it is from.
    i.client_host = match client.registered_by {
        RegisteredBy::MetadataDocument => crate::client_document::host_of(&client.id),
        RegisteredBy::ManagementApi
        | RegisteredBy::ApiKey
        | RegisteredBy::Anonymous
        | RegisteredBy::Console => None,
    };
    i.scopes = req.scope.as_slice().to_vec();
    i.scope_descriptions.clone_from(&req.scope_descriptions);
    i.login_hint.clone_from(&req.login_hint);
    i.force_login = page == Hosted::Login;
    i.consent = None;
    i.consent_session = None;
    i.save(&state.core().store).await?;
    let target = match page {
        Hosted::Login => i.login_url(),
        Hosted::SecondFactor => i.second_factor_url(),
        Hosted::Enrol => i.enrol_url(),
        Hosted::Consent => i.consent_url(),
    };
    Ok(pages::page_response(StatusCode::FOUND)
        .insert_header((actix_web::http::header::LOCATION, target))
        .finish())
}
