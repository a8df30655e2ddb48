//! Access tokens: signing (ES256, the algorithm of every access token, and
//! RS256 for comparison) and the whole verification introspection and
//! userinfo pay (signature, `typ`, issuer, expiry).
//!
//! `cargo bench -p trusec-oauth --bench tokens`; the side-by-side
//! figures are `bench/run` (bench/README.md).
#![expect(clippy::expect_used, reason = "a benchmark's setup fails loudly")]

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use trusec_oauth::crypto::Alg;
use trusec_oauth::jwt::{self, AccessClaims};
use trusec_oauth::keys::Keyring;
use trusec_storage::clock::Clock;
use trusec_storage::ids;
use trusec_testdb::TestDb;

const ISSUER: &str = "https://id.example.com";

fn tokens(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (_test_db, db) = TestDb::migrated_sqlite();
    let ring = rt
        .block_on(Keyring::open(
            db,
            Clock::System,
            secrecy::SecretBox::new(Box::new([7; 32])),
            Duration::from_secs(3600),
            ids::ENV_LIVE,
        ))
        .expect("a keyring");
    let now = Clock::System.now().timestamp();
    let claims = AccessClaims {
        iss: ISSUER.to_owned(),
        sub: "client_01jd8x7k3m9q2w4e6r8t0y1u3i".to_owned(),
        aud: ISSUER.to_owned(),
        exp: now + 3600,
        iat: now,
        jti: ids::new_id("at"),
        client_id: "client_01jd8x7k3m9q2w4e6r8t0y1u3i".to_owned(),
        scope: "read:users".to_owned(),
        auth_time: None,
        amr: Vec::new(),
        acr: None,
        env: ids::ENV_LIVE.to_owned(),
        fid: None,
        cnf: None,
    };
    let mut group = c.benchmark_group("access token");
    group.bench_function("sign ES256", |b| {
        b.iter(|| jwt::sign_access_token(&ring, Alg::Es256, black_box(&claims)).expect("signed"));
    });
    group.bench_function("sign RS256", |b| {
        b.iter(|| jwt::sign_access_token(&ring, Alg::Rs256, black_box(&claims)).expect("signed"));
    });
    let token = jwt::sign_access_token(&ring, Alg::Es256, &claims).expect("signed");
    group.bench_function("verify ES256", |b| {
        b.iter(|| {
            rt.block_on(jwt::verify_access_token(
                &ring,
                ISSUER,
                now,
                black_box(&token),
            ))
            .expect("valid")
        });
    });
    group.finish();
}

criterion_group!(benches, tokens);
criterion_main!(benches);
