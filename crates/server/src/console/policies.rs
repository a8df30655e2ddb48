//! `/console/policies`: the environment's security policy as a form, read
//! and changed through `api::v1::policies` (the same validation and the
//! same `policy.updated` event as `PATCH /v1/policies`).

use super::page::{FieldError, Layout, check_csrf, error_for, field_error, render};
use super::session::{Admin, ConsoleError};
use crate::api::v1::policies as v1_policies;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use trusec_storage::policies::{
    MIN_LENGTH_RANGE, MfaMode, MfaPatch, PasswordPatch, Policy, PolicyPatch,
};

#[derive(Template)]
#[template(path = "console/policies.html")]
struct PoliciesPage {
    layout: Layout,
    policy: Policy,
    /// What was typed, shown again after a refusal.
    min_length: String,
    min: u16,
    max: u16,
    error: Option<FieldError>,
    note: Option<&'static str>,
}

impl PoliciesPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(self.error.as_ref(), field)
    }
}

#[derive(Debug, Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    min_length: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    refuse_common: Option<String>,
    /// `optional` or `required`.
    #[serde(default)]
    mfa_mode: String,
    /// A checkbox.
    #[serde(default)]
    mfa_admins: Option<String>,
}

fn page(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    (policy, min_length, error, note): (Policy, String, Option<FieldError>, Option<&'static str>),
) -> HttpResponse {
    let (layout, cookie) = Layout::of(req, state, admin);
    let page = PoliciesPage {
        layout,
        policy,
        min_length,
        min: *MIN_LENGTH_RANGE.start(),
        max: *MIN_LENGTH_RANGE.end(),
        error,
        note,
    };
    render(&page, status, cookie)
}

/// `GET /console/policies`.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
) -> Result<HttpResponse, ConsoleError> {
    let policy = v1_policies::read(&state, &admin.ui.env.id).await?;
    let typed = policy.password.min_length.to_string();
    Ok(page(
        &req,
        &state,
        &admin,
        StatusCode::OK,
        (policy, typed, None, None),
    ))
}

/// `POST /console/policies`: the whole form is the new password policy.
pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    form: web::Form<PolicyForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let form = form.into_inner();
    let Ok(min_length) = form.min_length.trim().parse::<u16>() else {
        let policy = v1_policies::read(&state, &admin.ui.env.id).await?;
        let error = FieldError {
            field: "password.min_length".into(),
            message: "must be a whole number".into(),
        };
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(page(
            &req,
            &state,
            &admin,
            status,
            (policy, form.min_length, Some(error), None),
        ));
    };
    let patch = PolicyPatch {
        password: Some(PasswordPatch {
            min_length: Some(min_length),
            refuse_common: Some(form.refuse_common.is_some()),
        }),
        mfa: Some(MfaPatch {
            // An unknown choice (a forged form) changes nothing.
            mode: MfaMode::parse(&form.mfa_mode),
            required_for_admins: Some(form.mfa_admins.is_some()),
        }),
    };
    match v1_policies::apply(&state, &admin.acting, patch).await {
        Ok(policy) => {
            let typed = policy.password.min_length.to_string();
            let note = Some("Saved. New passwords must meet it; existing ones keep working.");
            Ok(page(
                &req,
                &state,
                &admin,
                StatusCode::OK,
                (policy, typed, None, note),
            ))
        }
        Err(e) => {
            let error = field_error(e)?;
            let policy = v1_policies::read(&state, &admin.ui.env.id).await?;
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(page(
                &req,
                &state,
                &admin,
                status,
                (policy, form.min_length, Some(error), None),
            ))
        }
    }
}
