//! Over https the hosted pages' cookies are `__Host-` cookies (RFC 6265bis
//! §4.1.3.2): `Secure`, `Path=/`, no `Domain`, so a sibling subdomain or a
//! plain-http page cannot plant them; a cookie under the bare name (which
//! anyone on a sibling domain could set) counts for nothing.

use crate::oauth_support::{PASSWORD, hidden, make_user};
use trusec_testkit::{Backend, TestApp};

fn set_cookie<'a>(resp: &'a reqwest::Response, prefix: &str) -> &'a str {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} cookie"))
}

fn value(cookie: &str) -> &str {
    cookie.split(';').next().unwrap().split_once('=').unwrap().1
}

#[tokio::test]
async fn over_https_the_session_and_csrf_cookies_are_host_cookies() {
    let app = TestApp::builder(Backend::Sqlite)
        .with_settings(|s| s.issuer = "https://idp.example".into())
        .spawn()
        .await;
    make_user(&app, "host@example.com").await;
    // A plain client: Secure cookies are not sent back over http by a jar,
    // so the test sends them itself.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = browser.get(app.url("/login")).send().await.unwrap();
    let csrf_cookie = set_cookie(&page, "__Host-trusec_csrf=").to_owned();
    for attr in ["Secure", "Path=/", "HttpOnly"] {
        assert!(csrf_cookie.contains(attr), "{csrf_cookie}");
    }
    assert!(
        !csrf_cookie.to_ascii_lowercase().contains("domain="),
        "{csrf_cookie}"
    );
    let html = page.text().await.unwrap();
    let csrf = hidden(&html, "csrf_token");
    let form = [
        ("email", "host@example.com"),
        ("password", PASSWORD),
        ("csrf_token", csrf.as_str()),
    ];
    // The same token under the bare name is not a CSRF cookie here.
    let planted = browser
        .post(app.url("/login"))
        .header("cookie", format!("trusec_csrf={}", value(&csrf_cookie)))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(planted.status(), 403);
    let signed_in = browser
        .post(app.url("/login"))
        .header(
            "cookie",
            format!("__Host-trusec_csrf={}", value(&csrf_cookie)),
        )
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(signed_in.status().is_success() || signed_in.status().is_redirection());
    let session = set_cookie(&signed_in, "__Host-trusec_session=");
    for attr in ["Secure", "Path=/", "HttpOnly", "SameSite=None"] {
        assert!(session.contains(attr), "{session}");
    }
    assert!(
        !session.to_ascii_lowercase().contains("domain="),
        "{session}"
    );
}
