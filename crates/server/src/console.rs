//! The admin console (issue #16), server-rendered at `/console` in every
//! environment (live at the root, NAME under `/env/NAME`, as every other
//! page): each environment's console signs its administrators in through
//! that environment's own hosted login and sees only that environment.
//!
//! - `setup.rs`: the single-use setup link that creates an administrator;
//! - `sign_in.rs`: the console as an OIDC client of its own server
//!   (authorization code + PKCE through `/oauth/authorize` and the hosted
//!   login, the code redeemed by the same grant as any client's,
//!   `trusec_oauth::first_party`), and its session;
//! - `applications.rs`: OAuth clients, through the same decide functions
//!   as `/v1` (`api::v1::clients::register`, `rotate_secret`);
//! - `users.rs`: users, their sessions, factors and consents, through
//!   `api::v1::{users, sessions, factors, consents}`;
//! - `keys.rs`: API keys and signing keys, through
//!   `api::v1::{api_keys, signing_keys}`;
//! - `dashboard.rs`: counts per hour from the `/metrics` counters;
//! - `audit.rs`: the audit log, filtered as `/v1` filters it, and
//!   verifying the chain;
//! - `saml.rs`: SAML service providers (metadata read and shown before it
//!   is saved, attribute release, a per-SP trace of assertions and
//!   refusals), through `api::v1::service_providers::{register, change,
//!   remove}`.
//!
//! Every page carries the hosted pages' headers with a CSP that allows only
//! our own stylesheet and script; every form a CSRF token.

mod applications;
mod audit;
mod dashboard;
mod keys;
mod page;
mod policies;
mod saml;
mod session;
mod setup;
mod sign_in;
mod users;

pub use session::Admin;
pub use setup::{first_run_link, setup_url};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use diesel::Connection;
use trusec_storage::clients::{
    self, ApplicationType, AuthMethod, ClientPatch, ClientRow, ClientType, GrantType, NewClient,
    RegisteredBy,
};
use trusec_storage::scopes::ScopeSet;
use trusec_storage::signing_keys::Alg;
use trusec_storage::{Core, StorageError};
use trusec_ui::{Environment, PageError};

/// What the console of one environment adds to its states: its own OAuth
/// client there.
#[derive(Clone, Debug)]
pub struct ConsoleState {
    pub client_id: String,
}

impl ConsoleState {
    /// Registers (on the first start) or brings up to date the console's
    /// public client in `env`: redirect URI `{issuer}/console/callback`,
    /// authorization code with PKCE only.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn open(core: &Core, env: &Environment) -> Result<Self, StorageError> {
        let redirect = callback_uri(env);
        let env_id = env.id.clone();
        let now = core.clock.now_naive();
        let row = core
            .db
            .run(move |conn| {
                conn.transaction(|conn| match clients::find_console(conn, &env_id)? {
                    Some(row) if row.redirect_uris.0 == [redirect.clone()] => Ok(row),
                    Some(row) => {
                        // The issuer changed since it was registered.
                        let patch = ClientPatch {
                            redirect_uris: Some(vec![redirect]),
                            ..ClientPatch::default()
                        };
                        clients::update(conn, &env_id, &row.id, patch, now)
                    }
                    None => clients::insert(conn, console_client(&env_id, redirect)?, now),
                })
            })
            .await?;
        trusec_oauth::client_auth::forget_client(core, &row.id).await?;
        Ok(Self { client_id: row.id })
    }
}

/// The console's redirect URI in `env`.
pub fn callback_uri(env: &Environment) -> String {
    format!("{}/console/callback", env.issuer)
}

/// The console's client as first registered. Built here rather than
/// through `client_metadata::validate`: that refuses plain-http redirect
/// URIs off loopback, and the console must work at whatever issuer the
/// operator chose.
fn console_client(env_id: &str, redirect: String) -> Result<NewClient, StorageError> {
    Ok(NewClient {
        environment_id: env_id.to_owned(),
        name: "TruSec console".into(),
        client_type: ClientType::Public,
        secret_hash: None,
        redirect_uris: vec![redirect],
        post_logout_redirect_uris: Vec::new(),
        grant_types: vec![GrantType::AuthorizationCode],
        scopes: ScopeSet::parse("openid email profile").map_err(StorageError::backend)?,
        token_endpoint_auth_method: AuthMethod::None,
        id_token_signed_response_alg: Alg::Es256,
        refresh_token_leeway_seconds: 0,
        registered_by: RegisteredBy::Console,
        resource_server: false,
        default_resource: None,
        jwks: None,
        jwks_uri: None,
        token_endpoint_auth_signing_alg: None,
        token_endpoint_auth_method_chosen: true,
        require_pushed_authorization_requests: false,
        application_type: ApplicationType::Web,
        dpop_bound_access_tokens: false,
    })
}

