//! `/v1/saml/service-providers`: register SAML service providers from their
//! metadata XML or from plain fields; read, update, delete.

use crate::error::ApiError;
use crate::extract::{ApiJson, Caller, PageQuery, list_response, path_id};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use std::collections::BTreeMap;
use trusec_saml::metadata::BINDING_POST;
use trusec_saml::sp_metadata;
use trusec_storage::StorageError;
use trusec_storage::audit::EventType;
use trusec_storage::ids::ServiceProviderId;
use trusec_storage::service_providers::{
    self, Endpoint, ServiceProvider, ServiceProviderRow, SpFields,
};

/// The user attributes an SP may receive.
pub const ATTRIBUTES: [&str; 5] = ["email", "name", "given_name", "family_name", "groups"];
const FORMATS: [&str; 3] = ["emailAddress", "persistent", "unspecified"];

/// `attributes`: a list of our names, or an object mapping our names to the
/// attribute `Name` the SP wants.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum AttributesInput {
    List(Vec<String>),
    Map(BTreeMap<String, String>),
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
    sign_response: Option<bool>,
    sign_assertion: Option<bool>,
    want_authn_requests_signed: Option<bool>,
}

fn attributes(input: AttributesInput) -> Result<BTreeMap<String, String>, ApiError> {
    let map: BTreeMap<String, String> = match input {
        AttributesInput::List(names) => names.into_iter().map(|n| (n.clone(), n)).collect(),
        AttributesInput::Map(m) => m,
    };
    for (ours, theirs) in &map {
        if !ATTRIBUTES.contains(&ours.as_str()) {
            return Err(ApiError::validation(
                "attributes",
                format!(
                    "unknown attribute {ours}; use one of {}",
                    ATTRIBUTES.join(", ")
                ),
            ));
        }
        if theirs.trim().is_empty() || theirs.len() > 256 {
            return Err(ApiError::validation(
                "attributes",
                "attribute names are 1 to 256 characters",
            ));
        }
    }
    Ok(map)
}

fn check_url(param: &str, url: &str) -> Result<(), ApiError> {
    let parsed =
        url::Url::parse(url).map_err(|_| ApiError::validation(param, "must be an absolute URL"))?;
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback) {
        Ok(())
    } else {
        Err(ApiError::validation(
            param,
            "must be https (http only on loopback hosts)",
        ))
    }
}

