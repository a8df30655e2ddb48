//! The client credentials grant (RFC 6749 §4.4): a confidential client acts
//! for itself. No refresh token (§4.4.3), no ID token (there is no user).
//! The token is for the `resource` named (RFC 8707 §2.2), else as
//! [`crate::resources`] decides.

use crate::OAuthState;
use crate::client_auth::AuthenticatedClient;
use crate::dpop::Jkt;
use crate::error::OAuthError;
use crate::form::Params;
use crate::issue::{self, Grant};
use crate::resources;
use crate::scopes::{self, ScopeSet};
use trusec_storage::audit::{Actor, EventType, NewAuditEvent};

pub async fn exchange(
    state: &OAuthState,
    client: &AuthenticatedClient,
    params: &Params,
    dpop: Option<&Jkt>,
) -> Result<serde_json::Value, OAuthError> {
    if client.row.is_public() {
        return Err(OAuthError::unauthorized_client(
            "client_credentials needs a confidential client",
        ));
    }
    let allowed = client.row.scopes.filtered(|s| !scopes::OIDC.contains(&s));
    let requested = params.get("scope").map(scopes::parse).transpose()?;
    let audience =
        resources::for_token(state, &client.row, params, None, requested.as_ref()).await?;
    let scope = match requested {
        Some(requested) => {
            scopes::check_allowed(&requested, &allowed)?;
            resources::check_scopes(&requested, std::slice::from_ref(&audience))?;
            requested
        }
        None => audience.token_scope(&allowed),
    };
    let now = state.core().clock.now_naive();
    let (tokens, _) = issue::mint(
        state,
        &Grant {
            client: &client.row,
            audience: &audience,
            resources: Vec::new(),
            user: None,
            refresh_scope: ScopeSet::default(),
            scope,
            auth_time: None,
            amr: Vec::new(),
            acr: None,
            nonce: None,
            session_id: None,
            family: None,
            with_refresh: false,
            with_id_token: false,
            dpop,
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
                "aud": audience.identifier(&state.settings.issuer),
                "jti": tokens.jti,
            })),
        )
        .await?;
    Ok(tokens.to_json())
}
