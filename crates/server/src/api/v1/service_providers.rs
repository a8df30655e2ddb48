//! `/v1/saml/service-providers`: register SAML service providers from their
//! metadata XML or from plain fields; read, update, delete.

use crate::error::ApiError;
use crate::extract::{Acting, ApiJson, Caller, PageQuery};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use std::collections::BTreeMap;
use trusec_saml::sp_config::{self, SpConfigError, SpInput};
use trusec_storage::StorageError;
use trusec_storage::audit::EventType;
use trusec_storage::ids::ServiceProviderId;
use trusec_storage::service_providers::{self, ServiceProvider, ServiceProviderRow, SpFields};

/// `attributes`: a list of our names (named as `attribute_profile` names
/// them), or an object mapping our names to the attribute `Name` the SP
/// wants, or to `{name, name_format, friendly_name}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum AttributesInput {
    List(Vec<String>),
    Map(BTreeMap<String, MappedInput>),
}

/// One attribute of a mapping: its `Name` (in the profile's name format),
/// or all of it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum MappedInput {
    Name(String),
    Full {
        name: String,
        /// `basic`, `uri` or `unspecified`; the profile's when left out.
        name_format: Option<String>,
        friendly_name: Option<String>,
    },
}

impl From<MappedInput> for sp_config::MappedInput {
    fn from(m: MappedInput) -> Self {
        match m {
            MappedInput::Name(name) => Self::Name(name),
            MappedInput::Full {
                name,
                name_format,
                friendly_name,
            } => Self::Full {
                name,
                name_format,
                friendly_name,
            },
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpBody {
    metadata_xml: Option<String>,
    entity_id: Option<String>,
    acs_url: Option<String>,
    certificate_pem: Option<String>,
    name: Option<String>,
    name_id_format: Option<String>,
    attributes: Option<AttributesInput>,
    /// `basic` (our names, basic name format), `oid` (`urn:oid:` names,
    /// URI name format, with FriendlyName) or `microsoft` (claim URIs).
    attribute_profile: Option<String>,
    sign_response: Option<bool>,
    sign_assertion: Option<bool>,
    want_authn_requests_signed: Option<bool>,
    /// The SP's encryption certificate (PEM, RSA key), for an SP not
    /// registered from metadata; giving one turns `encrypt_assertions` on.
    encryption_certificate_pem: Option<String>,
    /// Encrypt assertions for the SP's encryption certificate; on by
    /// default when it has one. `true` without one is refused.
    encrypt_assertions: Option<bool>,
    /// The content cipher of encrypted assertions: `aes256-gcm` (the
    /// default), `aes128-gcm`, or `aes256-cbc` for an SP that cannot do
    /// GCM; from the metadata's `EncryptionMethod`s when not given.
    assertion_cipher: Option<String>,
}

impl From<SpBody> for SpInput {
    fn from(b: SpBody) -> Self {
        Self {
            metadata_xml: b.metadata_xml,
            entity_id: b.entity_id,
            acs_url: b.acs_url,
            certificate_pem: b.certificate_pem,
            name: b.name,
            name_id_format: b.name_id_format,
            attributes: b.attributes.map(|a| match a {
                AttributesInput::List(names) => sp_config::AttributesInput::List(names),
                AttributesInput::Map(map) => sp_config::AttributesInput::Map(
                    map.into_iter().map(|(k, v)| (k, v.into())).collect(),
                ),
            }),
            attribute_profile: b.attribute_profile,
            sign_response: b.sign_response,
            sign_assertion: b.sign_assertion,
            want_authn_requests_signed: b.want_authn_requests_signed,
            encryption_certificate_pem: b.encryption_certificate_pem,
            encrypt_assertions: b.encrypt_assertions,
            assertion_cipher: b.assertion_cipher,
        }
    }
}

/// The validated fields of a body, over `base` for updates. Metadata is
/// XML: it is read on the SAML XML pool, like every other SAML message.
///
/// # Errors
/// `InvalidRequest` / `Validation` naming the field at fault; `Unavailable`
/// when the XML pool turns the work away.
pub(crate) async fn fields(
    state: &AppState,
    input: SpInput,
    base: Option<SpFields>,
) -> Result<SpFields, ApiError> {
    // Every environment shares the one pool; any environment's handle to it will do.
    let pool = state
        .environments
        .first()
        .map(|e| e.saml.xml.clone())
        .ok_or_else(|| ApiError::internal(&std::io::Error::other("no environment is served")))?;
    let now = state.core.clock.now();
    let validated = pool
        .run(move || sp_config::validate(input, base, now))
        .await
        .map_err(|busy| ApiError::Unavailable {
            error_id: trusec_ui::error::log_error(&busy, "SP metadata turned away"),
        })?;
    validated.map_err(|e| match e {
        SpConfigError::Incomplete { field, message } => ApiError::invalid(field, message),
        SpConfigError::Invalid { field, message } => ApiError::validation(field, message),
    })
}

fn taken(e: StorageError) -> ApiError {
    match e {
        // Unique per environment only: each environment is its own IdP, so
        // a test SP may share a live SP's entity id (contract).
        StorageError::Conflict(_) => ApiError::Conflict {
            message: "a service provider with this entity_id exists already in this environment"
                .into(),
            param: Some("entity_id".into()),
        },
        StorageError::NotFound => ApiError::not_found("service provider", Some("id")),
        other => other.into(),
    }
}

#[utoipa::path(post, path = "/v1/saml/service-providers", tag = "saml-service-providers", request_body = SpBody, security(("api_key" = []), ("access_token" = [])), responses((status = 201, description = "The service provider", body = trusec_storage::service_providers::ServiceProvider), (status = 409, description = "Entity id taken", body = crate::error::ErrorBody), (status = 422, description = "Invalid field", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SpBody>,
) -> Result<HttpResponse, ApiError> {
    let row = register(&state, &caller.acting(), body.into()).await?;
    Ok(HttpResponse::Created().json(row.to_sp()))
}

/// Registers a service provider in `acting`'s environment and audits it:
/// the decide step of `POST /v1/saml/service-providers` and of the
/// console's SAML page.
///
/// # Errors
/// The field at fault; `Conflict` for an entity id taken in this
/// environment; storage and audit failures.
pub(crate) async fn register(
    state: &AppState,
    acting: &Acting,
    input: SpInput,
) -> Result<ServiceProviderRow, ApiError> {
    let f = fields(state, input, None).await?;
    let env = acting.environment.clone();
    let now = state.core.clock.now_naive();
    let row = state
        .core
        .db
        .run(move |c| service_providers::insert(c, &env, f, now))
        .await
        .map_err(taken)?;
    state
        .core
        .audit(
            acting
                .event(EventType::SamlSpCreated)
                .data(serde_json::json!({"sp_id": row.id, "entity_id": row.entity_id})),
        )
        .await?;
    Ok(row)
}

#[utoipa::path(get, path = "/v1/saml/service-providers", tag = "saml-service-providers", params(("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("after" = Option<String>, Query, description = "cursor: the last id of the previous page")), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "Service providers", body = crate::extract::ListOf<trusec_storage::service_providers::ServiceProvider>), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    caller
        .list::<ServiceProviderId, _, _>(
            &state.core,
            &query,
            service_providers::list,
            |r| Ok(r.to_sp()),
            |s: &ServiceProvider| s.id.clone(),
        )
        .await
}

async fn load(state: &AppState, caller: &Caller, id: &str) -> Result<ServiceProviderRow, ApiError> {
    caller
        .fetch::<ServiceProviderId, _>(&state.core, id, service_providers::get)
        .await
}

#[utoipa::path(get, path = "/v1/saml/service-providers/{id}", tag = "saml-service-providers", params(("id" = String, Path, description = "sp_…")), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "The service provider", body = trusec_storage::service_providers::ServiceProvider), (status = 404, description = "No such service provider", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<ServiceProvider>, ApiError> {
    Ok(web::Json(load(&state, &caller, &id).await?.to_sp()))
}

