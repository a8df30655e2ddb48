//! The bindings as SPs really use them (issue 13): single logout by
//! whichever binding each SP registered — an SP whose single-logout
//! endpoint is HTTP-POST only is sent a signed, auto-submitting form, one
//! that is HTTP-Redirect only a signed redirect; both may send us either —
//! and HTTP-POST requests DEFLATEd as node-saml sends them. The IdP's
//! embedded signatures are checked with `xmlsec1 --verify`, an independent
//! verifier.

use crate::oauth_support::{hidden, make_user};
use crate::saml::{
    ACS, FIXTURE_KEY_PEM, SP_ENTITY, add_slo_endpoint_by, authn_request, auto_post, deflate_b64,
    enc, fixture_certificate, idp_cert, logout_at_idp, read_redirect, redirect_query, register_sp,
    sso,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use samael::crypto::{CertificateDer, Crypto, CryptoProvider};
use serde_json::json;
use std::str::FromStr;
use trusec_testkit::{Backend, TestApp, on_every_backend};

const POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
const REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
const POST_SP: &str = "https://post.example";
const REDIRECT_SP: &str = "https://redirect.example";
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";

on_every_backend!(
    single_logout_by_the_binding_each_sp_registered,
    idp_initiated_logout_posts_to_a_post_only_sp,
    deflated_post_requests_are_accepted,
);

/// node-saml DEFLATEs HTTP-POST AuthnRequests by default; the binding does
/// not, but the request is accepted (inflated under the same caps), and a
/// body that is neither is refused saying so.
async fn deflated_post_requests_are_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "deflated@example.com").await;
    register_sp(&app, json!({"entity_id": SP_ENTITY, "acs_url": ACS})).await;
    let sso_post = |message: String| {
        app.client
            .post(app.url("/saml/sso"))
            .form(&[("SAMLRequest", message)])
            .send()
    };
    let xml = authn_request("_deflated", SP_ENTITY, Some(ACS), app.clock.now());
    let resp = sso_post(deflate_b64(&xml)).await.unwrap();
    assert_eq!(resp.status(), 302);
    let login = app.url(resp.headers()["location"].to_str().unwrap());
    let (action, response, _) = sso(&app, &app.client, &login, "deflated@example.com").await;
    assert_eq!(action, ACS);
    let parsed = samael::schema::Response::from_str(&response).unwrap();
    assert_eq!(parsed.in_response_to.as_deref(), Some("_deflated"));
    let resp = sso_post(STANDARD.encode(b"\x00\x01 not xml"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("neither XML nor DEFLATE-compressed XML")
    );
}

/// A form the IdP sent the browser to auto-submit: (action, field name,
/// decoded XML, RelayState).
async fn posted_form(resp: reqwest::Response) -> (String, String, String, Option<String>) {
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = resp.text().await.unwrap();
    assert!(html.contains("<script src=\"/static/autopost.js\">"));
    let action = html
        .split("action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let param = if html.contains("name=\"SAMLRequest\"") {
        "SAMLRequest"
    } else {
        "SAMLResponse"
    };
    let xml = String::from_utf8(STANDARD.decode(hidden(&html, param)).unwrap()).unwrap();
    let relay = html
        .contains("name=\"RelayState\"")
        .then(|| hidden(&html, "RelayState"));
    (action, param.to_owned(), xml, relay)
}

/// `xmlsec1 --verify` of the signature on the root `element` (a SAML
/// protocol message) with the IdP certificate.
fn xmlsec1_verifies(xml: &str, element: &str, cert_pem: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let (xml_path, cert_path) = (dir.path().join("message.xml"), dir.path().join("idp.pem"));
    std::fs::write(&xml_path, xml).unwrap();
    std::fs::write(&cert_path, cert_pem).unwrap();
    let out = std::process::Command::new("xmlsec1")
        .arg("--verify")
        .arg("--pubkey-cert-pem")
        .arg(&cert_path)
        .args(["--id-attr:ID", &format!("{SAMLP}:{element}")])
        .arg(&xml_path)
        .output()
        .expect("xmlsec1 is installed (scripts/install-deps)");
    out.status.success()
}

