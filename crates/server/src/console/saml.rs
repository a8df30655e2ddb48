//! The SAML page: the environment's service providers; registering one by
//! pasting (or, with the page's script, uploading) its metadata, with what
//! was read from it shown before anything is saved, or by fields; an SP's
//! page with its endpoints, certificate expiry and NameID format, its
//! attribute release, the IdP metadata and certificate, and a trace of the
//! last assertions issued to it and requests refused from it, with the
//! reason. Saving, changing and deleting go through the decide functions of
//! `/v1/saml/service-providers` (`register`, `change`, `remove`), audited
//! with the administrator as the actor.

use super::page::{
    CsrfForm, FieldError, Layout, check_csrf, error_for, field_error, first_page, non_empty, render,
};
use super::session::{Admin, ConsoleError};
use crate::api::v1::service_providers::{change, fields, register, remove};
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use trusec_saml::sp_config::{AttributesInput, MappedInput, SpInput};
use trusec_saml::{profiles, sp_metadata};
use trusec_storage::audit::{self, AuditFilter, AuditRow, EventType};
use trusec_storage::ids::{ServiceProviderId, TypedId};
use trusec_storage::service_providers::{
    self, AttributeProfile, Binding, Endpoint, ServiceProviderRow, SpFields, UserAttribute,
};
use trusec_storage::users::{self, UserRow};
use trusec_storage::{PageRequest, StorageError};

/// The most service providers one page lists.
const PAGE: i64 = 100;
/// How many recent SAML events of the environment the trace looks through
/// (per kind), and how many of this SP's it shows.
const TRACE_SCAN: i64 = 200;
const TRACE_SHOWN: usize = 20;
/// Certificates ending sooner than this are flagged.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// A service provider as a row of the list.
pub struct Line {
    pub id: String,
    pub name: String,
    pub entity_id: String,
    pub name_id_format: &'static str,
    pub certificate: Option<Certificate>,
}

/// A certificate as the pages show it.
pub struct Certificate {
    pub subject: String,
    pub not_after: String,
    pub key_bits: u32,
    /// `expired`, `expiring` (within [`EXPIRY_WARNING_DAYS`]) or `valid`.
    pub status: &'static str,
}

impl Certificate {
    fn of(admin: &Admin, pem: &str) -> Option<Self> {
        let summary = sp_metadata::summarize_certificate(pem).ok()?;
        let now = admin.ui.core.clock.now();
        let status = if summary.not_after <= now {
            "expired"
        } else if summary.not_after - now < chrono::TimeDelta::days(EXPIRY_WARNING_DAYS) {
            "expiring"
        } else {
            "valid"
        };
        Some(Self {
            subject: summary.subject,
            not_after: summary.not_after.format("%Y-%m-%d %H:%M UTC").to_string(),
            key_bits: summary.key_bits,
            status,
        })
    }
}

/// What was typed into the registration forms, to show it again.
#[derive(Debug, Default, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    metadata_xml: String,
    #[serde(default)]
    entity_id: String,
    #[serde(default)]
    acs_url: String,
    #[serde(default)]
    certificate_pem: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    name_id_format: String,
}

impl RegisterForm {
    fn by_metadata(&self) -> bool {
        !self.metadata_xml.trim().is_empty()
    }

    /// Metadata wins when pasted; otherwise the fields.
    fn input(&self) -> SpInput {
        if self.by_metadata() {
            return SpInput {
                metadata_xml: Some(self.metadata_xml.clone()),
                name: non_empty(&self.name),
                ..SpInput::default()
            };
        }
        SpInput {
            entity_id: non_empty(&self.entity_id),
            acs_url: non_empty(&self.acs_url),
            certificate_pem: non_empty(&self.certificate_pem),
            name: non_empty(&self.name),
            name_id_format: non_empty(&self.name_id_format),
            ..SpInput::default()
        }
    }
}

#[derive(Template)]
#[template(path = "console/saml.html")]
struct ListPage {
    layout: Layout,
    providers: Vec<Line>,
    form: RegisterForm,
    error: Option<FieldError>,
    metadata_url: String,
}

