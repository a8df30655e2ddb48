//! Request extractors for the `/v1` API: JSON bodies with field-naming
//! errors, API-key authentication, client details, pagination.

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use trusec_storage::api_keys::KeyType;
use trusec_storage::audit::{Actor, ClientInfo, EventType, NewAuditEvent};
use trusec_storage::authn::KeyRefusal;
use trusec_storage::ids::TypedId;
use trusec_storage::rate_limit::{Family, Subject};
use trusec_storage::{PageRequest, ids};
use trusec_ui::http::{Authorization, TokenScheme, client_info};

/// A JSON body, parsed so that every error names the offending field.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .mime_type()
            .ok()
            .flatten()
            .is_some_and(|m| m.essence_str() == "application/json");
        let limit = state(req).map_or(64 * 1024, |s| s.settings.max_body_bytes);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::UnsupportedMediaType {
                    message: "Content-Type must be application/json".into(),
                });
            }
            let bytes = body.await.map_err(|e| {
                if e.as_response_error().status_code()
                    == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE
                {
                    ApiError::PayloadTooLarge {
                        message: format!("the body is larger than {limit} bytes"),
                    }
                } else {
                    ApiError::InvalidRequest {
                        message: format!("could not read the body: {e}"),
                        param: None,
                    }
                }
            })?;
            if bytes.len() > limit {
                return Err(ApiError::PayloadTooLarge {
                    message: format!("the body is larger than {limit} bytes"),
                });
            }
            parse_json(&bytes).map(ApiJson)
        })
    }
}

/// Parses JSON, naming the field at fault.
///
/// # Errors
/// `InvalidRequest` with `param` set to the field's path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        let message = inner.to_string();
        let path = e.path().to_string();
        // serde reports missing/unknown fields at the parent; name the field.
        let named = ["unknown field `", "missing field `"]
            .iter()
            .find_map(|p| message.strip_prefix(p))
            .and_then(|rest| rest.split_once('`'))
            .map(|(field, _)| field.to_owned());
        let param = match (named, path.as_str()) {
            (Some(field), "." | "") => Some(field),
            // Unknown fields are already the last path segment.
            (Some(field), p) if p == field || p.ends_with(&format!(".{field}")) => {
                Some(p.to_owned())
            }
            (Some(field), parent) => Some(format!("{parent}.{field}")),
            (None, "." | "") => None,
            (None, p) => Some(p.to_owned()),
        };
        let message = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                format!("malformed JSON: {message}")
            }
            // "… at line 1 column 34" helps only with syntax errors.
            _ => message
                .rsplit_once(" at line ")
                .map_or(message.clone(), |(m, _)| m.to_owned()),
        };
        ApiError::InvalidRequest { message, param }
    })
}

fn state(req: &HttpRequest) -> Option<&web::Data<AppState>> {
    req.app_data::<web::Data<AppState>>()
}

/// An authenticated management-API caller: a secret or test API key, or an
/// OAuth access token of this server whose scopes cover the route.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The API key's id, or the OAuth client's id.
    pub key_id: String,
    pub key_type: KeyType,
    /// Every object this caller creates or sees lives here.
    pub environment: String,
    pub client: ClientInfo,
    /// Authenticated by an OAuth access token rather than an API key.
    pub via_oauth: bool,
    actor: Actor,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        self.actor.clone()
    }

    /// An audit event by this caller, in its environment.
    pub fn event(&self, event_type: EventType) -> NewAuditEvent {
        self.acting().event(event_type)
    }

    /// This caller as the performer of a management action.
    pub fn acting(&self) -> Acting {
        Acting {
            environment: self.environment.clone(),
            actor: self.actor(),
            client: self.client.clone(),
        }
    }
}

/// Who performs a management action, whichever surface it came through (a
/// `/v1` [`Caller`], an administrator in the console): the environment it
/// acts in, and the actor and client the audit log records.
#[derive(Clone, Debug)]
pub struct Acting {
    pub environment: String,
    pub actor: Actor,
    pub client: ClientInfo,
}

