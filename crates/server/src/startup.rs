//! Builds the application from settings: storage, the audit writer, the
//! HTTP server with its middleware and routes.

use crate::error::ApiError;
use crate::settings::{ConfigError, Settings};
use crate::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next, from_fn};
use actix_web::{App, HttpMessage, HttpServer, web};
use secrecy::ExposeSecret;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};
use trusec_storage::audit::{self, Anchoring, AuditLog};
use trusec_storage::deployment_secrets::DeploymentSecrets;
use trusec_storage::hashing::HashPool;
use trusec_storage::{Clock, Core, Db, DbSettings, EphemeralStore};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens the database pool (off the async runtime: r2d2 blocks while it
/// connects) and applies migrations.
///
/// # Errors
/// A `ConfigError` naming `TRUSEC_DATABASE_URL` when it cannot connect or migrate.
pub async fn open_database(settings: &Settings) -> Result<Db, ConfigError> {
    let db_settings = DbSettings {
        url: settings.database_url.clone(),
        pool_size: settings.database_pool_size,
        connect_timeout: Duration::from_secs(5),
    };
    let setting = "TRUSEC_DATABASE_URL";
    tokio::task::spawn_blocking(move || {
        let db = Db::connect(&db_settings).map_err(|e| {
            ConfigError::new(
                setting,
                format!("cannot connect: {}", crate::error::ErrorChain(&e)),
            )
        })?;
        db.migrate().map_err(|e| {
            ConfigError::new(
                setting,
                format!("migrations failed: {}", crate::error::ErrorChain(&e)),
            )
        })?;
        Ok(db)
    })
    .await
    .map_err(|e| ConfigError::new(setting, e))?
}

/// Connects the ephemeral store named by the settings.
///
/// # Errors
/// A `ConfigError` naming `TRUSEC_REDIS_URL` when Redis cannot be reached.
pub async fn open_store(settings: &Settings, clock: &Clock) -> Result<EphemeralStore, ConfigError> {
    match &settings.redis_url {
        None => Ok(EphemeralStore::memory_bounded(
            clock.clone(),
            settings.memory_store_max_bytes,
        )),
        Some(url) => EphemeralStore::redis(url.expose_secret(), &settings.redis_prefix)
            .await
            .map_err(|e| {
                ConfigError::new(
                    "TRUSEC_REDIS_URL",
                    format!("cannot connect: {}", crate::error::ErrorChain(&e)),
                )
            }),
    }
}

pub struct Application {
    maintenance: Vec<tokio::task::JoinHandle<()>>,
    port: u16,
    server: Server,
    state: AppState,
    audit_task: tokio::task::JoinHandle<()>,
}

impl Application {
    /// Builds the app on the system clock.
    ///
    /// # Errors
    /// Bad settings, unreachable storage, or a port that cannot be bound.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, Clock::System).await
    }

    /// Builds the app on the given clock (tests pass a fake one).
    ///
    /// # Errors
    /// As [`Application::build`].
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(settings.bind)
            .map_err(|e| ConfigError::new("TRUSEC_BIND", format!("{}: {e}", settings.bind)))?;
        let port = listener.local_addr()?.port();
        let workers = settings.workers;
        let (state, audit_task, maintenance) = build_state(settings, clock).await?;
        let openapi = web::Data::new(
            crate::openapi::Rendered::build()
                .map_err(|e| StartupError::Io(std::io::Error::other(e)))?,
        );
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(openapi.clone())
                .configure(|cfg| configure(cfg, app_state.clone()))
                .wrap(from_fn(access_log))
                .wrap(from_fn(request_id_header))
                .wrap(tracing_actix_web::TracingLogger::<
                    crate::telemetry::RequestSpan,
                >::new())
                .wrap(DefaultHeaders::new().add((header::X_CONTENT_TYPE_OPTIONS, "nosniff")))
        })
        .listen(listener)?
        .workers(workers)
        .shutdown_timeout(30)
        .run();
        Ok(Self {
            maintenance,
            port,
            server,
            state,
            audit_task,
        })
    }

    /// The bound port (tests bind port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the server (gracefully with `stop(true)`).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The shared state (tests reach storage through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM/SIGINT (in-flight requests finish), then lets the
    /// audit writer commit what is queued.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Self {
            server,
            state,
            audit_task,
            maintenance,
            ..
        } = self;
        server.await?;
        for task in maintenance {
            task.abort();
        }
        drop(state);
        if tokio::time::timeout(Duration::from_secs(10), audit_task)
            .await
            .is_err()
        {
            tracing::warn!("audit writer did not finish within 10 s of shutdown");
        }
        Ok(())
    }
}

