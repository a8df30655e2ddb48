//! The CLI commands other than `serve`.

use crate::cli::{EnvironmentArg, KeyTypeArg};
use crate::settings::{ConfigError, Settings};
use crate::startup::{SecretsMode, deployment_secrets, open_database};
use crate::{durations, validate};
use anyhow::{Context, bail};
use diesel::Connection;
use secrecy::ExposeSecret;
use std::io::Read;
use trusec_storage::api_keys::{self, KeyType};
use trusec_storage::audit::{self, Actor, EventType, NewAuditEvent};
use trusec_storage::users::{self, NewUser};
use trusec_storage::{Clock, admins, environments, ids, secrets};

/// `trusec migrate`.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn migrate(settings: &Settings) -> Result<(), ConfigError> {
    open_database(settings).await?;
    eprintln!("migrations are up to date");
    Ok(())
}

/// `trusec keys create`: prints only the key.
///
/// # Errors
/// Bad arguments or storage failures.
pub async fn create_key(
    settings: &Settings,
    key_type: KeyTypeArg,
    name: &str,
    expires_in: &str,
) -> anyhow::Result<String> {
    let key_type = match key_type {
        KeyTypeArg::Secret => KeyType::Secret,
        KeyTypeArg::Public => KeyType::Public,
        KeyTypeArg::Test => KeyType::Test,
    };
    let name = name.trim().to_owned();
    if name.is_empty() {
        bail!("--name must not be empty");
    }
    let lifetime = validate::duration(
        "expires_in",
        &durations::DurationInput::Text(expires_in.to_owned()),
        validate::API_KEY_LIFETIME_MIN,
        validate::API_KEY_LIFETIME_MAX,
    )
    .map_err(|e| anyhow::anyhow!("--expires-in: {e}"))?;
    let db = open_database(settings).await?;
    let key = audit_key_for_writing(settings, &db).await?;
    let clock = Clock::System;
    let now = clock.now_naive();
    let expires_at = Some(now + durations::to_delta(lifetime));
    // The key and its audit event commit together: a key nobody saw being
    // created must not exist.
    let minted = db
        .run(move |conn| {
            conn.transaction(|conn| {
                let minted = api_keys::create(conn, key_type, &name, now, expires_at).map_err(
                    |e| match e {
                        api_keys::CreateKeyError::Storage(s) => s,
                        api_keys::CreateKeyError::Secret(s) => {
                            trusec_storage::StorageError::backend(s)
                        }
                    },
                )?;
                let event = NewAuditEvent::new(
                    EventType::ApiKeyCreated,
                    Some(key_type.environment()),
                    Actor::cli(),
                )
                .data(serde_json::json!({"api_key_id": minted.row.id, "type": key_type.as_str()}));
                audit::append(conn, &key, &[event], now)?;
                Ok(minted)
            })
        })
        .await?;
    Ok(minted.key)
}

/// `trusec users create`: the password comes from standard input.
///
/// # Errors
/// Bad arguments, a taken email, or storage failures.
pub async fn create_user(
    settings: &Settings,
    email: &str,
    name: Option<String>,
    environment: EnvironmentArg,
) -> anyhow::Result<serde_json::Value> {
    let email = validate::email("email", email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let name = validate::name("name", name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!(
            "no password on standard input (pipe it in: echo \"$PASSWORD\" | trusec users create ...)"
        );
    }
    validate::password(&password).map_err(|e| anyhow::anyhow!("password: {e}"))?;
    let env = match environment {
        EnvironmentArg::Live => ids::ENV_LIVE,
        EnvironmentArg::Test => ids::ENV_TEST,
    };
    let db = open_database(settings).await?;
    let policy = db
        .run(move |conn| trusec_storage::policies::get(conn, env))
        .await?;
    policy
        .password
        .check(&password)
        .map_err(|e| anyhow::anyhow!("password: {e} (the environment's password policy)"))?;
    let hash = tokio::task::spawn_blocking(move || secrets::hash_password(&password)).await??;
    let key = audit_key_for_writing(settings, &db).await?;
    let now = Clock::System.now_naive();
    let new = NewUser {
        environment_id: env.to_owned(),
        email,
        password_hash: Some(hash),
        name,
        given_name: None,
        family_name: None,
        groups: Vec::new(),
        metadata: serde_json::json!({}),
    };
    let row = db
        .run(move |conn| {
            conn.transaction(|conn| {
                let row = users::insert(conn, new, now)?;
                let event = NewAuditEvent::new(EventType::UserCreated, Some(env), Actor::cli())
                    .user(&row.id)
                    .data(serde_json::json!({"email": row.email}));
                audit::append(conn, &key, &[event], now)?;
                Ok(row)
            })
        })
        .await
        .map_err(|e| match e {
            trusec_storage::StorageError::Conflict(_) => {
                anyhow::anyhow!("a user with this email already exists")
            }
            other => other.into(),
        })?;
    let user = row.to_user()?;
    Ok(serde_json::to_value(user)?)
}

/// `trusec audit verify [--expect-head SEQ:HASH]`: returns the report; the
/// caller sets the exit code. The master key must exist already.
///
/// # Errors
/// Bad configuration or storage failures.
pub async fn verify_audit(
    settings: &Settings,
    expect: Option<audit::Head>,
) -> anyhow::Result<audit::ChainReport> {
    let master_key = settings.load_existing_master_key()?;
    let db = open_database(settings).await?;
    let key = deployment_secrets(&db, master_key.expose_secret(), SecretsMode::ReadOnly)
        .await?
        .audit;
    Ok(db
        .run(move |conn| audit::verify_chain(conn, &key, expect.as_ref()))
        .await?)
}

/// One line of `trusec audit export`: the event as `/v1/audit-events`
/// shows it, with its place in the chain.
#[derive(serde::Serialize)]
struct ExportLine {
    seq: i64,
    #[serde(flatten)]
    event: audit::AuditEvent,
}

/// `trusec audit export`: every event after `after` (and since `since`) as
/// JSON lines on standard output, oldest first, read in batches so that a
/// log of any size streams in bounded memory. Returns how many were written.
///
/// # Errors
/// Storage failures, a corrupt event, or a closed standard output.
pub async fn export_audit(
    settings: &Settings,
    since: Option<chrono::NaiveDateTime>,
    after: i64,
) -> anyhow::Result<u64> {
    use std::io::Write;
    const BATCH: i64 = 1000;
    let db = open_database(settings).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut cursor, mut written) = (after, 0u64);
    loop {
        let rows = db
            .run(move |conn| audit::export_batch(conn, cursor, since, BATCH))
            .await?;
        let Some(last) = rows.last() else { break };
        cursor = last.seq;
        for row in &rows {
            let line = ExportLine {
                seq: row.seq,
                event: row.to_event()?,
            };
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
            written += 1;
        }
    }
    out.flush()?;
    Ok(written)
}

