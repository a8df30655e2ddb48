//! `POST /oauth/device_authorization` (RFC 8628 §3.1–3.2): a device asks
//! for a device code and the user code its user will type on `/device`.
//! The client authenticates as at the token endpoint, and its scope and
//! `resource`s are checked as at `/oauth/authorize` (the same functions).

use super::authorize::request::requested_scope;
use super::no_store_json;
use crate::OAuthState;
use crate::error::OAuthError;
use crate::form::Params;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use trusec_storage::StorageError;
use trusec_storage::clients::{ClientRow, GrantType};
use trusec_storage::device_grants::{self, DeviceGrantRow, DeviceStatus};
use trusec_storage::scopes::ScopeSet;
use trusec_storage::secrets;
use trusec_storage::sql_types::Json;

/// RFC 8628 §3.2 `interval`: the default 5 seconds.
pub const INTERVAL_SECS: i64 = 5;

/// Fresh user codes to draw when one is taken (a collision among 20^8
/// codes is already rare).
const DRAWS: usize = 4;

#[tracing::instrument(skip_all)]
pub async fn post(
    req: HttpRequest,
    state: Data<OAuthState>,
    body: Bytes,
) -> Result<HttpResponse, OAuthError> {
    let params = super::token::read_form(&req, &body)?;
    let (client, _) = super::token::authenticate(
        &state,
        &req,
        &params,
        crate::client_auth::Endpoint::DeviceAuthorization,
    )
    .await?;
    let (scope, resources) = decide(&state, &client.row, &params).await?;
    let (device_code, user_code) = store(&state, &client.row, scope, resources).await?;
    Ok(no_store_json(&respond(&state, &device_code, &user_code)))
}

/// The grant type, scope and resources the device may ask for.
///
/// # Errors
/// `unauthorized_client`, `invalid_scope`, `invalid_target`.
async fn decide(
    state: &OAuthState,
    client: &ClientRow,
    params: &Params,
) -> Result<(ScopeSet, Vec<String>), OAuthError> {
    if !client.allows(GrantType::DeviceCode) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the device authorization grant",
        ));
    }
    let scope = requested_scope(client, params)?;
    let audiences = crate::resources::for_authorization(state, client, params, &scope).await?;
    Ok((scope, crate::resources::identifiers(state, &audiences)))
}

/// Stores the pending grant; returns the device code and the user code.
async fn store(
    state: &OAuthState,
    client: &ClientRow,
    scope: ScopeSet,
    resources: Vec<String>,
) -> Result<(String, String), OAuthError> {
    // §3.2: the device code is a 256-bit secret, stored only hashed.
    let device_code = secrets::generate_secret("").map_err(StorageError::backend)?;
    let now = state.core().clock.now_naive();
    let ttl = chrono::TimeDelta::from_std(state.settings.device_code_ttl)
        .unwrap_or(chrono::TimeDelta::minutes(10));
    let mut row = DeviceGrantRow {
        device_code_hash: secrets::hash_secret(&device_code),
        user_code_hash: String::new(),
        environment_id: client.environment_id.clone(),
        client_id: client.id.clone(),
        scope: Json(scope),
        resources: Json(resources),
        status: DeviceStatus::Pending,
        user_id: None,
        auth_time: None,
        session_id: None,
        amr: None,
        interval_secs: INTERVAL_SECS,
        last_poll_at: None,
        expires_at: now + ttl,
        created_at: now,
    };
    let mut last = None;
    for _ in 0..DRAWS {
        let user_code = device_grants::new_user_code().map_err(StorageError::backend)?;
        row.user_code_hash = secrets::hash_secret(&user_code);
        let insert = row.clone();
        match state
            .core()
            .db
            .run(move |c| device_grants::insert(c, &insert, now))
            .await
        {
            Ok(()) => return Ok((device_code, user_code)),
            Err(e @ StorageError::Conflict(_)) => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last
        .unwrap_or(StorageError::Conflict("user code".into()))
        .into())
}

/// §3.2's response.
fn respond(state: &OAuthState, device_code: &str, user_code: &str) -> serde_json::Value {
    let shown = device_grants::display_user_code(user_code);
    let verification_uri = format!("{}/device", state.settings.issuer);
    let mut complete = url::Url::parse(&verification_uri).ok();
    if let Some(u) = complete.as_mut() {
        u.query_pairs_mut().append_pair("user_code", &shown);
    }
    serde_json::json!({
        "device_code": device_code,
        "user_code": shown,
        "verification_uri": verification_uri,
        "verification_uri_complete": complete.map(String::from),
        "expires_in": state.settings.device_code_ttl.as_secs(),
        "interval": INTERVAL_SECS,
    })
}