/// The shared state: storage and the core, the protocol states with their
/// keys, and the background tasks (audit writer, key maintenance).
async fn build_state(
    settings: Settings,
    clock: Clock,
) -> Result<
    (
        AppState,
        tokio::task::JoinHandle<()>,
        Vec<tokio::task::JoinHandle<()>>,
    ),
    StartupError,
> {
    let master_key_copy = settings.load_master_key()?;
    let master_key_bytes = *secrecy::ExposeSecret::expose_secret(&master_key_copy);
    let db = open_database(&settings).await?;
    let store = open_store(&settings, &clock).await?;
    store.warn_if_it_may_evict().await;
    let secrets = deployment_secrets(&db, &master_key_bytes, SecretsMode::Create).await?;
    let (audit, audit_task) = AuditLog::start(db.clone(), clock.clone(), secrets.audit.clone());
    let hashing = HashPool::start(settings.password_hashing)?;
    // One set of protocol settings for every environment (each gets its
    // own issuer from its `Environment`).
    let mut oauth_settings = trusec_oauth::OAuthSettings::new(&settings.issuer);
    oauth_settings.open_registration = settings.open_registration;
    oauth_settings.client_assertion_max_lifetime = settings.client_assertion_max_lifetime;
    oauth_settings.refresh_family_lifetime = settings.refresh_token_family_lifetime;
    oauth_settings.device_code_ttl = settings.device_code_lifetime;
    oauth_settings.par = settings.par;
    oauth_settings.dpop = settings.dpop;
    oauth_settings.client_id_metadata_documents = settings.client_id_metadata_documents;
    // One outbound client and cache for the process, shared by every
    // environment (each state clones the handle).
    oauth_settings.fetcher = trusec_oauth::fetch::Fetcher::new(settings.outbound);
    // Storage keeps a revoked family's marks as long as its access tokens live.
    let core = Core::new(db, store, clock, audit, settings.rate_limits, hashing)
        .with_access_token_ttl(oauth_settings.access_token_ttl);
    let environments = open_environments(
        &core,
        &settings,
        &oauth_settings,
        master_key_bytes,
        &secrets,
    )
    .await?;
    // After the signing keys opened: the master key is the deployment's.
    anchor_audit_chain(&core).await?;
    let mut maintenance = vec![spawn_key_maintenance(
        core.clone(),
        environments
            .iter()
            .map(|e| (e.oauth.keyring.clone(), e.saml.keys.clone()))
            .collect(),
    )];
    if let Some(retention) = settings.audit_retention {
        maintenance.push(spawn_audit_retention(core.clone(), retention));
    }
    maintenance.push(spawn_metrics_sampler(core.clone()));
    let state = AppState {
        core,
        settings: Arc::new(settings),
        environments: Arc::new(environments),
        seal_key: trusec_storage::sealed::SealKey::new(master_key_bytes),
    };
    Ok((state, audit_task, maintenance))
}