impl ListPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(self.error.as_ref(), field)
    }
}

/// What was read from pasted metadata, before it is saved.
#[derive(Template)]
#[template(path = "console/saml_preview.html")]
struct PreviewPage {
    layout: Layout,
    read: Summary,
    form: RegisterForm,
}

/// An SP's configuration as the pages show it.
pub struct Summary {
    pub entity_id: String,
    pub name: String,
    pub acs: Vec<EndpointLine>,
    pub slo: Vec<EndpointLine>,
    pub certificate: Option<Certificate>,
    pub name_id_format: &'static str,
    pub attribute_profile: &'static str,
    pub attributes: Vec<AttributeLine>,
    pub signs: &'static str,
    pub wants_signed_requests: bool,
    /// "encrypted (AES-256-GCM, certificate expires …)" or why not.
    pub assertions: String,
    /// The SP has an encryption certificate: the toggle is offered.
    pub can_encrypt: bool,
    pub encrypts: bool,
    /// The content cipher (`aes256-gcm`, …), selected in the form.
    pub cipher: &'static str,
}

pub struct EndpointLine {
    pub url: String,
    pub binding: String,
    pub label: String,
}

/// One of our attributes and how this SP receives it (if at all).
pub struct AttributeLine {
    pub ours: &'static str,
    pub released: bool,
    pub name: String,
    pub name_format: &'static str,
    pub friendly_name: String,
}

/// Which bindings TruSec sends by to a kind of endpoint.
#[derive(Clone, Copy)]
enum Use {
    /// Assertions go out by HTTP-POST only.
    Acs,
    /// Logout messages by HTTP-POST or HTTP-Redirect.
    Slo,
}

fn endpoints(list: &[Endpoint], usage: Use) -> Vec<EndpointLine> {
    list.iter()
        .map(|e| {
            let used = match (usage, &e.binding) {
                (_, Binding::HttpPost) | (Use::Slo, Binding::HttpRedirect) => true,
                (Use::Acs, Binding::HttpRedirect) | (_, Binding::Other(_)) => false,
            };
            let name = match &e.binding {
                Binding::HttpPost => "HTTP-POST",
                Binding::HttpRedirect => "HTTP-Redirect",
                Binding::Other(urn) => urn,
            };
            EndpointLine {
                url: e.url.clone(),
                binding: if used {
                    name.to_owned()
                } else {
                    format!("{name} (not used)")
                },
                label: match (e.index, e.is_default) {
                    (Some(i), true) => format!("index {i}, default"),
                    (Some(i), false) => format!("index {i}"),
                    (None, true) => "default".into(),
                    (None, false) => String::new(),
                },
            }
        })
        .collect()
}

impl Summary {
    fn of(admin: &Admin, f: &SpFields) -> Self {
        let attributes = UserAttribute::ALL
            .iter()
            .map(|a| {
                let (released, r) = f.attributes.get(a).map_or_else(
                    || (false, profiles::release(f.attribute_profile, *a)),
                    |r| (true, r.clone()),
                );
                AttributeLine {
                    ours: a.as_str(),
                    released,
                    name: r.name,
                    name_format: r.name_format.as_str(),
                    friendly_name: r.friendly_name.unwrap_or_default(),
                }
            })
            .collect();
        Self {
            entity_id: f.entity_id.clone(),
            name: f.name.clone(),
            acs: endpoints(&f.acs_endpoints, Use::Acs),
            slo: endpoints(&f.slo_endpoints, Use::Slo),
            certificate: f
                .certificate_pem
                .as_deref()
                .and_then(|p| Certificate::of(admin, p)),
            name_id_format: f.name_id_format.urn(),
            attribute_profile: f.attribute_profile.as_str(),
            attributes,
            signs: match (f.sign_response, f.sign_assertion) {
                (true, true) => "the response and the assertion",
                (true, false) => "the response",
                (false, true) => "the assertion",
                (false, false) => "nothing",
            },
            wants_signed_requests: f.want_authn_requests_signed,
            assertions: assertions_line(admin, f),
            can_encrypt: f.encryption_certificate_pem.is_some(),
            encrypts: f.encrypt_assertions,
            cipher: f.assertion_cipher.as_str(),
        }
    }
}

