//! The grant types of the token endpoint.

pub mod client_credentials;
pub mod code;
pub mod device_code;
pub mod refresh;
