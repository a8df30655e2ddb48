//! Sign-in with a passkey from `/login`: by its button, or from the e-mail
//! field (conditional mediation, `autocomplete="username webauthn"`;
//! WebAuthn Level 3 §5.1.4). The credential is discoverable: the
//! authenticator names the account (its user handle and credential id), so
//! nothing is typed, and an account without a password signs in this way.
//!
//! `POST /login/passkey/options` starts a ceremony (anonymous, so limited
//! per address like `/oauth/authorize`, and refused by a full store);
//! `POST /login/passkey` is the form the page's script submits with the
//! authenticator's answer. A refused answer counts against the address's
//! sign-in budget (`Family::Login`, failures only) and is audited as
//! `user.login.failed`; the session's `amr` is `hwk` or `swk`.

use crate::UiState;
use crate::cookies;
use crate::error::{PageError, set_retry_after};
use crate::http::client_info;
use crate::pages::LoginPage;
use crate::passkey;
use crate::routes::login::{self, Attempt};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use trusec_storage::audit::{Actor, EventType};
use trusec_storage::passkeys::{self, PasskeyRow};
use trusec_storage::rate_limit::{Family, Subject};
use trusec_storage::users::{self, UserRow};
use trusec_storage::{StorageError, StoreKey};
use webauthn_rs::prelude::{DiscoverableAuthentication, PublicKeyCredential};

/// A sign-in ceremony waiting for the authenticator.
#[derive(Serialize, Deserialize)]
struct Ceremony {
    environment_id: String,
    /// The interaction it continues (empty: a sign-in of our own).
    interaction: String,
    state: DiscoverableAuthentication,
}

#[derive(Debug, Deserialize)]
pub struct OptionsForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    interaction: String,
}

#[derive(Debug, Deserialize)]
pub struct PasskeyForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    interaction: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    credential: String,
}

/// Why an answer was refused (audited as the reason).
#[derive(Clone, Copy, Debug)]
enum Refused {
    Expired,
    Malformed,
    UnknownCredential,
    Verification,
}

impl Refused {
    fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Malformed => "malformed",
            Self::UnknownCredential => "unknown_credential",
            Self::Verification => "verification_failed",
        }
    }
}

/// `POST /login/passkey/options`: a discoverable challenge.
pub async fn options(
    req: HttpRequest,
    state: web::Data<UiState>,
    form: web::Form<OptionsForm>,
) -> Result<HttpResponse, PageError> {
    if !cookies::csrf_ok(&req, state.secure_cookies, &form.csrf_token) {
        return Err(PageError::page_expired());
    }
    let interaction = login::interaction(&state, &form.interaction).await?;
    let rp = passkey::relying_party(&state)?;
    state
        .core
        .limit_ip(Family::Authorize, &client_info(&req))
        .await
        .map_err(PageError::RateLimited)?;
    let (options, ceremony) = rp
        .start_discoverable_authentication()
        .map_err(|e| PageError::internal(&e))?;
    let (token, key) = passkey::new_token(StoreKey::passkey_sign_in)?;
    let ceremony = Ceremony {
        environment_id: state.env.id.clone(),
        interaction: interaction.map(|i| i.id).unwrap_or_default(),
        state: ceremony,
    };
    passkey::park(&state, &key, &ceremony).await?;
    Ok(passkey::options(&token, &options))
}

