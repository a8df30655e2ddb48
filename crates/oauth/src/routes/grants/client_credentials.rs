//! The client credentials grant (RFC 6749 §4.4): a confidential client acts
//! for itself. No refresh token (§4.4.3), no ID token (there is no user).

use crate::OAuthState;
use crate::client_auth::AuthenticatedClient;
use crate::error::OAuthError;
use crate::form::Params;
use crate::issue::{self, Grant};
use crate::scopes::{self, ScopeSet};
use trusec_storage::audit::{Actor, EventType, NewAuditEvent};

pub async fn exchange(
    state: &OAuthState,
    client: &AuthenticatedClient,
    params: &Params,
) -> Result<serde_json::Value, OAuthError> {
    if client.row.is_public() {
        return Err(OAuthError::unauthorized_client(
            "client_credentials needs a confidential client",
        ));
    }
    let allowed = client.row.scopes.filtered(|s| !scopes::OIDC.contains(&s));
    let scope = match params.get("scope") {
        Some(text) => {
            let requested = scopes::parse(text)?;
            scopes::check_allowed(&requested, &allowed)?;
            requested
        }
        None => allowed,
    };
    let now = state.core().clock.now_naive();
    let (tokens, _) = issue::mint(
        state,
        &Grant {
            client: &client.row,
            user: None,
            refresh_scope: ScopeSet::default(),
            scope,
            auth_time: None,
            amr: Vec::new(),
            nonce: None,
            session_id: None,
            family: None,
            with_refresh: false,
        },
        now,
    )?;
    state
        .core()
        .audit(
            NewAuditEvent::new(
                EventType::OAuthTokenIssued,
                Some(&client.row.environment_id),
                Actor::oauth_client(&client.row.id),
            )
            .data(serde_json::json!({
                "grant_type": "client_credentials",
                "client_id": client.row.id,
                "scope": tokens.scope,
                "jti": tokens.jti,
            })),
        )
        .await?;
    Ok(tokens.to_json())
}