/// Whether a client is the console's own (shown, but not to be edited).
fn is_console(row: &ClientRow) -> bool {
    trusec_oauth::client_metadata::is_first_party(row)
}

/// The console's routes, mounted once per environment.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/console")
            .app_data(form_config(32 * 1024))
            .app_data(web::QueryConfig::default().error_handler(|_, _| {
                PageError::refused(
                    StatusCode::BAD_REQUEST,
                    "This link is not valid",
                    "Its query string could not be read.",
                )
                .into()
            }))
            .route("", web::get().to(home))
            .route("/", web::get().to(home))
            .service(web::resource("/setup").get(setup::get).post(setup::post))
            .route("/login", web::get().to(sign_in::start))
            .route("/callback", web::get().to(sign_in::callback))
            .route("/logout", web::post().to(sign_in::logout))
            .configure(application_and_key_routes)
            .configure(saml_routes)
            .configure(user_routes)
            .route("/static/console.js", web::get().to(script)),
    );
}

/// The dashboard, applications, API keys, signing keys, the audit log.
fn application_and_key_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/applications")
            .get(applications::list)
            .post(applications::create),
    )
    .service(web::resource("/applications/{id}").get(applications::show))
    .service(web::resource("/applications/{id}/rotate-secret").post(applications::rotate))
    .service(
        web::resource("/api-keys")
            .get(keys::list)
            .post(keys::create),
    )
    .route("/api-keys/{id}/rotate", web::post().to(keys::rotate))
    .route("/api-keys/{id}/revoke", web::post().to(keys::revoke))
    .route("/signing-keys", web::get().to(keys::signing_keys))
    .route(
        "/signing-keys/rotate",
        web::post().to(keys::rotate_signing_keys),
    )
    .service(
        web::resource("/policies")
            .get(policies::show)
            .post(policies::update),
    )
    .route("/dashboard", web::get().to(dashboard::show))
    .route("/audit", web::get().to(audit::list))
    .route("/audit/verify", web::post().to(audit::verify));
}

/// SAML service providers.
fn saml_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/saml")
            .app_data(metadata_form())
            .get(saml::list)
            .post(saml::create),
    )
    .service(
        web::resource("/saml/preview")
            .app_data(metadata_form())
            .post(saml::preview),
    )
    .route(
        "/saml/idp-certificate.pem",
        web::get().to(saml::idp_certificate),
    )
    .service(web::resource("/saml/{id}").get(saml::show))
    .route("/saml/{id}/attributes", web::post().to(saml::attributes))
    .route("/saml/{id}/test", web::post().to(saml::test))
    .route("/saml/{id}/encryption", web::post().to(saml::encryption))
    .route("/saml/{id}/delete", web::post().to(saml::delete));
}

/// Users, and their sessions, factors and consents.
fn user_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/users").get(users::list).post(users::create))
        .service(
            web::resource("/users/{id}")
                .get(users::show)
                .post(users::update),
        )
        .route("/users/{id}/delete", web::post().to(users::delete))
        .route("/users/{id}/disable", web::post().to(users::disable))
        .route("/users/{id}/enable", web::post().to(users::enable))
        .route(
            "/users/{id}/sessions/end-all",
            web::post().to(users::end_all_sessions),
        )
        .route(
            "/users/{id}/sessions/{session_id}/end",
            web::post().to(users::end_session),
        )
        .route(
            "/users/{id}/factors/reset",
            web::post().to(users::reset_factors),
        )
        .route(
            "/users/{id}/consents/{client_id}/revoke",
            web::post().to(users::revoke_consent),
        );
}

/// Forms of at most `limit` bytes; one that cannot be read is a page.
fn form_config(limit: usize) -> web::FormConfig {
    web::FormConfig::default()
        .limit(limit)
        .error_handler(|e, _| {
            PageError::refused(
                StatusCode::BAD_REQUEST,
                "This form could not be read",
                format!("{e}"),
            )
            .into()
        })
}

/// Forms that carry SP metadata: the metadata's own bound
/// (`sp_metadata::MAX_METADATA`), percent-encoded at worst, and the other
/// fields; the metadata itself is checked against it again.
fn metadata_form() -> web::FormConfig {
    form_config(3 * trusec_saml::sp_metadata::MAX_METADATA + 16 * 1024)
}

/// `/console`: the first page.
async fn home(admin: Admin) -> HttpResponse {
    trusec_ui::pages::see_other(&admin.path("/console/applications"), Vec::new())
}

const SCRIPT: &str = include_str!("../../../static/console.js");

/// The console's one script: copy buttons (progressive enhancement).
async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(SCRIPT)
}
