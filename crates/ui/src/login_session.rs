//! The signed-in browser: a `sessions` row whose token is the session cookie.

use crate::UiState;
use actix_web::HttpRequest;
use chrono::NaiveDateTime;
use trusec_storage::sessions::{self, AuthMethod, SessionRow};
use trusec_storage::users::UserRow;
use trusec_storage::{StorageError, secrets};

/// How long a hosted-login session lasts.
pub const LIFETIME_SECS: i64 = 24 * 3600;
/// Login session tokens look like this, and differ from API session tokens
/// only in their prefix.
pub const TOKEN_PREFIX: &str = "trusec_ls_";

#[derive(Clone, Debug)]
pub struct LoginSession {
    pub session: SessionRow,
    pub user: UserRow,
}

impl LoginSession {
    /// When the user last actively authenticated (OIDC `auth_time`): the
    /// session starts only once every factor asked for was given, and a
    /// step-up moves it.
    pub fn auth_time(&self) -> i64 {
        self.session.authenticated_at().and_utc().timestamp()
    }

    /// The live login session of this browser in the environment `state`
    /// serves, if any: a session of another environment is none.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn from_request(
        req: &HttpRequest,
        state: &UiState,
    ) -> Result<Option<Self>, StorageError> {
        let Some(token) = crate::cookies::session_token(req, state) else {
            return Ok(None);
        };
        let token = token.as_str();
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Ok(None);
        }
        let hash = secrets::hash_secret(token);
        let env = state.env.id.clone();
        let now = state.core.clock.now_naive();
        let found = state
            .core
            .db
            .run(move |conn| sessions::find_by_token_hash(conn, &env, &hash))
            .await?;
        Ok(found
            .filter(|(session, _)| session.check(now).is_ok())
            .map(|(session, user)| Self { session, user }))
    }

    /// Starts a session for `user`, who authenticated with `amr`; returns
    /// the cookie token and the row.
    ///
    /// # Errors
    /// Storage or random-source failures.
    pub async fn start(
        state: &UiState,
        user: &UserRow,
        metadata: serde_json::Value,
        amr: Vec<AuthMethod>,
        now: NaiveDateTime,
    ) -> Result<(String, SessionRow), StorageError> {
        let token = secrets::generate_secret(TOKEN_PREFIX).map_err(StorageError::backend)?;
        let hash = secrets::hash_secret(&token);
        let env = user.environment_id.clone();
        let user_id = user.id.clone();
        let expires = now + chrono::TimeDelta::seconds(LIFETIME_SECS);
        let row = state
            .core
            .db
            .run(move |conn| {
                let new = sessions::NewSession {
                    token_hash: hash,
                    metadata: &metadata,
                    amr: &amr,
                    now,
                    expires_at: expires,
                };
                sessions::insert(conn, &env, &user_id, new)
            })
            .await?;
        Ok((token, row))
    }
}
