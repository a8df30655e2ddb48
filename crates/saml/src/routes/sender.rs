//! Who sent a message: the entity id its `<Issuer>` names, and the service
//! provider registered under it. Shared by SSO and SLO, which must agree.

use crate::SamlState;
use crate::error::{About, Flow, Refusal, SamlError};
use samael::schema::Issuer;
use trusec_storage::StorageError;
use trusec_storage::service_providers::{self, ServiceProviderRow};

/// The SP with this entity id in the environment this endpoint serves, and
/// in no other: each environment is its own IdP, so the same entity id may
/// name a live SP and an unrelated test one (contract), and a request at
/// live endpoints must never reach the test one.
async fn find_sp(
    state: &SamlState,
    entity_id: &str,
) -> Result<Option<ServiceProviderRow>, StorageError> {
    let (env, entity) = (state.env().id.clone(), entity_id.to_owned());
    state
        .core()
        .db
        .run(move |c| service_providers::find_by_entity_id(c, &env, &entity))
        .await
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
    // Something another environment started is not ours to finish.
    if env != state.env().id {
        return Err(SamlError::page(
            flow,
            "The application is no longer registered.",
        ));
    }
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