/// `POST /login/passkey`: the authenticator's answer.
pub async fn post(
    req: HttpRequest,
    state: web::Data<UiState>,
    form: web::Form<PasskeyForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let mut attempt = Attempt {
        interaction: login::interaction(&state, &form.interaction).await?,
        environment: state.env.id.clone(),
        email: String::new(),
        client: client_info(&req),
    };
    if !cookies::csrf_ok(&req, state.secure_cookies, &form.csrf_token) {
        let page = page(&attempt, "Your session expired. Please try again.");
        return Ok(login::form_page(&req, &state, StatusCode::FORBIDDEN, page));
    }
    let rp = passkey::relying_party(&state)?;
    let budgets = [Subject::Ip(attempt.client.ip.as_deref())];
    let refusal = || attempt.event(EventType::RateLimitExceeded, Actor::anonymous());
    if let Err(limited) = state.core.reserve(Family::Login, &budgets, refusal).await {
        let page = page(&attempt, &login::too_many_message(&limited));
        let mut resp = login::form_page(&req, &state, StatusCode::TOO_MANY_REQUESTS, page);
        set_retry_after(&mut resp, &limited);
        return Ok(resp);
    }
    let ceremony: Option<Ceremony> = passkey::take(
        &state,
        passkey::key_of(&form.token, StoreKey::passkey_sign_in),
    )
    .await?;
    let ceremony =
        ceremony.filter(|c| c.environment_id == state.env.id && c.interaction == form.interaction);
    let verified = match ceremony {
        None => Err((Refused::Expired, None)),
        Some(c) => verify(&state, &rp, c, &form.credential).await?,
    };
    match verified {
        Ok((user, method)) => {
            state.core.refund(Family::Login, &budgets).await;
            attempt.email = users::normalize_email(&user.email);
            login::signed_in(&state, attempt, &user, vec![method]).await
        }
        Err((reason, user)) => {
            failed(&state, &attempt, reason, user.as_ref()).await?;
            let message = match reason {
                Refused::Expired => "That passkey sign-in expired. Please try again.",
                Refused::Malformed | Refused::UnknownCredential | Refused::Verification => {
                    "That passkey was not accepted. Try again, or sign in with your password."
                }
            };
            let status = match reason {
                Refused::Expired | Refused::Malformed => StatusCode::BAD_REQUEST,
                Refused::UnknownCredential | Refused::Verification => StatusCode::UNAUTHORIZED,
            };
            Ok(login::form_page(
                &req,
                &state,
                status,
                page(&attempt, message),
            ))
        }
    }
}

type Verified = Result<(UserRow, trusec_storage::sessions::AuthMethod), (Refused, Option<UserRow>)>;

/// The answer against the passkey it names: the credential must be
/// registered in this environment, to the user its handle names, and the
/// assertion must verify for this ceremony's challenge and our origin.
async fn verify(
    state: &UiState,
    rp: &webauthn_rs::Webauthn,
    ceremony: Ceremony,
    credential: &str,
) -> Result<Verified, PageError> {
    let Some(credential) = passkey::assertion(credential) else {
        return Ok(Err((Refused::Malformed, None)));
    };
    let Ok((handle, credential_id)) = rp.identify_discoverable_authentication(&credential) else {
        return Ok(Err((Refused::Malformed, None)));
    };
    let Some((row, user)) = owner(state, credential_id.to_vec()).await? else {
        return Ok(Err((Refused::UnknownCredential, None)));
    };
    if passkeys::user_handle(&user.id) != handle {
        return Ok(Err((Refused::UnknownCredential, Some(user))));
    }
    let result = finish(rp, &credential, ceremony, &row);
    let Ok(result) = result else {
        return Ok(Err((Refused::Verification, Some(user))));
    };
    let method = passkey::method(&result);
    passkey::used(state, row, &result).await?;
    Ok(Ok((user, method)))
}

fn finish(
    rp: &webauthn_rs::Webauthn,
    credential: &PublicKeyCredential,
    ceremony: Ceremony,
    row: &PasskeyRow,
) -> Result<webauthn_rs::prelude::AuthenticationResult, webauthn_rs::prelude::WebauthnError> {
    rp.finish_discoverable_authentication_v2(credential, ceremony.state, &row.passkey.0)
}

/// The passkey with this credential id in this environment, and its user.
async fn owner(
    state: &UiState,
    credential_id: Vec<u8>,
) -> Result<Option<(PasskeyRow, UserRow)>, PageError> {
    let env = state.env.id.clone();
    let found = state
        .core
        .db
        .run(move |conn| {
            let Some(row) = passkeys::find_by_credential(conn, &env, &credential_id)? else {
                return Ok(None);
            };
            let user = users::get(conn, &env, &row.user_id)?;
            Ok(Some((row, user)))
        })
        .await;
    match found {
        Ok(found) => Ok(found),
        Err(StorageError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn failed(
    state: &UiState,
    attempt: &Attempt,
    reason: Refused,
    user: Option<&UserRow>,
) -> Result<(), PageError> {
    let mut event = attempt
        .event(EventType::UserLoginFailed, Actor::anonymous())
        .failed()
        .data(serde_json::json!({
            "client_id": attempt.client_id(),
            "method": "passkey",
            "reason": reason.as_str(),
        }));
    if let Some(u) = user {
        event = event.user(&u.id);
    }
    Ok(state.core.audit(event).await?)
}

fn page(attempt: &Attempt, error: &str) -> LoginPage {
    LoginPage {
        client_name: attempt.client_name(),
        email: String::new(),
        error: Some(error.to_owned()),
        csrf: String::new(),
        interaction: attempt
            .interaction
            .as_ref()
            .map(|i| i.id.clone())
            .unwrap_or_default(),
        passkeys: true,
    }
}
