//! Settings: flag > `TRUSEC_*` environment variable > `trusec.toml` > default
//! (the contract's order). Loaded once in `main`, validated, and passed by
//! value into [`crate::Application::build`].

use crate::cli::{ConfigArgs, LogFormat};
use crate::master_key::{self, MasterKey};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use trusec_storage::db::DbUrl;
use trusec_storage::rate_limit::Limit;
pub use trusec_storage::rate_limit::RateLimits;

/// A setting that cannot be used, named as the operator would type it.
#[derive(Debug, thiserror::Error)]
#[error("invalid {setting}: {reason}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub reason: String,
}

impl ConfigError {
    /// The reason is folded onto one line: the contract promises one line.
    pub fn new(setting: &'static str, reason: impl std::fmt::Display) -> Self {
        Self {
            setting,
            reason: reason
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// Where the master key comes from.
#[derive(Clone, Debug)]
pub enum MasterKeySource {
    /// Given inline (hex) through the environment or the file.
    Inline(secrecy::SecretString),
    /// Read from, or generated into, this file.
    File(PathBuf),
}

impl PartialEq for MasterKeySource {
    fn eq(&self, other: &Self) -> bool {
        use secrecy::ExposeSecret;
        match (self, other) {
            (Self::Inline(a), Self::Inline(b)) => a.expose_secret() == b.expose_secret(),
            (Self::File(a), Self::File(b)) => a == b,
            _ => false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub bind: SocketAddr,
    pub issuer: String,
    pub database_url: DbUrl,
    pub database_pool_size: u32,
    pub redis_url: Option<secrecy::SecretString>,
    /// Prefix of every Redis key (tests give each app its own).
    pub redis_prefix: String,
    /// The bound of the in-process store (without Redis), in bytes.
    pub memory_store_max_bytes: usize,
    pub master_key: MasterKeySource,
    pub open_registration: bool,
    /// How far ahead a client assertion's `exp` may be (RFC 7523 §3).
    pub client_assertion_max_lifetime: Duration,
    /// Whether setup links (`/console/setup`) work from a non-loopback
    /// client address (default: loopback only).
    pub setup_allow_remote: bool,
    /// Resolve https-URL `client_id`s through their metadata documents.
    pub client_id_metadata_documents: bool,
    /// What outbound fetches may reach.
    pub outbound: trusec_oauth::fetch::OutboundSettings,
    /// The reverse proxies whose forwarding headers are believed.
    pub trusted_proxies: trusec_ui::http::TrustedProxies,
    pub rate_limits: RateLimits,
    /// Absolute lifetime of a refresh-token family (contract: default 90 days).
    pub refresh_token_family_lifetime: Duration,
    /// RFC 8628 §3.2 `expires_in` of device codes.
    pub device_code_lifetime: Duration,
    /// Pushed authorization requests (RFC 9126): `TRUSEC_PAR_LIFETIME`,
    /// `TRUSEC_REQUIRE_PAR`.
    pub par: trusec_oauth::ParSettings,
    /// DPoP (RFC 9449): `TRUSEC_DPOP_PROOF_LIFETIME`,
    /// `TRUSEC_DPOP_REQUIRE_NONCE`.
    pub dpop: trusec_oauth::dpop::DpopSettings,
    /// How long audit events are kept (`None`: for ever).
    pub audit_retention: Option<Duration>,
    pub workers: usize,
    /// The password-hashing pool: threads (each keeps 19 MiB) and how many
    /// hashes may wait for one (`trusec_storage::hashing`).
    pub password_hashing: trusec_storage::hashing::PasswordHashing,
    pub log: String,
    pub log_format: LogFormat,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
}

/// The optional TOML file. Unknown keys are an error so typos are caught.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub bind: Option<String>,
    pub issuer: Option<String>,
    pub database_url: Option<String>,
    pub database_pool_size: Option<u32>,
    pub redis_url: Option<String>,
    pub redis_key_prefix: Option<String>,
    pub memory_store_max_mb: Option<usize>,
    pub master_key: Option<String>,
    pub open_registration: Option<bool>,
    pub client_assertion_max_lifetime_seconds: Option<u64>,
    pub setup_allow_remote: Option<bool>,
    pub client_id_metadata_documents: Option<bool>,
    pub outbound_allow_private: Option<bool>,
    pub outbound_allow_http: Option<bool>,
    pub trusted_proxies: Option<String>,
    pub refresh_token_family_lifetime: Option<String>,
    pub device_code_lifetime: Option<String>,
    pub par_lifetime: Option<String>,
    pub require_par: Option<bool>,
    pub dpop_proof_lifetime: Option<String>,
    pub dpop_require_nonce: Option<bool>,
    pub audit_retention: Option<String>,
    pub workers: Option<usize>,
    pub password_hash_threads: Option<usize>,
    pub password_hash_queue: Option<usize>,
    pub log: Option<String>,
    pub log_format: Option<LogFormat>,
    #[serde(default)]
    pub rate_limits: FileRateLimits,
}

#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileRateLimits {
    pub login: Option<String>,
    pub token: Option<String>,
    pub management: Option<String>,
    pub registration: Option<String>,
    pub authorize: Option<String>,
    pub saml: Option<String>,
    pub device_code: Option<String>,
}

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/trusec.db";
pub const DEFAULT_MASTER_KEY_FILE: &str = "data/master.key";
pub const DEFAULT_RATE_LIMIT_LOGIN: &str = "10/min";
pub const DEFAULT_RATE_LIMIT_AUTHORIZE: &str = "300/min";
pub const DEFAULT_RATE_LIMIT_SAML: &str = "300/min";
pub const DEFAULT_RATE_LIMIT_DEVICE_CODE: &str = "10/min";
pub const DEFAULT_RATE_LIMIT_TOKEN: &str = "1200/min";
pub const DEFAULT_RATE_LIMIT_MANAGEMENT: &str = "6000/min";
pub const DEFAULT_RATE_LIMIT_REGISTRATION: &str = "20/h";
/// Password hashes that may wait for a hashing thread: at 20–30 ms a hash,
/// about a second and a half of work for two threads.
pub const DEFAULT_PASSWORD_HASH_QUEUE: usize = 128;

impl Settings {
    /// Merges flags/environment over the TOML file over the defaults.
    ///
    /// # Errors
    /// The first setting that is missing its file, unparseable or out of range.
    pub fn load(args: &ConfigArgs) -> Result<Self, ConfigError> {
        let file = read_file(&args.config)?;
        Self::merge(args.clone(), file)
    }

    /// The merge itself, separated from file reading for tests.
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn merge(args: ConfigArgs, file: FileConfig) -> Result<Self, ConfigError> {
        // The default of the worker and hashing thread counts: one per core.
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Ok(Self {
            bind: bind(&args, &file)?,
            issuer: validate_issuer(
                args.issuer
                    .clone()
                    .or(file.issuer.clone())
                    .unwrap_or_else(|| DEFAULT_ISSUER.into()),
            )?,
            database_url: database_url(&args, &file)?,
            database_pool_size: in_range(
                "TRUSEC_DATABASE_POOL_SIZE",
                args.database_pool_size.or(file.database_pool_size),
                10,
                1..=512,
            )?,
            redis_url: redis_url(&args, &file)?.map(Into::into),
            redis_prefix: redis_key_prefix(&args, &file)?,
            memory_store_max_bytes: in_range(
                "TRUSEC_MEMORY_STORE_MAX_MB",
                args.memory_store_max_mb.or(file.memory_store_max_mb),
                64,
                1..=65_536,
            )? * 1024
                * 1024,
            master_key: master_key_source(&args, &file)?,
            open_registration: args
                .open_registration
                .or(file.open_registration)
                .unwrap_or(false),
            client_assertion_max_lifetime: Duration::from_secs(in_range(
                "TRUSEC_CLIENT_ASSERTION_MAX_LIFETIME_SECONDS",
                args.client_assertion_max_lifetime_seconds
                    .or(file.client_assertion_max_lifetime_seconds),
                300,
                10..=3600,
            )?),
            setup_allow_remote: args
                .setup_allow_remote
                .or(file.setup_allow_remote)
                .unwrap_or(false),
            client_id_metadata_documents: args
                .client_id_metadata_documents
                .or(file.client_id_metadata_documents)
                .unwrap_or(true),
            outbound: outbound(&args, &file),
            trusted_proxies: trusted_proxies(&args, &file)?,
            rate_limits: rate_limits(&args, &file)?,
            refresh_token_family_lifetime: refresh_token_family_lifetime(&args, &file)?,
            device_code_lifetime: device_code_lifetime(&args, &file)?,
            par: par(&args, &file)?,
            dpop: dpop(&args, &file)?,
            audit_retention: audit_retention(&args, &file)?,
            workers: in_range(
                "TRUSEC_WORKERS",
                args.workers.or(file.workers),
                cores,
                1..=256,
            )?,
            password_hashing: password_hashing(&args, &file, cores)?,
            log: args.log.or(file.log).unwrap_or_else(|| "info".into()),
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            max_body_bytes: 64 * 1024,
        })
    }

    /// Settings for an app in a test: the given database, nothing on disk
    /// beyond it, an inline master key.
    pub fn for_tests(database_url: DbUrl) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            issuer: DEFAULT_ISSUER.into(),
            database_url,
            database_pool_size: 4,
            redis_url: None,
            redis_prefix: "trusec:".into(),
            memory_store_max_bytes: trusec_storage::ephemeral::DEFAULT_MAX_BYTES,
            master_key: MasterKeySource::Inline("00".repeat(32).into()),
            open_registration: false,
            client_assertion_max_lifetime: Duration::from_secs(300),
            setup_allow_remote: false,
            client_id_metadata_documents: true,
            outbound: trusec_oauth::fetch::OutboundSettings::default(),
            trusted_proxies: trusec_ui::http::TrustedProxies::default(),
            rate_limits: RateLimits {
                login: None,
                token: None,
                management: None,
                registration: None,
                authorize: None,
                saml: None,
                device_code: None,
            },
            refresh_token_family_lifetime: trusec_oauth::DEFAULT_REFRESH_FAMILY_LIFETIME,
            device_code_lifetime: trusec_oauth::DEFAULT_DEVICE_CODE_TTL,
            par: trusec_oauth::ParSettings::default(),
            dpop: trusec_oauth::dpop::DpopSettings::default(),
            audit_retention: None,
            workers: 1,
            password_hashing: trusec_storage::hashing::PasswordHashing {
                threads: 1,
                queue: DEFAULT_PASSWORD_HASH_QUEUE,
            },
            log: "warn".into(),
            log_format: LogFormat::Text,
            max_body_bytes: 64 * 1024,
        }
    }

    /// Loads the master key (creating the key file on first start).
    ///
    /// # Errors
    /// When the key is malformed or its file unreadable.
    pub fn load_master_key(&self) -> Result<MasterKey, ConfigError> {
        use secrecy::ExposeSecret;
        match &self.master_key {
            MasterKeySource::Inline(hex) => master_key::parse(hex.expose_secret())
                .map_err(|e| ConfigError::new("TRUSEC_MASTER_KEY", e)),
            MasterKeySource::File(path) => master_key::load_or_create(path)
                .map_err(|e| ConfigError::new("TRUSEC_MASTER_KEY", e)),
        }
    }
}

impl Settings {
    /// Loads the master key, which must already exist (for commands that
    /// only read, such as `trusec audit verify`).
    ///
    /// # Errors
    /// When the key is malformed, or its file missing or unreadable.
    pub fn load_existing_master_key(&self) -> Result<MasterKey, ConfigError> {
        use secrecy::ExposeSecret;
        match &self.master_key {
            MasterKeySource::Inline(hex) => master_key::parse(hex.expose_secret())
                .map_err(|e| ConfigError::new("TRUSEC_MASTER_KEY", e)),
            MasterKeySource::File(path) => {
                master_key::load(path).map_err(|e| ConfigError::new("TRUSEC_MASTER_KEY", e))
            }
        }
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .map_err(|e| ConfigError::new("TRUSEC_CONFIG", format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
        Err(e) => Err(ConfigError::new(
            "TRUSEC_CONFIG",
            format!("{}: {e}", path.display()),
        )),
    }
}

fn validate_issuer(issuer: String) -> Result<String, ConfigError> {
    let bad = |why: &str| ConfigError::new("TRUSEC_ISSUER", format!("{issuer:?}: {why}"));
    let rest = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"))
        .ok_or_else(|| bad("must be an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("has no host"));
    }
    // OIDC Discovery §3: the issuer has no query or fragment.
    if rest.contains('?') || rest.contains('#') {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(issuer.trim_end_matches('/').to_owned())
}

fn trusted_proxies(
    args: &ConfigArgs,
    file: &FileConfig,
) -> Result<trusec_ui::http::TrustedProxies, ConfigError> {
    let text = args
        .trusted_proxies
        .clone()
        .or(file.trusted_proxies.clone())
        .unwrap_or_default();
    trusec_ui::http::TrustedProxies::parse(&text)
        .map_err(|e| ConfigError::new("TRUSEC_TRUSTED_PROXIES", e))
}

/// A number setting: flag or file, else `default`, within `range`.
fn in_range<N: PartialOrd + std::fmt::Display + Copy>(
    setting: &'static str,
    value: Option<N>,
    default: N,
    range: std::ops::RangeInclusive<N>,
) -> Result<N, ConfigError> {
    let value = value.unwrap_or(default);
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::new(
            setting,
            format!("must be between {} and {}", range.start(), range.end()),
        ))
    }
}

fn database_url(args: &ConfigArgs, file: &FileConfig) -> Result<DbUrl, ConfigError> {
    let url = args
        .database_url
        .clone()
        .or(file.database_url.clone())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
    DbUrl::parse(&url).map_err(|e| ConfigError::new("TRUSEC_DATABASE_URL", e))
}

/// Two deployments sharing one Redis must not read each other's sessions,
/// codes or rate limits: each gives its own prefix. A prefix is a plain
/// token (no spaces, no glob characters), so it cannot widen a key pattern.
fn redis_key_prefix(args: &ConfigArgs, file: &FileConfig) -> Result<String, ConfigError> {
    let prefix = args
        .redis_key_prefix
        .clone()
        .or(file.redis_key_prefix.clone())
        .unwrap_or_else(|| "trusec:".into());
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.');
    if prefix.is_empty() || prefix.len() > 64 || !prefix.chars().all(allowed) {
        return Err(ConfigError::new(
            "TRUSEC_REDIS_KEY_PREFIX",
            "must be 1-64 of A-Z a-z 0-9 and - _ : .",
        ));
    }
    Ok(prefix)
}

fn redis_url(args: &ConfigArgs, file: &FileConfig) -> Result<Option<String>, ConfigError> {
    let url = args
        .redis_url
        .clone()
        .or(file.redis_url.clone())
        .filter(|u| !u.is_empty());
    if let Some(url) = &url
        && !(url.starts_with("redis://")
            || url.starts_with("rediss://")
            || url.starts_with("unix://"))
    {
        return Err(ConfigError::new(
            "TRUSEC_REDIS_URL",
            "must start with redis://, rediss:// or unix://",
        ));
    }
    Ok(url)
}

fn master_key_source(args: &ConfigArgs, file: &FileConfig) -> Result<MasterKeySource, ConfigError> {
    Ok(match args.master_key.clone().or(file.master_key.clone()) {
        Some(hex) => {
            master_key::parse(&hex).map_err(|e| ConfigError::new("TRUSEC_MASTER_KEY", e))?;
            MasterKeySource::Inline(hex.into())
        }
        None => MasterKeySource::File(PathBuf::from(DEFAULT_MASTER_KEY_FILE)),
    })
}

/// A day at least (shorter would end families before a login session's
/// day is out), ten years at most.
fn refresh_token_family_lifetime(
    args: &ConfigArgs,
    file: &FileConfig,
) -> Result<Duration, ConfigError> {
    bounded_duration(
        "TRUSEC_REFRESH_TOKEN_FAMILY_LIFETIME",
        args.refresh_token_family_lifetime
            .clone()
            .or(file.refresh_token_family_lifetime.clone()),
        trusec_oauth::DEFAULT_REFRESH_FAMILY_LIFETIME,
        (
            Duration::from_secs(86_400),
            Duration::from_secs(10 * 365 * 86_400),
        ),
        "1d and 3650d",
    )
}

/// The password-hashing pool: `TRUSEC_PASSWORD_HASH_THREADS` (default one
/// per core) and `TRUSEC_PASSWORD_HASH_QUEUE`.
fn password_hashing(
    args: &ConfigArgs,
    file: &FileConfig,
    cores: usize,
) -> Result<trusec_storage::hashing::PasswordHashing, ConfigError> {
    Ok(trusec_storage::hashing::PasswordHashing {
        threads: in_range(
            "TRUSEC_PASSWORD_HASH_THREADS",
            args.password_hash_threads.or(file.password_hash_threads),
            cores,
            1..=256,
        )?,
        queue: in_range(
            "TRUSEC_PASSWORD_HASH_QUEUE",
            args.password_hash_queue.or(file.password_hash_queue),
            DEFAULT_PASSWORD_HASH_QUEUE,
            0..=100_000,
        )?,
    })
}

/// RFC 8628 §3.2 `expires_in`: a minute at least (a user needs time to
/// type the code), an hour at most (a code lying about longer only helps
/// a phisher, §5.4).
fn device_code_lifetime(args: &ConfigArgs, file: &FileConfig) -> Result<Duration, ConfigError> {
    bounded_duration(
        "TRUSEC_DEVICE_CODE_LIFETIME",
        args.device_code_lifetime
            .clone()
            .or(file.device_code_lifetime.clone()),
        trusec_oauth::DEFAULT_DEVICE_CODE_TTL,
        (Duration::from_secs(60), Duration::from_secs(3600)),
        "1m and 1h",
    )
}

/// RFC 9126: a request_uri lives seconds to minutes (§2.2: "short"; the
/// RFC's example is 60 s) — 5 s at least for a browser to follow the
/// redirect, 10 minutes at most, as long as an authorization code may.
fn par(args: &ConfigArgs, file: &FileConfig) -> Result<trusec_oauth::ParSettings, ConfigError> {
    Ok(trusec_oauth::ParSettings {
        lifetime: bounded_duration(
            "TRUSEC_PAR_LIFETIME",
            args.par_lifetime.clone().or(file.par_lifetime.clone()),
            trusec_oauth::DEFAULT_PAR_LIFETIME,
            (Duration::from_secs(5), Duration::from_secs(600)),
            "5s and 10m",
        )?,
        required: args.require_par.or(file.require_par).unwrap_or(false),
    })
}

/// `TRUSEC_BIND`: the address to listen on.
fn bind(args: &ConfigArgs, file: &FileConfig) -> Result<SocketAddr, ConfigError> {
    let bind = args
        .bind
        .clone()
        .or(file.bind.clone())
        .unwrap_or_else(|| DEFAULT_BIND.into());
    bind.parse()
        .map_err(|e| ConfigError::new("TRUSEC_BIND", format!("{bind:?}: {e}")))
}

/// What a fetched URL may point at (`TRUSEC_OUTBOUND_ALLOW_PRIVATE`,
/// `TRUSEC_OUTBOUND_ALLOW_HTTP`; both off by default).
fn outbound(args: &ConfigArgs, file: &FileConfig) -> trusec_oauth::fetch::OutboundSettings {
    trusec_oauth::fetch::OutboundSettings {
        allow_private: args
            .outbound_allow_private
            .or(file.outbound_allow_private)
            .unwrap_or(false),
        allow_http: args
            .outbound_allow_http
            .or(file.outbound_allow_http)
            .unwrap_or(false),
    }
}

/// RFC 9449 §11.1: a proof is accepted only for a short time after its
/// `iat` — 5 s at least for a slow network, 5 minutes at most.
fn dpop(
    args: &ConfigArgs,
    file: &FileConfig,
) -> Result<trusec_oauth::dpop::DpopSettings, ConfigError> {
    let defaults = trusec_oauth::dpop::DpopSettings::default();
    Ok(trusec_oauth::dpop::DpopSettings {
        proof_lifetime: bounded_duration(
            "TRUSEC_DPOP_PROOF_LIFETIME",
            args.dpop_proof_lifetime
                .clone()
                .or(file.dpop_proof_lifetime.clone()),
            defaults.proof_lifetime,
            (Duration::from_secs(5), Duration::from_secs(300)),
            "5s and 5m",
        )?,
        require_nonce: args
            .dpop_require_nonce
            .or(file.dpop_require_nonce)
            .unwrap_or(defaults.require_nonce),
    })
}

/// A duration setting within `(min, max)` (`range` in words), `default`
/// when unset.
fn bounded_duration(
    setting: &'static str,
    text: Option<String>,
    default: Duration,
    (min, max): (Duration, Duration),
    range: &str,
) -> Result<Duration, ConfigError> {
    let Some(text) = text else {
        return Ok(default);
    };
    let lifetime = crate::durations::parse(&text)
        .map_err(|e| ConfigError::new(setting, format!("{text:?}: {e}")))?;
    if lifetime < min || lifetime > max {
        return Err(ConfigError::new(
            setting,
            format!("{text:?}: must be between {range}"),
        ));
    }
    Ok(lifetime)
}

/// `off` (the default: events are kept for ever) or a duration of a day
/// at least (a shorter one would delete what an operator has not yet had a
/// chance to export).
fn audit_retention(args: &ConfigArgs, file: &FileConfig) -> Result<Option<Duration>, ConfigError> {
    const SETTING: &str = "TRUSEC_AUDIT_RETENTION";
    let Some(text) = args
        .audit_retention
        .clone()
        .or(file.audit_retention.clone())
    else {
        return Ok(None);
    };
    if text == "off" {
        return Ok(None);
    }
    let retention = crate::durations::parse(&text)
        .map_err(|e| ConfigError::new(SETTING, format!("{text:?}: {e} (or off)")))?;
    if retention < Duration::from_secs(86_400) {
        return Err(ConfigError::new(
            SETTING,
            format!("{text:?}: must be at least 1d, or off"),
        ));
    }
    Ok(Some(retention))
}

fn rate_limits(args: &ConfigArgs, file: &FileConfig) -> Result<RateLimits, ConfigError> {
    let limit = |setting, flag: &Option<String>, file: &Option<String>, default: &str| {
        let text = flag
            .clone()
            .or(file.clone())
            .unwrap_or_else(|| default.to_owned());
        Limit::parse(&text).map_err(|e| ConfigError::new(setting, format!("{text:?}: {e}")))
    };
    let file = &file.rate_limits;
    Ok(RateLimits {
        login: limit(
            "TRUSEC_RATE_LIMIT_LOGIN",
            &args.rate_limit_login,
            &file.login,
            DEFAULT_RATE_LIMIT_LOGIN,
        )?,
        token: limit(
            "TRUSEC_RATE_LIMIT_TOKEN",
            &args.rate_limit_token,
            &file.token,
            DEFAULT_RATE_LIMIT_TOKEN,
        )?,
        management: limit(
            "TRUSEC_RATE_LIMIT_MANAGEMENT",
            &args.rate_limit_management,
            &file.management,
            DEFAULT_RATE_LIMIT_MANAGEMENT,
        )?,
        registration: limit(
            "TRUSEC_RATE_LIMIT_REGISTRATION",
            &args.rate_limit_registration,
            &file.registration,
            DEFAULT_RATE_LIMIT_REGISTRATION,
        )?,
        authorize: limit(
            "TRUSEC_RATE_LIMIT_AUTHORIZE",
            &args.rate_limit_authorize,
            &file.authorize,
            DEFAULT_RATE_LIMIT_AUTHORIZE,
        )?,
        saml: limit(
            "TRUSEC_RATE_LIMIT_SAML",
            &args.rate_limit_saml,
            &file.saml,
            DEFAULT_RATE_LIMIT_SAML,
        )?,
        device_code: limit(
            "TRUSEC_RATE_LIMIT_DEVICE_CODE",
            &args.rate_limit_device_code,
            &file.device_code,
            DEFAULT_RATE_LIMIT_DEVICE_CODE,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ConfigArgs {
        ConfigArgs {
            config: PathBuf::from("/nonexistent/trusec.toml"),
            ..ConfigArgs::default()
        }
    }

    #[test]
    fn defaults_apply_with_nothing_set() {
        let s = Settings::merge(args(), FileConfig::default()).unwrap();
        assert_eq!(s.bind.to_string(), DEFAULT_BIND);
        assert_eq!(s.issuer, DEFAULT_ISSUER);
        assert_eq!(s.database_url, DbUrl::Sqlite("data/trusec.db".into()));
        assert_eq!(
            s.master_key,
            MasterKeySource::File(DEFAULT_MASTER_KEY_FILE.into())
        );
        assert_eq!(s.rate_limits.login, Limit::parse("10/min").unwrap());
        assert_eq!(
            s.refresh_token_family_lifetime,
            Duration::from_secs(90 * 86_400)
        );
    }

    #[test]
    fn flag_or_env_beats_file() {
        let file: FileConfig = toml::from_str(
            "bind = \"0.0.0.0:9000\"\nissuer = \"https://id.example.com/\"\n[rate_limits]\nlogin = \"off\"\n",
        )
        .unwrap();
        let mut a = args();
        a.bind = Some("127.0.0.1:9999".into());
        a.refresh_token_family_lifetime = Some("30d".into());
        let s = Settings::merge(a, file).unwrap();
        assert_eq!(
            s.refresh_token_family_lifetime,
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(s.bind.to_string(), "127.0.0.1:9999");
        assert_eq!(s.issuer, "https://id.example.com");
        assert_eq!(s.rate_limits.login, None);
    }

    #[test]
    fn bad_settings_name_the_setting() {
        type Case = (fn(&mut ConfigArgs), &'static str);
        let cases: [Case; 16] = [
            (|a| a.bind = Some("nowhere".into()), "TRUSEC_BIND"),
            (
                |a| a.redis_key_prefix = Some("a b*".into()),
                "TRUSEC_REDIS_KEY_PREFIX",
            ),
            (
                |a| a.redis_key_prefix = Some(String::new()),
                "TRUSEC_REDIS_KEY_PREFIX",
            ),
            (
                |a| a.database_url = Some("mysql://x".into()),
                "TRUSEC_DATABASE_URL",
            ),
            (|a| a.issuer = Some("ftp://x".into()), "TRUSEC_ISSUER"),
            (|a| a.master_key = Some("short".into()), "TRUSEC_MASTER_KEY"),
            (
                |a| a.rate_limit_token = Some("lots".into()),
                "TRUSEC_RATE_LIMIT_TOKEN",
            ),
            (
                |a| a.refresh_token_family_lifetime = Some("forever".into()),
                "TRUSEC_REFRESH_TOKEN_FAMILY_LIFETIME",
            ),
            (
                |a| a.refresh_token_family_lifetime = Some("1h".into()),
                "TRUSEC_REFRESH_TOKEN_FAMILY_LIFETIME",
            ),
            (
                |a| a.device_code_lifetime = Some("2h".into()),
                "TRUSEC_DEVICE_CODE_LIFETIME",
            ),
            (
                |a| a.device_code_lifetime = Some("30s".into()),
                "TRUSEC_DEVICE_CODE_LIFETIME",
            ),
            (
                |a| a.par_lifetime = Some("1s".into()),
                "TRUSEC_PAR_LIFETIME",
            ),
            (
                |a| a.par_lifetime = Some("1h".into()),
                "TRUSEC_PAR_LIFETIME",
            ),
            (
                |a| a.dpop_proof_lifetime = Some("1h".into()),
                "TRUSEC_DPOP_PROOF_LIFETIME",
            ),
            (
                |a| a.audit_retention = Some("a year".into()),
                "TRUSEC_AUDIT_RETENTION",
            ),
            (
                |a| a.audit_retention = Some("12h".into()),
                "TRUSEC_AUDIT_RETENTION",
            ),
        ];
        for (set, setting) in cases {
            let mut a = args();
            set(&mut a);
            let err = Settings::merge(a, FileConfig::default()).unwrap_err();
            assert_eq!(err.setting, setting);
        }
    }

    #[test]
    fn audit_retention_is_off_or_a_day_at_least() {
        let with = |text: &str| {
            let mut a = args();
            a.audit_retention = Some(text.into());
            Settings::merge(a, FileConfig::default())
                .unwrap()
                .audit_retention
        };
        assert_eq!(with("off"), None);
        assert_eq!(with("400d"), Some(Duration::from_secs(400 * 86_400)));
        assert_eq!(
            Settings::merge(args(), FileConfig::default())
                .unwrap()
                .audit_retention,
            None
        );
    }

    /// `deploy/trusec.example.toml` documents every key, and its values are
    /// the defaults.
    #[test]
    fn the_example_file_is_complete_and_matches_the_defaults() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/trusec.example.toml"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let example: FileConfig = toml::from_str(&text).unwrap();
        let from_example = Settings::merge(args(), example).unwrap();
        let defaults = Settings::merge(args(), FileConfig::default()).unwrap();
        assert_eq!(format!("{from_example:?}"), format!("{defaults:?}"));
        let full = FileConfig {
            bind: Some(String::new()),
            issuer: Some(String::new()),
            database_url: Some(String::new()),
            database_pool_size: Some(1),
            redis_url: Some(String::new()),
            redis_key_prefix: Some(String::new()),
            memory_store_max_mb: Some(1),
            master_key: Some(String::new()),
            open_registration: Some(false),
            client_assertion_max_lifetime_seconds: Some(300),
            setup_allow_remote: Some(false),
            client_id_metadata_documents: Some(true),
            outbound_allow_private: Some(false),
            outbound_allow_http: Some(false),
            trusted_proxies: Some(String::new()),
            refresh_token_family_lifetime: Some(String::new()),
            device_code_lifetime: Some(String::new()),
            par_lifetime: Some(String::new()),
            require_par: Some(false),
            dpop_proof_lifetime: Some(String::new()),
            dpop_require_nonce: Some(false),
            audit_retention: Some(String::new()),
            workers: Some(1),
            password_hash_threads: Some(1),
            password_hash_queue: Some(1),
            log: Some(String::new()),
            log_format: Some(LogFormat::Text),
            rate_limits: FileRateLimits {
                login: Some(String::new()),
                token: Some(String::new()),
                management: Some(String::new()),
                registration: Some(String::new()),
                authorize: Some(String::new()),
                saml: Some(String::new()),
                device_code: Some(String::new()),
            },
        };
        let every_key = toml::to_string(&full).unwrap();
        for line in every_key.lines().filter(|l| l.contains(" = ")) {
            let key = line.split(" = ").next().unwrap();
            assert!(
                text.lines()
                    .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} = "))),
                "deploy/trusec.example.toml does not document {key}"
            );
        }
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        assert!(toml::from_str::<FileConfig>("bnid = \"x\"").is_err());
    }
}