/// How assertions reach the SP, as the summary says it.
fn assertions_line(admin: &Admin, f: &SpFields) -> String {
    let Some(pem) = &f.encryption_certificate_pem else {
        return "not encrypted (the SP publishes no encryption certificate)".to_owned();
    };
    let expiry = Certificate::of(admin, pem).map_or_else(
        || "certificate unreadable".to_owned(),
        |c| {
            let verb = if c.status == "expired" {
                "expired"
            } else {
                "expires"
            };
            format!("certificate {verb} {}", c.not_after)
        },
    );
    if f.encrypt_assertions {
        format!("encrypted ({}, {expiry})", f.assertion_cipher.label())
    } else {
        format!("not encrypted (switched off; the SP's encryption {expiry})")
    }
}

/// One recent event of an SP's trace.
pub struct TraceLine {
    pub at: String,
    pub what: &'static str,
    pub refused: bool,
    pub detail: String,
    pub ip: String,
}

#[derive(Template)]
#[template(path = "console/saml_sp.html")]
struct ShowPage {
    layout: Layout,
    id: String,
    sp: Summary,
    profiles: Vec<(&'static str, &'static str, bool)>,
    trace: Vec<TraceLine>,
    metadata_url: String,
    status_note: Option<&'static str>,
}

fn metadata_url(admin: &Admin) -> String {
    format!("{}/saml/metadata", admin.ui.env.issuer)
}

async fn list_lines(admin: &Admin) -> Result<Vec<Line>, ConsoleError> {
    let rows = first_page(admin, PAGE, service_providers::list).await?;
    Ok(rows
        .into_iter()
        .map(|r| Line {
            certificate: r
                .certificate_pem
                .as_deref()
                .and_then(|p| Certificate::of(admin, p)),
            id: r.id,
            name: r.name,
            entity_id: r.entity_id,
            name_id_format: r.name_id_format.urn(),
        })
        .collect())
}

fn list_page(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    providers: Vec<Line>,
    form: RegisterForm,
    error: Option<FieldError>,
) -> (ListPage, Option<actix_web::cookie::Cookie<'static>>) {
    let (layout, cookie) = Layout::of(req, state, admin);
    let page = ListPage {
        layout,
        providers,
        form,
        error,
        metadata_url: metadata_url(admin),
    };
    (page, cookie)
}

/// `GET /console/saml`.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
) -> Result<HttpResponse, ConsoleError> {
    let providers = list_lines(&admin).await?;
    let (page, cookie) = list_page(
        &req,
        &state,
        &admin,
        providers,
        RegisterForm::default(),
        None,
    );
    Ok(render(&page, StatusCode::OK, cookie))
}

/// The registration form again, with the field at fault marked; other
/// management errors become an error page.
async fn form_again(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    form: RegisterForm,
    e: ApiError,
) -> Result<HttpResponse, ConsoleError> {
    let mut error = field_error(e)?;
    if error.field.is_empty() && form.by_metadata() {
        error.field = "metadata_xml".into();
    }
    let providers = list_lines(admin).await?;
    let error = Some(error);
    let (page, cookie) = list_page(req, state, admin, providers, form, error);
    Ok(render(&page, StatusCode::UNPROCESSABLE_ENTITY, cookie))
}

/// `POST /console/saml/preview`: reads pasted metadata and shows what it
/// says; nothing is saved until the administrator confirms.
pub async fn preview(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    form: web::Form<RegisterForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let form = form.into_inner();
    match fields(&state, form.input(), None).await {
        Ok(read) => {
            let (layout, cookie) = Layout::of(&req, &state, &admin);
            let page = PreviewPage {
                layout,
                read: Summary::of(&admin, &read),
                form,
            };
            Ok(render(&page, StatusCode::OK, cookie))
        }
        Err(e) => form_again(&req, &state, &admin, form, e).await,
    }
}

