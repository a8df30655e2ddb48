//! Attribute profiles (issue 13, item 2): the exact `Name`, `NameFormat`
//! and `FriendlyName` each profile releases our attributes under, a
//! mapping's own names and formats, and the scoped `subject-id` /
//! `pairwise-id` of the Subject Identifier Attributes profile.

use crate::oauth_support::make_user;
use crate::saml::{enc, register_sp, sso};
use serde_json::json;
use std::str::FromStr;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

const BASIC: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic";
const URI: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri";

on_every_backend!(each_profile_names_the_attributes_exactly);

/// (Name, NameFormat, FriendlyName, values) of every attribute, in order.
type Released = Vec<(String, String, Option<String>, Vec<String>)>;

async fn released_to(app: &TestApp, entity: &str, email: &str) -> Released {
    let url = app.url(&format!("/saml/sso/init?sp={}", enc(entity)));
    let (_, xml, _) = sso(app, &app.client, &url, email).await;
    let response = samael::schema::Response::from_str(&xml).unwrap();
    let statements = response.assertion.unwrap().attribute_statements.unwrap();
    statements[0]
        .attributes
        .iter()
        .map(|a| {
            (
                a.name.clone().unwrap(),
                a.name_format.clone().unwrap(),
                a.friendly_name.clone(),
                a.values.iter().map(|v| v.value.clone().unwrap()).collect(),
            )
        })
        .collect()
}

fn expected(rows: &[(&str, &str, Option<&str>, &str)]) -> Released {
    let mut rows: Released = rows
        .iter()
        .map(|(n, f, friendly, v)| {
            (
                (*n).to_owned(),
                (*f).to_owned(),
                friendly.map(str::to_owned),
                vec![(*v).to_owned()],
            )
        })
        .collect();
    rows.sort();
    rows
}

fn sorted(mut r: Released) -> Released {
    r.sort();
    r
}

async fn each_profile_names_the_attributes_exactly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "ada@example.com";
    make_user(&app, email).await;
    let sp = |entity: &str, profile: Option<&str>| {
        let mut body = json!({"entity_id": entity, "acs_url": format!("{entity}/acs")});
        if let Some(p) = profile {
            body["attribute_profile"] = json!(p);
        }
        body
    };
    // basic: as before, our names.
    let basic = register_sp(&app, sp("https://basic.example", None)).await;
    assert_eq!(basic["attribute_profile"], "basic");
    assert_eq!(basic["attributes"]["email"], "email");
    assert_eq!(
        sorted(released_to(&app, "https://basic.example", email).await),
        expected(&[
            ("email", BASIC, None, email),
            ("name", BASIC, None, "Ada Lovelace"),
            ("given_name", BASIC, None, "Ada"),
            ("family_name", BASIC, None, "Lovelace"),
            ("groups", BASIC, None, "eng"),
        ])
    );
    // oid: urn:oid names, URI format, FriendlyName.
    let oid = register_sp(&app, sp("https://oid.example", Some("oid"))).await;
    assert_eq!(
        oid["attributes"]["email"],
        json!({"name": "urn:oid:0.9.2342.19200300.100.1.3", "name_format": "uri", "friendly_name": "mail"})
    );
    assert_eq!(
        sorted(released_to(&app, "https://oid.example", email).await),
        expected(&[
            (
                "urn:oid:0.9.2342.19200300.100.1.3",
                URI,
                Some("mail"),
                email
            ),
            (
                "urn:oid:2.16.840.1.113730.3.1.241",
                URI,
                Some("displayName"),
                "Ada Lovelace"
            ),
            ("urn:oid:2.5.4.42", URI, Some("givenName"), "Ada"),
            ("urn:oid:2.5.4.4", URI, Some("sn"), "Lovelace"),
            (
                "urn:oid:1.3.6.1.4.1.5923.1.5.1.1",
                URI,
                Some("isMemberOf"),
                "eng"
            ),
        ])
    );
    // microsoft: the claim URIs.
    register_sp(&app, sp("https://ms.example", Some("microsoft"))).await;
    let claims = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims";
    assert_eq!(
        sorted(released_to(&app, "https://ms.example", email).await),
        expected(&[
            (&format!("{claims}/emailaddress"), URI, None, email),
            (
                "http://schemas.microsoft.com/identity/claims/displayname",
                URI,
                None,
                "Ada Lovelace"
            ),
            (&format!("{claims}/givenname"), URI, None, "Ada"),
            (&format!("{claims}/surname"), URI, None, "Lovelace"),
            (
                "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
                URI,
                None,
                "eng"
            ),
        ])
    );
    // subject-id and pairwise-id: one name in every profile, scoped values;
    // subject-id the same to every SP, pairwise-id not.
    let mut ids = Vec::new();
    for entity in ["https://ids-a.example", "https://ids-b.example"] {
        let mut body = sp(entity, Some("oid"));
        body["attributes"] = json!(["subject_id", "pairwise_id"]);
        register_sp(&app, body).await;
        let got = released_to(&app, entity, email).await;
        let names: Vec<_> = got
            .iter()
            .map(|(n, f, friendly, _)| (n.as_str(), f.as_str(), friendly.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                (
                    "urn:oasis:names:tc:SAML:attribute:subject-id",
                    URI,
                    Some("subject-id")
                ),
                (
                    "urn:oasis:names:tc:SAML:attribute:pairwise-id",
                    URI,
                    Some("pairwise-id")
                ),
            ]
        );
        for (_, _, _, values) in &got {
            let (unique, scope) = values[0].split_once('@').unwrap();
            assert_eq!(scope, "127.0.0.1");
            assert!(!unique.is_empty() && unique.len() <= 127);
            assert!(
                unique
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            );
        }
        ids.push((got[0].3[0].clone(), got[1].3[0].clone()));
    }
    assert_eq!(ids[0].0, ids[1].0, "subject-id is the same to every SP");
    assert_ne!(ids[0].1, ids[1].1, "pairwise-id differs per SP");
    // A mapping picks its own names and formats; a new profile renames.
    let id = basic["id"].as_str().unwrap();
    let (status, patched) = status_json(
        app.patch(
            &format!("/v1/saml/service-providers/{id}"),
            &app.secret_key,
            &json!({"attributes": {"email": {"name": "mail", "name_format": "unspecified"}, "groups": "memberOf"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        sorted(released_to(&app, "https://basic.example", email).await),
        expected(&[
            (
                "mail",
                "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified",
                None,
                email
            ),
            ("memberOf", BASIC, None, "eng"),
        ])
    );
    let (status, patched) = status_json(
        app.patch(
            &format!("/v1/saml/service-providers/{id}"),
            &app.secret_key,
            &json!({"attribute_profile": "oid"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["attribute_profile"], "oid");
    assert_eq!(
        patched["attributes"]["groups"]["name"],
        "urn:oid:1.3.6.1.4.1.5923.1.5.1.1"
    );
    let (status, refused) =
        crate::saml::patch_sp(&app, id, json!({"attribute_profile": "ldap"})).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["param"], "attribute_profile");
}
