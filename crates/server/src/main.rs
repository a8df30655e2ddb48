//! `trusec`: the binary.

use clap::Parser;
use std::process::ExitCode;
use trusec_server::cli::{
    AdminsCommand, AuditCommand, Cli, Command, KeysCommand, MasterKeyCommand, UsersCommand,
};
use trusec_server::settings::{ConfigError, Settings};
use trusec_server::startup::StartupError;
use trusec_server::{Application, commands, telemetry};

/// The contract's exit code for bad configuration.
const EXIT_CONFIG: u8 = 2;

fn config_failure(e: &ConfigError) -> ExitCode {
    eprintln!("trusec: {e}");
    ExitCode::from(EXIT_CONFIG)
}

#[actix_web::main]
async fn main() -> ExitCode {
    // First, so that OpenSSL never registers its exit-time cleanup (libpq and
    // xmlsec would otherwise initialise it without OPENSSL_INIT_NO_ATEXIT),
    // which can race threads still running at exit.
    openssl::init();
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.config) {
        Ok(s) => s,
        Err(e) => return config_failure(&e),
    };
    if let Err(e) = telemetry::init(&settings.log, settings.log_format) {
        return config_failure(&e);
    }
    match cli.command {
        Command::Serve => serve(settings).await,
        Command::Migrate => match commands::migrate(&settings).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => config_failure(&e),
        },
        Command::Keys(KeysCommand::Create {
            key_type,
            name,
            expires_in,
        }) => report(commands::create_key(&settings, key_type, &name, &expires_in).await),
        Command::Users(UsersCommand::Create {
            email,
            name,
            environment,
        }) => report(
            commands::create_user(&settings, &email, name, environment)
                .await
                .map(|u| u.to_string()),
        ),
        Command::Admins(AdminsCommand::Add { email, environment }) => {
            report(commands::add_admin(&settings, &email, environment).await)
        }
        Command::Audit(AuditCommand::Verify { expect_head }) => {
            match commands::verify_audit(&settings, expect_head).await {
                Ok(report) => verified(&report),
                Err(e) => report::<String>(Err(e)),
            }
        }
        Command::Audit(AuditCommand::Export { since, after }) => {
            match commands::export_audit(&settings, since, after).await {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => report::<String>(Err(e)),
            }
        }
        Command::Audit(AuditCommand::Prune { before }) => {
            match commands::prune_audit(&settings, before).await {
                Ok(pruning) => pruned(&pruning),
                Err(e) => report::<String>(Err(e)),
            }
        }
        Command::MasterKey(MasterKeyCommand::Rotate { generate }) => {
            match commands::rotate_master_key(&settings, generate).await {
                Ok(()) => ExitCode::SUCCESS,
                // Nothing changed, or (after the commit) the key file
                // could not be replaced: the message says which.
                Err(e) => {
                    eprintln!("trusec: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve(settings: Settings) -> ExitCode {
    let bind = settings.bind;
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(StartupError::Config(e)) => return config_failure(&e),
        Err(e) => {
            eprintln!("trusec: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(%bind, port = app.port(), "trusec is serving");
    // First run: no administrator yet. One line on stdout, the link
    // itself (a secret), never in the logs.
    match trusec_server::console::first_run_link(app.state()).await {
        Ok(Some(url)) => println!(
            "No administrator yet: create the first one at {url} (single use, valid 30 minutes)"
        ),
        Ok(None) => {}
        Err(e) => {
            eprintln!("trusec: cannot make the first-run setup link: {e}");
            return ExitCode::FAILURE;
        }
    }
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trusec: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the outcome of `trusec audit verify` on one line: the head of a
/// good chain, or the first broken link (exit 1).
fn verified(report: &trusec_storage::audit::ChainReport) -> ExitCode {
    match &report.first_broken {
        None => {
            println!(
                "audit chain OK: {} events verified, head {}",
                report.checked, report.head
            );
            ExitCode::SUCCESS
        }
        Some(link) if link.id.is_empty() => {
            println!(
                "audit chain BROKEN: {}; {} events verified, head {}",
                link.reason, report.checked, report.head
            );
            ExitCode::FAILURE
        }
        Some(link) => {
            println!(
                "audit chain BROKEN at event #{} ({}): {}; {} events before it verified",
                link.seq, link.id, link.reason, report.checked
            );
            ExitCode::FAILURE
        }
    }
}

/// Prints the outcome of `trusec audit prune` on one line (exit 1 when the
/// part to prune does not verify, and nothing was deleted).
fn pruned(pruning: &trusec_storage::audit::Pruning) -> ExitCode {
    use trusec_storage::audit::Pruning;
    match pruning {
        Pruning::Nothing => {
            println!("nothing to prune: no event is older than that");
            ExitCode::SUCCESS
        }
        Pruning::Pruned { events, through } => {
            println!("pruned {events} events through {through}; the chain now starts after it");
            ExitCode::SUCCESS
        }
        Pruning::Refused(link) => {
            println!(
                "nothing pruned: the audit chain is BROKEN at event #{}: {}",
                link.seq, link.reason
            );
            ExitCode::FAILURE
        }
    }
}

/// Prints a command's output, or its error (exit 2 for configuration, 1 otherwise).
fn report<T: std::fmt::Display>(result: anyhow::Result<T>) -> ExitCode {
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => match e.downcast_ref::<ConfigError>() {
            Some(config) => config_failure(config),
            None => {
                eprintln!("trusec: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