/// The states of every environment, live first: each is its own issuer
/// (`TRUSEC_ISSUER`, or `{TRUSEC_ISSUER}/env/NAME`) with its own IdP key,
/// made on the first start that sees the environment.
async fn open_environments(
    core: &Core,
    settings: &Settings,
    oauth_settings: &trusec_oauth::OAuthSettings,
    master_key: [u8; 32],
    secrets: &DeploymentSecrets,
) -> Result<Vec<crate::state::EnvStates>, ConfigError> {
    let rows = core
        .db
        .run(trusec_storage::environments::list)
        .await
        .map_err(|e| {
            ConfigError::new(
                "TRUSEC_DATABASE_URL",
                format!("cannot load the environments: {e}"),
            )
        })?;
    // One XML pool for the process: its bound is a bound on the machine.
    let xml = trusec_saml::xml_work::XmlWork::per_core();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let env = trusec_ui::Environment::new(&row, &settings.issuer)
            .map_err(|e| ConfigError::new("TRUSEC_DATABASE_URL", e))?;
        let ui = trusec_ui::UiState {
            core: core.clone(),
            secure_cookies: settings.issuer.starts_with("https://"),
            env: Arc::new(env),
            seal_key: trusec_storage::sealed::SealKey::new(master_key),
        };
        let master = secrecy::SecretBox::new(Box::new(master_key));
        let keyring = open_keyring(core, master, oauth_settings, &ui.env).await?;
        let keys = open_saml_keys(core, &master_key, &ui.env).await?;
        let console = crate::console::ConsoleState::open(core, &ui.env)
            .await
            .map_err(|e| {
                ConfigError::new(
                    "TRUSEC_DATABASE_URL",
                    format!(
                        "cannot register the console's OAuth client: {}",
                        crate::error::ErrorChain(&e)
                    ),
                )
            })?;
        out.push(crate::state::EnvStates {
            console,
            oauth: trusec_oauth::OAuthState::new(ui.clone(), keyring, oauth_settings.clone()),
            saml: trusec_saml::SamlState::new(ui.clone(), keys, &secrets.saml_name_id, xml.clone()),
            ui,
        });
    }
    // Live is served at the root; the others under /env/NAME.
    out.sort_by_key(|e| !e.env().is_live());
    Ok(out)
}

/// Counts every request in metrics by method and route pattern, and writes
/// one access line per request inside the request's span (so it carries the
/// request id); never the path or query, which may hold ids or tokens.
async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    // A fixed label set: a made-up method must not mint a series.
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m,
        _ => "other",
    }
    .to_owned();
    let core = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.core.clone());
    let res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    if let Some(core) = core {
        core.metrics()
            .observe_request(&method, &route, status, elapsed.as_secs_f64());
    }
    tracing::info!(
        method,
        route,
        status,
        micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    Ok(res)
}

/// Returns the request id (minted by the tracing middleware) as
/// `X-Request-Id`, so a user's report can be matched to the log.
async fn request_id_header(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .extensions()
        .get::<tracing_actix_web::RequestId>()
        .copied();
    let mut res = next.call(req).await?;
    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id.to_string()).ok()) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(res)
}

/// Whether [`deployment_secrets`] may store a secret that has no row yet.
#[derive(Clone, Copy, Debug)]
pub enum SecretsMode {
    /// `serve` and commands that write: store any missing secret.
    Create,
    /// Commands that only read: derive a missing one, store nothing.
    ReadOnly,
}

/// The deployment secrets (the audit key, the SAML NameID secret), read
/// once from `deployment_secrets` and unsealed with the master key.
///
/// # Errors
/// A `ConfigError` naming `TRUSEC_MASTER_KEY` when they do not open under
/// this key, or `TRUSEC_DATABASE_URL` when they cannot be read.
pub async fn deployment_secrets(
    db: &trusec_storage::Db,
    master_key: &[u8; 32],
    mode: SecretsMode,
) -> Result<DeploymentSecrets, ConfigError> {
    use trusec_storage::deployment_secrets::{self as secrets, SecretError};
    let (master, now) = (*master_key, Clock::System.now_naive());
    let opened = db
        .run(move |conn| {
            Ok(match mode {
                SecretsMode::Create => secrets::open(conn, &master, now),
                SecretsMode::ReadOnly => secrets::peek(conn, &master),
            })
        })
        .await
        .and_then(|r| match r {
            Err(SecretError::Storage(e)) => Err(e),
            other => Ok(other),
        });
    match opened {
        Ok(Ok(secrets)) => Ok(secrets),
        Ok(Err(e)) => Err(ConfigError::new(
            "TRUSEC_MASTER_KEY",
            format!(
                "{} (is this the master key they were sealed with? after `trusec master-key rotate`, start with the new key)",
                crate::error::ErrorChain(&e)
            ),
        )),
        Err(e) => Err(ConfigError::new(
            "TRUSEC_DATABASE_URL",
            format!(
                "cannot read the deployment secrets: {}",
                crate::error::ErrorChain(&e)
            ),
        )),
    }
}