impl Acting {
    /// An audit event by this performer, in its environment.
    pub fn event(&self, event_type: EventType) -> NewAuditEvent {
        NewAuditEvent::new(event_type, Some(&self.environment), self.actor.clone())
            .client(&self.client)
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await })
    }
}

impl From<KeyRefusal> for ApiError {
    fn from(refusal: KeyRefusal) -> Self {
        match refusal {
            KeyRefusal::Limited(limited) => limited.into(),
            KeyRefusal::Storage(e) => e.into(),
            KeyRefusal::Invalid | KeyRefusal::Revoked | KeyRefusal::Expired => {
                Self::Unauthenticated(refusal.to_string())
            }
        }
    }
}

/// The bearer token of the request.
///
/// # Errors
/// `Unauthenticated` when there is none.
pub fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    presented(req).map(|(_, token)| token)
}

/// The credential of the request and how it came: `Bearer` (an API key or
/// an access token) or `DPoP` (a DPoP-bound access token, RFC 9449 §7.1).
///
/// # Errors
/// `Unauthenticated` when there is none.
pub fn presented(req: &HttpRequest) -> Result<(TokenScheme, String), ApiError> {
    match Authorization::of(req) {
        Authorization::Bearer(token) => Ok((TokenScheme::Bearer, token)),
        Authorization::Dpop(token) => Ok((TokenScheme::Dpop, token)),
        Authorization::Missing => Err(ApiError::Unauthenticated(
            "missing Authorization: Bearer <API key>".into(),
        )),
        Authorization::Basic { .. } | Authorization::MalformedBasic | Authorization::Other => Err(
            ApiError::Unauthenticated("expected Authorization: Bearer <API key>".into()),
        ),
    }
}

async fn authenticate(req: &HttpRequest) -> Result<Caller, ApiError> {
    let state = state(req)
        .cloned()
        .ok_or_else(|| ApiError::internal(&std::io::Error::other("AppState missing")))?;
    // Per client IP first, before any lookup, so a flood of made-up keys
    // from one address is refused without touching the database.
    let client = client_info(req);
    state.core.limit_ip(Family::Management, &client).await?;
    let (scheme, token) = presented(req)?;
    if scheme == TokenScheme::Dpop || KeyType::from_key(&token).is_none() {
        return authenticate_access_token(&state, req, (scheme, &token), client).await;
    }
    let key = state.core.authenticate_api_key(&token, &client).await?;
    if key.key_type == KeyType::Public {
        return Err(ApiError::Forbidden(
            "public keys (trusec_pk_) cannot call the management API; use a secret key".into(),
        ));
    }
    Ok(Caller {
        key_id: key.row.id.clone(),
        key_type: key.key_type,
        environment: key.row.environment_id.clone(),
        client,
        via_oauth: false,
        actor: key.actor(),
    })
}

/// Who may call a `/v1` route. Declared next to the route in the route
/// table (`api::v1::configure`), never derived from the URL text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Secret or test API keys only: API keys, OAuth clients, signing keys.
    ApiKey,
    /// An API key, or an OAuth access token of this server carrying
    /// `read:X` (GET, HEAD) or `write:X` (anything else) for this resource.
    Scoped(Resource),
    /// An access token issued to a user, which the handler verifies itself
    /// (`/v1/users/me`); no [`Caller`] is made for it.
    UserToken,
}

/// The resources the management scopes name (`read:users`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Users,
    Sessions,
    AuditEvents,
    ServiceProviders,
    Policies,
}

impl Resource {
    fn scope_name(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Sessions => "sessions",
            Self::AuditEvents => "audit_events",
            Self::ServiceProviders => "service_providers",
            Self::Policies => "policies",
        }
    }
}