/// `trusec audit prune --before DATE`: deletes the events older than DATE
/// once they verify under the deployment's audit key, recording where the
/// chain now starts (`audit::prune`; audited as `audit.chain.pruned`).
///
/// # Errors
/// Bad configuration or storage failures.
pub async fn prune_audit(
    settings: &Settings,
    before: chrono::NaiveDateTime,
) -> anyhow::Result<audit::Pruning> {
    let db = open_database(settings).await?;
    let key = audit_key_for_writing(settings, &db).await?;
    let now = Clock::System.now_naive();
    Ok(db
        .run(move |conn| audit::prune(conn, &key, before, now))
        .await?)
}

/// The audit key for a command that appends events, once the chain is
/// ready for it: anchored if it predates keyed hashes, and its last event
/// verifying under this master key (so a command run with another key, or
/// from a directory with another `data/master.key`, writes nothing).
async fn audit_key_for_writing(
    settings: &Settings,
    db: &trusec_storage::Db,
) -> anyhow::Result<audit::AuditKey> {
    let master_key = settings.load_master_key()?;
    let key = deployment_secrets(db, master_key.expose_secret(), SecretsMode::Create)
        .await?
        .audit;
    let anchor_key = key.clone();
    let now = Clock::System.now_naive();
    match db
        .run(move |conn| audit::anchor(conn, &anchor_key, now))
        .await?
    {
        audit::Anchoring::TailUnverified { seq } => Err(ConfigError::new(
            "TRUSEC_MASTER_KEY",
            format!(
                "the last audit event (#{seq}) does not verify under this master key; is it the one `trusec serve` uses? (`trusec audit verify` tells more)"
            ),
        )
        .into()),
        audit::Anchoring::Empty | audit::Anchoring::Keyed | audit::Anchoring::Anchored { .. } => {
            Ok(key)
        }
    }
}

/// The longest standard input `trusec master-key rotate` reads: a key is
/// 64 hex characters; anything much longer is not one.
const NEW_KEY_INPUT_MAX: u64 = 1024;

