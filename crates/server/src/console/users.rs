//! The Users page: search, create (with or without a password), and a
//! user's page: edit (e-mail, names, groups, a new password), their live
//! sessions (end one or all), second factors (the help-desk reset), the
//! apps they consented to (take one back), delete. Every action goes
//! through the decide functions of `/v1` (`users::{register, change,
//! remove}`, `sessions::{end_by_id, end_all}`, `factors::reset_all`,
//! `consents::revoke`), audited with the administrator as the actor.
//!
//! An administrator cannot delete themselves or take `trusec-admins` from
//! their own groups here: that is how a console locks its last
//! administrator out. The CLI (`trusec admins add`) remains for that.

use super::page::{
    CsrfForm, FieldError, Layout, check_csrf, error_for, field_error, first_page, non_empty, render,
};
use super::session::{Admin, ConsoleError};
use crate::api::v1::users::{CreateUser, UpdateUser, change, register, remove};
use crate::api::v1::{consents, factors, sessions as v1_sessions};
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use trusec_storage::admins::ADMIN_GROUP;
use trusec_storage::ids::{ClientId, SessionId, TypedId, UserId};
use trusec_storage::users::{self, User};
use trusec_storage::{PageRequest, StorageError, consents as consent_rows, mfa, sessions};

/// The most users one page lists (or a search finds).
const PAGE: i64 = 100;
/// The most sessions and consents a user's page lists.
const DETAIL: i64 = 50;

/// A user as a row of the list.
pub struct Line {
    pub id: String,
    pub email: String,
    pub name: String,
    pub groups: String,
    pub has_password: bool,
}

impl From<User> for Line {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            email: u.email,
            name: u.name.unwrap_or_default(),
            groups: u.groups.join(", "),
            has_password: u.has_password,
        }
    }
}

/// What was typed into the create form, to show it again.
#[derive(Debug, Default, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    /// Empty: no password (the user signs in another way, or is given one
    /// later).
    #[serde(default)]
    password: String,
    /// Comma-separated.
    #[serde(default)]
    groups: String,
}

fn group_list(s: &str) -> Vec<String> {
    s.split([',', '\n'])
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect()
}

impl CreateForm {
    fn body(&self) -> CreateUser {
        CreateUser {
            email: self.email.clone(),
            password: (!self.password.is_empty()).then(|| self.password.clone()),
            name: non_empty(&self.name),
            given_name: None,
            family_name: None,
            groups: Some(group_list(&self.groups)),
            metadata: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct ListPage {
    layout: Layout,
    users: Vec<Line>,
    query: String,
    form: CreateForm,
    error: Option<FieldError>,
}

impl ListPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(self.error.as_ref(), field)
    }
}

async fn lines(admin: &Admin, query: &str) -> Result<Vec<Line>, ConsoleError> {
    let rows = if query.trim().is_empty() {
        first_page(admin, PAGE, users::list).await?
    } else {
        let (env, text) = (admin.ui.env.id.clone(), query.trim().to_owned());
        admin
            .ui
            .core
            .db
            .run(move |conn| users::search(conn, &env, &text, PAGE))
            .await?
    };
    Ok(rows
        .iter()
        .map(|r| r.to_user().map(Line::from))
        .collect::<Result<_, _>>()?)
}

async fn list_page(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    query: String,
    form: CreateForm,
    error: Option<FieldError>,
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let users = lines(admin, &query).await?;
    let (layout, cookie) = Layout::of(req, state, admin);
    let page = ListPage {
        layout,
        users,
        query,
        form,
        error,
    };
    Ok(render(&page, status, cookie))
}

/// `GET /console/users[?q=]`.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let q = query.into_inner().q;
    let (form, status) = (CreateForm::default(), StatusCode::OK);
    list_page(&req, &state, &admin, q, form, None, status).await
}