/// The scope a route needs from an OAuth access token, by its declared
/// [`Access`]; `Err` when the route takes no access token at all.
fn required_scope(req: &HttpRequest) -> Result<String, ApiError> {
    let access = req.app_data::<Access>().copied().ok_or_else(|| {
        ApiError::internal(&std::io::Error::other("a /v1 route declares no Access"))
    })?;
    let resource = match access {
        Access::Scoped(resource) => resource,
        Access::ApiKey | Access::UserToken => {
            return Err(ApiError::Forbidden(
                "this route takes an API key, not an access token".into(),
            ));
        }
    };
    let verb = if matches!(req.method().as_str(), "GET" | "HEAD") {
        "read"
    } else {
        "write"
    };
    Ok(format!("{verb}:{}", resource.scope_name()))
}

async fn authenticate_access_token(
    state: &AppState,
    req: &HttpRequest,
    presented: (TokenScheme, &str),
    client: ClientInfo,
) -> Result<Caller, ApiError> {
    let claims = state
        .verify_access_token(req, presented)
        .await
        .map_err(|e| token_refused(&e, "invalid API key or access token".into()))?;
    let needed = required_scope(req)?;
    if !claims.has_scope(&needed) {
        return Err(ApiError::Forbidden(format!(
            "this access token lacks the {needed} scope"
        )));
    }
    let refusal = || {
        NewAuditEvent::new(
            EventType::RateLimitExceeded,
            Some(&claims.env),
            Actor::oauth_client(&claims.client_id),
        )
        .client(&client)
    };
    state
        .core
        .limit(
            Family::Management,
            Subject::Caller(&claims.client_id),
            refusal,
        )
        .await?;
    if claims.sub != claims.client_id {
        // On a user's behalf: that user must (still) be an administrator.
        let (env, sub) = (claims.env.clone(), claims.sub.clone());
        let user = state
            .core
            .db
            .run(move |conn| trusec_storage::users::find_by_id(conn, &env, &sub))
            .await?;
        let admin = user
            .and_then(|u| serde_json::from_str::<Vec<String>>(&u.groups).ok())
            .is_some_and(|g| g.iter().any(|g| g == trusec_oauth::scopes::ADMIN_GROUP));
        if !admin {
            return Err(ApiError::Forbidden(format!(
                "the user behind this token is not in the {} group",
                trusec_oauth::scopes::ADMIN_GROUP
            )));
        }
    }
    let actor = if claims.sub == claims.client_id {
        Actor::oauth_client(&claims.client_id)
    } else {
        Actor::user(&claims.sub)
    };
    Ok(Caller {
        key_id: claims.client_id.clone(),
        key_type: if claims.env == ids::ENV_TEST {
            KeyType::Test
        } else {
            KeyType::Secret
        },
        environment: claims.env,
        client,
        via_oauth: true,
        actor,
    })
}

/// `?limit=&after=` of every list.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<String>,
    pub after: Option<String>,
}

pub const DEFAULT_PAGE: i64 = 20;
pub const MAX_PAGE: i64 = 100;

impl PageQuery {
    /// Checks the limit and that the cursor is an id of the listed kind `I`.
    ///
    /// # Errors
    /// `InvalidRequest` naming `limit` or `after`.
    pub fn to_request<I: TypedId>(&self) -> Result<PageRequest, ApiError> {
        let limit = match &self.limit {
            None => DEFAULT_PAGE,
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=MAX_PAGE).contains(l))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "limit",
                        format!("limit must be an integer from 1 to {MAX_PAGE}"),
                    )
                })?,
        };
        if let Some(after) = &self.after
            && I::parse(after).is_none()
        {
            return Err(ApiError::invalid(
                "after",
                format!("after must be an id starting with {}_", I::PREFIX),
            ));
        }
        Ok(PageRequest {
            limit,
            after: self.after.clone(),
        })
    }
}

/// A cursor-paginated list, the type every list response is built from:
/// `{"data": [...], "has_more": bool, "next_cursor": id|null}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ListOf<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    /// Pass as `after` for the next page.
    pub next_cursor: Option<String>,
}

