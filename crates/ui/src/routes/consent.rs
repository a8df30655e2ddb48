//! `GET/POST /consent`: the scopes an app asks for, in plain words, with
//! Allow and Deny. The decision goes back to the protocol through the
//! interaction; remembering it is the protocol's job.

use crate::UiState;
use crate::cookies;
use crate::error::PageError;
use crate::interaction::Interaction;
use crate::login_session::LoginSession;
use crate::pages::{self, ConsentPage, ScopeLine, describe_scope};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct ConsentQuery {
    #[serde(default)]
    interaction: String,
}

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    interaction: String,
    #[serde(default)]
    decision: String,
}

/// The interaction and the signed-in user it belongs to; without a login
/// session, the response that sends the browser to sign in.
async fn load(
    req: &HttpRequest,
    state: &UiState,
    id: &str,
) -> Result<Result<(Interaction, LoginSession), HttpResponse>, PageError> {
    let interaction = Interaction::load(&state.core.store, &state.env, id)
        .await?
        .ok_or_else(PageError::expired)?;
    Ok(match LoginSession::from_request(req, state).await? {
        Some(login) => Ok((interaction, login)),
        None => Err(pages::see_other(&interaction.login_url(), Vec::new())),
    })
}

pub async fn get(
    req: HttpRequest,
    state: web::Data<UiState>,
    query: web::Query<ConsentQuery>,
) -> Result<HttpResponse, PageError> {
    let (interaction, login) = match load(&req, &state, &query.interaction).await? {
        Ok(x) => x,
        Err(sign_in) => return Ok(sign_in),
    };
    let (csrf, cookie) = cookies::csrf(&req, state.secure_cookies);
    let page = ConsentPage {
        client_host: interaction.client_host.clone(),
        client_name: interaction
            .client_name
            .clone()
            .unwrap_or_else(|| "An application".into()),
        scopes: interaction
            .scopes
            .iter()
            .map(|s| ScopeLine {
                name: s.clone(),
                description: interaction
                    .scope_descriptions
                    .get(s)
                    .cloned()
                    .unwrap_or_else(|| describe_scope(s)),
            })
            .collect(),
        user_email: login.user.email.clone(),
        csrf,
        interaction: interaction.id.clone(),
    };
    Ok(pages::render(
        &page,
        StatusCode::OK,
        cookie.into_iter().collect(),
    ))
}

pub async fn post(
    req: HttpRequest,
    state: web::Data<UiState>,
    form: web::Form<ConsentForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    if !cookies::csrf_ok(&req, state.secure_cookies, &form.csrf_token) {
        return Err(PageError::refused(
            StatusCode::FORBIDDEN,
            "This page expired",
            "Go back to the app and start again.",
        ));
    }
    let (mut interaction, login) = match load(&req, &state, &form.interaction).await? {
        Ok(x) => x,
        Err(sign_in) => return Ok(sign_in),
    };
    interaction.consent = match form.decision.as_str() {
        "approve" => Some(true),
        "deny" => Some(false),
        _ => {
            return Err(PageError::refused(
                StatusCode::BAD_REQUEST,
                "Please choose",
                "Choose Allow or Deny.",
            ));
        }
    };
    interaction.consent_session = Some(login.session.id.clone());
    interaction.save(&state.core.store).await?;
    Ok(pages::see_other(&interaction.return_to, Vec::new()))
}
