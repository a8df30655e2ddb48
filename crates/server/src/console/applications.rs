//! The Applications page: the environment's OAuth clients, registering one
//! (field errors shown next to their field), its secret shown once, rotating
//! it, the discovery URL and a configuration snippet. Registering and
//! rotating go through the decide functions of `/v1/oauth/clients`
//! (`api::v1::clients::register`, `rotate_secret`), audited with the
//! administrator as the actor.

use super::is_console;
use super::page::{
    CsrfForm, FieldError, Layout, check_csrf, error_for, field_error, first_page, render,
};
use super::session::{Admin, ConsoleError};
use crate::api::v1::clients::{catalog, register, rotate_secret};
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use trusec_oauth::client_metadata::ClientInput;
use trusec_oauth::resources::Catalog;
use trusec_storage::clients::{self, ClientRow, GrantType};
use trusec_storage::ids::{ClientId, TypedId};

/// The most clients one page lists.
const PAGE: i64 = 100;

/// A client as a row of the list.
pub struct Line {
    pub id: String,
    pub name: String,
    pub client_type: String,
    pub redirect_uris: usize,
    pub is_console: bool,
}

/// What was typed into the registration form, to show it again.
#[derive(Debug, Default, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default, rename = "type")]
    client_type: String,
    /// `web` or `native` (RFC 7591 §2); empty: web.
    #[serde(default)]
    application_type: String,
    /// One per line.
    #[serde(default)]
    redirect_uris: String,
    /// Space-separated.
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    grant_authorization_code: Option<String>,
    #[serde(default)]
    grant_refresh_token: Option<String>,
    #[serde(default)]
    grant_client_credentials: Option<String>,
    /// RFC 9126 §6: authorization requests must be pushed first.
    #[serde(default)]
    require_par: Option<String>,
    /// RFC 9449 §5.2: every token request must carry a DPoP proof.
    #[serde(default)]
    require_dpop: Option<String>,
}

impl RegisterForm {
    fn defaults() -> Self {
        Self {
            client_type: "confidential".into(),
            scopes: "openid email profile".into(),
            grant_authorization_code: Some("on".into()),
            ..Self::default()
        }
    }