/// `POST /console/saml`: registers the SP (from metadata or fields) and
/// shows its page, or the form again with the field at fault marked.
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    form: web::Form<RegisterForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let form = form.into_inner();
    match register(&state, &admin.acting, form.input()).await {
        Ok(row) => show_page(&req, &state, &admin, row, StatusCode::CREATED, None).await,
        Err(e) => form_again(&req, &state, &admin, form, e).await,
    }
}

/// The SP of the path, in the administrator's environment only.
async fn load(admin: &Admin, id: &str) -> Result<ServiceProviderRow, ConsoleError> {
    let not_found = || ApiError::not_found("service provider", Some("id"));
    let id = ServiceProviderId::parse(id).ok_or_else(not_found)?;
    let env = admin.ui.env.id.clone();
    admin
        .ui
        .core
        .db
        .run(move |conn| service_providers::get(conn, &env, &id))
        .await
        .map_err(|e| match e {
            StorageError::NotFound => not_found().into(),
            other => other.into(),
        })
}

/// The members of a SAML audit event's `data` the trace reads (the SSO
/// route writes `sp_id` on `saml.assertion.issued`, `saml::error::audited`
/// `sp_id`, `issuer`, `reason` and `message` on `saml.request.refused`).
#[derive(Debug, Default, Deserialize)]
struct EventData {
    sp_id: Option<String>,
    issuer: Option<String>,
    reason: Option<String>,
    message: Option<String>,
}

impl EventData {
    fn of(row: &AuditRow) -> Self {
        serde_json::from_str(&row.data).unwrap_or_default()
    }

    /// Whether the event is about `sp`: issued to it, or refused from it
    /// (by id once it was known, by the issuer it claimed before that).
    fn about(&self, sp: &ServiceProviderRow) -> bool {
        self.sp_id.as_deref() == Some(sp.id.as_str())
            || self.issuer.as_deref() == Some(sp.entity_id.as_str())
    }
}

fn trace_line(row: &AuditRow, data: EventData) -> TraceLine {
    let (what, refused, detail) = match row.event_type {
        EventType::SamlRequestRefused => (
            "Refused",
            true,
            format!(
                "{} ({})",
                data.reason.unwrap_or_default(),
                data.message.unwrap_or_default()
            ),
        ),
        EventType::SamlAssertionIssued => (
            "Assertion issued",
            false,
            row.user_id
                .as_deref()
                .map_or_else(String::new, |u| format!("to {u}")),
        ),
        // `trace` reads only the two kinds above.
        other => (other.as_str(), false, String::new()),
    };
    TraceLine {
        at: row
            .created_at
            .and_utc()
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
        what,
        refused,
        detail,
        ip: row.ip.clone().unwrap_or_default(),
    }
}

/// The last assertions issued to `sp` and requests refused from it, newest
/// first. Refusals are audited once per address, reason and minute
/// (`Core::refused`), so a repeated refusal shows once.
async fn trace(admin: &Admin, sp: &ServiceProviderRow) -> Result<Vec<TraceLine>, ConsoleError> {
    let env = admin.ui.env.id.clone();
    let mut rows = admin
        .ui
        .core
        .db
        .run(move |conn| {
            let mut rows = Vec::new();
            for kind in [
                EventType::SamlAssertionIssued,
                EventType::SamlRequestRefused,
            ] {
                let filter = AuditFilter {
                    outcome: None,
                    event_type: Some(kind),
                    user_id: None,
                    since: None,
                };
                let page = PageRequest {
                    limit: TRACE_SCAN,
                    after: None,
                };
                rows.extend(audit::list(conn, &env, &filter, &page)?.data);
            }
            Ok(rows)
        })
        .await?;
    rows.sort_by_key(|r| std::cmp::Reverse(r.seq));
    Ok(rows
        .iter()
        .map(|r| (r, EventData::of(r)))
        .filter(|(_, data)| data.about(sp))
        .take(TRACE_SHOWN)
        .map(|(r, data)| trace_line(r, data))
        .collect())
}

