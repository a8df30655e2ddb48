//! Black-box tests: the real app on port 0, spoken to over HTTP.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests: a failed unwrap is a failed assertion"
)]

mod api_keys;
mod audit;
mod auth;
mod cli;
mod client_documents;
mod client_jwt;
mod client_limits;
mod client_secret_jwt;
mod consents;
mod console;
mod console_audit;
mod console_keys;
mod console_saml;
mod console_users;
mod cookies;
mod device_flow;
mod doc_server;
mod dpop;
mod environments;
mod faults;
mod instances;
mod jwks_uri;
mod master_key;
mod mfa;
mod mfa_policy;
mod oauth_clients;
mod oauth_flow;
mod oauth_resources;
mod oauth_support;
mod oauth_tokens;
mod oidc_client;
mod ops;
mod par;
mod passkeys;
mod password_load;
mod policies;
mod rate_limit;
mod restart;
mod saml;
mod saml_attributes;
mod saml_bindings;
mod saml_ciphers;
mod saml_encryption;
mod saml_encryption_expiry;
mod saml_rotation;
mod sessions;
mod signin_limits;
mod snapshots;
mod step_up;
mod store_bound;
mod token_lifecycle;
mod user_disable;
mod users;
