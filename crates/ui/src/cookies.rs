//! The login-session cookie and the CSRF double-submit cookie.
//!
//! Over https both carry the `__Host-` prefix (RFC 6265bis §4.1.3.2): a
//! browser then accepts them only from a secure origin, with `Secure`,
//! `Path=/` and no `Domain`, so a page on a sibling subdomain or on plain
//! http cannot plant or overwrite them (session fixation, a forged CSRF
//! token). Over plain http (development) the prefix would make browsers
//! drop the cookies, so the bare names are used there.

use crate::{Environment, UiState};
use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use trusec_storage::secrets;

/// The live environment's session cookie; every other environment's is
/// `trusec_session_NAME`, scoped to `/env/NAME` (over https:
/// `__Host-trusec_session[_NAME]`, see the module notes).
pub const SESSION_COOKIE: &str = "trusec_session";
pub const CSRF_COOKIE: &str = "trusec_csrf";
const HOST_PREFIX: &str = "__Host-";

/// The session cookie's name and path in `env`. Each environment is its own
/// issuer with sessions of its own (contract): signing in to one must not
/// replace another's cookie, so each has its own name. Over http a
/// non-live environment's cookie is also sent only to its own paths; a
/// `__Host-` cookie must have `Path=/`, and its own name is what keeps it
/// apart there.
fn session_name_and_path(env: &Environment, secure: bool) -> (String, String) {
    name_and_path(SESSION_COOKIE, env, secure)
}

/// The name and path of `env`'s cookie called `base` (live: `base`; any
/// other environment: `base_NAME`), by the session cookie's rule above.
fn name_and_path(base: &str, env: &Environment, secure: bool) -> (String, String) {
    let name = if env.is_live() {
        base.to_owned()
    } else {
        format!("{base}_{}", env.name)
    };
    match (secure, env.is_live()) {
        (true, _) => (format!("{HOST_PREFIX}{name}"), "/".to_owned()),
        (false, true) => (name, "/".to_owned()),
        (false, false) => (name, env.base_path.clone()),
    }
}

fn csrf_name(secure: bool) -> String {
    if secure {
        format!("{HOST_PREFIX}{CSRF_COOKIE}")
    } else {
        CSRF_COOKIE.to_owned()
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
    let (name, path) = session_name_and_path(&state.env, secure);
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
    let (name, _) = session_name_and_path(&state.env, state.secure_cookies);
    req.cookie(&name).map(|c| c.value().to_owned())
}

/// The admin console's session cookie (issue #16).
pub const CONSOLE_COOKIE: &str = "trusec_console";
/// The `state` of a console sign-in in progress, so that only the browser
/// that started it can finish it (RFC 6749 §10.12).
pub const CONSOLE_SIGN_IN_COOKIE: &str = "trusec_console_signin";

/// A cookie of the admin console of `state`'s environment, named after
/// `base` ([`CONSOLE_COOKIE`], [`CONSOLE_SIGN_IN_COOKIE`]) by the session
/// cookie's rule (`__Host-` over https): `HttpOnly`, `SameSite=Lax` (the
/// console's own forms carry CSRF tokens; Lax lets a link from elsewhere
/// open the console signed in).
pub fn console(state: &UiState, base: &str, value: &str, max_age_secs: i64) -> Cookie<'static> {
    let (name, path) = name_and_path(base, &state.env, state.secure_cookies);
    Cookie::build(name, value.to_owned())
        .path(path)
        .http_only(true)
        .secure(state.secure_cookies)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(max_age_secs))
        .finish()
}

/// A cookie that removes [`console`]`(state, base, ..)`.
pub fn clear_console(state: &UiState, base: &str) -> Cookie<'static> {
    let mut c = console(state, base, "", 0);
    c.make_removal();
    c
}

/// The value of this browser's console cookie `base` in `state`'s environment.
pub fn console_value(req: &HttpRequest, state: &UiState, base: &str) -> Option<String> {
    let (name, _) = name_and_path(base, &state.env, state.secure_cookies);
    req.cookie(&name).map(|c| c.value().to_owned())
}

/// The CSRF token of this browser, minting one if it has none. Returns the
/// token and, when new, the cookie to set.
pub fn csrf(req: &HttpRequest, secure: bool) -> (String, Option<Cookie<'static>>) {
    let name = csrf_name(secure);
    if let Some(existing) = req.cookie(&name).filter(|c| c.value().len() >= 32) {
        return (existing.value().to_owned(), None);
    }
    let token = secrets::generate_secret("").unwrap_or_default();
    let cookie = Cookie::build(name, token.clone())
        .path("/")
        .http_only(true)
        .secure(secure)
        // Strict: the form posting it comes from our own page.
        .same_site(SameSite::Strict)
        .finish();
    (token, Some(cookie))
}

/// Whether a posted CSRF token matches the browser's cookie (double submit).
pub fn csrf_ok(req: &HttpRequest, secure: bool, posted: &str) -> bool {
    req.cookie(&csrf_name(secure)).is_some_and(|c| {
        !posted.is_empty() && secrets::constant_time_eq(c.value().as_bytes(), posted.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_env() -> Environment {
        Environment {
            id: "env_test".into(),
            name: "test".into(),
            issuer: "https://idp.example/env/test".into(),
            base_path: "/env/test".into(),
        }
    }

    #[test]
    fn over_https_every_cookie_is_host_prefixed_with_path_slash() {
        let live = Environment::live("https://idp.example");
        assert_eq!(
            session_name_and_path(&live, true),
            ("__Host-trusec_session".into(), "/".into())
        );
        assert_eq!(
            session_name_and_path(&test_env(), true),
            ("__Host-trusec_session_test".into(), "/".into())
        );
        assert_eq!(csrf_name(true), "__Host-trusec_csrf");
        // Plain http (development): browsers would drop prefixed cookies.
        assert_eq!(
            session_name_and_path(&live, false),
            ("trusec_session".into(), "/".into())
        );
        assert_eq!(
            session_name_and_path(&test_env(), false),
            ("trusec_session_test".into(), "/env/test".into())
        );
        assert_eq!(csrf_name(false), "trusec_csrf");
    }
}
