//! Page templates and the headers every hosted page carries.

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, HttpResponseBuilder};
use askama::Template;

/// Scripts and styles only from our own origin (the passkey script,
/// `/static/passkeys.js`, which also fetches ceremony options from us; no
/// inline script), never framed.
/// `form-action` is left out on purpose: browsers apply it to the redirects
/// that follow a form post, and consent ends in a redirect to the app.
pub const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
                       style-src 'self'; img-src 'self' data:; \
                       frame-ancestors 'none'; base-uri 'none'";

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub client_name: Option<String>,
    pub email: String,
    pub error: Option<String>,
    pub csrf: String,
    pub interaction: String,
    /// Whether to offer passkeys (the environment's issuer is a domain).
    pub passkeys: bool,
}

/// The second step of sign-in: a TOTP or recovery code.
#[derive(Template)]
#[template(path = "second_factor.html")]
pub struct SecondFactorPage {
    pub client_name: Option<String>,
    pub error: Option<String>,
    pub csrf: String,
    /// The token of the sign-in waiting for this step.
    pub token: String,
    /// Whether passkeys can be offered here (the issuer is a domain).
    pub passkey: bool,
}

/// `/account/security`: the signed-in user's second factors.
#[derive(Template)]
#[template(path = "account_security.html")]
pub struct AccountSecurityPage {
    pub email: String,
    /// When the authenticator app was added, and last used (RFC 3339).
    pub totp: Option<(String, Option<String>)>,
    pub recovery_codes_left: i64,
    /// The user's passkeys, oldest first.
    pub passkeys: Vec<PasskeyLine>,
    /// Whether passkeys can be added here (the issuer is a domain).
    pub passkeys_on: bool,
    pub error: Option<String>,
    pub csrf: String,
    /// The app the MFA policy holds back until a second factor is added:
    /// its name and where to go on to it.
    pub waiting: Option<(String, String)>,
}

/// One passkey on the account page.
pub struct PasskeyLine {
    pub id: String,
    pub name: String,
    /// RFC 3339.
    pub added: String,
    pub last_used: Option<String>,
}

/// Adding an authenticator app: the QR code, the key to type, a first code.
#[derive(Template)]
#[template(path = "totp_enrol.html")]
pub struct TotpEnrolPage {
    /// `data:image/svg+xml;base64,…` of the `otpauth://` URI's QR code.
    pub qr_data_url: String,
    /// The key in base32, in groups of four.
    pub manual_key: String,
    pub error: Option<String>,
    pub csrf: String,
}

/// The recovery codes, shown once.
#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodesPage {
    pub codes: Vec<String>,
    pub account_url: String,
    /// The app waiting for this factor ([`AccountSecurityPage::waiting`]).
    pub waiting: Option<(String, String)>,
}

pub struct ScopeLine {
    pub name: String,
    pub description: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    pub client_name: String,
    /// Where a client that published its own metadata is from.
    pub client_host: Option<String>,
    pub scopes: Vec<ScopeLine>,
    pub user_email: String,
    pub csrf: String,
    pub interaction: String,
}

/// RFC 8628 §3.3: where a user types the code their device shows.
#[derive(Template)]
#[template(path = "device.html")]
pub struct DevicePage {
    /// The code as typed (or from `?user_code=`), shown back.
    pub user_code: String,
    pub error: Option<String>,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage {
    pub client_name: Option<String>,
    pub csrf: String,
    pub intent: String,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub title: String,
    pub message: String,
    pub is_error: bool,
    /// For server failures: the id under which the cause was logged.
    pub error_id: Option<String>,
}

impl MessagePage {
    /// A page that is not an error (signed in, signed out).
    pub fn info(title: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            message: message.into(),
            is_error: false,
            error_id: None,
        }
    }
}

/// Plain words for a scope on the consent page.
pub fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "Confirm who you are".to_owned(),
        "profile" => "See your name".to_owned(),
        "email" => "See your email address".to_owned(),
        "offline_access" => "Stay connected when you are not using it".to_owned(),
        "groups" => "See the groups you belong to".to_owned(),
        other => match other.split_once(':') {
            Some(("read", what)) => format!("Read {}", what.replace('_', " ")),
            Some(("write", what)) => format!("Change {}", what.replace('_', " ")),
            _ => format!("Use the permission \u{201c}{other}\u{201d}"),
        },
    }
}

/// A builder with the hosted pages' security headers.
pub fn page_response(status: StatusCode) -> HttpResponseBuilder {
    let mut resp = HttpResponse::build(status);
    resp.insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    resp
}

/// Renders a template with the security headers and any cookies to set.
pub fn render(
    template: &impl Template,
    status: StatusCode,
    cookies: Vec<Cookie<'static>>,
) -> HttpResponse {
    match template.render() {
        Ok(html) => {
            let mut resp = page_response(status);
            for c in cookies {
                resp.cookie(c);
            }
            resp.content_type("text/html; charset=utf-8").body(html)
        }
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            page_response(StatusCode::INTERNAL_SERVER_ERROR)
                .content_type("text/plain; charset=utf-8")
                .body("Something went wrong.")
        }
    }
}

/// A message page (signed out, errors).
pub fn message(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    render(
        &MessagePage {
            title: title.to_owned(),
            message: message.to_owned(),
            is_error: status.is_client_error() || status.is_server_error(),
            error_id: None,
        },
        status,
        Vec::new(),
    )
}

/// A 303 redirect after a form post, with the page headers.
pub fn see_other(location: &str, cookies: Vec<Cookie<'static>>) -> HttpResponse {
    let mut resp = page_response(StatusCode::SEE_OTHER);
    for c in cookies {
        resp.cookie(c);
    }
    resp.insert_header((header::LOCATION, location.to_owned()))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_as_plain_words() {
        assert_eq!(describe_scope("email"), "See your email address");
        assert_eq!(describe_scope("read:users"), "Read users");
        assert_eq!(describe_scope("write:api_keys"), "Change api keys");
        assert!(describe_scope("custom").contains("custom"));
    }

    #[test]
    fn message_pages_escape_their_text() {
        let html = MessagePage {
            title: "<b>".into(),
            message: "<script>alert(1)</script>".into(),
            is_error: true,
            error_id: None,
        }
        .render()
        .unwrap();
        assert!(!html.contains("<script>alert"));
    }
}
