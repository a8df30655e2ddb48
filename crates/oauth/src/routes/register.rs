//! `POST /oauth/register`: RFC 7591 dynamic client registration. Bearer a
//! secret (or test) API key for any client in that key's environment; with
//! open registration on, anonymous callers may register public clients
//! (native apps, MCP clients) in `live`, rate limited per IP.

use crate::OAuthState;
use crate::client_auth;
use crate::client_metadata::{self, ClientInput, ValidClient};
use crate::error::OAuthError;
use actix_web::http::header;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use serde::Deserialize;
use serde_json::json;
use trusec_storage::api_keys::KeyType;
use trusec_storage::audit::{Actor, ClientInfo, EventType, NewAuditEvent};
use trusec_storage::authn::KeyRefusal;
use trusec_storage::clients::{self, AuthMethod, ClientRow, ClientType, RegisteredBy};
use trusec_storage::rate_limit::{Family, Subject};
use trusec_storage::scopes::ScopeSet;
use trusec_ui::http::{Authorization, client_info};

const MAX_BODY: usize = 32 * 1024;

/// RFC 7591 §2 metadata. Unknown members are ignored, as §2 requires.
#[derive(Debug, Deserialize)]
struct Metadata {
    redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    client_name: Option<String>,
    scope: Option<String>,
    post_logout_redirect_uris: Option<Vec<String>>,
    id_token_signed_response_alg: Option<String>,
    jwks: Option<serde_json::Value>,
    jwks_uri: Option<String>,
    token_endpoint_auth_signing_alg: Option<String>,
    /// RFC 9126 §6.
    require_pushed_authorization_requests: Option<bool>,
    /// `web` (default) or `native` (loopback and private-use scheme
    /// redirect URIs, RFC 8252).
    application_type: Option<String>,
    /// RFC 9449 §5.2.
    dpop_bound_access_tokens: Option<bool>,
}

/// Who is registering.
struct Registrant {
    environment_id: String,
    actor: Actor,
    /// `Anonymous` (open registration) or `ApiKey`.
    registered_by: RegisteredBy,
}

impl Registrant {
    fn is_anonymous(&self) -> bool {
        match self.registered_by {
            RegisteredBy::Anonymous => true,
            RegisteredBy::ApiKey
            | RegisteredBy::ManagementApi
            | RegisteredBy::Console
            | RegisteredBy::MetadataDocument => false,
        }
    }
}

/// An API key's environment, or anonymous in `live` when open registration
/// is on (rate limited per IP).
async fn registrant(
    state: &OAuthState,
    req: &HttpRequest,
    client: &ClientInfo,
) -> Result<Registrant, OAuthError> {
    match Authorization::of(req) {
        Authorization::Bearer(key) => key_holder(state, &key, client).await,
        Authorization::Missing => anonymous(state, client).await,
        Authorization::Basic { .. }
        | Authorization::Dpop(_)
        | Authorization::MalformedBasic
        | Authorization::Other => Err(OAuthError::token_required(
            "registration takes a secret API key as bearer token",
        )),
    }
}

async fn anonymous(state: &OAuthState, client: &ClientInfo) -> Result<Registrant, OAuthError> {
    if !state.settings.open_registration {
        return Err(OAuthError::token_required(
            "registration needs a secret API key as bearer token",
        ));
    }
    let refusal = || {
        NewAuditEvent::new(
            EventType::RateLimitExceeded,
            Some(&state.env().id),
            Actor::anonymous(),
        )
        .client(client)
    };
    state
        .core()
        .limit(
            Family::Registration,
            Subject::Ip(client.ip.as_deref()),
            refusal,
        )
        .await?;
    Ok(Registrant {
        environment_id: state.env().id.clone(),
        actor: Actor::anonymous(),
        registered_by: RegisteredBy::Anonymous,
    })
}

async fn key_holder(
    state: &OAuthState,
    key: &str,
    client: &ClientInfo,
) -> Result<Registrant, OAuthError> {
    let caller = state
        .core()
        .authenticate_api_key(key, client)
        .await
        .map_err(|refusal| match refusal {
            KeyRefusal::Limited(limited) => OAuthError::rate_limited(limited),
            KeyRefusal::Storage(e) => OAuthError::from(e),
            KeyRefusal::Invalid | KeyRefusal::Revoked | KeyRefusal::Expired => {
                OAuthError::invalid_token("invalid, expired or revoked API key")
            }
        })?;
    if caller.key_type == KeyType::Public {
        return Err(OAuthError::insufficient_scope(
            "public keys (trusec_pk_) cannot register clients",
        ));
    }
    // A key registers clients of its own environment, at that
    // environment's endpoint: each environment is its own issuer.
    if caller.row.environment_id != state.env().id {
        return Err(OAuthError::invalid_token(
            "this API key belongs to another environment: register at that environment's issuer",
        ));
    }
    Ok(Registrant {
        environment_id: caller.row.environment_id.clone(),
        actor: caller.actor(),
        registered_by: RegisteredBy::ApiKey,
    })
}