/// `POST /console/users`: creates the user and shows their page, or the
/// form again with the field at fault marked.
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let mut form = form.into_inner();
    match register(&state, &admin.acting, form.body()).await {
        Ok(user) => {
            let id = path_user(&user.id)?;
            show_page(&req, &state, &admin, &id, StatusCode::CREATED, None).await
        }
        Err(e) => {
            let error = Some(field_error(e)?);
            // A password is never sent back to the browser.
            form.password.clear();
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            list_page(&req, &state, &admin, String::new(), form, error, status).await
        }
    }
}

fn path_user(id: &str) -> Result<UserId, ConsoleError> {
    UserId::parse(id).ok_or_else(|| ApiError::not_found("user", Some("id")).into())
}

/// A live session as the user's page shows it.
pub struct SessionLine {
    pub id: String,
    pub created_at: String,
    pub expires_at: String,
    pub how: String,
    pub ip: String,
    pub user_agent: String,
}

/// The members of a session's `metadata` the page shows (sign-ins through
/// the hosted pages record them, `ui::routes::login::signed_in`).
#[derive(Debug, Default, Deserialize)]
struct SessionMetadata {
    ip: Option<String>,
    user_agent: Option<String>,
}

fn when(t: chrono::NaiveDateTime) -> String {
    t.and_utc().format("%Y-%m-%d %H:%M UTC").to_string()
}

impl From<&sessions::SessionRow> for SessionLine {
    fn from(s: &sessions::SessionRow) -> Self {
        let meta: SessionMetadata = serde_json::from_str(&s.metadata).unwrap_or_default();
        Self {
            id: s.id.clone(),
            created_at: when(s.created_at),
            expires_at: when(s.expires_at),
            how: match s.amr_values().as_slice() {
                [] => "through the API".to_owned(),
                methods => methods.join(" + "),
            },
            ip: meta.ip.unwrap_or_default(),
            user_agent: meta.user_agent.unwrap_or_default(),
        }
    }
}

pub struct FactorLine {
    pub kind: &'static str,
    /// A passkey's name; empty for an authenticator app.
    pub name: String,
    pub created_at: String,
    pub last_used_at: String,
}

pub struct ConsentLine {
    pub client_id: String,
    pub scopes: String,
    pub updated_at: String,
}

/// Everything the user's page shows, read in one database trip.
struct Details {
    user: User,
    sessions: Vec<SessionLine>,
    factors: Vec<FactorLine>,
    recovery_codes_left: i64,
    consents: Vec<ConsentLine>,
}

