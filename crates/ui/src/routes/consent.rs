//! `GET/POST /consent`: the scopes an app asks for, in plain words, with
//! Allow and Deny. The decision goes back to the protocol through the
//! interaction; remembering it is the protocol's job.

use crate::UiState;
use crate::cookies;
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

fn expired() -> HttpResponse {
    pages::message(
        StatusCode::BAD_REQUEST,
        "This request has expired",
        "Go back to the app and start again.",
    )
}

fn unavailable(e: &dyn std::error::Error) -> HttpResponse {
    tracing::error!(error = %e, "consent page storage failure");
    pages::message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Something went wrong",
        "Please try again in a moment.",
    )
}

/// The interaction and the signed-in user it belongs to, or the response to
/// send instead.
async fn load(
    req: &HttpRequest,
    state: &UiState,
    id: &str,
) -> Result<(Interaction, LoginSession), HttpResponse> {
    let interaction = match Interaction::load(&state.store, id).await {
        Ok(Some(i)) => i,
        Ok(None) => return Err(expired()),
        Err(e) => return Err(unavailable(&e)),
    };
    match LoginSession::from_request(req, state, &interaction.environment_id).await {
        Ok(Some(login)) => Ok((interaction, login)),
        Ok(None) => Err(pages::see_other(&interaction.login_url(), Vec::new())),
        Err(e) => Err(unavailable(&e)),
    }
}

pub async fn get(
    req: HttpRequest,
    state: web::Data<UiState>,
    query: web::Query<ConsentQuery>,
) -> HttpResponse {
    let (interaction, login) = match load(&req, &state, &query.interaction).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let (csrf, cookie) = cookies::csrf(&req, state.secure_cookies);
    let page = ConsentPage {
        client_name: interaction
            .client_name
            .clone()
            .unwrap_or_else(|| "An application".into()),
        scopes: interaction
            .scopes
            .iter()
            .map(|s| ScopeLine {
                name: s.clone(),
                description: describe_scope(s),
            })
            .collect(),
        user_email: login.user.email.clone(),
        csrf,
        interaction: interaction.id.clone(),
    };
    pages::render(&page, StatusCode::OK, cookie.into_iter().collect())
}

pub async fn post(
    req: HttpRequest,
    state: web::Data<UiState>,
    form: web::Form<ConsentForm>,
) -> HttpResponse {
    let form = form.into_inner();
    if !cookies::csrf_ok(&req, &form.csrf_token) {
        return pages::message(
            StatusCode::FORBIDDEN,
            "This page expired",
            "Go back to the app and start again.",
        );
    }
    let (mut interaction, login) = match load(&req, &state, &form.interaction).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    interaction.consent = match form.decision.as_str() {
        "approve" => Some(true),
        "deny" => Some(false),
        _ => {
            return pages::message(
                StatusCode::BAD_REQUEST,
                "Please choose",
                "Choose Allow or Deny.",
            );
        }
    };
    interaction.consent_session = Some(login.session.id.clone());
    if let Err(e) = interaction.save(&state.store).await {
        return unavailable(&e);
    }
    pages::see_other(&interaction.return_to, Vec::new())
}
