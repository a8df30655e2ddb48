//! Who sent a message: the entity id its `<Issuer>` names, and the service
//! provider registered under it. Shared by SSO and SLO, which must agree.

use crate::SamlState;
use crate::error::{About, Flow, Refusal, SamlError};
use samael::schema::Issuer;
use trusec_storage::service_providers::{self, ServiceProviderRow};
use trusec_storage::{StorageError, ids};

/// The SP with this entity id: live first, then test. The `/saml` endpoints
/// serve both environments, so the `/v1` API keeps entity ids unique across
/// environments and an issuer names at most one SP.
async fn find_sp(
    state: &SamlState,
    entity_id: &str,
) -> Result<Option<ServiceProviderRow>, StorageError> {
    for env in [ids::ENV_LIVE, ids::ENV_TEST] {
        let entity = entity_id.to_owned();
        if let Some(sp) = state
            .core()
            .db
            .run(move |c| service_providers::find_by_entity_id(c, env, &entity))
            .await?
        {
            return Ok(Some(sp));
        }
    }
    Ok(None)
}

/// The entity id a message's `<Issuer>` names.
///
/// # Errors
/// `UnknownIssuer` when it names none.
pub fn issuer(about: &About, issuer: Option<&Issuer>) -> Result<String, SamlError> {
    issuer
        .and_then(|i| i.value.clone())
        .ok_or_else(|| about.refuse(Refusal::UnknownIssuer))
}

/// The SP registered as `entity_id`, and `about` naming both.
///
/// # Errors
/// `UnknownIssuer` when none is, or a storage failure.
pub async fn registered(
    state: &SamlState,
    about: About,
    entity_id: &str,
) -> Result<(ServiceProviderRow, About), SamlError> {
    let about = about.issuer(entity_id);
    let sp = find_sp(state, entity_id)
        .await?
        .ok_or_else(|| about.refuse(Refusal::UnknownIssuer))?;
    let about = about.sp(&sp);
    Ok((sp, about))
}

/// The SP a sign-in or sign-out in progress names, by id.
///
/// # Errors
/// A plain page when it was deleted since, or a storage failure.
pub async fn still_registered(
    state: &SamlState,
    flow: Flow,
    env: &str,
    sp_id: &str,
) -> Result<ServiceProviderRow, SamlError> {
    let (env, sp_id) = (env.to_owned(), sp_id.to_owned());
    match state
        .core()
        .db
        .run(move |c| service_providers::get(c, &env, &sp_id))
        .await
    {
        Ok(sp) => Ok(sp),
        Err(StorageError::NotFound) => Err(SamlError::page(
            flow,
            "The application is no longer registered.",
        )),
        Err(e) => Err(e.into()),
    }
}
