//! The HTTP-POST binding out (SAML bindings §3.5.4): a page whose form
//! carries a signed message to the SP and submits itself. Assertions go
//! out this way, and logout messages to SPs that registered an HTTP-POST
//! single-logout endpoint.

use crate::SamlError;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use trusec_ui::pages;

/// The form field a message travels in (bindings §3.5.4).
#[derive(Clone, Copy, Debug)]
pub enum Param {
    SamlRequest,
    SamlResponse,
}

impl Param {
    pub const fn name(self) -> &'static str {
        match self {
            Self::SamlRequest => "SAMLRequest",
            Self::SamlResponse => "SAMLResponse",
        }
    }
}

/// What the user is shown while the form submits.
#[derive(Clone, Copy, Debug)]
pub enum Purpose {
    SignIn,
    SignOut,
}

impl Purpose {
    const fn heading(self) -> &'static str {
        match self {
            Self::SignIn => "Signing you in",
            Self::SignOut => "Signing you out",
        }
    }
}

#[derive(Template)]
#[template(path = "saml_post.html")]
struct PostPage<'a> {
    heading: &'a str,
    action: &'a str,
    param: &'a str,
    message: String,
    relay_state: Option<&'a str>,
    sp_name: &'a str,
}

/// One message on its way to the SP.
pub struct Outgoing<'a> {
    pub purpose: Purpose,
    pub action: &'a str,
    pub param: Param,
    /// The signed XML.
    pub xml: &'a str,
    pub relay_state: Option<&'a str>,
    pub sp_name: &'a str,
}

/// The auto-submitting page carrying `out`.
///
/// # Errors
/// A template failure (internal).
pub fn page(out: &Outgoing<'_>) -> Result<HttpResponse, SamlError> {
    let html = PostPage {
        heading: out.purpose.heading(),
        action: out.action,
        param: out.param.name(),
        message: STANDARD.encode(out.xml.as_bytes()),
        relay_state: out.relay_state,
        sp_name: out.sp_name,
    }
    .render()
    .map_err(|e| SamlError::internal(&e))?;
    Ok(pages::page_response(StatusCode::OK)
        // This page alone runs a script: our own, to submit the form.
        .insert_header((
            actix_web::http::header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .content_type("text/html; charset=utf-8")
        .body(html))
}
