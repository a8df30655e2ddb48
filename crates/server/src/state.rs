//! What every `/v1` and operations handler shares: the core (storage, clock,
//! audit, metrics, rate limits, hashing), the server's settings, and the
//! protocol states of every environment.

use crate::settings::Settings;
use std::sync::Arc;
use trusec_storage::Core;

#[derive(Clone)]
pub struct AppState {
    pub core: Core,
    pub settings: Arc<Settings>,
    /// Every environment's endpoints, live first.
    pub environments: Arc<Vec<EnvStates>>,
    /// The master key (the same one every environment's states hold): what
    /// `client_secret_jwt` secrets are sealed under.
    pub seal_key: trusec_storage::sealed::SealKey,
}

/// The protocol states of one environment: each environment is its own
/// issuer, so each has its own hosted pages, OAuth issuer and signing keys,
/// IdP key and entity id.
#[derive(Clone)]
pub struct EnvStates {
    pub ui: trusec_ui::UiState,
    pub oauth: trusec_oauth::OAuthState,
    pub saml: trusec_saml::SamlState,
    pub console: crate::console::ConsoleState,
}

impl EnvStates {
    pub fn env(&self) -> &trusec_ui::Environment {
        &self.ui.env
    }
}

impl AppState {
    /// The states of the environment with this id (`env_live`, …); `None`
    /// for an environment this process does not serve.
    pub fn environment(&self, id: &str) -> Option<&EnvStates> {
        self.environments.iter().find(|e| e.env().id == id)
    }

    /// The authorization server whose issuer a JWT claims (unverified:
    /// verifying it is then that environment's job, with its own keys).
    fn oauth_for_token(&self, token: &str) -> Option<&trusec_oauth::OAuthState> {
        let iss = trusec_oauth::claimed_issuer(token)?;
        self.environments
            .iter()
            .find(|e| e.env().issuer == iss)
            .map(|e| &e.oauth)
    }

    /// Verifies an access token presented to `/v1` with the keys and issuer
    /// of the environment it claims to come from: a token is accepted only
    /// where its own issuer's keys verify it.
    ///
    /// # Errors
    /// `invalid_token` for anything but a live access token of one of our
    /// issuers.
    pub async fn verify_bearer(
        &self,
        token: &str,
    ) -> Result<trusec_oauth::jwt::AccessClaims, trusec_oauth::OAuthError> {
        Ok(self.verify_with_issuer(token).await?.1)
    }

    /// [`Self::verify_bearer`], with the authorization server that issued
    /// the token.
    async fn verify_with_issuer(
        &self,
        token: &str,
    ) -> Result<
        (&trusec_oauth::OAuthState, trusec_oauth::jwt::AccessClaims),
        trusec_oauth::OAuthError,
    > {
        let refused = || {
            trusec_oauth::OAuthError::invalid_token(
                "the token is not a valid access token of this server",
            )
        };
        let oauth = self.oauth_for_token(token).ok_or_else(refused)?;
        let claims = trusec_oauth::verify_bearer(oauth, token).await?;
        // The environment `/v1` acts in is the issuer's, whatever else the
        // token says (we never mint one where they differ).
        if claims.env != oauth.env().id {
            return Err(refused());
        }
        Ok((oauth, claims))
    }

    /// [`Self::verify_bearer`] for a token presented to `/v1`, then how it
    /// was presented (RFC 9449 §7): a DPoP-bound token only as `DPoP` with
    /// a proof for this request, whose `htu` is the public URL of the path
    /// (under the live issuer, where `/v1` is served).
    ///
    /// # Errors
    /// `invalid_token`, `invalid_dpop_proof` or `use_dpop_nonce`.
    pub async fn verify_access_token(
        &self,
        req: &actix_web::HttpRequest,
        (scheme, token): (trusec_ui::http::TokenScheme, &str),
    ) -> Result<trusec_oauth::jwt::AccessClaims, trusec_oauth::OAuthError> {
        let (oauth, claims) = self
            .verify_with_issuer(token)
            .await
            .map_err(trusec_oauth::dpop::as_presented(scheme))?;
        let url = format!("{}{}", self.settings.issuer, req.path());
        trusec_oauth::dpop::check_presented(oauth, req, &url, (scheme, token), &claims).await?;
        Ok(claims)
    }
}
