//! The command line. Every setting is a global flag with a `TRUSEC_*`
//! environment variable behind it (clap gives the flag precedence); the
//! optional `trusec.toml` and the defaults are merged in [`crate::settings`].

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "trusec",
    version,
    about = "TruSec: an OAuth 2.0 / OpenID Connect and SAML 2.0 identity provider"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run migrations, then serve HTTP until SIGTERM or SIGINT.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Make console administrators.
    #[command(subcommand)]
    Admins(AdminsCommand),
    /// Verify, export or prune the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage the master key.
    #[command(subcommand)]
    MasterKey(MasterKeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum MasterKeyCommand {
    /// Re-seal every sealed value (all environments' signing and SAML keys,
    /// the deployment secrets) under a new key, in one transaction. The new
    /// key is read from standard input (64 hex characters), or made with
    /// --generate and printed once. A key from data/master.key is replaced
    /// there after the commit. Stop every instance first; start them with
    /// the new key.
    Rotate {
        /// Make the new key (printed once, on standard output) instead of reading it.
        #[arg(long)]
        generate: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key and print only the key, on one line.
    Create {
        /// secret (trusec_sk_), public (trusec_pk_) or test (trusec_test_).
        #[arg(long = "type", value_enum)]
        key_type: KeyTypeArg,
        /// A name to recognise the key by.
        #[arg(long)]
        name: String,
        /// Lifetime, e.g. 90d (the default), 24h.
        #[arg(long, default_value = "90d")]
        expires_in: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KeyTypeArg {
    Secret,
    Public,
    Test,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; the password is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// The environment the user lives in.
        #[arg(long, value_enum, default_value = "live")]
        environment: EnvironmentArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminsCommand {
    /// Makes EMAIL an administrator (a member of `trusec-admins`): an existing user joins the group; otherwise prints a single-use setup link (valid 30 minutes) where they create their account.
    Add {
        email: String,
        #[arg(long, value_enum, default_value = "live")]
        environment: EnvironmentArg,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EnvironmentArg {
    Live,
    Test,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain, print its head (SEQ:HASH), and report the first
    /// broken link (exit 1 if any).
    Verify {
        /// A head printed by an earlier run: also fail unless the chain
        /// still holds that event with that hash (a deleted tail, or
        /// rewritten history).
        #[arg(long, value_name = "SEQ:HASH", value_parser = trusec_storage::audit::Head::parse)]
        expect_head: Option<trusec_storage::audit::Head>,
    },
    /// Write events as JSON lines (one object per line, oldest first, with
    /// its `seq`) to standard output, for a SIEM or an archive.
    Export {
        /// Only events created at or after this time (RFC 3339, or YYYY-MM-DD for midnight UTC).
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        since: Option<chrono::NaiveDateTime>,
        /// Only events after this seq (the last one a previous export wrote).
        #[arg(long, value_name = "SEQ", default_value_t = 0)]
        after: i64,
    },
    /// Delete the events created before DATE, once they verify; the chain
    /// stays verifiable from the recorded prune point (export first).
    Prune {
        /// RFC 3339, or YYYY-MM-DD for midnight UTC.
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        before: chrono::NaiveDateTime,
    },
}

/// A point in time on the command line: RFC 3339, or a date (midnight UTC).
///
/// # Errors
/// A message saying which forms are accepted.
pub fn parse_date(text: &str) -> Result<chrono::NaiveDateTime, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.naive_utc())
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| d.and_time(chrono::NaiveTime::MIN))
        })
        .map_err(|_| "expected RFC 3339 (2026-01-31T00:00:00Z) or YYYY-MM-DD".to_owned())
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Settings given as flags or environment variables. Every field is optional
/// here; defaults are applied after the TOML file is merged in.
#[derive(Clone, Debug, Default, Args)]
pub struct ConfigArgs {
    /// Path of an optional TOML settings file.
    #[arg(
        long,
        env = "TRUSEC_CONFIG",
        global = true,
        default_value = "trusec.toml"
    )]
    pub config: PathBuf,
    /// Listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "TRUSEC_BIND", global = true)]
    pub bind: Option<String>,
    /// Public base URL: the live environment's issuer (`iss` of its tokens); other environments at {issuer}/env/NAME [default: http://127.0.0.1:8080].
    #[arg(long, env = "TRUSEC_ISSUER", global = true)]
    pub issuer: Option<String>,
    /// sqlite://PATH or postgres://… [default: sqlite://data/trusec.db].
    #[arg(
        long,
        env = "TRUSEC_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Database connections per instance [default: 10].
    #[arg(long, env = "TRUSEC_DATABASE_POOL_SIZE", global = true)]
    pub database_pool_size: Option<u32>,
    /// redis://… for state shared by every instance [default: in-process].
    #[arg(long, env = "TRUSEC_REDIS_URL", global = true, hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key TruSec writes, so that several deployments can share one Redis: 1-64 of A-Z a-z 0-9 and - _ : . [default: trusec:].
    #[arg(long, env = "TRUSEC_REDIS_KEY_PREFIX", global = true)]
    pub redis_key_prefix: Option<String>,
    /// Without Redis: megabytes of short-lived state kept in-process; once full, new sign-ins, SAML requests and logouts get 503 until entries expire, while revocations and replay markers are always kept [default: 64].
    #[arg(long, env = "TRUSEC_MEMORY_STORE_MAX_MB", global = true)]
    pub memory_store_max_mb: Option<usize>,
    /// `TRUSEC_MASTER_KEY`: 64 hex characters [default: generated into
    /// data/master.key]. From the environment (or `trusec.toml`) only, never
    /// a flag: a command line is visible to every user of the machine
    /// (`ps`, `/proc/PID/cmdline`).
    #[arg(skip = std::env::var("TRUSEC_MASTER_KEY").ok())]
    pub master_key: Option<String>,
    /// Comma-separated CIDRs of the reverse proxies in front of TruSec; from them, the client IP is the right-most X-Forwarded-For (or Forwarded) address that is not itself trusted [default: none].
    #[arg(long, env = "TRUSEC_TRUSTED_PROXIES", global = true)]
    pub trusted_proxies: Option<String>,
    /// Allow anonymous RFC 7591 registration of public clients [default: false].
    #[arg(long, env = "TRUSEC_OPEN_REGISTRATION", global = true)]
    pub open_registration: Option<bool>,
    /// How far ahead (seconds) a private_key_jwt client assertion's exp may be; 30 s of clock skew are added (RFC 7523 §3) [default: 300].
    #[arg(
        long,
        env = "TRUSEC_CLIENT_ASSERTION_MAX_LIFETIME_SECONDS",
        global = true
    )]
    pub client_assertion_max_lifetime_seconds: Option<u64>,
    /// Serve the administrator setup links (`/console/setup`) to clients that are not on a loopback address [default: false].
    #[arg(long, env = "TRUSEC_SETUP_ALLOW_REMOTE", global = true)]
    pub setup_allow_remote: Option<bool>,
    /// Resolve a client_id that is an https URL by fetching the client ID metadata document there (MCP clients; draft-ietf-oauth-client-id-metadata-document) [default: true].
    #[arg(long, env = "TRUSEC_CLIENT_ID_METADATA_DOCUMENTS", global = true)]
    pub client_id_metadata_documents: Option<bool>,
    /// Let outbound fetches (jwks_uri, client ID metadata documents) reach loopback, private, link-local and other non-public addresses [default: false].
    #[arg(long, env = "TRUSEC_OUTBOUND_ALLOW_PRIVATE", global = true)]
    pub outbound_allow_private: Option<bool>,
    /// Let outbound fetches use http:// URLs, unprotected on the way: for tests only [default: false].
    #[arg(long, env = "TRUSEC_OUTBOUND_ALLOW_HTTP", global = true)]
    pub outbound_allow_http: Option<bool>,
    /// Failed sign-ins per account and IP (ceilings: ten times that per account, a hundred times per IP): N/s, N/min, N/h or off [default: 10/min].
    #[arg(long, env = "TRUSEC_RATE_LIMIT_LOGIN", global = true)]
    pub rate_limit_login: Option<String>,
    /// Token requests per confidential client, failed grants per public client and IP (ten times that per IP): N/s, N/min, N/h or off [default: 1200/min].
    #[arg(long, env = "TRUSEC_RATE_LIMIT_TOKEN", global = true)]
    pub rate_limit_token: Option<String>,
    /// Management API requests per API key (ten times that per IP): N/s, N/min, N/h or off [default: 6000/min].
    #[arg(long, env = "TRUSEC_RATE_LIMIT_MANAGEMENT", global = true)]
    pub rate_limit_management: Option<String>,
    /// Anonymous client registrations per IP: N/s, N/min, N/h or off [default: 20/h].
    #[arg(long, env = "TRUSEC_RATE_LIMIT_REGISTRATION", global = true)]
    pub rate_limit_registration: Option<String>,
    /// Authorization and RP-initiated logout requests per IP (each stores an interaction): N/s, N/min, N/h or off [default: 300/min].
    #[arg(long, env = "TRUSEC_RATE_LIMIT_AUTHORIZE", global = true)]
    pub rate_limit_authorize: Option<String>,
    /// SAML SSO and SLO messages per IP: N/s, N/min, N/h or off [default: 300/min].
    #[arg(long, env = "TRUSEC_RATE_LIMIT_SAML", global = true)]
    pub rate_limit_saml: Option<String>,
    /// Wrong user codes typed on the /device page per IP (RFC 8628 §5.1): N/s, N/min, N/h or off [default: 10/min].
    #[arg(long, env = "TRUSEC_RATE_LIMIT_DEVICE_CODE", global = true)]
    pub rate_limit_device_code: Option<String>,
    /// Absolute lifetime of a refresh-token family: rotation never extends it; e.g. 90d, 720h [default: 90d].
    #[arg(long, env = "TRUSEC_REFRESH_TOKEN_FAMILY_LIFETIME", global = true)]
    pub refresh_token_family_lifetime: Option<String>,
    /// How long a device code and its user code live (RFC 8628 §3.2 expires_in): 1m to 1h, e.g. 10m [default: 10m].
    #[arg(long, env = "TRUSEC_DEVICE_CODE_LIFETIME", global = true)]
    pub device_code_lifetime: Option<String>,
    /// How long a pushed authorization request's request_uri may be used (RFC 9126 §2.2 expires_in): 5s to 10m, e.g. 60s [default: 60s].
    #[arg(long, env = "TRUSEC_PAR_LIFETIME", global = true)]
    pub par_lifetime: Option<String>,
    /// Every client must push its authorization requests to /oauth/par first (RFC 9126 §5) [default: false].
    #[arg(long, env = "TRUSEC_REQUIRE_PAR", global = true)]
    pub require_par: Option<bool>,
    /// How old a DPoP proof's iat may be (RFC 9449 §11.1): 5s to 5m, e.g. 60s [default: 60s].
    #[arg(long, env = "TRUSEC_DPOP_PROOF_LIFETIME", global = true)]
    pub dpop_proof_lifetime: Option<String>,
    /// Every DPoP proof must carry a nonce this server gave in DPoP-Nonce (RFC 9449 §8, §9) [default: false].
    #[arg(long, env = "TRUSEC_DPOP_REQUIRE_NONCE", global = true)]
    pub dpop_require_nonce: Option<bool>,
    /// Delete audit events older than this (once they verify; the chain stays verifiable from the prune point): e.g. 400d, or off [default: off].
    #[arg(long, env = "TRUSEC_AUDIT_RETENTION", global = true)]
    pub audit_retention: Option<String>,
    /// HTTP worker threads [default: one per core].
    #[arg(long, env = "TRUSEC_WORKERS", global = true)]
    pub workers: Option<usize>,
    /// Password-hashing threads; each keeps 19 MiB of Argon2 memory, so they bound what password load can take [default: one per core].
    #[arg(long, env = "TRUSEC_PASSWORD_HASH_THREADS", global = true)]
    pub password_hash_threads: Option<usize>,
    /// Password hashes (sign-ins, new passwords) that may wait for a hashing thread; beyond them a request gets 503 with Retry-After [default: 128].
    #[arg(long, env = "TRUSEC_PASSWORD_HASH_QUEUE", global = true)]
    pub password_hash_queue: Option<usize>,
    /// Log filter, e.g. info or trusec=debug [default: info].
    #[arg(long, env = "TRUSEC_LOG", global = true)]
    pub log: Option<String>,
    /// text or json [default: text].
    #[arg(long, env = "TRUSEC_LOG_FORMAT", global = true, value_enum)]
    pub log_format: Option<LogFormat>,
}

