//! The SAML identity provider over HTTP: metadata, SP-initiated SSO with
//! both bindings through the login form, IdP-initiated SSO, and every
//! refusal. Signatures are checked with the `xmlsec1` command-line tool, an
//! independent verifier.

use crate::oauth_support::{PASSWORD, hidden, make_user};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use std::io::Write;
use std::str::FromStr;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

pub(crate) const SP_ENTITY: &str = "https://sp.example.com/saml";
pub(crate) const ACS: &str = "https://sp.example.com/saml/acs";
pub(crate) const FIXTURE_KEY_PEM: &str = FIXTURE_KEY;
pub(crate) const IDP_SSO: &str = "http://127.0.0.1:8080/saml/sso";
const FIXTURE_METADATA: &str = include_str!("../fixtures/sp-metadata.xml");
const FIXTURE_KEY: &str = include_str!("../fixtures/sp-signing.key");

on_every_backend!(
    metadata_is_valid,
    sp_initiated_redirect_binding,
    sp_initiated_post_binding_and_idp_initiated,
    sp_from_real_world_metadata_with_signed_requests,
    bad_requests_are_refused,
    single_logout_both_ways,
    the_idp_certificate_rotates_in_two_steps,
    signed_post_requests_wrapping_force_authn_and_is_passive,
    relay_state_is_at_most_80_bytes,
    signature_references_are_never_dereferenced,
    sha1_signatures_are_refused_on_both_bindings,
    single_logout_names_its_session_and_user,
);

/// The severe hole, replayed (issue: "SAML signature references are
/// dereferenced"). A request signed by nobody but shaped like a signed one,
/// naming a registered SP that has a certificate, with its reference
/// pointed at a local listener (blind SSRF), at `/dev/zero` (a worker
/// pinned for ever, memory without bound), or through an XSLT `document()`
/// call, at `/saml/sso` and `/saml/slo`: each is refused by the signature
/// policy before xmlsec sees it, nothing connects to the listener, and the
/// server goes on answering.
async fn signature_references_are_never_dereferenced(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register_sp(&app, json!({"metadata_xml": FIXTURE_METADATA})).await;
    let entity = "https://acme-crm.example/saml/sp";
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let now = app.clock.now();
    let xslt = format!(
        r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"><xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0"><xsl:template match="/"><xsl:copy-of select="document('http://127.0.0.1:{port}/xslt')"/></xsl:template></xsl:stylesheet></ds:Transform>"#
    );
    for (n, attack) in [
        format!("http://127.0.0.1:{port}/x"),
        "file:///dev/zero".to_owned(),
        xslt,
    ]
    .iter()
    .enumerate()
    {
        let id = format!("_ref{n}");
        let signed = signed_authn_request(&authn_request(&id, entity, None, now), &id);
        let evil = if attack.starts_with("<ds:Transform") {
            signed.replace("<ds:Transforms>", &format!("<ds:Transforms>{attack}"))
        } else {
            signed.replace(&format!("URI=\"#{id}\""), &format!("URI=\"{attack}\""))
        };
        assert_ne!(evil, signed, "the attack was not put in");
        let resp = post_request(&app, &new_browser_client(), &evil).await;
        assert_eq!(resp.status(), 400, "{attack}");
        assert_eq!(last_refusal(&app).await, "signature_policy", "{attack}");
        let logout = evil
            .replace("samlp:AuthnRequest", "samlp:LogoutRequest")
            .replace("/saml/sso", "/saml/slo");
        let resp = new_browser_client()
            .post(app.url("/saml/slo"))
            .form(&[("SAMLRequest", STANDARD.encode(logout.as_bytes()))])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "slo {attack}");
        assert_eq!(last_refusal(&app).await, "signature_policy", "slo {attack}");
    }
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the IdP connected to a URL named in a signature"
    );
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

