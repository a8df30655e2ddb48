//! A signed SAML response: building the assertion, and building and
//! signing it (assertion signed, as by default; and response and assertion
//! both), next to the one RSA-2048 signature it cannot do without (the
//! budget: at most 1.5 times that, docs/performance.md).
//!
//! `cargo bench -p trusec-saml --bench response`; the side-by-side
//! figures are `bench/run` (bench/README.md).
#![expect(clippy::expect_used, reason = "a benchmark's setup fails loudly")]

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use trusec_saml::idp_key::IdpKeys;
use trusec_saml::response::{self, AssertionInput, Signing};
use trusec_storage::clock::Clock;
use trusec_storage::ids;
use trusec_storage::service_providers::Released;
use trusec_storage::sessions::AuthMethod;
use trusec_testdb::TestDb;

const IDP: &str = "https://id.example.com";

fn responses(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (_test_db, db) = TestDb::migrated_sqlite();
    let keys = rt
        .block_on(IdpKeys::open(
            db,
            Clock::System,
            [7; 32],
            ids::ENV_LIVE,
            IDP,
        ))
        .expect("an IdP key");
    let key = keys.current();
    let now = Clock::System.now();
    let input = AssertionInput {
        idp_entity_id: "https://id.example.com/saml/metadata",
        sp_entity_id: "https://sp.example.com/saml",
        acs_url: "https://sp.example.com/saml/acs",
        in_response_to: Some("_9f2c4d6e8a0b1c3d5e7f"),
        name_id: "ada@example.com",
        name_id_format: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        session_index: "sess_01jd8x7k3m9q2w4e6r8t0y1u3i",
        auth_instant: now,
        authn_context: response::authn_context_class(&[AuthMethod::Pwd]),
        now,
        attributes: vec![
            (Released::basic("email"), vec!["ada@example.com".to_owned()]),
            (Released::basic("name"), vec!["Ada Lovelace".to_owned()]),
        ],
    };
    let mut group = c.benchmark_group("SAML response");
    group.bench_function("build", |b| b.iter(|| response::success(black_box(&input))));
    for (name, signing) in [
        (
            "build and sign (assertion)",
            Signing {
                response: false,
                assertion: true,
            },
        ),
        (
            "build and sign (response and assertion)",
            Signing {
                response: true,
                assertion: true,
            },
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                response::sign(
                    response::success(&input),
                    signing,
                    None,
                    &key.certificate_der,
                    &key.private_der,
                )
                .expect("signed")
            });
        });
    }
    // The floor: one RSA-2048 PKCS#1 v1.5 SHA-256 signature of a digest-sized input.
    let pkey = openssl::pkey::PKey::from_rsa(
        openssl::rsa::Rsa::private_key_from_der(&key.private_der).expect("the IdP key"),
    )
    .expect("a key");
    group.bench_function("one RSA-2048 signature (the floor)", |b| {
        b.iter(|| {
            let mut signer =
                openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey)
                    .expect("a signer");
            signer
                .sign_oneshot_to_vec(black_box(b"0123456789abcdef0123456789abcdef"))
                .expect("signed")
        });
    });
    group.finish();
}

criterion_group!(benches, responses);
criterion_main!(benches);