async fn details(admin: &Admin, id: &UserId) -> Result<Details, ConsoleError> {
    let (env, uid) = (admin.ui.env.id.clone(), id.to_string());
    let now = admin.ui.core.clock.now_naive();
    let page = PageRequest {
        limit: DETAIL,
        after: None,
    };
    let read = admin.ui.core.db.run(move |conn| {
        let user = users::get(conn, &env, &uid)?;
        let live = sessions::list_active_for_user(conn, &env, &uid, now, &page)?;
        let factors = mfa::list(conn, &env, &uid)?;
        let passkeys = trusec_storage::passkeys::list(conn, &env, &uid)?;
        let left = mfa::recovery_codes_left(conn, &env, &uid)?;
        let consents = consent_rows::list_for_user(conn, &env, &uid, None, &page)?;
        Ok((user, live.data, (factors, passkeys), left, consents.data))
    });
    let (user, live, (factors, passkeys), left, consents) = read.await.map_err(|e| match e {
        StorageError::NotFound => ApiError::not_found("user", Some("id")).into(),
        other => ConsoleError::from(other),
    })?;
    Ok(Details {
        user: user.to_user()?,
        sessions: live.iter().map(SessionLine::from).collect(),
        factors: factors
            .iter()
            .filter(|f| f.confirmed_at.is_some())
            .map(|f| FactorLine {
                kind: f.kind.as_str(),
                name: String::new(),
                created_at: when(f.confirmed_at.unwrap_or(f.created_at)),
                last_used_at: f.last_used_at.map(when).unwrap_or_default(),
            })
            .chain(passkeys.iter().map(|p| FactorLine {
                kind: "passkey",
                name: p.name.clone(),
                created_at: when(p.created_at),
                last_used_at: p.last_used_at.map(when).unwrap_or_default(),
            }))
            .collect(),
        recovery_codes_left: left,
        consents: consents
            .iter()
            .map(|c| ConsentLine {
                client_id: c.client_id.clone(),
                scopes: c.scopes.clone(),
                updated_at: when(c.updated_at),
            })
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct ShowPage {
    layout: Layout,
    user: User,
    groups: String,
    is_self: bool,
    sessions: Vec<SessionLine>,
    factors: Vec<FactorLine>,
    recovery_codes_left: i64,
    consents: Vec<ConsentLine>,
    note: Option<String>,
    error: Option<FieldError>,
}

impl ShowPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(self.error.as_ref(), field)
    }
}

/// What a user's page says after an action: a note, or a field error.
enum Outcome {
    Note(String),
    Field(FieldError),
}

async fn show_page(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    id: &UserId,
    status: StatusCode,
    outcome: Option<Outcome>,
) -> Result<HttpResponse, ConsoleError> {
    let d = details(admin, id).await?;
    let (layout, cookie) = Layout::of(req, state, admin);
    let (note, error) = match outcome {
        Some(Outcome::Note(n)) => (Some(n), None),
        Some(Outcome::Field(e)) => (None, Some(e)),
        None => (None, None),
    };
    let page = ShowPage {
        layout,
        groups: d.user.groups.join(", "),
        is_self: d.user.id == admin.user.id,
        user: d.user,
        sessions: d.sessions,
        factors: d.factors,
        recovery_codes_left: d.recovery_codes_left,
        consents: d.consents,
        note,
        error,
    };
    Ok(render(&page, status, cookie))
}

/// `GET /console/users/{id}`.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let id = path_user(&id)?;
    show_page(&req, &state, &admin, &id, StatusCode::OK, None).await
}

#[derive(Debug, Default, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    family_name: String,
    #[serde(default)]
    groups: String,
    /// Empty: the password stays as it is.
    #[serde(default)]
    password: String,
}

impl EditForm {
    fn body(&self) -> UpdateUser {
        UpdateUser {
            email: Some(self.email.clone()),
            password: (!self.password.is_empty()).then(|| Some(self.password.clone())),
            name: Some(non_empty(&self.name)),
            given_name: Some(non_empty(&self.given_name)),
            family_name: Some(non_empty(&self.family_name)),
            groups: Some(group_list(&self.groups)),
            metadata: None,
            disabled: None,
        }
    }
}

fn refuse_self(what: &str) -> ConsoleError {
    ConsoleError::Page(trusec_ui::PageError::refused(
        StatusCode::CONFLICT,
        "Not from the console",
        format!(
            "You cannot {what} your own account here: that could leave nobody able to sign in to \
             the console. Another administrator can, or `trusec admins add` on the server."
        ),
    ))
}

