//! Step-up (issue 14): whether the browser's session meets the assurance a
//! protocol request asks for, and if not, whether the missing factor can
//! be asked for. OIDC (`acr_values`, `claims`) and SAML
//! (`RequestedAuthnContext`) both decide here, and both send the browser
//! to the same page for it, `/second-factor?interaction=…`
//! ([`crate::Interaction::second_factor_url`]), which asks for that
//! factor only and adds it to the session.

use crate::{LoginSession, UiState};
use trusec_storage::StorageError;
use trusec_storage::assurance::Assurance;

/// Where a session stands against a wanted level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepUp {
    /// The session is at the level or above.
    Met,
    /// Below, and the user has a second factor: ask for it.
    Ask,
    /// Below, and the user has nothing more to give.
    Unreachable,
}

/// Whether `login` meets `wanted` (nothing wanted is always met).
///
/// # Errors
/// Storage failures.
pub async fn check(
    state: &UiState,
    login: &LoginSession,
    wanted: Option<Assurance>,
) -> Result<StepUp, StorageError> {
    let Some(wanted) = wanted else {
        return Ok(StepUp::Met);
    };
    if login.session.assurance() >= Some(wanted) {
        return Ok(StepUp::Met);
    }
    // Every level above single-factor is reached by adding the second
    // factor: a user who has one can be asked for it. A session that holds
    // one already (a passkey sign-in) lacks the password instead, which
    // this step does not ask for: asking for another thing held would
    // never raise the level.
    let holds = login
        .session
        .amr
        .iter()
        .any(|m| m.factor() == trusec_storage::assurance::Factor::Possession);
    if holds {
        return Ok(StepUp::Unreachable);
    }
    let (env, user) = (login.user.environment_id.clone(), login.user.id.clone());
    let has_factor = state
        .core
        .db
        .run(move |conn| trusec_storage::mfa::has_factor(conn, &env, &user))
        .await?;
    Ok(match (wanted, has_factor) {
        (Assurance::MultiFactor, true) => StepUp::Ask,
        (Assurance::MultiFactor, false) | (Assurance::SingleFactor, _) => StepUp::Unreachable,
    })
}