/// Builds the stored fields from a body, over `base` for updates.
fn fields(body: SpBody, base: Option<SpFields>) -> Result<SpFields, ApiError> {
    let mut f = match (&body.metadata_xml, base) {
        (Some(xml), _) => {
            let d = sp_metadata::parse(xml).map_err(|m| ApiError::validation("metadata_xml", m))?;
            SpFields {
                name: d.name.clone().unwrap_or_else(|| d.entity_id.clone()),
                entity_id: d.entity_id,
                acs_endpoints: d.acs,
                slo_endpoints: d.slo,
                certificate_pem: d.certificate_pem,
                name_id_format: d.name_id_format.unwrap_or_else(|| "emailAddress".into()),
                attributes: ATTRIBUTES
                    .iter()
                    .map(|a| ((*a).to_owned(), (*a).to_owned()))
                    .collect(),
                sign_response: true,
                sign_assertion: true,
                want_authn_requests_signed: d.authn_requests_signed,
            }
        }
        (None, Some(base)) => base,
        (None, None) => {
            let entity_id = body.entity_id.clone().ok_or_else(|| {
                ApiError::invalid("entity_id", "give metadata_xml, or entity_id and acs_url")
            })?;
            let acs_url = body.acs_url.clone().ok_or_else(|| {
                ApiError::invalid("acs_url", "give metadata_xml, or entity_id and acs_url")
            })?;
            SpFields {
                name: entity_id.clone(),
                entity_id,
                acs_endpoints: vec![Endpoint {
                    url: acs_url,
                    binding: BINDING_POST.into(),
                    index: Some(0),
                    is_default: true,
                    response_url: None,
                }],
                slo_endpoints: Vec::new(),
                certificate_pem: None,
                name_id_format: "emailAddress".into(),
                attributes: ATTRIBUTES
                    .iter()
                    .map(|a| ((*a).to_owned(), (*a).to_owned()))
                    .collect(),
                sign_response: true,
                sign_assertion: true,
                want_authn_requests_signed: false,
            }
        }
    };
    if body.metadata_xml.is_none() {
        if let Some(e) = body.entity_id {
            f.entity_id = e;
        }
        if let Some(url) = body.acs_url {
            f.acs_endpoints = vec![Endpoint {
                url,
                binding: BINDING_POST.into(),
                index: Some(0),
                is_default: true,
                response_url: None,
            }];
        }
    }
    if let Some(pem) = body.certificate_pem {
        openssl_check(&pem)?;
        f.certificate_pem = Some(pem);
    }
    if let Some(n) = body.name {
        f.name = n;
    }
    if let Some(fmt) = body.name_id_format {
        if !FORMATS.contains(&fmt.as_str()) {
            return Err(ApiError::validation(
                "name_id_format",
                "must be emailAddress, persistent or unspecified",
            ));
        }
        f.name_id_format = fmt;
    }
    if let Some(a) = body.attributes {
        f.attributes = attributes(a)?;
    }
    if let Some(v) = body.sign_response {
        f.sign_response = v;
    }
    if let Some(v) = body.sign_assertion {
        f.sign_assertion = v;
    }
    if let Some(v) = body.want_authn_requests_signed {
        f.want_authn_requests_signed = v;
    }
    // Whole-object rules.
    f.name = f.name.trim().to_owned();
    if f.name.is_empty() || f.name.chars().count() > 256 {
        return Err(ApiError::validation("name", "must be 1 to 256 characters"));
    }
    if f.entity_id.trim().is_empty() || f.entity_id.len() > 1024 {
        return Err(ApiError::validation(
            "entity_id",
            "must be 1 to 1024 characters",
        ));
    }
    for e in &f.acs_endpoints {
        check_url("acs_url", &e.url)?;
    }
    // Signed LogoutRequests and responses go there: the same rule.
    for e in &f.slo_endpoints {
        check_url("metadata_xml", &e.url)?;
        if let Some(r) = &e.response_url {
            check_url("metadata_xml", r)?;
        }
    }
    if !f.acs_endpoints.iter().any(|e| e.binding == BINDING_POST) {
        return Err(ApiError::validation(
            "acs_url",
            "an HTTP-POST assertion consumer service is required",
        ));
    }
    if !f.sign_response && !f.sign_assertion {
        return Err(ApiError::validation(
            "sign_assertion",
            "sign the response, the assertion, or both",
        ));
    }
    if f.want_authn_requests_signed && f.certificate_pem.is_none() {
        return Err(ApiError::validation(
            "certificate_pem",
            "signed requests need the SP's signing certificate",
        ));
    }
    Ok(f)
}

/// Entity ids are unique across environments: the SSO endpoints are shared,
/// and a request's issuer must name exactly one SP (a test SP can never
/// stand in for a live one).
async fn unique_entity_id(
    state: &AppState,
    entity_id: &str,
    except: Option<&str>,
) -> Result<(), ApiError> {
    let (e, x) = (entity_id.to_owned(), except.map(str::to_owned));
    if state
        .core
        .db
        .run(move |c| service_providers::entity_id_in_use(c, &e, x.as_deref()))
        .await?
    {
        return Err(ApiError::Conflict {
            message: "a service provider with this entity_id exists already (entity ids are unique across environments)".into(),
            param: Some("entity_id".into()),
        });
    }
    Ok(())
}

fn openssl_check(pem: &str) -> Result<(), ApiError> {
    trusec_saml::sp_metadata::check_certificate(pem)
        .map_err(|m| ApiError::validation("certificate_pem", m))
}

fn taken(e: StorageError) -> ApiError {
    match e {
        StorageError::Conflict(_) => ApiError::Conflict {
            message: "a service provider with this entity_id exists already".into(),
            param: Some("entity_id".into()),
        },
        StorageError::NotFound => ApiError::not_found("service provider", Some("id")),
        other => other.into(),
    }
}