    fn input(&self, catalog: Catalog) -> ClientInput {
        let grants: Vec<String> = [
            (&self.grant_authorization_code, "authorization_code"),
            (&self.grant_refresh_token, "refresh_token"),
            (&self.grant_client_credentials, "client_credentials"),
        ]
        .into_iter()
        .filter(|(on, _)| on.is_some())
        .map(|(_, g)| g.to_owned())
        .collect();
        ClientInput {
            name: Some(self.name.clone()),
            client_type: Some(self.client_type.clone()),
            redirect_uris: Some(
                self.redirect_uris
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
            post_logout_redirect_uris: None,
            grant_types: Some(grants),
            scopes: Some(self.scopes.split_whitespace().map(str::to_owned).collect()),
            token_endpoint_auth_method: None,
            id_token_signed_response_alg: None,
            refresh_token_leeway_seconds: None,
            resource_server: None,
            default_resource: None,
            jwks: None,
            jwks_uri: None,
            token_endpoint_auth_signing_alg: None,
            require_pushed_authorization_requests: Some(self.require_par.is_some()),
            application_type: Some(self.application_type.clone()).filter(|a| !a.is_empty()),
            dpop_bound_access_tokens: Some(self.require_dpop.is_some()),
            catalog,
            outbound: trusec_oauth::fetch::OutboundSettings::default(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/applications.html")]
struct ListPage {
    layout: Layout,
    clients: Vec<Line>,
    form: RegisterForm,
    error: Option<FieldError>,
}

impl ListPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(self.error.as_ref(), field)
    }
}

/// One client's page; `secret` only right after it was made.
#[derive(Template)]
#[template(path = "console/application.html")]
struct ShowPage {
    layout: Layout,
    client: ClientRow,
    secret: Option<String>,
    discovery_url: String,
    issuer: String,
    is_console: bool,
    /// Where a test user's sign-in to this app starts, when it has a code
    /// flow to start.
    try_url: Option<String>,
}

async fn list_lines(admin: &Admin) -> Result<Vec<Line>, ConsoleError> {
    let rows = first_page(admin, PAGE, clients::list).await?;
    Ok(rows
        .into_iter()
        .map(|r| Line {
            is_console: is_console(&r),
            id: r.id,
            name: r.name,
            client_type: r.client_type.as_str().to_owned(),
            redirect_uris: r.redirect_uris.0.len(),
        })
        .collect())
}

/// `GET /console/applications`.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
) -> Result<HttpResponse, ConsoleError> {
    let (layout, cookie) = Layout::of(&req, &state, &admin);
    let page = ListPage {
        layout,
        clients: list_lines(&admin).await?,
        form: RegisterForm::defaults(),
        error: None,
    };
    Ok(render(&page, StatusCode::OK, cookie))
}

/// `POST /console/applications`: registers a client and shows its secret
/// once, or the form again with the field at fault marked.
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    form: web::Form<RegisterForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let form = form.into_inner();
    let catalog = catalog(&state, &admin.acting.environment).await?;
    match register(&state, &admin.acting, form.input(catalog)).await {
        Ok((client, secret)) => Ok(show_page(
            &req,
            &state,
            &admin,
            client,
            secret,
            StatusCode::CREATED,
        )),
        Err(e) => {
            let error = Some(field_error(e)?);
            let (layout, cookie) = Layout::of(&req, &state, &admin);
            let page = ListPage {
                layout,
                clients: list_lines(&admin).await?,
                form,
                error,
            };
            Ok(render(&page, StatusCode::UNPROCESSABLE_ENTITY, cookie))
        }
    }
}

fn show_page(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    client: ClientRow,
    secret: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let (layout, cookie) = Layout::of(req, state, admin);
    let issuer = admin.ui.env.issuer.clone();
    let page = ShowPage {
        layout,
        is_console: is_console(&client),
        try_url: try_url(&admin.ui.env, &client),
        client,
        secret,
        discovery_url: format!("{issuer}/.well-known/openid-configuration"),
        issuer,
    };
    render(&page, status, cookie)
}

/// The authorization request this app would make (RFC 6749 §4.1.1), to
/// try its sign-in: its first redirect URI, its scopes, `prompt=login` so
/// that whoever opens it signs in afresh, and a PKCE challenge (RFC 7636)
/// with a state nobody keeps: the code lands at the app, which did not
/// start this request and so cannot redeem it — the try shows the sign-in,
/// the consent and the redirect, as the user will see them.
fn try_url(env: &trusec_ui::Environment, client: &ClientRow) -> Option<String> {
    if !client.grant_types.contains(&GrantType::AuthorizationCode) {
        return None;
    }
    let redirect = client.redirect_uris.first()?;
    // 43 random alphanumerics: a well-formed S256 challenge (RFC 7636
    // §4.2) whose verifier nobody has.
    let challenge = trusec_storage::secrets::generate_secret("").ok()?;
    // Management scopes are left out: only administrators may grant them,
    // and the one trying is usually a test user.
    let scope = client
        .scopes
        .filtered(|s| !trusec_oauth::scopes::is_management(s));
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.id)
        .append_pair("redirect_uri", redirect);
    if !scope.is_empty() {
        query.append_pair("scope", &scope.to_string());
    }
    let query = query
        .append_pair("state", "console-try")
        .append_pair("prompt", "login")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    Some(format!("{}?{query}", env.path("/oauth/authorize")))
}

/// The client of the path, in the administrator's environment only.
async fn load(admin: &Admin, id: &str) -> Result<ClientRow, ConsoleError> {
    let id = ClientId::parse(id).ok_or_else(|| ApiError::not_found("client", Some("id")))?;
    let env = admin.ui.env.id.clone();
    admin
        .ui
        .core
        .db
        .run(move |conn| clients::get(conn, &env, &id))
        .await
        .map_err(|e| match e {
            trusec_storage::StorageError::NotFound => {
                ApiError::not_found("client", Some("id")).into()
            }
            other => other.into(),
        })
}

/// `GET /console/applications/{id}`.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let client = load(&admin, &id).await?;
    Ok(show_page(
        &req,
        &state,
        &admin,
        client,
        None,
        StatusCode::OK,
    ))
}

/// `POST /console/applications/{id}/rotate-secret`: a new secret, shown
/// once; the old one stops working.
pub async fn rotate(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let id = ClientId::parse(&id).ok_or_else(|| ApiError::not_found("client", Some("id")))?;
    let (client, secret) = rotate_secret(&state, &admin.acting, &id).await?;
    Ok(show_page(
        &req,
        &state,
        &admin,
        client,
        Some(secret),
        StatusCode::OK,
    ))
}