/// `POST /console/users/{id}`: saves the edit form.
pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    form: web::Form<EditForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let id = path_user(&id)?;
    let body = form.body();
    let keeps_admin = body
        .groups
        .as_ref()
        .is_some_and(|g| g.iter().any(|g| g == ADMIN_GROUP));
    if *id == *admin.user.id && !keeps_admin {
        return Err(refuse_self(&format!("take {ADMIN_GROUP} from")));
    }
    let outcome = match change(&state, &admin.acting, &id, body).await {
        Ok(_) => Outcome::Note("Saved.".into()),
        Err(e) => Outcome::Field(field_error(e)?),
    };
    let status = match outcome {
        Outcome::Note(_) => StatusCode::OK,
        Outcome::Field(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    show_page(&req, &state, &admin, &id, status, Some(outcome)).await
}

/// `POST /console/users/{id}/disable`.
pub async fn disable(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    set_disabled(&req, &state, &admin, &id, &form, true).await
}

/// `POST /console/users/{id}/enable`.
pub async fn enable(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    set_disabled(&req, &state, &admin, &id, &form, false).await
}

/// Disables or enables a user through the same decision as `PATCH
/// /v1/users/{id}`, so sessions and refresh tokens end and the change is
/// audited with the administrator as the actor.
async fn set_disabled(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    id: &str,
    form: &CsrfForm,
    disabled: bool,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(req, admin.ui.secure_cookies, &form.csrf_token)?;
    let id = path_user(id)?;
    if *id == *admin.user.id && disabled {
        return Err(refuse_self("disable"));
    }
    let body = UpdateUser {
        disabled: Some(disabled),
        ..UpdateUser::default()
    };
    change(state, &admin.acting, &id, body).await?;
    let note = if disabled {
        "Disabled: every session and refresh token of the user ended on every instance."
    } else {
        "Enabled: the user can sign in again."
    };
    let note = Some(Outcome::Note(note.into()));
    show_page(req, state, admin, &id, StatusCode::OK, note).await
}

/// `POST /console/users/{id}/delete`: back to the list.
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let id = path_user(&id)?;
    if *id == *admin.user.id {
        return Err(refuse_self("delete"));
    }
    remove(&state, &admin.acting, &id).await?;
    Ok(trusec_ui::pages::see_other(
        &admin.path("/console/users"),
        Vec::new(),
    ))
}

/// `POST /console/users/{id}/sessions/{session_id}/end`.
pub async fn end_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let (id, session) = path.into_inner();
    let id = path_user(&id)?;
    let session = SessionId::parse(&session)
        .ok_or_else(|| ApiError::not_found("session", Some("session_id")))?;
    // Only a session of this user: the path names both.
    let (env, uid, sid) = (admin.ui.env.id.clone(), id.to_string(), session.to_string());
    let now = admin.ui.core.clock.now_naive();
    let belongs = admin
        .ui
        .core
        .db
        .run(move |conn| sessions::is_live_of_user(conn, &env, &uid, &sid, now))
        .await?;
    if !belongs {
        return Err(ApiError::not_found("session", Some("session_id")).into());
    }
    v1_sessions::end_by_id(&state, &admin.acting, &session).await?;
    let note = Some(Outcome::Note(
        "The session was ended on every instance.".into(),
    ));
    show_page(&req, &state, &admin, &id, StatusCode::OK, note).await
}

/// `POST /console/users/{id}/sessions/end-all`.
pub async fn end_all_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let id = path_user(&id)?;
    let n = v1_sessions::end_all(&state, &admin.acting, &id).await?;
    let note = Some(Outcome::Note(format!("{n} session(s) ended.")));
    show_page(&req, &state, &admin, &id, StatusCode::OK, note).await
}

/// `POST /console/users/{id}/factors/reset`: the help-desk reset.
pub async fn reset_factors(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let id = path_user(&id)?;
    factors::reset_all(&state, &admin.acting, &id).await?;
    let note = "Second factors and recovery codes removed: the user signs in with the password \
                and may enrol again.";
    let note = Some(Outcome::Note(note.into()));
    show_page(&req, &state, &admin, &id, StatusCode::OK, note).await
}

/// `POST /console/users/{id}/consents/{client_id}/revoke`.
pub async fn revoke_consent(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let (id, client) = path.into_inner();
    let id = path_user(&id)?;
    let client = ClientId::parse(&client)
        .ok_or_else(|| ApiError::not_found("consent", Some("client_id")))?;
    let event = admin
        .acting
        .event(trusec_storage::audit::EventType::OAuthConsentRevoked);
    let env = admin.acting.environment.clone();
    consents::revoke(&state, env, id.clone(), &client, event).await?;
    let note = "Consent taken back: the app must ask again, and its refresh tokens for this user \
                no longer work.";
    let note = Some(Outcome::Note(note.into()));
    show_page(&req, &state, &admin, &id, StatusCode::OK, note).await
}