/// `trusec master-key rotate [--generate]`: re-seals every sealed value
/// under a new master key in one transaction (audited), then, for a key
/// kept in a file, replaces the file. A current key that does not open
/// every value changes nothing.
///
/// # Errors
/// Bad input, a value that does not open under the current key, storage
/// failures, or (after the commit: the message says so) a key file that
/// could not be replaced.
pub async fn rotate_master_key(settings: &Settings, generate: bool) -> anyhow::Result<()> {
    let current = settings.load_existing_master_key()?;
    let new = if generate {
        crate::master_key::generate()?
    } else {
        read_new_key()?
    };
    if crate::master_key::same(&current, &new) {
        bail!("the new master key is the current one; nothing changed");
    }
    let db = open_database(settings).await?;
    // The deployment secrets exist (made under the current key) and the
    // chain's tail verifies: the current key is the deployment's.
    audit_key_for_writing(settings, &db)
        .await
        .map_err(|e| anyhow::anyhow!("nothing changed: {e}"))?;
    let (old_bytes, new_bytes) = (*current.expose_secret(), *new.expose_secret());
    let now = Clock::System.now_naive();
    let resealed = db
        .run(move |conn| {
            Ok(trusec_storage::reseal::rotate_master_key(
                conn, &old_bytes, &new_bytes, now,
            ))
        })
        .await?
        .map_err(|e| anyhow::anyhow!("nothing changed: {e}"))?;
    if generate {
        // Printed before the key file is touched, so that it is never lost.
        println!("{}", crate::master_key::to_hex(&new));
    }
    eprintln!(
        "re-sealed {} signing keys, {} SAML IdP keys, {} deployment secrets, {} TOTP secrets and {} client secrets under the new master key",
        resealed.signing_keys,
        resealed.saml_idp_keys,
        resealed.deployment_secrets,
        resealed.totp_secrets,
        resealed.client_secrets
    );
    match &settings.master_key {
        crate::settings::MasterKeySource::File(path) => {
            crate::master_key::replace(path, &new).with_context(|| {
                format!(
                    "the database is sealed under the new key, but {} still holds the old one: write the new key there (mode 0600) before starting",
                    path.display()
                )
            })?;
            eprintln!(
                "{} now holds the new key; start every instance",
                path.display()
            );
        }
        crate::settings::MasterKeySource::Inline(_) => {
            eprintln!("set TRUSEC_MASTER_KEY to the new key, then start every instance");
        }
    }
    Ok(())
}

/// The new key from standard input: 64 hex characters, bounded.
fn read_new_key() -> anyhow::Result<crate::master_key::MasterKey> {
    let mut text = String::new();
    std::io::stdin()
        .take(NEW_KEY_INPUT_MAX)
        .read_to_string(&mut text)
        .context("reading the new master key from standard input")?;
    let text = secrecy::SecretString::from(text);
    crate::master_key::parse(text.expose_secret()).map_err(|e| {
        anyhow::anyhow!(
            "the new master key on standard input {e} (or pass --generate); nothing changed"
        )
    })
}

/// What `trusec admins add` did.
#[derive(Debug)]
pub enum AdminAdded {
    /// The user existed and joined `trusec-admins` (or was in it already).
    Joined { email: String, already: bool },
    /// No such user: a setup link where they create their account.
    Link(String),
}

impl std::fmt::Display for AdminAdded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Joined {
                email,
                already: true,
            } => {
                write!(f, "{email} is already an administrator")
            }
            Self::Joined {
                email,
                already: false,
            } => {
                write!(
                    f,
                    "{email} is now an administrator (member of {})",
                    admins::ADMIN_GROUP
                )
            }
            Self::Link(url) => write!(
                f,
                "Open this link to create the administrator account (single use, valid 30 minutes): {url}"
            ),
        }
    }
}

/// `trusec admins add EMAIL`: an existing user joins `trusec-admins`
/// (audited `user.updated`); otherwise a setup link bound to EMAIL is
/// made (the same as `trusec serve` prints on the first run).
///
/// # Errors
/// A bad email, or storage failures.
pub async fn add_admin(
    settings: &Settings,
    email: &str,
    environment: EnvironmentArg,
) -> anyhow::Result<AdminAdded> {
    let email = validate::email("email", email).map_err(|e| anyhow::anyhow!("EMAIL: {e}"))?;
    let env = match environment {
        EnvironmentArg::Live => ids::ENV_LIVE,
        EnvironmentArg::Test => ids::ENV_TEST,
    };
    let db = open_database(settings).await?;
    let key = audit_key_for_writing(settings, &db).await?;
    let now = Clock::System.now_naive();
    let row = db
        .run(environments::list)
        .await?
        .into_iter()
        .find(|r| r.id == env)
        .context("the environment does not exist")?;
    let environment = trusec_ui::Environment::new(&row, &settings.issuer)?;
    let outcome = db
        .run(move |conn| {
            conn.transaction(|conn| {
                let Some(user) = users::find_by_email(conn, env, &email)? else {
                    return admins::create_setup_token(conn, env, Some(&email), now).map(Err);
                };
                let mut groups: Vec<String> = serde_json::from_str(&user.groups)?;
                if groups.iter().any(|g| g == admins::ADMIN_GROUP) {
                    return Ok(Ok((user.email, true)));
                }
                groups.push(admins::ADMIN_GROUP.to_owned());
                let patch = users::UserPatch {
                    groups: Some(groups.clone()),
                    ..users::UserPatch::default()
                };
                let row = users::update(conn, env, &user.id, patch, now)?.row;
                let event = NewAuditEvent::new(EventType::UserUpdated, Some(env), Actor::cli())
                    .user(&row.id)
                    .data(serde_json::json!({"groups": groups}));
                audit::append(conn, &key, &[event], now)?;
                Ok(Ok((row.email, false)))
            })
        })
        .await?;
    Ok(match outcome {
        Ok((email, already)) => AdminAdded::Joined { email, already },
        Err(token) => AdminAdded::Link(crate::console::setup_url(&environment, &token)),
    })
}