/// Checks a form's message is signed by the IdP (and that tampering
/// breaks it).
fn assert_idp_signed(xml: &str, element: &str, idp: &str) {
    assert!(xmlsec1_verifies(xml, element, idp), "{xml}");
    let tampered = xml.replacen("<saml:Issuer>", "<saml:Issuer>x", 1);
    assert!(!xmlsec1_verifies(&tampered, element, idp));
}

/// A message signed the SP's way for the HTTP-POST binding: an enveloped
/// signature right after its `Issuer`, by the fixture SP key.
fn sp_signed(xml: &str, id: &str) -> String {
    let cert = openssl::x509::X509::from_pem(fixture_certificate().as_bytes())
        .unwrap()
        .to_der()
        .unwrap();
    let mut template = samael::signature::Signature::template(id, &CertificateDer::from(cert));
    for r in &mut template.signed_info.reference {
        r.digest_method.algorithm = samael::signature::DigestAlgorithm::Sha256;
    }
    let template = samael::traits::ToXml::to_string(&template).unwrap();
    let with_template = xml.replacen("</saml:Issuer>", &format!("</saml:Issuer>{template}"), 1);
    let key = openssl::pkey::PKey::private_key_from_pem(FIXTURE_KEY_PEM.as_bytes())
        .unwrap()
        .private_key_to_der()
        .unwrap();
    Crypto::sign_xml(with_template, &key).unwrap()
}