/// RSA-SHA1 is refused on both bindings, even when the signature is valid.
async fn sha1_signatures_are_refused_on_both_bindings(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register_sp(&app, json!({"metadata_xml": FIXTURE_METADATA})).await;
    let entity = "https://acme-crm.example/saml/sp";
    let now = app.clock.now();
    let rsa_sha1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
    let xml = signed_authn_request_with(
        &authn_request("_sha1", entity, None, now),
        "_sha1",
        rsa_sha1,
    );
    assert!(xml.contains(rsa_sha1));
    let resp = post_request(&app, &new_browser_client(), &xml).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(last_refusal(&app).await, "signature_policy");
    // HTTP-Redirect: a valid RSA-SHA1 query signature.
    let mut q = format!(
        "SAMLRequest={}&RelayState=r&SigAlg={}",
        enc(&deflate_b64(&authn_request("_sha1r", entity, None, now))),
        enc(rsa_sha1)
    );
    let pkey = openssl::pkey::PKey::private_key_from_pem(FIXTURE_KEY.as_bytes()).unwrap();
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha1(), &pkey).unwrap();
    signer.update(q.as_bytes()).unwrap();
    q.push_str(&format!(
        "&Signature={}",
        enc(&STANDARD.encode(signer.sign_to_vec().unwrap()))
    ));
    let resp = new_browser_client()
        .get(app.url(&format!("/saml/sso?{q}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(last_refusal(&app).await, "bad_signature");
    // The same request signed with RSA-SHA256 goes through.
    let q = redirect_query(
        &authn_request("_sha256r", entity, None, now),
        "r",
        Some(FIXTURE_KEY),
    );
    let resp = new_browser_client()
        .get(app.url(&format!("/saml/sso?{q}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
}

/// The reason of the latest `saml.request.refused` event.
async fn last_refusal(app: &TestApp) -> String {
    let (_, refused) = status_json(
        app.get(
            "/v1/audit-events?type=saml.request.refused&limit=1",
            &app.secret_key,
        )
        .await,
    )
    .await;
    refused["data"][0]["data"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// SAML bindings §3.4.3/§3.5.3: RelayState is at most 80 bytes. A longer
/// one (up to ~64 KB used to be stored per request) is refused before
/// anything is stored.
async fn relay_state_is_at_most_80_bytes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register_sp(&app, json!({"entity_id": SP_ENTITY, "acs_url": ACS})).await;
    let now = app.clock.now();
    let long = "r".repeat(81);
    let query = redirect_query(&authn_request("_r1", SP_ENTITY, None, now), &long, None);
    let resp = app
        .client
        .get(app.url(&format!("/saml/sso?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("RelayState"));
    let resp = app
        .client
        .get(app.url(&format!(
            "/saml/sso/init?sp={}&RelayState={long}",
            enc(SP_ENTITY)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // 80 bytes are fine: on to the sign-in page.
    let ok = "r".repeat(80);
    let query = redirect_query(&authn_request("_r2", SP_ENTITY, None, now), &ok, None);
    let resp = app
        .client
        .get(app.url(&format!("/saml/sso?{query}")))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
}

pub(crate) fn authn_request(
    id: &str,
    issuer: &str,
    acs: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let acs_attr = acs
        .map(|a| format!(" AssertionConsumerServiceURL=\"{a}\""))
        .unwrap_or_default();
    format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{}" Destination="{IDP_SSO}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"{acs_attr}><saml:Issuer>{issuer}</saml:Issuer><samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress" AllowCreate="true"/></samlp:AuthnRequest>"#,
        now.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

pub(crate) fn deflate_b64(xml: &str) -> String {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(xml.as_bytes()).unwrap();
    STANDARD.encode(e.finish().unwrap())
}

pub(crate) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The redirect-binding query for a request, signed with `key` if given.
pub(crate) fn redirect_query(xml: &str, relay: &str, key: Option<&str>) -> String {
    let mut q = format!(
        "SAMLRequest={}&RelayState={}",
        enc(&deflate_b64(xml)),
        enc(relay)
    );
    if let Some(pem) = key {
        q.push_str(&format!(
            "&SigAlg={}",
            enc("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
        ));
        let pkey = openssl::pkey::PKey::private_key_from_pem(pem.as_bytes()).unwrap();
        let mut signer =
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey).unwrap();
        signer.update(q.as_bytes()).unwrap();
        q.push_str(&format!(
            "&Signature={}",
            enc(&STANDARD.encode(signer.sign_to_vec().unwrap()))
        ));
    }
    q
}

pub(crate) async fn register_sp(app: &TestApp, body: serde_json::Value) -> serde_json::Value {
    let (status, sp) = status_json(
        app.post("/v1/saml/service-providers", &app.secret_key, &body)
            .await,
    )
    .await;
    assert_eq!(status, 201, "{sp}");
    sp
}

/// `PATCH /v1/saml/service-providers/{id}` with `body`: (status, body).
pub(crate) async fn patch_sp(
    app: &TestApp,
    id: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let path = format!("/v1/saml/service-providers/{id}");
    status_json(app.patch(&path, &app.secret_key, &body).await).await
}

/// Follows the browser from an SSO URL through the login form to the
/// auto-post page; returns (ACS action, SAMLResponse XML, RelayState).
pub(crate) async fn sso(
    app: &TestApp,
    browser: &reqwest::Client,
    url: &str,
    email: &str,
) -> (String, String, Option<String>) {
    let mut resp = browser.get(url).send().await.unwrap();
    let login = if resp.status() == 302 {
        Some(app.url(resp.headers()["location"].to_str().unwrap()))
    } else {
        url.contains("/login?interaction=").then(|| url.to_owned())
    };
    if let Some(login) = login {
        assert!(login.contains("/login?interaction="), "{login}");
        let html = browser
            .get(&login)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // The login page of the environment that sent us there.
        let path = login.split('?').next().unwrap().replace(&app.url(""), "");
        let posted = browser
            .post(app.url(&path))
            .form(&[
                ("email", email),
                ("password", PASSWORD),
                ("csrf_token", &hidden(&html, "csrf_token")),
                ("interaction", &hidden(&html, "interaction")),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), 303);
        resp = browser
            .get(app.url(posted.headers()["location"].to_str().unwrap()))
            .send()
            .await
            .unwrap();
    }
    auto_post(resp).await
}

pub(crate) async fn auto_post(resp: reqwest::Response) -> (String, String, Option<String>) {
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let html = resp.text().await.unwrap();
    let action = html
        .split("action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let encoded = hidden(&html, "SAMLResponse");
    let xml = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
    let relay = html
        .contains("name=\"RelayState\"")
        .then(|| hidden(&html, "RelayState"));
    (action, xml, relay)
}

/// `xmlsec1 --verify` on the response: the first signature (the Response's
/// when both are signed), or the Assertion's.
pub(crate) fn xmlsec1_verifies(xml: &str, cert_pem: &str, assertion: bool) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let (xml_path, cert_path) = (dir.path().join("response.xml"), dir.path().join("idp.pem"));
    std::fs::write(&xml_path, xml).unwrap();
    std::fs::write(&cert_path, cert_pem).unwrap();
    let mut cmd = std::process::Command::new("xmlsec1");
    cmd.arg("--verify").arg("--pubkey-cert-pem").arg(&cert_path);
    cmd.args([
        "--id-attr:ID",
        "urn:oasis:names:tc:SAML:2.0:protocol:Response",
    ]);
    cmd.args([
        "--id-attr:ID",
        "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
    ]);
    if assertion {
        cmd.args([
            "--node-xpath",
            "//*[local-name()='Assertion']/*[local-name()='Signature']",
        ]);
    }
    let out = cmd
        .arg(&xml_path)
        .output()
        .expect("xmlsec1 is installed (scripts/install-deps)");
    out.status.success()
}

/// The IdP certificate, from its metadata.
pub(crate) async fn idp_cert(app: &TestApp) -> String {
    let xml = app
        .client
        .get(app.url("/saml/metadata"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let b64 = xml
        .split("<ds:X509Certificate>")
        .nth(1)
        .unwrap()
        .split("</ds:X509Certificate>")
        .next()
        .unwrap();
    pem_of(b64)
}

async fn metadata_is_valid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let resp = app
        .client
        .get(app.url("/saml/metadata"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/samlmetadata+xml"
    );
    let xml = resp.text().await.unwrap();
    let md = samael::metadata::EntityDescriptor::from_str(&xml).unwrap();
    assert_eq!(
        md.entity_id.as_deref(),
        Some("http://127.0.0.1:8080/saml/metadata")
    );
    let idp = &md.idp_sso_descriptors.as_ref().unwrap()[0];
    let bindings: Vec<&str> = idp
        .single_sign_on_services
        .iter()
        .map(|s| s.binding.as_str())
        .collect();
    assert!(bindings.contains(&"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"));
    assert!(bindings.contains(&"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"));
    assert!(
        idp.key_descriptors
            .iter()
            .any(|k| k.key_use.as_deref() == Some("signing"))
    );
    assert!(idp.name_id_formats.len() >= 3);
    openssl::x509::X509::from_pem(idp_cert(&app).await.as_bytes()).unwrap();
    // Optionally signed: xmlsec1 verifies the signed metadata.
    let signed = app
        .client
        .get(app.url("/saml/metadata?signed=true"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(signed.contains("<ds:SignatureValue>"));
    samael::metadata::EntityDescriptor::from_str(&signed).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("md.xml"), &signed).unwrap();
    std::fs::write(dir.path().join("idp.pem"), idp_cert(&app).await).unwrap();
    let out = std::process::Command::new("xmlsec1")
        .args(["--verify", "--pubkey-cert-pem"])
        .arg(dir.path().join("idp.pem"))
        .args([
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor",
        ])
        .arg(dir.path().join("md.xml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn sp_initiated_redirect_binding(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "ada@example.com").await;
    register_sp(
        &app,
        json!({"entity_id": SP_ENTITY, "acs_url": ACS, "name": "Example SP",
               "attributes": {"email": "mail", "given_name": "givenName", "groups": "memberOf"}}),
    )
    .await;
    let xml = authn_request("_req1", SP_ENTITY, Some(ACS), app.clock.now());
    let url = app.url(&format!(
        "/saml/sso?{}",
        redirect_query(&xml, "relay-123", None)
    ));
    let (action, response_xml, relay) = sso(&app, &app.client, &url, "ada@example.com").await;
    assert_eq!(action, ACS);
    assert_eq!(relay.as_deref(), Some("relay-123"));

    // An independent verifier accepts both signatures, and rejects a tampered copy.
    let cert = idp_cert(&app).await;
    assert!(
        xmlsec1_verifies(&response_xml, &cert, false),
        "response signature"
    );
    assert!(
        xmlsec1_verifies(&response_xml, &cert, true),
        "assertion signature"
    );
    let tampered = response_xml.replace("ada@example.com", "eve@example.com");
    assert!(!xmlsec1_verifies(&tampered, &cert, true));
    assert!(response_xml.contains("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"));
    assert!(response_xml.contains("http://www.w3.org/2001/10/xml-exc-c14n#"));
    // The password alone (SAML Authn Context §3.4.7).
    assert!(
        response_xml.contains("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport")
    );

    // Every element the profile requires.
    let resp = samael::schema::Response::from_str(&response_xml).unwrap();
    assert_eq!(resp.in_response_to.as_deref(), Some("_req1"));
    assert_eq!(resp.destination.as_deref(), Some(ACS));
    assert_eq!(
        resp.issuer.as_ref().unwrap().value.as_deref(),
        Some("http://127.0.0.1:8080/saml/metadata")
    );
    assert_eq!(
        resp.status.as_ref().unwrap().status_code.value.as_deref(),
        Some("urn:oasis:names:tc:SAML:2.0:status:Success")
    );
    let a = resp.assertion.as_ref().unwrap();
    assert_eq!(
        a.issuer.value.as_deref(),
        Some("http://127.0.0.1:8080/saml/metadata")
    );
    let subject = a.subject.as_ref().unwrap();
    let name_id = subject.name_id.as_ref().unwrap();
    assert_eq!(name_id.value, "ada@example.com");
    assert_eq!(
        name_id.format.as_deref(),
        Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress")
    );
    let sc = &subject.subject_confirmations.as_ref().unwrap()[0];
    assert_eq!(
        sc.method.as_deref(),
        Some("urn:oasis:names:tc:SAML:2.0:cm:bearer")
    );
    let data = sc.subject_confirmation_data.as_ref().unwrap();
    assert_eq!(data.recipient.as_deref(), Some(ACS));
    assert_eq!(data.in_response_to.as_deref(), Some("_req1"));
    let not_after = data.not_on_or_after.unwrap();
    assert!(
        not_after > app.clock.now() && not_after <= app.clock.now() + chrono::TimeDelta::minutes(5)
    );
    let conditions = a.conditions.as_ref().unwrap();
    assert!(conditions.not_before.unwrap() <= app.clock.now());
    assert!(conditions.not_on_or_after.unwrap() <= app.clock.now() + chrono::TimeDelta::minutes(5));
    assert_eq!(
        conditions.audience_restrictions.as_ref().unwrap()[0].audience,
        vec![SP_ENTITY.to_owned()]
    );
    let authn = &a.authn_statements.as_ref().unwrap()[0];
    let index = authn.session_index.as_ref().unwrap();
    assert!(
        index.starts_with('_') && !index.contains("sess_"),
        "an opaque SessionIndex: {index}"
    );
    let attrs = &a.attribute_statements.as_ref().unwrap()[0].attributes;
    let value = |name: &str| {
        attrs
            .iter()
            .find(|x| x.name.as_deref() == Some(name))
            .map(|x| {
                x.values
                    .iter()
                    .filter_map(|v| v.value.clone())
                    .collect::<Vec<_>>()
            })
    };
    assert_eq!(value("mail"), Some(vec!["ada@example.com".to_owned()]));
    assert_eq!(value("givenName"), Some(vec!["Ada".to_owned()]));
    assert_eq!(value("memberOf"), Some(vec!["eng".to_owned()]));
    assert_eq!(value("name"), None, "only mapped attributes are released");

    // Signed in now: a second request goes straight to the auto-post page.
    let xml = authn_request("_req2", SP_ENTITY, None, app.clock.now());
    let resp = app
        .client
        .get(app.url(&format!("/saml/sso?{}", redirect_query(&xml, "r", None))))
        .send()
        .await
        .unwrap();
    let (action, _, _) = auto_post(resp).await;
    assert_eq!(action, ACS);
    let (_, events) = status_json(
        app.get(
            "/v1/audit-events?type=saml.assertion.issued",
            &app.secret_key,
        )
        .await,
    )
    .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 2);
    assert_eq!(events["data"][0]["data"]["name_id"], "ada@example.com");
}

async fn sp_initiated_post_binding_and_idp_initiated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = make_user(&app, "grace@example.com").await;
    register_sp(&app, json!({"entity_id": SP_ENTITY, "acs_url": ACS, "name_id_format": "persistent", "sign_response": false})).await;
    let xml = authn_request("_post1", SP_ENTITY, Some(ACS), app.clock.now());
    let resp = app
        .client
        .post(app.url("/saml/sso"))
        .form(&[
            ("SAMLRequest", STANDARD.encode(xml.as_bytes()).as_str()),
            ("RelayState", "pr"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let (_, response_xml, relay) = sso(
        &app,
        &app.client,
        &app.url(resp.headers()["location"].to_str().unwrap()),
        "grace@example.com",
    )
    .await;
    assert_eq!(relay.as_deref(), Some("pr"));
    let cert = idp_cert(&app).await;
    assert!(
        xmlsec1_verifies(&response_xml, &cert, true),
        "assertion signature"
    );
    let parsed = samael::schema::Response::from_str(&response_xml).unwrap();
    assert!(
        parsed.signature.is_none(),
        "only the assertion is signed, as configured"
    );
    let persistent = parsed.assertion.unwrap().subject.unwrap().name_id.unwrap();
    assert_eq!(
        persistent.format.as_deref(),
        Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent")
    );
    assert!(
        !persistent.value.contains("grace") && persistent.value != user["id"].as_str().unwrap()
    );

    // IdP-initiated: no InResponseTo, and the same persistent NameID.
    let resp = app
        .client
        .get(app.url(&format!(
            "/saml/sso/init?sp={}&RelayState=dash",
            enc(SP_ENTITY)
        )))
        .send()
        .await
        .unwrap();
    let (action, xml, relay) = auto_post(resp).await;
    assert_eq!((action.as_str(), relay.as_deref()), (ACS, Some("dash")));
    assert!(xmlsec1_verifies(&xml, &cert, true));
    let parsed = samael::schema::Response::from_str(&xml).unwrap();
    assert_eq!(parsed.in_response_to, None);
    let a = parsed.assertion.unwrap();
    assert_eq!(a.subject.unwrap().name_id.unwrap().value, persistent.value);
    let resp = app
        .client
        .get(app.url("/saml/sso/init?sp=https%3A%2F%2Funknown.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

async fn sp_from_real_world_metadata_with_signed_requests(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "crm@example.com").await;
    let sp = register_sp(&app, json!({"metadata_xml": FIXTURE_METADATA})).await;
    assert_eq!(sp["entity_id"], "https://acme-crm.example/saml/sp");
    assert_eq!(sp["name"], "Acme CRM");
    assert_eq!(sp["want_authn_requests_signed"], true);
    assert_eq!(sp["acs_endpoints"].as_array().unwrap().len(), 3);
    assert_eq!(sp["slo_endpoints"].as_array().unwrap().len(), 2);
    assert!(
        sp["certificate_pem"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    let entity = "https://acme-crm.example/saml/sp";
    // Signed with the SP's key: accepted, to the ACS it names (a registered one).
    let xml = authn_request(
        "_crm1",
        entity,
        Some("https://eu.acme-crm.example/saml/acs"),
        app.clock.now(),
    );
    let url = app.url(&format!(
        "/saml/sso?{}",
        redirect_query(&xml, "x", Some(FIXTURE_KEY))
    ));
    let (action, _, _) = sso(&app, &app.client, &url, "crm@example.com").await;
    assert_eq!(action, "https://eu.acme-crm.example/saml/acs");
    // Unsigned, or signed by someone else: refused.
    let xml = authn_request("_crm2", entity, None, app.clock.now());
    let resp = app
        .client
        .get(app.url(&format!("/saml/sso?{}", redirect_query(&xml, "x", None))))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let other = openssl::rsa::Rsa::generate(2048).unwrap();
    let other_pem = String::from_utf8(
        openssl::pkey::PKey::from_rsa(other)
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap(),
    )
    .unwrap();
    let xml = authn_request("_crm3", entity, None, app.clock.now());
    let resp = app
        .client
        .get(app.url(&format!(
            "/saml/sso?{}",
            redirect_query(&xml, "x", Some(&other_pem))
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // The metadata's own redirect-binding ACS never receives a POSTed assertion.
    let xml = authn_request(
        "_crm4",
        entity,
        Some("https://acme-crm.example/saml/acs/redirect"),
        app.clock.now(),
    );
    let resp = app
        .client
        .get(app.url(&format!(
            "/saml/sso?{}",
            redirect_query(&xml, "x", Some(FIXTURE_KEY))
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let (_, refused) = status_json(
        app.get(
            "/v1/audit-events?type=saml.request.refused",
            &app.secret_key,
        )
        .await,
    )
    .await;
    let reasons: Vec<&str> = refused["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["unregistered_acs", "bad_signature", "unsigned"]);
}

async fn bad_requests_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register_sp(&app, json!({"entity_id": SP_ENTITY, "acs_url": ACS})).await;
    let now = app.clock.now();
    let get = |query: String| {
        let client = app.client.clone();
        let url = app.url(&format!("/saml/sso?{query}"));
        async move {
            let resp = client.get(url).send().await.unwrap();
            let status = resp.status().as_u16();
            assert!(resp.headers().get("location").is_none() || status != 400);
            (status, resp.text().await.unwrap())
        }
    };
    let cases: Vec<(String, &str)> = vec![
        (
            redirect_query(
                &authn_request("_a1", SP_ENTITY, Some("https://evil.example/acs"), now),
                "",
                None,
            ),
            "assertion consumer service",
        ),
        (
            redirect_query(
                &authn_request("_a2", "https://unknown.example", None, now),
                "",
                None,
            ),
            "not a registered service provider",
        ),
        (
            redirect_query(
                &authn_request("_a3", SP_ENTITY, None, now - chrono::TimeDelta::minutes(10)),
                "",
                None,
            ),
            "too old",
        ),
        (
            redirect_query(
                r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x">&x;</samlp:AuthnRequest>"#,
                "",
                None,
            ),
            "DTD",
        ),
        (
            format!(
                "SAMLRequest={}",
                enc(&deflate_b64(&"A".repeat(20 * 1024 * 1024)))
            ),
            "too large",
        ),
        ("SAMLRequest=%%%".to_owned(), "base64"),
        ("RelayState=x".to_owned(), "missing"),
    ];
    for (query, why) in cases {
        let (status, body) = get(query).await;
        assert_eq!(status, 400, "{why}");
        assert!(body.contains(why), "{why}: {body}");
    }
    // A replayed request ID is refused the second time.
    let query = redirect_query(&authn_request("_once", SP_ENTITY, None, now), "", None);
    assert_eq!(get(query.clone()).await.0, 302);
    let (status, body) = get(query).await;
    assert_eq!(status, 400);
    assert!(body.contains("already used"));
    let (_, refused) = status_json(
        app.get(
            "/v1/audit-events?type=saml.request.refused",
            &app.secret_key,
        )
        .await,
    )
    .await;
    assert!(refused["data"].as_array().unwrap().len() >= 3);
    // Bad registrations.
    for (body, param) in [
        (json!({"metadata_xml": "<not-metadata/>"}), "metadata_xml"),
        (
            json!({"metadata_xml": "<!DOCTYPE x []><x/>"}),
            "metadata_xml",
        ),
        (
            json!({"entity_id": "https://x.example", "acs_url": "http://x.example/acs"}),
            "acs_url",
        ),
        (
            json!({"entity_id": "https://x.example", "acs_url": "https://x.example/acs", "attributes": ["ssn"]}),
            "attributes",
        ),
        (
            json!({"entity_id": "https://x.example", "acs_url": "https://x.example/acs", "want_authn_requests_signed": true}),
            "certificate_pem",
        ),
    ] {
        let (status, err) = status_json(
            app.post("/v1/saml/service-providers", &app.secret_key, &body)
                .await,
        )
        .await;
        assert_eq!(status, 422, "{body}: {err}");
        assert_eq!(err["error"]["param"], param);
    }
    let (status, _) = status_json(
        app.post(
            "/v1/saml/service-providers",
            &app.secret_key,
            &json!({"entity_id": SP_ENTITY, "acs_url": ACS}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 409, "entity ids are unique per environment");
    // Per environment only: the test environment is another IdP, where the
    // same entity id names an SP of its own (environments.rs replays why).
    assert_eq!(
        app.post(
            "/v1/saml/service-providers",
            &app.test_key,
            &json!({"entity_id": SP_ENTITY, "acs_url": ACS})
        )
        .await
        .status(),
        201
    );
}

/// Splits a redirect-binding URL into (endpoint, decoded XML, RelayState),
/// after checking its signature with the IdP certificate over the raw query.
pub(crate) fn read_redirect(
    url: &str,
    param: &str,
    idp_cert_pem: &str,
) -> (String, String, Option<String>) {
    let (endpoint, query) = url.split_once('?').unwrap();
    let (signed, signature) = query.rsplit_once("&Signature=").unwrap();
    let cert = openssl::x509::X509::from_pem(idp_cert_pem.as_bytes()).unwrap();
    let key = cert.public_key().unwrap();
    let mut verifier =
        openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
    verifier.update(signed.as_bytes()).unwrap();
    let sig = STANDARD
        .decode(
            url::form_urlencoded::parse(format!("s={signature}").as_bytes())
                .next()
                .unwrap()
                .1
                .as_bytes(),
        )
        .unwrap();
    assert!(
        verifier.verify(&sig).unwrap(),
        "the IdP signed the redirect"
    );
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(signed.as_bytes())
            .into_owned()
            .collect();
    let compressed = STANDARD.decode(&params[param]).unwrap();
    let mut xml = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::DeflateDecoder::new(&compressed[..]),
        &mut xml,
    )
    .unwrap();
    (endpoint.to_owned(), xml, params.get("RelayState").cloned())
}

/// A certificate for the fixture SP key.
pub(crate) fn fixture_certificate() -> String {
    let key = openssl::pkey::PKey::private_key_from_pem(FIXTURE_KEY.as_bytes()).unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "sp-a").unwrap();
    let name = name.build();
    let mut b = openssl::x509::X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(3650).unwrap())
        .unwrap();
    b.sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    String::from_utf8(b.build().to_pem().unwrap()).unwrap()
}

/// Gives a plain-field SP an HTTP-Redirect SLO endpoint (SPs gain them
/// from metadata in real life; here through storage).
async fn add_slo_endpoint(app: &TestApp, sp: &serde_json::Value, url: &str) {
    add_slo_endpoint_by(
        app,
        sp,
        url,
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
    )
    .await;
}

/// Gives a plain-field SP one SLO endpoint of this binding.
pub(crate) async fn add_slo_endpoint_by(
    app: &TestApp,
    sp: &serde_json::Value,
    url: &str,
    binding: &str,
) {
    let binding = binding.to_owned();
    let (id, env) = (
        sp["id"].as_str().unwrap().to_owned(),
        sp["environment"].as_str().unwrap().to_owned(),
    );
    let url = url.to_owned();
    app.state
        .core
        .db
        .run(move |c| {
            use diesel::prelude::*;
            use trusec_storage::schema::saml_service_providers as t;
            let endpoints =
                serde_json::to_string(&json!([{"url": url, "binding": binding}])).unwrap();
            diesel::update(
                t::table
                    .filter(t::id.eq(&id))
                    .filter(t::environment_id.eq(&env)),
            )
            .set(t::slo_endpoints.eq(endpoints))
            .execute(c)
            .map_err(trusec_storage::StorageError::from)
        })
        .await
        .unwrap();
}

/// A signed LogoutRequest ends only the session it names, of the user it
/// names (SAML core §3.7.3.2): a wrong NameID, or a SessionIndex that is
/// not this SP's, ends nothing — not even the browser's own session, whose
/// cookie a cross-site POST carries — and the SP hears PartialLogout.
async fn single_logout_names_its_session_and_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "named@example.com").await;
    let idp = idp_cert(&app).await;
    let a = register_sp(&app, json!({"entity_id": "https://a.example", "acs_url": "https://a.example/acs", "certificate_pem": fixture_certificate()})).await;
    add_slo_endpoint(&app, &a, "https://a.example/slo").await;
    let xml = authn_request("_na", "https://a.example", None, app.clock.now());
    let url = format!("/saml/sso?{}", redirect_query(&xml, "", Some(FIXTURE_KEY)));
    sso(&app, &app.client, &app.url(&url), "named@example.com").await;
    let logout = |id: &str, name_id: &str, index: Option<&str>| {
        let index = index
            .map(|i| format!("<samlp:SessionIndex>{i}</samlp:SessionIndex>"))
            .unwrap_or_default();
        let xml = format!(
            r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{}" Destination="http://127.0.0.1:8080/saml/slo"><saml:Issuer>https://a.example</saml:Issuer><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{name_id}</saml:NameID>{index}</samlp:LogoutRequest>"#,
            app.clock.now().format("%Y-%m-%dT%H:%M:%SZ")
        );
        format!("/saml/slo?{}", redirect_query(&xml, "r", Some(FIXTURE_KEY)))
    };
    let status_of = |resp: reqwest::Response| {
        assert_eq!(resp.status(), 302);
        let (_, xml, _) = read_redirect(
            resp.headers()["location"].to_str().unwrap(),
            "SAMLResponse",
            &idp,
        );
        xml
    };
    let still_signed_in = || async {
        let resp = app
            .client
            .get(app.url(&format!("/saml/sso/init?sp={}", enc("https://a.example"))))
            .send()
            .await
            .unwrap();
        resp.status() == 200
    };
    let partial = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout";
    for (id, name_id, index) in [
        ("_l1", "someone-else@example.com", None),
        ("_l2", "named@example.com", Some("_not-a-session-index")),
    ] {
        let resp = app
            .client
            .get(app.url(&logout(id, name_id, index)))
            .send()
            .await
            .unwrap();
        assert!(status_of(resp).contains(partial), "{id}");
        assert!(still_signed_in().await, "{id} ended the session");
    }
    let resp = app
        .client
        .get(app.url(&logout("_l3", "named@example.com", None)))
        .send()
        .await
        .unwrap();
    assert!(status_of(resp).contains("urn:oasis:names:tc:SAML:2.0:status:Success"));
    assert!(!still_signed_in().await);
}

async fn single_logout_both_ways(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "slo@example.com").await;
    let idp = idp_cert(&app).await;
    // SP A signs its messages (the fixture's key); SP B registers no certificate.
    let a = register_sp(&app, json!({"entity_id": "https://a.example", "acs_url": "https://a.example/acs", "certificate_pem": fixture_certificate()})).await;
    let b = register_sp(
        &app,
        json!({"entity_id": "https://b.example", "acs_url": "https://b.example/acs"}),
    )
    .await;
    for (sp, url) in [(&a, "https://a.example/slo"), (&b, "https://b.example/slo")] {
        add_slo_endpoint(&app, sp, url).await;
    }
    // Sign in to both.
    let xml = authn_request("_sa", "https://a.example", None, app.clock.now());
    sso(
        &app,
        &app.client,
        &app.url(&format!(
            "/saml/sso?{}",
            redirect_query(&xml, "", Some(FIXTURE_KEY))
        )),
        "slo@example.com",
    )
    .await;
    let resp = app
        .client
        .get(app.url(&format!("/saml/sso/init?sp={}", enc("https://b.example"))))
        .send()
        .await
        .unwrap();
    auto_post(resp).await;
    // An app holds a refresh token of the same sign-in (contract, OAuth
    // section: ending the session ends it).
    let app_client = crate::oauth_support::confidential_client(&app, json!({})).await;
    let tokens =
        crate::oauth_support::login_and_redeem(&app, &app_client, "slo@example.com", "openid")
            .await;
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
    ];

    // SP A logs the user out: B is told, then A gets its response.
    let logout = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_lo1" Version="2.0" IssueInstant="{}" Destination="http://127.0.0.1:8080/saml/slo"><saml:Issuer>https://a.example</saml:Issuer><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">slo@example.com</saml:NameID></samlp:LogoutRequest>"#,
        app.clock.now().format("%Y-%m-%dT%H:%M:%SZ")
    );
    let unsigned = app
        .client
        .get(app.url(&format!(
            "/saml/slo?{}",
            redirect_query(&logout, "a-relay", None)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unsigned.status(),
        400,
        "SP A registered a certificate: its logout must be signed"
    );
    let resp = app
        .client
        .get(app.url(&format!(
            "/saml/slo?{}",
            redirect_query(&logout, "a-relay", Some(FIXTURE_KEY))
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let (status, _) = crate::oauth_support::token(&app, &app_client, &refresh).await;
    assert_eq!(status, 400, "single logout ended the app's refresh token");
    let (endpoint, to_b, chain) = read_redirect(
        resp.headers()["location"].to_str().unwrap(),
        "SAMLRequest",
        &idp,
    );
    assert_eq!(endpoint, "https://b.example/slo");
    let req_b = samael::schema::LogoutRequest::from_str(&to_b).unwrap();
    assert_eq!(
        req_b.issuer.unwrap().value.as_deref(),
        Some("http://127.0.0.1:8080/saml/metadata")
    );
    assert!(
        to_b.contains(">slo@example.com</saml:NameID>") && to_b.contains("<samlp:SessionIndex>_")
    );
    assert!(
        !to_b.contains("sess_"),
        "SPs never see TruSec's session ids"
    );
    let answer = logout_response_from_sp(&app, "https://b.example", &req_b.id.unwrap());
    let q = format!(
        "SAMLResponse={}&RelayState={}",
        enc(&deflate_b64(&answer)),
        enc(&chain.unwrap())
    );
    let resp = app
        .client
        .get(app.url(&format!("/saml/slo?{q}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let (endpoint, to_a, relay) = read_redirect(
        resp.headers()["location"].to_str().unwrap(),
        "SAMLResponse",
        &idp,
    );
    assert_eq!(
        (endpoint.as_str(), relay.as_deref()),
        ("https://a.example/slo", Some("a-relay"))
    );
    let done = samael::schema::LogoutResponse::from_str(&to_a).unwrap();
    assert_eq!(done.in_response_to.as_deref(), Some("_lo1"));
    assert!(to_a.contains("urn:oasis:names:tc:SAML:2.0:status:Success"));
    // The IdP session is over.
    let resp = app
        .client
        .get(app.url(&format!("/saml/sso/init?sp={}", enc("https://b.example"))))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert!(
        resp.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?")
    );

    // Logging out at the IdP tells the SPs too.
    sso(
        &app,
        &app.client,
        &app.url(&format!("/saml/sso/init?sp={}", enc("https://b.example"))),
        "slo@example.com",
    )
    .await;
    let resp = logout_at_idp(&app).await;
    assert_eq!(resp.status(), 302);
    let (endpoint, to_b, chain) = read_redirect(
        resp.headers()["location"].to_str().unwrap(),
        "SAMLRequest",
        &idp,
    );
    assert_eq!(endpoint, "https://b.example/slo");
    let id = samael::schema::LogoutRequest::from_str(&to_b)
        .unwrap()
        .id
        .unwrap();
    let answer = logout_response_from_sp(&app, "https://b.example", &id);
    let q = format!(
        "SAMLResponse={}&RelayState={}",
        enc(&deflate_b64(&answer)),
        enc(&chain.unwrap())
    );
    let resp = app
        .client
        .get(app.url(&format!("/saml/slo?{q}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("You are signed out"));
    let (_, events) = status_json(
        app.get("/v1/audit-events?type=saml.logout", &app.secret_key)
            .await,
    )
    .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);

    // An SP without a certificate cannot log anyone out: a link alone never does.
    let unsigned_b = logout
        .replace("https://a.example", "https://b.example")
        .replace("_lo1", "_lo2");
    let resp = app
        .client
        .get(app.url(&format!(
            "/saml/slo?{}",
            redirect_query(&unsigned_b, "", None)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // A cross-site logout arrives without our cookie: the signed SessionIndex
    // finds the session.
    let xml = authn_request("_sa2", "https://a.example", None, app.clock.now());
    let (_, response_xml, _) = sso(
        &app,
        &app.client,
        &app.url(&format!(
            "/saml/sso?{}",
            redirect_query(&xml, "", Some(FIXTURE_KEY))
        )),
        "slo@example.com",
    )
    .await;
    let parsed = samael::schema::Response::from_str(&response_xml).unwrap();
    let index = parsed.assertion.unwrap().authn_statements.unwrap()[0]
        .session_index
        .clone()
        .unwrap();
    let by_index = logout.replace("_lo1", "_lo3").replace(
        "</samlp:LogoutRequest>",
        &format!("<samlp:SessionIndex>{index}</samlp:SessionIndex></samlp:LogoutRequest>"),
    );
    let cookieless = crate::oauth_support::new_browser();
    let resp = cookieless
        .get(app.url(&format!(
            "/saml/slo?{}",
            redirect_query(&by_index, "", Some(FIXTURE_KEY))
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let (_, answer, _) = read_redirect(
        resp.headers()["location"].to_str().unwrap(),
        "SAMLResponse",
        &idp,
    );
    assert!(
        answer.contains("urn:oasis:names:tc:SAML:2.0:status:Success"),
        "{answer}"
    );
    let resp = app
        .client
        .get(app.url(&format!("/saml/sso/init?sp={}", enc("https://a.example"))))
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?"),
        "the first browser's session ended"
    );
}

/// Signs out at the IdP's own `/logout` page and follows it to the first
/// step of telling the SPs.
pub(crate) async fn logout_at_idp(app: &TestApp) -> reqwest::Response {
    let html = app
        .client
        .get(app.url("/logout"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let resp = app
        .client
        .post(app.url("/logout"))
        .form(&[
            ("decision", "logout"),
            ("csrf_token", &hidden(&html, "csrf_token")),
            ("intent", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    app.client
        .get(app.url(resp.headers()["location"].to_str().unwrap()))
        .send()
        .await
        .unwrap()
}

/// What an SP answers to our LogoutRequest.
pub(crate) fn logout_response_from_sp(app: &TestApp, issuer: &str, in_response_to: &str) -> String {
    format!(
        r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r{}" Version="2.0" IssueInstant="{}" InResponseTo="{in_response_to}"><saml:Issuer>{issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>"#,
        in_response_to.trim_start_matches('_'),
        app.clock.now().format("%Y-%m-%dT%H:%M:%SZ")
    )
}

/// A PEM certificate from the base64 of a metadata `X509Certificate`.
fn pem_of(b64: &str) -> String {
    let lines: Vec<String> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

fn certificates(metadata: &str) -> Vec<String> {
    metadata
        .split("<ds:X509Certificate>")
        .skip(1)
        .map(|s| s.split("</ds:X509Certificate>").next().unwrap().to_owned())
        .collect()
}

async fn the_idp_certificate_rotates_in_two_steps(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "rot@example.com").await;
    register_sp(&app, json!({"entity_id": SP_ENTITY, "acs_url": ACS})).await;
    let metadata = |app: &TestApp| {
        let client = app.client.clone();
        let url = app.url("/saml/metadata");
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let before = certificates(&metadata(&app).await);
    assert_eq!(before.len(), 1);
    let old_cert = idp_cert(&app).await;
    // Signed metadata is made once per key set (each signing gives the
    // document a fresh ID, so equal bodies mean it was served from memory).
    let signed = |app: &TestApp| {
        let client = app.client.clone();
        let url = app.url("/saml/metadata?signed=true");
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let first_signed = signed(&app).await;
    assert_eq!(signed(&app).await, first_signed, "signed once, then cached");
    // Step one announces the next certificate; the current one still signs.
    let (status, body) = status_json(
        app.post("/v1/signing-keys/rotate", &app.secret_key, &json!({}))
            .await,
    )
    .await;
    assert_eq!((status, body["saml"].as_str()), (200, Some("announced")));
    let announced = certificates(&metadata(&app).await);
    assert_eq!(announced.len(), 2);
    let signed_after = signed(&app).await;
    assert_ne!(signed_after, first_signed, "a new key set is signed anew");
    assert!(certificates(&signed_after).contains(&announced[1]));
    assert_eq!(announced[0], before[0]);
    let (_, xml, _) = sso(
        &app,
        &app.client,
        &app.url(&format!("/saml/sso/init?sp={}", enc(SP_ENTITY))),
        "rot@example.com",
    )
    .await;
    assert!(xmlsec1_verifies(&xml, &old_cert, true));
    // Step two switches to it.
    let (_, body) = status_json(
        app.post("/v1/signing-keys/rotate", &app.secret_key, &json!({}))
            .await,
    )
    .await;
    assert_eq!(body["saml"], "promoted");
    let after = certificates(&metadata(&app).await);
    assert_eq!(after, vec![announced[1].clone()]);
    let new_cert = idp_cert(&app).await;
    let resp = app
        .client
        .get(app.url(&format!("/saml/sso/init?sp={}", enc(SP_ENTITY))))
        .send()
        .await
        .unwrap();
    let (_, xml, _) = auto_post(resp).await;
    assert!(xmlsec1_verifies(&xml, &new_cert, true));
    assert!(!xmlsec1_verifies(&xml, &old_cert, true));
    // An SP still holding the metadata it fetched during step one (both
    // certificates, metadata interop profile) accepts the new assertions.
    let held = announced
        .iter()
        .map(|b64| pem_of(b64))
        .any(|pem| xmlsec1_verifies(&xml, &pem, true));
    assert!(
        held,
        "the metadata fetched before step two verifies after it"
    );
}

/// An AuthnRequest signed in XML-DSig (for the HTTP-POST binding) with the
/// fixture SP's key.
fn signed_authn_request(xml: &str, id: &str) -> String {
    signed_authn_request_with(xml, id, "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
}

/// As [`signed_authn_request`], with this signature method.
fn signed_authn_request_with(xml: &str, id: &str, method: &str) -> String {
    let rsa = openssl::rsa::Rsa::private_key_from_pem(FIXTURE_KEY.as_bytes()).unwrap();
    let cert_pem = sp_metadata_cert();
    let cert_der = openssl::x509::X509::from_pem(cert_pem.as_bytes())
        .unwrap()
        .to_der()
        .unwrap();
    let mut request = samael::schema::AuthnRequest::from_str(xml).unwrap();
    let mut signature = samael::signature::Signature::template(id, &cert_der.clone().into());
    for r in &mut signature.signed_info.reference {
        r.digest_method.algorithm = samael::signature::DigestAlgorithm::Sha256;
    }
    signature.signed_info.signature_method.algorithm =
        samael::signature::SignatureAlgorithm::from_str(method).unwrap();
    request.signature = Some(signature);
    request
        .to_signed_xml(&rsa.private_key_to_der().unwrap())
        .unwrap()
}

pub(crate) fn sp_metadata_cert() -> String {
    let b64 = FIXTURE_METADATA
        .split("<ds:X509Certificate>")
        .nth(1)
        .unwrap()
        .split("</ds:X509Certificate>")
        .next()
        .unwrap();
    pem_of(b64)
}

async fn post_request(app: &TestApp, browser: &reqwest::Client, xml: &str) -> reqwest::Response {
    browser
        .post(app.url("/saml/sso"))
        .form(&[
            ("SAMLRequest", STANDARD.encode(xml.as_bytes()).as_str()),
            ("RelayState", "r"),
        ])
        .send()
        .await
        .unwrap()
}

async fn signed_post_requests_wrapping_force_authn_and_is_passive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    make_user(&app, "post@example.com").await;
    register_sp(&app, json!({"metadata_xml": FIXTURE_METADATA})).await;
    let entity = "https://acme-crm.example/saml/sp";
    let now = app.clock.now();
    // IsPassive without a session: a failed Response goes back, no login page.
    let passive = authn_request("_p1", entity, None, now)
        .replace("Version=\"2.0\"", "Version=\"2.0\" IsPassive=\"true\"");
    let (_, xml, _) =
        auto_post(post_request(&app, &app.client, &signed_authn_request(&passive, "_p1")).await)
            .await;
    let failed = samael::schema::Response::from_str(&xml).unwrap();
    assert_eq!(
        failed.status.unwrap().status_code.value.as_deref(),
        Some("urn:oasis:names:tc:SAML:2.0:status:Responder")
    );
    assert!(failed.assertion.is_none());
    assert!(
        xmlsec1_verifies(&xml, &idp_cert(&app).await, false),
        "even a failure is signed"
    );
    // A signed POST request through the login form.
    let signed = signed_authn_request(&authn_request("_s1", entity, None, now), "_s1");
    let resp = post_request(&app, &app.client, &signed).await;
    assert_eq!(resp.status(), 302);
    let (action, _, _) = sso(
        &app,
        &app.client,
        &app.url(resp.headers()["location"].to_str().unwrap()),
        "post@example.com",
    )
    .await;
    assert_eq!(action, "https://acme-crm.example/saml/acs");
    // ForceAuthn: the password again, although signed in.
    let force = authn_request("_f1", entity, None, now)
        .replace("Version=\"2.0\"", "Version=\"2.0\" ForceAuthn=\"true\"");
    let resp = post_request(&app, &app.client, &signed_authn_request(&force, "_f1")).await;
    assert_eq!(resp.status(), 302);
    assert!(
        resp.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?")
    );
    // Signature wrapping: a valid signed request hidden inside another one
    // that names a different ACS. The signature verifies, but not over the
    // element we would use: refused.
    let original = signed_authn_request(&authn_request("_w1", entity, None, now), "_w1");
    let inner = original.trim_start_matches(|c| c != '<').to_owned();
    let inner = inner
        .split_once("?>")
        .map_or(inner.clone(), |(_, rest)| rest.to_owned());
    let wrapped = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_evil" Version="2.0" IssueInstant="{}" AssertionConsumerServiceURL="https://eu.acme-crm.example/saml/acs"><saml:Issuer>{entity}</saml:Issuer><samlp:Extensions>{inner}</samlp:Extensions></samlp:AuthnRequest>"#,
        now.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let resp = post_request(&app, &new_browser_client(), &wrapped).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(last_refusal(&app).await, "signature_policy");
    // The sharper variant: the signature moved up to the outer request, still
    // pointing at the hidden one. xmlsec accepts it; the reference names
    // another element than the one we would act on: refused.
    let start = inner.find("<ds:Signature").unwrap();
    let end = inner.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let signature = &inner[start..end];
    let unsigned_inner = format!("{}{}", &inner[..start], &inner[end..]);
    let wrapped = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" ID="_evil2" Version="2.0" IssueInstant="{}" AssertionConsumerServiceURL="https://eu.acme-crm.example/saml/acs"><saml:Issuer>{entity}</saml:Issuer>{signature}<samlp:Extensions>{unsigned_inner}</samlp:Extensions></samlp:AuthnRequest>"#,
        now.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let resp = post_request(&app, &new_browser_client(), &wrapped).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(last_refusal(&app).await, "signature_policy");
}

fn new_browser_client() -> reqwest::Client {
    crate::oauth_support::new_browser()
}
