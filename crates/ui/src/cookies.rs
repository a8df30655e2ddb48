//! The login-session cookie and the CSRF double-submit cookie.

use crate::{Environment, UiState};
use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use trusec_storage::secrets;

/// The live environment's session cookie; every other environment's is
/// `trusec_session_NAME`, scoped to `/env/NAME`.
pub const SESSION_COOKIE: &str = "trusec_session";
pub const CSRF_COOKIE: &str = "trusec_csrf";

/// The session cookie's name and path in `env`. Each environment is its own
/// issuer with sessions of its own (contract): signing in to one must not
/// replace another's cookie, so each has its own name, and a non-live
/// environment's is sent only to its own paths.
fn session_name_and_path(env: &Environment) -> (String, String) {
    if env.is_live() {
        (SESSION_COOKIE.to_owned(), "/".to_owned())
    } else {
        (
            format!("{SESSION_COOKIE}_{}", env.name),
            env.base_path.clone(),
        )
    }
}

/// The session cookie of `state`'s environment: `HttpOnly`. Over https it
/// is `Secure; SameSite=None`, because SAML's HTTP-POST binding arrives as
/// a cross-site form post that must carry it (forms are protected by CSRF
/// tokens, not by SameSite); over plain http browsers refuse `None` without
/// `Secure`, so it is `SameSite=Lax` there (POST-binding requests then sign
/// in again).
pub fn session(state: &UiState, token: &str, max_age_secs: i64) -> Cookie<'static> {
    let secure = state.secure_cookies;
    let (name, path) = session_name_and_path(&state.env);
    Cookie::build(name, token.to_owned())
        .path(path)
        .http_only(true)
        .secure(secure)
        .same_site(if secure {
            SameSite::None
        } else {
            SameSite::Lax
        })
        .max_age(CookieDuration::seconds(max_age_secs))
        .finish()
}

/// A cookie that removes the session cookie of `state`'s environment.
pub fn clear_session(state: &UiState) -> Cookie<'static> {
    let mut c = session(state, "", 0);
    c.make_removal();
    c
}

/// The session token this browser holds for `state`'s environment.
pub fn session_token(req: &HttpRequest, state: &UiState) -> Option<String> {
    let (name, _) = session_name_and_path(&state.env);
    req.cookie(&name).map(|c| c.value().to_owned())
}

/// The CSRF token of this browser, minting one if it has none. Returns the
/// token and, when new, the cookie to set.
pub fn csrf(req: &HttpRequest, secure: bool) -> (String, Option<Cookie<'static>>) {
    if let Some(existing) = req.cookie(CSRF_COOKIE).filter(|c| c.value().len() >= 32) {
        return (existing.value().to_owned(), None);
    }
    let token = secrets::generate_secret("").unwrap_or_default();
    let cookie = Cookie::build(CSRF_COOKIE, token.clone())
        .path("/")
        .http_only(true)
        .secure(secure)
        // Strict: the form posting it comes from our own page.
        .same_site(SameSite::Strict)
        .finish();
    (token, Some(cookie))
}

/// Whether a posted CSRF token matches the browser's cookie (double submit).
pub fn csrf_ok(req: &HttpRequest, posted: &str) -> bool {
    req.cookie(CSRF_COOKIE).is_some_and(|c| {
        !posted.is_empty() && secrets::constant_time_eq(c.value().as_bytes(), posted.as_bytes())
    })
}