/// On the first start with a keyed audit chain, re-anchors a chain written
/// before it (one `audit.chain.anchored` checkpoint, old rows untouched).
/// A tail that does not verify is logged, not fatal: the log stays
/// writable, and `trusec audit verify` names the break.
async fn anchor_audit_chain(core: &Core) -> Result<(), ConfigError> {
    let anchoring = core.anchor_audit().await.map_err(|e| {
        ConfigError::new(
            "TRUSEC_DATABASE_URL",
            format!(
                "cannot anchor the audit chain: {}",
                crate::error::ErrorChain(&e)
            ),
        )
    })?;
    match anchoring {
        Anchoring::Empty | Anchoring::Keyed => {}
        Anchoring::Anchored {
            previous_head,
            intact: true,
        } => {
            tracing::info!(%previous_head, "audit chain re-anchored: keyed hashes from here on");
        }
        Anchoring::Anchored {
            previous_head,
            intact: false,
        } => {
            let error_id = trusec_storage::ids::new_id("err");
            tracing::error!(%error_id, %previous_head, "audit chain re-anchored, but its unkeyed part does not verify: run `trusec audit verify`");
        }
        Anchoring::TailUnverified { seq } => {
            let error_id = trusec_storage::ids::new_id("err");
            tracing::error!(%error_id, seq, "the last audit event does not verify under this master key (tampered with, or written under another key): run `trusec audit verify`");
        }
    }
    Ok(())
}

/// Opens (creating on first start) the OAuth signing keyring.
async fn open_keyring(
    core: &Core,
    master_key: crate::master_key::MasterKey,
    oauth: &trusec_oauth::OAuthSettings,
    env: &trusec_ui::Environment,
) -> Result<Arc<trusec_oauth::Keyring>, ConfigError> {
    trusec_oauth::Keyring::open(
        core.db.clone(),
        core.clock.clone(),
        master_key,
        oauth.longest_token_lifetime(),
        &env.id,
    )
    .await
    .map(Arc::new)
    .map_err(|e| match e {
        trusec_oauth::keys::KeyError::Crypto(c) => ConfigError::new(
            "TRUSEC_MASTER_KEY",
            format!(
                "cannot open the signing keys: {c} (is this the master key they were created with?)"
            ),
        ),
        other => ConfigError::new(
            "TRUSEC_DATABASE_URL",
            format!("cannot load signing keys: {other}"),
        ),
    })
}

/// Opens (creating on first start) an environment's SAML IdP key and
/// certificate.
async fn open_saml_keys(
    core: &Core,
    master_key: &[u8; 32],
    env: &trusec_ui::Environment,
) -> Result<Arc<trusec_saml::idp_key::IdpKeys>, ConfigError> {
    trusec_saml::idp_key::IdpKeys::open(
        core.db.clone(),
        core.clock.clone(),
        *master_key,
        &env.id,
        &env.issuer,
    )
    .await
        .map(Arc::new)
        .map_err(|e| match e {
            trusec_saml::idp_key::IdpKeyError::Sealed(s) => ConfigError::new(
                "TRUSEC_MASTER_KEY",
                format!("cannot open the SAML signing key: {s} (is this the master key it was created with?)"),
            ),
            other => ConfigError::new("TRUSEC_DATABASE_URL", format!("cannot load the SAML signing key: {other}")),
        })
}

/// The one maintenance task of every signing key (the key lifecycle of
/// `trusec_storage::key_lifecycle`), once a minute: JWT keys rotate when due
/// and every instance reloads what another rotated, JWT keys and the SAML
/// IdP key alike.
fn spawn_key_maintenance(
    core: Core,
    keys: Vec<(
        Arc<trusec_oauth::Keyring>,
        Arc<trusec_saml::idp_key::IdpKeys>,
    )>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for (keyring, saml_keys) in &keys {
                keyring.maintain(&core).await;
                if let Err(e) = saml_keys.reload().await {
                    tracing::error!(error = %e, "could not reload the SAML signing keys");
                }
            }
        }
    })
}

