//! Structured logs through `tracing`: text for people, JSON lines for
//! machines. Each request runs in a span carrying its request id.

use crate::cli::LogFormat;
use crate::settings::ConfigError;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once per process).
///
/// # Errors
/// When the filter does not parse.
pub fn init(filter: &str, format: LogFormat) -> Result<(), ConfigError> {
    let filter = EnvFilter::try_new(filter).map_err(|e| ConfigError::new("TRUSEC_LOG", e))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    drop(installed);
    Ok(())
}