#[utoipa::path(patch, path = "/v1/saml/service-providers/{id}", tag = "saml-service-providers", params(("id" = String, Path, description = "sp_…")), request_body = SpBody, security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "The updated service provider", body = trusec_storage::service_providers::ServiceProvider), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    ApiJson(body): ApiJson<SpBody>,
) -> Result<web::Json<ServiceProvider>, ApiError> {
    let current = load(&state, &caller, &id).await?;
    let row = change(&state, &caller.acting(), current, body.into()).await?;
    Ok(web::Json(row.to_sp()))
}

/// Applies `input` over `current` (a service provider of `acting`'s
/// environment) and audits it: the decide step of `PATCH
/// /v1/saml/service-providers/{id}` and of the console.
///
/// # Errors
/// As [`register`].
pub(crate) async fn change(
    state: &AppState,
    acting: &Acting,
    current: ServiceProviderRow,
    input: SpInput,
) -> Result<ServiceProviderRow, ApiError> {
    let f = fields(state, input, Some(current.fields())).await?;
    let (env, sid) = (acting.environment.clone(), current.id);
    let now = state.core.clock.now_naive();
    let row = state
        .core
        .db
        .run(move |c| service_providers::replace(c, &env, &sid, f, now))
        .await
        .map_err(taken)?;
    state
        .core
        .audit(
            acting
                .event(EventType::SamlSpUpdated)
                .data(serde_json::json!({"sp_id": row.id})),
        )
        .await?;
    Ok(row)
}

#[utoipa::path(delete, path = "/v1/saml/service-providers/{id}", tag = "saml-service-providers", params(("id" = String, Path, description = "sp_…")), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "Deleted"), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let current = load(&state, &caller, &id).await?;
    let id = remove(&state, &caller.acting(), current).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"id": id, "deleted": true})))
}

/// Deletes `current` (a service provider of `acting`'s environment) and
/// audits it; returns its id. The decide step of `DELETE` and the console.
///
/// # Errors
/// Storage and audit failures.
pub(crate) async fn remove(
    state: &AppState,
    acting: &Acting,
    current: ServiceProviderRow,
) -> Result<String, ApiError> {
    let (env, sid) = (acting.environment.clone(), current.id.clone());
    state
        .core
        .db
        .run(move |c| service_providers::delete(c, &env, &sid))
        .await
        .map_err(taken)?;
    state
        .core
        .audit(
            acting
                .event(EventType::SamlSpDeleted)
                .data(serde_json::json!({"sp_id": current.id})),
        )
        .await?;
    Ok(current.id)
}