pub async fn post(
    req: HttpRequest,
    state: Data<OAuthState>,
    body: Bytes,
) -> Result<HttpResponse, OAuthError> {
    let caller = client_info(&req);
    let registrant = registrant(&state, &req, &caller).await?;
    let meta = parse_metadata(&body)?;
    let catalog = crate::resources::Catalog::of(state.core(), &registrant.environment_id).await?;
    let outbound = state.settings.fetcher.settings();
    let valid = validate(meta, &registrant, catalog, outbound)?;
    let secret = client_auth::secret_for(&valid)?;
    let mac = secret.as_ref().and_then(|(s, _)| {
        client_auth::mac_secret(valid.token_endpoint_auth_method, s, &state.ui.seal_key)
    });
    let new = valid.into_new(
        registrant.environment_id.clone(),
        secret.as_ref().map(|(_, h)| h.clone()),
        registrant.registered_by,
    );
    let now = state.core().clock.now_naive();
    let row = state
        .core()
        .db
        .run(move |c| clients::insert_sealing(c, new, mac, now))
        .await?;
    let event = NewAuditEvent::new(
        EventType::OAuthClientCreated,
        Some(&registrant.environment_id),
        registrant.actor,
    )
    .client(&caller)
    .data(json!({"client_id": row.id, "registration": "rfc7591", "type": row.client_type}));
    state.core().audit(event).await?;
    Ok(respond(&row, secret.map(|(s, _)| s), now))
}

fn parse_metadata(body: &[u8]) -> Result<Metadata, OAuthError> {
    if body.len() > MAX_BODY {
        return Err(OAuthError::invalid_client_metadata(
            "the request body is too large",
        ));
    }
    let meta: Metadata = serde_json::from_slice(body)
        .map_err(|e| OAuthError::invalid_client_metadata(format!("malformed metadata: {e}")))?;
    if let Some(rt) = &meta.response_types
        && rt.iter().any(|t| t != "code")
    {
        return Err(OAuthError::invalid_client_metadata(
            "only the code response type is supported",
        ));
    }
    Ok(meta)
}

/// The metadata as a client this registrant may register (RFC 7591 §3.2.2
/// errors).
fn validate(
    meta: Metadata,
    registrant: &Registrant,
    catalog: crate::resources::Catalog,
    outbound: crate::fetch::OutboundSettings,
) -> Result<ValidClient, OAuthError> {
    let method = meta
        .token_endpoint_auth_method
        .unwrap_or_else(|| AuthMethod::ClientSecretBasic.as_str().into());
    // The method decides the type; an unknown one is refused below.
    let client_type = match AuthMethod::parse(&method) {
        Some(AuthMethod::None) => ClientType::Public,
        Some(
            AuthMethod::ClientSecretBasic
            | AuthMethod::ClientSecretPost
            | AuthMethod::PrivateKeyJwt
            | AuthMethod::ClientSecretJwt,
        )
        | None => ClientType::Confidential,
    };
    let anonymous = registrant.is_anonymous();
    if anonymous && client_type != ClientType::Public {
        return Err(OAuthError::invalid_client_metadata(
            "anonymous registration is for public clients only (token_endpoint_auth_method=none)",
        ));
    }
    let scopes = match &meta.scope {
        Some(s) => Some(
            crate::scopes::parse(s)
                .map_err(|e| OAuthError::invalid_client_metadata(e.description))?,
        ),
        None => None,
    };
    if anonymous
        && scopes
            .iter()
            .flat_map(ScopeSet::iter)
            .any(crate::scopes::is_management)
    {
        return Err(OAuthError::invalid_client_metadata(
            "anonymously registered clients cannot ask for management scopes",
        ));
    }
    client_metadata::validate(ClientInput {
        name: Some(
            meta.client_name
                .unwrap_or_else(|| "Unnamed application".into()),
        ),
        client_type: Some(client_type.as_str().into()),
        redirect_uris: meta.redirect_uris,
        post_logout_redirect_uris: meta.post_logout_redirect_uris,
        grant_types: meta.grant_types,
        scopes: scopes.map(Vec::from),
        token_endpoint_auth_method: Some(method),
        id_token_signed_response_alg: meta.id_token_signed_response_alg,
        refresh_token_leeway_seconds: None,
        resource_server: None,
        default_resource: None,
        jwks: meta.jwks,
        jwks_uri: meta.jwks_uri,
        token_endpoint_auth_signing_alg: meta.token_endpoint_auth_signing_alg,
        require_pushed_authorization_requests: meta.require_pushed_authorization_requests,
        application_type: meta.application_type,
        dpop_bound_access_tokens: meta.dpop_bound_access_tokens,
        catalog,
        outbound,
    })
    .map_err(|e| {
        if e.field.contains("redirect_uris") {
            OAuthError::invalid_redirect_uri(e.message)
        } else {
            OAuthError::invalid_client_metadata(format!("{}: {}", e.field, e.message))
        }
    })
}

/// RFC 7591 §3.2.1: the registered metadata, and the secret once.
fn respond(row: &ClientRow, secret: Option<String>, now: NaiveDateTime) -> HttpResponse {
    let client = row.to_client();
    let mut body = json!({
        "client_id": client.client_id,
        "client_id_issued_at": now.and_utc().timestamp(),
        "client_name": client.name,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "grant_types": client.grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "scope": client.scopes.join(" "),
        "require_pushed_authorization_requests": client.require_pushed_authorization_requests,
        "application_type": client.application_type,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
    });
    if let Some(obj) = body.as_object_mut() {
        if let Some(jwks) = client.jwks {
            obj.insert("jwks".into(), json!(jwks));
        }
        if let Some(uri) = client.jwks_uri {
            obj.insert("jwks_uri".into(), json!(uri));
        }
        if let Some(alg) = client.token_endpoint_auth_signing_alg {
            obj.insert("token_endpoint_auth_signing_alg".into(), json!(alg));
        }
    }
    if let (Some(secret), Some(obj)) = (secret, body.as_object_mut()) {
        obj.insert("client_secret".into(), json!(secret));
        // RFC 7591 §3.2.1: 0 means the secret does not expire.
        obj.insert("client_secret_expires_at".into(), json!(0));
    }
    HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}