/// Samples the dashboard's counters now and every ten minutes
/// (`storage::metrics::HISTORY` samples: a day), for the console.
fn spawn_metrics_sampler(core: Core) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            core.metrics().sample(core.clock.now());
        }
    })
}

/// `TRUSEC_AUDIT_RETENTION`: at start and then hourly, prunes the audit
/// events older than the retention (`Core::prune_audit`). Every instance
/// runs it; the prune is serialised with every audit writer in the
/// database, so a second instance finds nothing left to do.
fn spawn_audit_retention(core: Core, retention: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let before = core.clock.now_naive() - crate::durations::to_delta(retention);
            match core.prune_audit(before).await {
                Ok(audit::Pruning::Nothing) => {}
                Ok(audit::Pruning::Pruned { events, through }) => {
                    tracing::info!(events, %through, "audit events past their retention pruned");
                }
                Ok(audit::Pruning::Refused(link)) => {
                    let error_id = trusec_storage::ids::new_id("err");
                    tracing::error!(%error_id, seq = link.seq, reason = %link.reason, "audit events past their retention were not pruned: the chain does not verify there (run `trusec audit verify`)");
                }
                Err(e) => {
                    let error_id = trusec_storage::ids::new_id("err");
                    tracing::error!(%error_id, error = %e, "could not prune the audit events past their retention");
                }
            }
        }
    })
}

/// The route table and app-wide configuration. The protocol and hosted-page
/// routes are mounted once per environment: live's at the root, every other
/// one's under `/env/NAME` with that environment's states as scope data, so
/// a handler serves exactly the environment whose path matched (an unknown
/// NAME matches nothing and is a 404).
pub fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    let max_body = state.settings.max_body_bytes;
    // Read by trusec_ui::http::client_info on every surface.
    let proxies = state.settings.trusted_proxies.clone();
    let environments = state.environments.clone();
    cfg.app_data(web::Data::new(state))
        .app_data(proxies)
        // Bodies are read only up to the cap, however they are framed.
        .app_data(web::PayloadConfig::new(max_body))
        .app_data(web::QueryConfig::default().error_handler(|e, _| {
            ApiError::InvalidRequest {
                message: format!("invalid query string: {e}"),
                param: None,
            }
            .into()
        }))
        .app_data(
            web::PathConfig::default()
                .error_handler(|_, _| ApiError::not_found("object", Some("id")).into()),
        )
        .route("/healthz", web::get().to(crate::ops::healthz))
        .route("/readyz", web::get().to(crate::ops::readyz))
        .route("/metrics", web::get().to(crate::ops::metrics))
        .route("/openapi.json", web::get().to(crate::openapi::openapi_json))
        .route("/docs/api", web::get().to(crate::openapi::api_docs))
        .configure(crate::api::v1::configure);
    for env in environments.iter().filter(|e| !e.env().is_live()) {
        trusec_oauth::configure_issuer_metadata(cfg, env.oauth.clone());
        cfg.service(
            web::scope(&env.env().base_path)
                .app_data(web::Data::new(env.ui.clone()))
                .app_data(web::Data::new(env.oauth.clone()))
                .app_data(web::Data::new(env.saml.clone()))
                .app_data(web::Data::new(env.console.clone()))
                .configure(crate::console::configure)
                .configure(trusec_ui::configure)
                .configure(trusec_oauth::configure)
                .configure(trusec_saml::configure),
        );
    }
    if let Some(live) = environments.iter().find(|e| e.env().is_live()) {
        cfg.app_data(web::Data::new(live.ui.clone()))
            .app_data(web::Data::new(live.oauth.clone()))
            .app_data(web::Data::new(live.saml.clone()))
            .app_data(web::Data::new(live.console.clone()));
    }
    cfg.route("/", web::get().to(crate::home::get))
        .configure(crate::console::configure)
        .configure(trusec_ui::configure)
        .configure(trusec_oauth::configure)
        .configure(trusec_saml::configure)
        .default_service(web::to(not_found));
}

async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound {
        message: "no such route".into(),
        param: None,
    })
}