/// The configuration reference (docs/configuration.md), rendered from the
/// flags above: it is generated from the code, so it cannot drift.
pub fn configuration_reference() -> String {
    use clap::CommandFactory;
    let command = Cli::command();
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated from the `trusec` command-line definition by\n\
         `UPDATE_DOCS=1 cargo test -p trusec-server configuration_reference`; a test\n\
         fails when it is out of date. Precedence: flag > environment variable >\n\
         `trusec.toml` (keys as in [deploy/trusec.example.toml](../deploy/trusec.example.toml)) > default.\n\n\
         | flag | environment variable | meaning |\n| --- | --- | --- |\n",
    );
    for arg in command.get_arguments() {
        let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
            continue;
        };
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        let mut meaning = help.replace('|', "\\|");
        if let Some(default) = arg.get_default_values().first() {
            meaning.push_str(&format!(" [default: {}]", default.to_string_lossy()));
        }
        out.push_str(&format!(
            "| `--{long}` | `{}` | {meaning} |\n",
            env.to_string_lossy()
        ));
    }
    // The one setting with no flag (see `ConfigArgs::master_key`).
    out.push_str(
        "| (none: environment or `trusec.toml` only, since a command line is visible to every user of the machine) \
         | `TRUSEC_MASTER_KEY` | 64 hex characters [default: generated into data/master.key, mode 0600] |\n",
    );
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn configuration_reference_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let rendered = super::configuration_reference();
        if std::env::var("UPDATE_DOCS").is_ok() {
            std::fs::write(path, &rendered).unwrap();
        }
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(
            on_disk, rendered,
            "docs/configuration.md is stale: run UPDATE_DOCS=1 cargo test -p trusec-server configuration_reference"
        );
        for var in [
            "TRUSEC_BIND",
            "TRUSEC_DATABASE_URL",
            "TRUSEC_REDIS_URL",
            "TRUSEC_MASTER_KEY",
            "TRUSEC_RATE_LIMIT_LOGIN",
        ] {
            assert!(rendered.contains(var), "{var}");
        }
    }
}