/// A list response from a page of views.
fn list_body<T: serde::Serialize>(
    page: trusec_storage::Page<T>,
    cursor: impl Fn(&T) -> String,
) -> ListOf<T> {
    let next_cursor = if page.has_more {
        page.data.last().map(&cursor)
    } else {
        None
    };
    ListOf {
        data: page.data,
        has_more: page.has_more,
        next_cursor,
    }
}

/// A list response from stored rows, each turned into its public view.
///
/// # Errors
/// When a stored row cannot be turned into its view.
pub fn list_response<R, T: serde::Serialize>(
    rows: trusec_storage::Page<R>,
    view: impl Fn(&R) -> Result<T, trusec_storage::StorageError>,
    cursor: impl Fn(&T) -> String,
) -> Result<actix_web::HttpResponse, ApiError> {
    let data = rows.data.iter().map(view).collect::<Result<Vec<_>, _>>()?;
    let page = trusec_storage::Page {
        data,
        has_more: rows.has_more,
    };
    Ok(actix_web::HttpResponse::Ok().json(list_body(page, cursor)))
}

impl Caller {
    /// `GET /v1/<objects>`: a page of this caller's environment's objects
    /// of kind `I` from `load`, each turned into its public view.
    ///
    /// # Errors
    /// A bad `limit` or `after`, or storage failures.
    pub async fn list<I: TypedId, R: Send + 'static, T: serde::Serialize>(
        &self,
        core: &trusec_storage::Core,
        query: &PageQuery,
        load: fn(
            &mut trusec_storage::DbConnection,
            &str,
            &PageRequest,
        ) -> Result<trusec_storage::Page<R>, trusec_storage::StorageError>,
        view: impl Fn(&R) -> Result<T, trusec_storage::StorageError>,
        cursor: impl Fn(&T) -> String,
    ) -> Result<actix_web::HttpResponse, ApiError> {
        let page = query.to_request::<I>()?;
        let env = self.environment.clone();
        let rows = core.db.run(move |conn| load(conn, &env, &page)).await?;
        list_response(rows, view, cursor)
    }

    /// `GET /v1/<objects>/{id}` and friends: the object of kind `I` with
    /// this path id in the caller's environment, from `get`.
    ///
    /// # Errors
    /// `NotFound` naming `id` for a malformed or unknown id; storage failures.
    pub async fn fetch<I: TypedId, R: Send + 'static>(
        &self,
        core: &trusec_storage::Core,
        raw_id: &str,
        get: fn(
            &mut trusec_storage::DbConnection,
            &str,
            &str,
        ) -> Result<R, trusec_storage::StorageError>,
    ) -> Result<R, ApiError> {
        // The parsed id, as text for the blocking closure.
        let id = path_id::<I>(raw_id)?.to_string();
        let env = self.environment.clone();
        core.db
            .run(move |conn| get(conn, &env, &id))
            .await
            .map_err(|e| match e {
                trusec_storage::StorageError::NotFound => ApiError::not_found(I::WHAT, Some("id")),
                other => other.into(),
            })
    }
}

/// A bearer access token that did not verify: a server failure keeps the
/// `error_id` it was already logged under (not logged again); anything
/// else is `Unauthenticated` with `message`.
pub fn token_refused(e: &trusec_oauth::OAuthError, message: String) -> ApiError {
    match (
        e.error_id(),
        e.challenge().filter(|_| e.is_dpop_challenge()),
    ) {
        (Some(error_id), _) => ApiError::Internal {
            error_id: error_id.to_owned(),
        },
        // RFC 9449 §7.1: a DPoP refusal says why, in the DPoP challenge.
        (None, Some(challenge)) => ApiError::DpopRefused {
            message: e.description.clone(),
            challenge,
            nonce: e.dpop_nonce().map(str::to_owned),
        },
        (None, None) => ApiError::Unauthenticated(message),
    }
}

/// Parses a path id before it reaches a query.
///
/// # Errors
/// `NotFound` naming `id` when it is not an id of kind `I`.
pub fn path_id<I: TypedId>(id: &str) -> Result<I, ApiError> {
    I::parse(id).ok_or_else(|| ApiError::not_found(I::WHAT, Some("id")))
}
