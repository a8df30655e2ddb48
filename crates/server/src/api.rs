//! The HTTP API. `/v1` is the management API of the contract.

pub mod v1;
