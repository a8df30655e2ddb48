//! Step-up (issue 14): whether the browser's session meets the assurance a
//! protocol request asks for, and if not, whether the missing factor can
//! be asked for. OIDC (`acr_values`, `claims`) and SAML
//! (`RequestedAuthnContext`) both decide here, and both send the browser
//! to the same page for it, `/second-factor?interaction=…`
//! ([`crate::Interaction::second_factor_url`]), which asks for that
//! factor only and adds it to the session.

use crate::{LoginSession, UiState};
use trusec_storage::assurance::Assurance;
use trusec_storage::{StorageError, StoreKey};

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

/// What the environment's MFA policy asks of a signed-in session before a
/// protocol goes on (OIDC and SAML alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyStep {
    /// No second factor required, or the session has given one.
    Met,
    /// Required, and the user has a factor: ask for it (the step-up page).
    Ask,
    /// Required, and the user has none: they add one first
    /// ([`crate::Interaction::enrol_url`]), then give it.
    Enrol,
    /// Required, and the session holds a passkey alone: the missing kind
    /// is the password, which a step-up does not ask for; sign in again.
    Unreachable,
}

/// Where `login` stands against its environment's MFA policy (read from
/// the database: a change holds on every instance at once).
///
/// # Errors
/// Storage failures.
pub async fn policy(state: &UiState, login: &LoginSession) -> Result<PolicyStep, StorageError> {
    if login.session.assurance() >= Some(Assurance::MultiFactor) {
        return Ok(PolicyStep::Met);
    }
    let (env, user) = (login.user.environment_id.clone(), login.user.id.clone());
    let groups = login.user.groups.clone();
    let (required, has_factor) = state
        .core
        .db
        .run(move |conn| {
            let policy = trusec_storage::policies::get(conn, &env)?;
            let admin = trusec_storage::admins::is_admin_groups(&groups)?;
            if !policy.mfa.requires(admin) {
                return Ok((false, false));
            }
            Ok((true, trusec_storage::mfa::has_factor(conn, &env, &user)?))
        })
        .await?;
    let holds = login
        .session
        .amr
        .iter()
        .any(|m| m.factor() == trusec_storage::assurance::Factor::Possession);
    Ok(match (required, has_factor, holds) {
        (false, _, _) => PolicyStep::Met,
        (true, false, _) => PolicyStep::Enrol,
        (true, true, true) => PolicyStep::Unreachable,
        (true, true, false) => PolicyStep::Ask,
    })
}

/// Remembers, for `login`'s session, the interaction to go on with once
/// its user has added a second factor (the account page was opened from
/// [`crate::Interaction::enrol_url`]). Only an interaction of this
/// environment that is still waiting counts.
///
/// # Errors
/// Store failures.
pub(crate) async fn remember_continue(
    state: &UiState,
    login: &LoginSession,
    interaction_id: &str,
) -> Result<(), StorageError> {
    let Some(interaction) =
        crate::Interaction::load(&state.core.store, &state.env, interaction_id).await?
    else {
        return Ok(());
    };
    let key = StoreKey::enrol_then_continue(&login.session.token_hash);
    state
        .core
        .store
        .put(&key, interaction.id.as_bytes(), crate::interaction::TTL)
        .await
}

/// The app waiting for `login`'s user to add a second factor, and where
/// to go on to it: its name and the interaction's return path.
///
/// # Errors
/// Store failures.
pub(crate) async fn waiting(
    state: &UiState,
    login: &LoginSession,
) -> Result<Option<(String, String)>, StorageError> {
    let key = StoreKey::enrol_then_continue(&login.session.token_hash);
    let Some(id) = state.core.store.get(&key).await? else {
        return Ok(None);
    };
    let id = String::from_utf8_lossy(&id).into_owned();
    Ok(crate::Interaction::load(&state.core.store, &state.env, &id)
        .await?
        .map(|i| {
            (
                i.client_name.unwrap_or_else(|| "the app".into()),
                i.return_to,
            )
        }))
}
