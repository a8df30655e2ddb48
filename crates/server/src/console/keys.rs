//! The API keys page (create — the key shown once —, rotate with a grace
//! period, revoke; last use) and the signing keys page (the JWT keys
//! current, next and retired-but-published, the SAML IdP certificates;
//! rotate now). Every action goes through `/v1`'s decide functions
//! (`api_keys::{mint, rotate_key, revoke_key}`,
//! `signing_keys::rotate_now`), audited with the administrator as actor.
//!
//! A console acts in its own environment: the live console makes secret
//! and public keys (live's), the test console test keys; other
//! environments have no API keys of their own (`KeyType::environment`).

use super::page::{
    CsrfForm, FieldError, Layout, check_csrf, error_for, field_error, first_page, render,
};
use super::session::{Admin, ConsoleError};
use crate::api::v1::{api_keys, signing_keys as v1_signing_keys};
use crate::durations::DurationInput;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use trusec_storage::api_keys::{ApiKeyRow, KeyType, MintedKey};
use trusec_storage::ids::{ApiKeyId, TypedId};
use trusec_storage::signing_keys;

/// The most keys one page lists.
const PAGE: i64 = 100;

fn when(t: chrono::NaiveDateTime) -> String {
    t.and_utc().format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The key types a console may make in its environment.
fn types_here(admin: &Admin) -> Vec<KeyType> {
    KeyType::ALL
        .iter()
        .copied()
        .filter(|t| t.environment() == admin.ui.env.id)
        .collect()
}

/// A key as a row of the list.
pub struct KeyLine {
    pub id: String,
    pub name: String,
    pub key_type: &'static str,
    pub shown: String,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    /// `active`, `revoked`, `expired`, or `rotated` (working until it expires).
    pub status: &'static str,
    pub actionable: bool,
}

impl KeyLine {
    fn of(row: &ApiKeyRow, now: chrono::NaiveDateTime) -> Self {
        let expired = row.expires_at.is_some_and(|e| e <= now);
        let status = match (row.revoked_at.is_some(), expired, row.rotated_to.is_some()) {
            (true, _, _) => "revoked",
            (false, true, _) => "expired",
            (false, false, true) => "rotated",
            (false, false, false) => "active",
        };
        Self {
            id: row.id.clone(),
            name: row.name.clone(),
            key_type: row.key_type.as_str(),
            shown: format!("{}…{}", row.key_type.prefix(), row.last_four),
            created_at: when(row.created_at),
            last_used_at: row.last_used_at.map(when).unwrap_or_default(),
            expires_at: row.expires_at.map(when).unwrap_or_default(),
            status,
            actionable: status == "active",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default, rename = "type")]
    key_type: String,
    /// A duration (`90d`); empty: the default.
    #[serde(default)]
    expires_in: String,
}

fn duration(text: &str) -> Option<DurationInput> {
    let text = text.trim();
    (!text.is_empty()).then(|| DurationInput::Text(text.to_owned()))
}

#[derive(Template)]
#[template(path = "console/api_keys.html")]
struct ListPage {
    layout: Layout,
    keys: Vec<KeyLine>,
    types: Vec<&'static str>,
    form: CreateForm,
    error: Option<FieldError>,
    /// The key just made or rotated to, shown this once.
    minted: Option<Minted>,
    note: Option<String>,
}

impl ListPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(self.error.as_ref(), field)
    }
}

/// A key shown once, and what it is.
pub struct Minted {
    pub key: String,
    pub name: String,
}

impl From<MintedKey> for Minted {
    fn from(m: MintedKey) -> Self {
        Self {
            key: m.key,
            name: m.row.name,
        }
    }
}

/// What the list page says after an action.
#[derive(Default)]
struct After {
    form: CreateForm,
    error: Option<FieldError>,
    minted: Option<Minted>,
    note: Option<String>,
}

async fn list_page(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    after: After,
) -> Result<HttpResponse, ConsoleError> {
    let now = admin.ui.core.clock.now_naive();
    let rows = first_page(admin, PAGE, trusec_storage::api_keys::list).await?;
    let (layout, cookie) = Layout::of(req, state, admin);
    let page = ListPage {
        layout,
        keys: rows.iter().map(|r| KeyLine::of(r, now)).collect(),
        types: types_here(admin).iter().map(|t| t.as_str()).collect(),
        form: after.form,
        error: after.error,
        minted: after.minted,
        note: after.note,
    };
    let mut resp = render(&page, status, cookie);
    // The page may carry a key: never keep it anywhere.
    resp.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

/// `GET /console/api-keys`.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
) -> Result<HttpResponse, ConsoleError> {
    list_page(&req, &state, &admin, StatusCode::OK, After::default()).await
}