async fn show_page(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    row: ServiceProviderRow,
    status: StatusCode,
    status_note: Option<&'static str>,
) -> Result<HttpResponse, ConsoleError> {
    let trace = trace(admin, &row).await?;
    let (layout, cookie) = Layout::of(req, state, admin);
    let profile = row.attribute_profile;
    let page = ShowPage {
        layout,
        id: row.id.clone(),
        sp: Summary::of(admin, &row.fields()),
        profiles: AttributeProfile::ALL
            .iter()
            .map(|p| (p.as_str(), profile_label(*p), *p == profile))
            .collect(),
        trace,
        metadata_url: metadata_url(admin),
        status_note,
    };
    Ok(render(&page, status, cookie))
}

fn profile_label(p: AttributeProfile) -> &'static str {
    match p {
        AttributeProfile::Basic => "Basic: our names (email, name, …)",
        AttributeProfile::Oid => {
            "OID / eduPerson: urn:oid names (Shibboleth, research and education)"
        }
        AttributeProfile::Microsoft => "Microsoft: claim URIs (AD FS, Entra ID apps)",
    }
}

/// `GET /console/saml/{id}`.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let row = load(&admin, &id).await?;
    show_page(&req, &state, &admin, row, StatusCode::OK, None).await
}

/// The attribute form: `csrf_token`, `attribute_profile`, and per attribute
/// `release_NAME` (a checkbox) and `name_NAME` (a `Name` other than the
/// profile's, optional).
fn attributes_input(form: &[(String, String)]) -> SpInput {
    let value = |key: &str| {
        form.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().to_owned())
    };
    let profile = value("attribute_profile").unwrap_or_default();
    let chosen: Vec<(UserAttribute, Option<String>)> = UserAttribute::ALL
        .iter()
        .filter(|a| value(&format!("release_{}", a.as_str())).is_some())
        .map(|a| {
            (
                *a,
                value(&format!("name_{}", a.as_str())).filter(|n| !n.is_empty()),
            )
        })
        .collect();
    let attributes = if chosen.iter().all(|(_, custom)| custom.is_none()) {
        AttributesInput::List(chosen.iter().map(|(a, _)| a.as_str().to_owned()).collect())
    } else {
        // A custom Name is released in the profile's name format; the rest
        // exactly as the profile releases them.
        let base = AttributeProfile::parse(&profile).unwrap_or_default();
        AttributesInput::Map(
            chosen
                .into_iter()
                .map(|(a, custom)| {
                    let mapped = match custom {
                        Some(name) => MappedInput::Name(name),
                        None => {
                            let r = profiles::release(base, a);
                            MappedInput::Full {
                                name: r.name,
                                name_format: Some(r.name_format.as_str().to_owned()),
                                friendly_name: r.friendly_name,
                            }
                        }
                    };
                    (a.as_str().to_owned(), mapped)
                })
                .collect(),
        )
    };
    SpInput {
        attribute_profile: Some(profile),
        attributes: Some(attributes),
        ..SpInput::default()
    }
}

/// `POST /console/saml/{id}/attributes`: which attributes the SP receives,
/// and under which names.
pub async fn attributes(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, ConsoleError> {
    let csrf = form
        .iter()
        .find(|(k, _)| k == "csrf_token")
        .map_or("", |(_, v)| v.as_str());
    check_csrf(&req, admin.ui.secure_cookies, csrf)?;
    let current = load(&admin, &id).await?;
    let row = change(&state, &admin.acting, current, attributes_input(&form)).await?;
    let note = Some("Attribute release saved.");
    show_page(&req, &state, &admin, row, StatusCode::OK, note).await
}

/// The encryption form: `csrf_token`, when ticked `encrypt_assertions`,
/// and the content cipher chosen (`assertion_cipher`).
#[derive(Debug, Deserialize)]
pub struct EncryptionForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    encrypt_assertions: Option<String>,
    #[serde(default)]
    assertion_cipher: Option<String>,
}

/// `POST /console/saml/{id}/encryption`: assertions to the SP encrypted
/// for its encryption certificate, or not, and with which content cipher.
pub async fn encryption(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    form: web::Form<EncryptionForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let current = load(&admin, &id).await?;
    let input = SpInput {
        encrypt_assertions: Some(form.encrypt_assertions.is_some()),
        assertion_cipher: form.assertion_cipher.clone().filter(|c| !c.is_empty()),
        ..SpInput::default()
    };
    let row = change(&state, &admin.acting, current, input).await?;
    let note = Some("Assertion encryption saved.");
    show_page(&req, &state, &admin, row, StatusCode::OK, note).await
}

