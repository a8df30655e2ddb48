//! TruSec storage: one diesel code path over SQLite and PostgreSQL, the
//! domain records it keeps (environments, users, API keys, sessions, OAuth
//! clients and tokens, SAML service providers, the audit chain), and the
//! ephemeral store (Redis or in-process) for short-lived state such as
//! rate-limit counters and the read-through caches of [`cache`].
//!
//! Repository functions take `&mut DbConnection` so that callers can compose
//! them inside one `conn.transaction(..)`; [`Db::run`] moves the blocking
//! diesel work off the async runtime.

pub mod access_tokens;
pub mod admins;
pub mod api_keys;
pub mod assurance;
pub mod audit;
pub mod authn;
pub mod cache;
pub mod clients;
pub mod clock;
pub mod consents;
pub mod core;
pub mod db;
pub mod deployment_secrets;
pub mod device_grants;
pub mod environments;
pub mod ephemeral;
pub mod error;
pub mod hashing;
pub mod ids;
pub mod key_lifecycle;
pub mod metrics;
pub mod mfa;
pub mod page;
pub mod passkeys;
pub mod policies;
pub mod pushed_requests;
pub mod rate_limit;
pub mod refresh_tokens;
pub mod refusal;
pub mod reseal;
pub mod resources;
pub mod schema;
pub mod scopes;
pub mod sealed;
pub mod secrets;
pub mod service_providers;
pub mod sessions;
pub mod signing_keys;
pub mod single_use;
pub mod sql_types;
pub mod users;

pub use crate::core::Core;
pub use clock::Clock;
pub use db::{Db, DbConnection, DbSettings};
pub use ephemeral::{EphemeralStore, StoreKey};
pub use error::StorageError;
pub use page::{Page, PageRequest};