/// `POST /console/api-keys`: a key of a type this environment has, shown
/// once; or the form again with the field at fault marked.
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let form = form.into_inner();
    let minted = match KeyType::parse(&form.key_type).filter(|t| types_here(&admin).contains(t)) {
        Some(t) => {
            let expires = duration(&form.expires_in);
            api_keys::mint(&state, &admin.acting, t, &form.name, expires.as_ref()).await
        }
        None => Err(ApiError::validation(
            "type",
            "this environment has no API keys of that type",
        )),
    };
    let (status, after) = match minted {
        Ok(m) => (
            StatusCode::CREATED,
            After {
                minted: Some(m.into()),
                ..After::default()
            },
        ),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            After {
                error: Some(field_error(e)?),
                form,
                ..After::default()
            },
        ),
    };
    list_page(&req, &state, &admin, status, after).await
}

#[derive(Debug, Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    csrf_token: String,
    /// How long the old key keeps working (`24h`); empty: a day.
    #[serde(default)]
    grace_period: String,
}

fn key_id(id: &str) -> Result<ApiKeyId, ConsoleError> {
    ApiKeyId::parse(id).ok_or_else(|| ApiError::not_found("API key", Some("id")).into())
}

/// `POST /console/api-keys/{id}/rotate`: the new key shown once; the old
/// one works until the grace period ends.
pub async fn rotate(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    form: web::Form<RotateForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let id = key_id(&id)?;
    let grace = duration(&form.grace_period);
    let after = match api_keys::rotate_key(&state, &admin.acting, &id, grace.as_ref(), None).await {
        Ok((old, minted)) => After {
            note: Some(format!(
                "{} was rotated; the old key works until {}.",
                old.name,
                old.expires_at.map(when).unwrap_or_default()
            )),
            minted: Some(minted.into()),
            ..After::default()
        },
        Err(e) => After {
            note: Some(field_error(e)?.message),
            ..After::default()
        },
    };
    list_page(&req, &state, &admin, StatusCode::OK, after).await
}

/// `POST /console/api-keys/{id}/revoke`: at once, on every instance.
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let id = key_id(&id)?;
    let row = api_keys::revoke_key(&state, &admin.acting, &id).await?;
    let after = After {
        note: Some(format!("{} was revoked.", row.name)),
        ..After::default()
    };
    list_page(&req, &state, &admin, StatusCode::OK, after).await
}

/// A JWT signing key as the signing keys page shows it (public facts only).
pub struct JwtKeyLine {
    pub kid: String,
    pub algorithm: &'static str,
    pub state: &'static str,
    pub created_at: String,
    pub activated_at: String,
    pub published_until: String,
}

/// An IdP certificate the SAML metadata publishes.
pub struct IdpCertLine {
    pub role: &'static str,
    pub subject: String,
    pub not_after: String,
}

#[derive(Template)]
#[template(path = "console/signing_keys.html")]
struct KeysPage {
    layout: Layout,
    jwt: Vec<JwtKeyLine>,
    saml: Vec<IdpCertLine>,
    jwks_url: String,
    note: Option<String>,
}

async fn keys_page(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    note: Option<String>,
) -> Result<HttpResponse, ConsoleError> {
    let (env, now) = (admin.ui.env.id.clone(), admin.ui.core.clock.now_naive());
    let rows = admin
        .ui
        .core
        .db
        .run(move |conn| signing_keys::published(conn, &env, now))
        .await?;
    let jwt = rows
        .iter()
        .map(|r| JwtKeyLine {
            kid: r.id.clone(),
            algorithm: r.algorithm.as_str(),
            state: r.state.as_str(),
            created_at: when(r.created_at),
            activated_at: r.activated_at.map(when).unwrap_or_default(),
            published_until: r.publish_until.map(when).unwrap_or_default(),
        })
        .collect();
    let served = state
        .environment(&admin.ui.env.id)
        .ok_or_else(|| ApiError::not_found("environment", None))?;
    let idp = served.saml.keys.current();
    let saml = idp
        .published_pem
        .iter()
        .enumerate()
        .filter_map(|(i, pem)| {
            let c = trusec_saml::sp_metadata::summarize_certificate(pem).ok()?;
            Some(IdpCertLine {
                role: if i == 0 { "signing now" } else { "next" },
                subject: c.subject,
                not_after: c.not_after.format("%Y-%m-%d").to_string(),
            })
        })
        .collect();
    let (layout, cookie) = Layout::of(req, state, admin);
    let page = KeysPage {
        layout,
        jwt,
        saml,
        jwks_url: format!("{}/.well-known/jwks.json", admin.ui.env.issuer),
        note,
    };
    Ok(render(&page, StatusCode::OK, cookie))
}

/// `GET /console/signing-keys`.
pub async fn signing_keys(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
) -> Result<HttpResponse, ConsoleError> {
    keys_page(&req, &state, &admin, None).await
}

/// `POST /console/signing-keys/rotate`: rotate now, as `/v1` does.
pub async fn rotate_signing_keys(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let (rotated, saml, _) = v1_signing_keys::rotate_now(&state, &admin.acting).await?;
    let note = format!(
        "Rotated the JWT keys ({}); SAML: {saml}.",
        rotated.join(", ")
    );
    keys_page(&req, &state, &admin, Some(note)).await
}
