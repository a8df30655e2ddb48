//! The `trusec` server: settings, the CLI commands, the `/v1` management API
//! and the operations endpoints, assembled by [`startup::Application`].

pub mod api;
pub mod cli;
pub mod commands;
pub mod console;
pub mod durations;
pub mod error;
pub mod extract;
pub mod home;
pub mod master_key;
pub mod openapi;
pub mod ops;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod validate;

pub use settings::Settings;
pub use startup::Application;