fn to_fields(row: &ServiceProviderRow) -> Result<SpFields, ApiError> {
    let sp = row.to_sp()?;
    Ok(SpFields {
        entity_id: sp.entity_id,
        name: sp.name,
        acs_endpoints: sp.acs_endpoints,
        slo_endpoints: sp.slo_endpoints,
        certificate_pem: sp.certificate_pem,
        name_id_format: sp.name_id_format,
        attributes: sp.attributes,
        sign_response: sp.sign_response,
        sign_assertion: sp.sign_assertion,
        want_authn_requests_signed: sp.want_authn_requests_signed,
    })
}

#[utoipa::path(post, path = "/v1/saml/service-providers", tag = "saml-service-providers", request_body = SpBody, security(("api_key" = []), ("access_token" = [])), responses((status = 201, description = "The service provider", body = trusec_storage::service_providers::ServiceProvider), (status = 409, description = "Entity id taken", body = crate::error::ErrorBody), (status = 422, description = "Invalid field", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SpBody>,
) -> Result<HttpResponse, ApiError> {
    let f = fields(body, None)?;
    unique_entity_id(&state, &f.entity_id, None).await?;
    let env = caller.environment.clone();
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
            caller
                .event(EventType::SamlSpCreated)
                .data(serde_json::json!({"sp_id": row.id, "entity_id": row.entity_id})),
        )
        .await?;
    Ok(HttpResponse::Created().json(row.to_sp()?))
}

#[utoipa::path(get, path = "/v1/saml/service-providers", tag = "saml-service-providers", params(("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("after" = Option<String>, Query, description = "cursor: the last id of the previous page")), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "Service providers", body = crate::extract::ListOf<trusec_storage::service_providers::ServiceProvider>), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.to_request::<ServiceProviderId>()?;
    let env = caller.environment.clone();
    let rows = state
        .core
        .db
        .run(move |c| service_providers::list(c, &env, &page))
        .await?;
    list_response(rows, |r| r.to_sp(), |s: &ServiceProvider| s.id.clone())
}

async fn load(state: &AppState, caller: &Caller, id: &str) -> Result<ServiceProviderRow, ApiError> {
    let id = path_id::<ServiceProviderId>(id)?;
    let env = caller.environment.clone();
    state
        .core
        .db
        .run(move |c| service_providers::get(c, &env, &id))
        .await
        .map_err(taken)
}

#[utoipa::path(get, path = "/v1/saml/service-providers/{id}", tag = "saml-service-providers", params(("id" = String, Path, description = "sp_…")), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "The service provider", body = trusec_storage::service_providers::ServiceProvider), (status = 404, description = "No such service provider", body = crate::error::ErrorBody), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<ServiceProvider>, ApiError> {
    Ok(web::Json(load(&state, &caller, &id).await?.to_sp()?))
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
    let f = fields(body, Some(to_fields(&current)?))?;
    unique_entity_id(&state, &f.entity_id, Some(&current.id)).await?;
    let (env, sid) = (caller.environment.clone(), current.id.clone());
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
            caller
                .event(EventType::SamlSpUpdated)
                .data(serde_json::json!({"sp_id": row.id})),
        )
        .await?;
    Ok(web::Json(row.to_sp()?))
}

#[utoipa::path(delete, path = "/v1/saml/service-providers/{id}", tag = "saml-service-providers", params(("id" = String, Path, description = "sp_…")), security(("api_key" = []), ("access_token" = [])), responses((status = 200, description = "Deleted"), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "No or bad API key", body = crate::error::ErrorBody), (status = 403, description = "Key type or scope not allowed", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(key_id = %caller.key_id))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let current = load(&state, &caller, &id).await?;
    let (env, sid) = (caller.environment.clone(), current.id.clone());
    state
        .core
        .db
        .run(move |c| service_providers::delete(c, &env, &sid))
        .await
        .map_err(taken)?;
    state
        .core
        .audit(
            caller
                .event(EventType::SamlSpDeleted)
                .data(serde_json::json!({"sp_id": current.id})),
        )
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"id": current.id, "deleted": true})))
}
