//! Service provider rows load typed: a stored value this version cannot
//! read is an error of the query, never a silent default.

use crate::fresh_db;
use diesel::prelude::*;
use std::collections::BTreeMap;
use trusec_storage::schema::saml_service_providers as t;
use trusec_storage::service_providers::{
    self, AssertionCipher, AttributeProfile, Binding, Endpoint, NameIdFormat, Released, SpFields,
    UserAttribute,
};
use trusec_storage::sql_types::UnknownVariant;
use trusec_storage::{Db, PageRequest, StorageError, ids};
use trusec_testdb::{Backend, on_every_backend};

on_every_backend!(rows_round_trip_typed, a_corrupt_stored_value_is_an_error);

fn fields(entity_id: &str) -> SpFields {
    SpFields {
        entity_id: entity_id.into(),
        name: "SP".into(),
        acs_endpoints: vec![Endpoint {
            url: format!("{entity_id}/acs"),
            binding: Binding::HttpPost,
            index: Some(0),
            is_default: true,
            response_url: None,
        }],
        slo_endpoints: vec![Endpoint {
            url: format!("{entity_id}/slo"),
            binding: Binding::Other("urn:oasis:names:tc:SAML:2.0:bindings:SOAP".into()),
            index: None,
            is_default: false,
            response_url: None,
        }],
        certificate_pem: None,
        name_id_format: NameIdFormat::Transient,
        attributes: BTreeMap::from([(UserAttribute::Groups, Released::basic("memberOf"))]),
        attribute_profile: AttributeProfile::Basic,
        sign_response: false,
        sign_assertion: true,
        want_authn_requests_signed: false,
        encryption_certificate_pem: Some("-----BEGIN CERTIFICATE-----\n".into()),
        encrypt_assertions: true,
        assertion_cipher: AssertionCipher::Aes256Cbc,
    }
}

pub async fn insert(db: &Db, entity_id: &str) -> String {
    let f = fields(entity_id);
    db.run(move |c| {
        service_providers::insert(c, ids::ENV_LIVE, f, chrono::NaiveDateTime::default())
    })
    .await
    .unwrap()
    .id
}

async fn rows_round_trip_typed(backend: Backend) {
    let (_test_db, db) = fresh_db(&backend);
    let id = insert(&db, "https://sp.test").await;
    let sp = db
        .run(move |c| service_providers::get(c, ids::ENV_LIVE, &id))
        .await
        .unwrap();
    let want = fields("https://sp.test");
    assert_eq!(sp.name_id_format, NameIdFormat::Transient);
    assert_eq!(*sp.acs_endpoints, want.acs_endpoints);
    assert_eq!(*sp.slo_endpoints, want.slo_endpoints);
    assert_eq!(*sp.attributes, want.attributes);
    assert_eq!(
        (
            sp.encryption_certificate_pem.clone(),
            sp.encrypt_assertions,
            sp.assertion_cipher
        ),
        (
            want.encryption_certificate_pem,
            true,
            AssertionCipher::Aes256Cbc
        )
    );
    let shown = sp.to_sp();
    assert_eq!(
        shown.name_id_format,
        "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
    );
    // Stored by short name, which older versions read too.
    let stored: String = db
        .run(move |c| {
            t::table
                .select(t::name_id_format)
                .first(c)
                .map_err(StorageError::from)
        })
        .await
        .unwrap();
    assert_eq!(stored, "transient");
    let cipher: String = db
        .run(move |c| {
            t::table
                .select(t::assertion_cipher)
                .first(c)
                .map_err(StorageError::from)
        })
        .await
        .unwrap();
    assert_eq!(cipher, "aes256-cbc");
}

/// Whether `e`'s source chain holds an error of type `E`.
fn caused_by<E: std::error::Error + 'static>(e: &StorageError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<E>() {
            return true;
        }
        source = s.source();
    }
    false
}

async fn a_corrupt_stored_value_is_an_error(backend: Backend) {
    let (_test_db, db) = fresh_db(&backend);
    let id = insert(&db, "https://sp.test").await;
    let bad_format = id.clone();
    db.run(move |c| {
        diesel::update(t::table.filter(t::id.eq(&bad_format)))
            .set(t::name_id_format.eq("x509SubjectName"))
            .execute(c)
            .map_err(StorageError::from)
    })
    .await
    .unwrap();
    let (env, sp) = (ids::ENV_LIVE, id.clone());
    let e = db
        .run(move |c| service_providers::get(c, env, &sp))
        .await
        .unwrap_err();
    assert!(matches!(e, StorageError::Backend(_)), "{e:?}");
    assert!(caused_by::<UnknownVariant>(&e), "{e:?}");
    // Every way of loading it fails the same way.
    let e = db
        .run(|c| service_providers::find_by_entity_id(c, ids::ENV_LIVE, "https://sp.test"))
        .await
        .unwrap_err();
    assert!(caused_by::<UnknownVariant>(&e), "{e:?}");
    let page = PageRequest {
        limit: 10,
        after: None,
    };
    let e = db
        .run(move |c| service_providers::list(c, ids::ENV_LIVE, &page))
        .await
        .unwrap_err();
    assert!(caused_by::<UnknownVariant>(&e), "{e:?}");

    // An attribute mapping naming an attribute we do not have.
    let other = insert(&db, "https://other.test").await;
    let bad_map = other.clone();
    db.run(move |c| {
        diesel::update(t::table.filter(t::id.eq(&bad_map)))
            .set(t::attributes.eq(r#"{"ssn":"ssn"}"#))
            .execute(c)
            .map_err(StorageError::from)
    })
    .await
    .unwrap();
    let e = db
        .run(move |c| service_providers::get(c, ids::ENV_LIVE, &other))
        .await
        .unwrap_err();
    assert!(caused_by::<serde_json::Error>(&e), "{e:?}");
}