/// `POST /console/saml/{id}/delete`: the SP is removed; back to the list.
pub async fn delete(
    req: HttpRequest,
    admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let current = load(&admin, &id).await?;
    remove(&state, &admin.acting, current).await?;
    Ok(trusec_ui::pages::see_other(
        &admin.path("/console/saml"),
        Vec::new(),
    ))
}

/// The "test the SSO" form: whose sign-in to try (empty: the
/// administrator's own account).
#[derive(Debug, Default, Deserialize)]
pub struct TestForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
}

#[derive(Template)]
#[template(path = "console/saml_test.html")]
struct TestPage {
    layout: Layout,
    id: String,
    sp_name: String,
    email: String,
    test: trusec_saml::TestAssertion,
    /// IdP-initiated SSO to this SP, for a real sign-in after the preview.
    sign_in_url: String,
}

/// `POST /console/saml/{id}/test`: the assertion an IdP-initiated sign-in
/// of the chosen user would send this SP, built and signed by the SSO code
/// itself and verified against the IdP certificate, shown and not sent
/// (audited `saml.assertion.previewed`, the administrator as the actor);
/// with a link that signs the user in to the SP for real.
pub async fn test(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    form: web::Form<TestForm>,
) -> Result<HttpResponse, ConsoleError> {
    check_csrf(&req, admin.ui.secure_cookies, &form.csrf_token)?;
    let sp = load(&admin, &id).await?;
    let email = form.email.trim().to_owned();
    let user = test_user(&admin, &email).await?;
    let env = state
        .environment(&admin.ui.env.id)
        .ok_or_else(|| ApiError::not_found("environment", None))?;
    let user_id = user.id.clone();
    let test = trusec_saml::test_assertion(&env.saml, &sp, user).await?;
    let event = admin
        .acting
        .event(EventType::SamlAssertionPreviewed)
        .user(&user_id)
    .data(serde_json::json!({"sp_id": sp.id, "sp_entity_id": sp.entity_id, "name_id": test.name_id, "verified": test.verified}));
    admin.ui.core.audit(event).await?;
    let sign_in_url = format!(
        "{}?sp={}",
        admin.path("/saml/sso/init"),
        url::form_urlencoded::byte_serialize(sp.entity_id.as_bytes()).collect::<String>()
    );
    let (layout, cookie) = Layout::of(&req, &state, &admin);
    let page = TestPage {
        layout,
        id: sp.id,
        sp_name: sp.name,
        email,
        test,
        sign_in_url,
    };
    Ok(render(&page, StatusCode::OK, cookie))
}

/// The user a test signs in: by e-mail in the administrator's environment,
/// or the administrator when none is given.
async fn test_user(admin: &Admin, email: &str) -> Result<UserRow, ConsoleError> {
    if email.is_empty() {
        return Ok(admin.user.clone());
    }
    let (env, wanted) = (admin.ui.env.id.clone(), email.to_owned());
    admin
        .ui
        .core
        .db
        .run(move |conn| users::find_by_email(conn, &env, &wanted))
        .await?
        .ok_or_else(|| ApiError::not_found("user", Some("email")).into())
}

/// `GET /console/saml/idp-certificate.pem`: this environment's IdP signing
/// certificate, to upload to an SP that asks for it (its metadata has it
/// too).
pub async fn idp_certificate(
    state: web::Data<AppState>,
    admin: Admin,
) -> Result<HttpResponse, ConsoleError> {
    let env = state
        .environment(&admin.ui.env.id)
        .ok_or_else(|| ApiError::not_found("environment", None))?;
    let pem = env.saml.keys.current().certificate_pem.clone();
    let file = format!("attachment; filename=\"trusec-{}-idp.pem\"", env.env().name);
    Ok(HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .insert_header(("content-disposition", file))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(pem))
}