fn now(app: &TestApp) -> String {
    app.clock.now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn logout_request(app: &TestApp, id: &str, issuer: &str, email: &str) -> String {
    format!(
        r#"<samlp:LogoutRequest xmlns:samlp="{SAMLP}" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{}" Destination="http://127.0.0.1:8080/saml/slo"><saml:Issuer>{issuer}</saml:Issuer><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{email}</saml:NameID></samlp:LogoutRequest>"#,
        now(app)
    )
}

fn logout_response(app: &TestApp, id: &str, issuer: &str, in_response_to: &str) -> String {
    format!(
        r#"<samlp:LogoutResponse xmlns:samlp="{SAMLP}" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{}" Destination="http://127.0.0.1:8080/saml/slo" InResponseTo="{in_response_to}"><saml:Issuer>{issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="{SUCCESS}"/></samlp:Status></samlp:LogoutResponse>"#,
        now(app)
    )
}

/// An HTTP-POST of `param` to `/saml/slo`.
async fn post_slo(app: &TestApp, param: &str, xml: &str, relay: &str) -> reqwest::Response {
    app.client
        .post(app.url("/saml/slo"))
        .form(&[
            (param, STANDARD.encode(xml).as_str()),
            ("RelayState", relay),
        ])
        .send()
        .await
        .unwrap()
}

/// The two SPs, each with the fixture certificate and one SLO endpoint.
async fn two_sps(app: &TestApp) {
    for (entity, binding) in [(POST_SP, POST), (REDIRECT_SP, REDIRECT)] {
        let sp = register_sp(
            app,
            json!({"entity_id": entity, "acs_url": format!("{entity}/acs"), "certificate_pem": fixture_certificate()}),
        )
        .await;
        add_slo_endpoint_by(app, &sp, &format!("{entity}/slo"), binding).await;
    }
}

/// Signs in at both SPs, the first through the login form.
async fn sign_in_to_both(app: &TestApp, email: &str) {
    let init = |sp: &str| app.url(&format!("/saml/sso/init?sp={}", enc(sp)));
    sso(app, &app.client, &init(POST_SP), email).await;
    auto_post(app.client.get(init(REDIRECT_SP)).send().await.unwrap()).await;
}

async fn signed_in(app: &TestApp) -> bool {
    let resp = app
        .client
        .get(app.url(&format!("/saml/sso/init?sp={}", enc(POST_SP))))
        .send()
        .await
        .unwrap();
    resp.status() == 200
}

async fn single_logout_by_the_binding_each_sp_registered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "both@example.com";
    make_user(&app, email).await;
    let idp = idp_cert(&app).await;
    two_sps(&app).await;

    // The Redirect-only SP starts: the POST-only SP gets a signed form...
    sign_in_to_both(&app, email).await;
    let xml = logout_request(&app, "_r1", REDIRECT_SP, email);
    let resp = app
        .client
        .get(app.url(&format!(
            "/saml/slo?{}",
            redirect_query(&xml, "r-relay", Some(FIXTURE_KEY_PEM))
        )))
        .send()
        .await
        .unwrap();
    let (action, param, to_post, chain) = posted_form(resp).await;
    assert_eq!(
        (action.as_str(), param.as_str()),
        ("https://post.example/slo", "SAMLRequest")
    );
    assert_idp_signed(&to_post, "LogoutRequest", &idp);
    let request = samael::schema::LogoutRequest::from_str(&to_post).unwrap();
    assert_eq!(
        request.destination.as_deref(),
        Some("https://post.example/slo")
    );
    assert!(to_post.contains(&format!(">{email}</saml:NameID>")));
    assert!(to_post.contains("<samlp:SessionIndex>_"));
    assert!(!signed_in(&app).await, "the IdP session ended first");
    // ...answers by HTTP-POST, and the initiator gets its signed redirect.
    let answer = sp_signed(
        &logout_response(&app, "_p1", POST_SP, &request.id.unwrap()),
        "_p1",
    );
    let resp = post_slo(&app, "SAMLResponse", &answer, &chain.unwrap()).await;
    assert_eq!(resp.status(), 302);
    let (endpoint, done, relay) = read_redirect(
        resp.headers()["location"].to_str().unwrap(),
        "SAMLResponse",
        &idp,
    );
    assert_eq!(
        (endpoint.as_str(), relay.as_deref()),
        ("https://redirect.example/slo", Some("r-relay"))
    );
    let done = samael::schema::LogoutResponse::from_str(&done).unwrap();
    assert_eq!(done.in_response_to.as_deref(), Some("_r1"));

    // The POST-only SP starts, by HTTP-POST: the other SP gets a redirect...
    sign_in_to_both(&app, email).await;
    let unsigned = post_slo(
        &app,
        "SAMLRequest",
        &logout_request(&app, "_p2", POST_SP, email),
        "p-relay",
    )
    .await;
    assert_eq!(unsigned.status(), 400, "the SP registered a certificate");
    let signed = sp_signed(&logout_request(&app, "_p3", POST_SP, email), "_p3");
    let resp = post_slo(&app, "SAMLRequest", &signed, "p-relay").await;
    assert_eq!(resp.status(), 302);
    let (endpoint, to_redirect, chain) = read_redirect(
        resp.headers()["location"].to_str().unwrap(),
        "SAMLRequest",
        &idp,
    );
    assert_eq!(endpoint, "https://redirect.example/slo");
    let id = samael::schema::LogoutRequest::from_str(&to_redirect)
        .unwrap()
        .id
        .unwrap();
    // ...answers by HTTP-Redirect, and the initiator gets a signed form.
    let answer = logout_response(&app, "_r2", REDIRECT_SP, &id);
    let unsigned_query =
        redirect_query(&answer, &chain.unwrap(), None).replacen("SAMLRequest=", "SAMLResponse=", 1);
    let resp = app
        .client
        .get(app.url(&format!("/saml/slo?{unsigned_query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        400,
        "an unsigned answer from an SP with a certificate"
    );
    assert!(!signed_in(&app).await);

    // Once more, answered properly this time.
    sign_in_to_both(&app, email).await;
    let signed = sp_signed(&logout_request(&app, "_p4", POST_SP, email), "_p4");
    let resp = post_slo(&app, "SAMLRequest", &signed, "p-relay").await;
    let (_, to_redirect, chain) = read_redirect(
        resp.headers()["location"].to_str().unwrap(),
        "SAMLRequest",
        &idp,
    );
    let id = samael::schema::LogoutRequest::from_str(&to_redirect)
        .unwrap()
        .id
        .unwrap();
    let answer = logout_response(&app, "_r3", REDIRECT_SP, &id);
    let resp = app
        .client
        .get(app.url(&format!(
            "/saml/slo?{}",
            resigned_response_query(&answer, &chain.unwrap())
        )))
        .send()
        .await
        .unwrap();
    let (action, param, done, relay) = posted_form(resp).await;
    assert_eq!(
        (action.as_str(), param.as_str(), relay.as_deref()),
        ("https://post.example/slo", "SAMLResponse", Some("p-relay"))
    );
    assert_idp_signed(&done, "LogoutResponse", &idp);
    let done = samael::schema::LogoutResponse::from_str(&done).unwrap();
    assert_eq!(done.in_response_to.as_deref(), Some("_p4"));
    assert_eq!(
        done.destination.as_deref(),
        Some("https://post.example/slo")
    );
    assert!(
        done.status
            .and_then(|s| s.status_code.value)
            .is_some_and(|v| v == SUCCESS)
    );
}

/// A LogoutResponse by the HTTP-Redirect binding, signed with the fixture key.
fn resigned_response_query(xml: &str, relay: &str) -> String {
    // `redirect_query` signs `SAMLRequest=…`; a response is signed over
    // `SAMLResponse=…` (bindings §3.4.4.1), so sign it again by hand.
    let unsigned = redirect_query(xml, relay, None).replacen("SAMLRequest=", "SAMLResponse=", 1);
    let q = format!(
        "{unsigned}&SigAlg={}",
        enc("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
    );
    let pkey = openssl::pkey::PKey::private_key_from_pem(FIXTURE_KEY_PEM.as_bytes()).unwrap();
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey).unwrap();
    signer.update(q.as_bytes()).unwrap();
    format!(
        "{q}&Signature={}",
        enc(&STANDARD.encode(signer.sign_to_vec().unwrap()))
    )
}

/// A logout at the IdP's own `/logout` page tells a POST-only SP by a
/// signed form, and its HTTP-POST answer finishes the logout.
async fn idp_initiated_logout_posts_to_a_post_only_sp(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "idp@example.com";
    make_user(&app, email).await;
    let idp = idp_cert(&app).await;
    two_sps(&app).await;
    sign_in_to_both(&app, email).await;
    let mut resp = logout_at_idp(&app).await;
    // The two SPs are told one after the other, each by its own binding.
    let mut told = Vec::new();
    for n in 1..=2 {
        let (entity, id, chain) = if resp.status() == 302 {
            let (endpoint, xml, chain) = read_redirect(
                resp.headers()["location"].to_str().unwrap(),
                "SAMLRequest",
                &idp,
            );
            assert_eq!(endpoint, "https://redirect.example/slo");
            let id = samael::schema::LogoutRequest::from_str(&xml)
                .unwrap()
                .id
                .unwrap();
            (REDIRECT_SP, id, chain.unwrap())
        } else {
            let (action, param, xml, chain) = posted_form(resp).await;
            assert_eq!(
                (action.as_str(), param.as_str()),
                ("https://post.example/slo", "SAMLRequest")
            );
            assert_idp_signed(&xml, "LogoutRequest", &idp);
            let id = samael::schema::LogoutRequest::from_str(&xml)
                .unwrap()
                .id
                .unwrap();
            (POST_SP, id, chain.unwrap())
        };
        told.push(entity);
        let answer_id = format!("_a{n}");
        let answer = logout_response(&app, &answer_id, entity, &id);
        resp = if entity == POST_SP {
            post_slo(
                &app,
                "SAMLResponse",
                &sp_signed(&answer, &answer_id),
                &chain,
            )
            .await
        } else {
            app.client
                .get(app.url(&format!(
                    "/saml/slo?{}",
                    resigned_response_query(&answer, &chain)
                )))
                .send()
                .await
                .unwrap()
        };
    }
    told.sort_unstable();
    assert_eq!(told, [POST_SP, REDIRECT_SP]);
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("You are signed out"));
    assert!(!signed_in(&app).await);
}
