//! The after-logout step: how a protocol that signed a login session in to
//! other parties (SAML single logout) gets to tell them when the hosted
//! `/logout` ends that session. The protocol registers a path of ours for the
//! session; `/logout` takes it (once) after ending the session and sends the
//! browser there, passing the logout intent along.

use std::time::Duration;
use trusec_storage::{EphemeralStore, StorageError, StoreKey};

/// Registers (or replaces) the step for `session_id`: a path on this server,
/// with a query string, to which `&intent=…` will be appended.
///
/// # Errors
/// Store failures; a path that is not ours is refused as a backend error.
pub async fn register(
    store: &EphemeralStore,
    session_id: &str,
    path_and_query: &str,
    ttl: Duration,
) -> Result<(), StorageError> {
    if !is_local_path(path_and_query) || !path_and_query.contains('?') {
        return Err(StorageError::backend(std::io::Error::other(
            "an after-logout step must be a local path with a query string",
        )));
    }
    store
        .put(
            &StoreKey::logout_hook(session_id),
            path_and_query.as_bytes(),
            ttl,
        )
        .await
}

/// Drops the step for `session_id` (the protocol ran its logout itself).
///
/// # Errors
/// Store failures.
pub async fn cancel(store: &EphemeralStore, session_id: &str) -> Result<(), StorageError> {
    store.delete(&[StoreKey::logout_hook(session_id)]).await
}

/// Takes the step for a session that just ended, if any.
pub(crate) async fn take(store: &EphemeralStore, session_id: &str) -> Option<String> {
    match store.take(&StoreKey::logout_hook(session_id)).await {
        Ok(found) => found
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|p| is_local_path(p)),
        Err(e) => {
            tracing::error!(error = %e, "could not read the after-logout step; other parties are not told");
            None
        }
    }
}

fn is_local_path(p: &str) -> bool {
    p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\")
}
