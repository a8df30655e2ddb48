//! The storage side of the hot paths: hashing a presented session token
//! (what `/v1/sessions/verify` looks up by) and finding a client by id,
//! from the database and through the read-through cache (in-process store)
//! the token endpoint uses.
//!
//! `cargo bench -p trusec-storage --bench lookups`; the side-by-side
//! figures are `bench/run` (bench/README.md).
#![expect(clippy::expect_used, reason = "a benchmark's setup fails loudly")]

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use trusec_storage::cache::Cached;
use trusec_storage::clients::{
    self, ApplicationType, AuthMethod, ClientRow, ClientType, GrantType, NewClient, RegisteredBy,
};
use trusec_storage::clock::Clock;
use trusec_storage::scopes::ScopeSet;
use trusec_storage::signing_keys::Alg;
use trusec_storage::{EphemeralStore, StorageError, ids, secrets};
use trusec_testdb::TestDb;

fn confidential() -> NewClient {
    NewClient {
        environment_id: ids::ENV_LIVE.to_owned(),
        name: "bench".to_owned(),
        client_type: ClientType::Confidential,
        secret_hash: Some(secrets::hash_secret("bench-secret")),
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        grant_types: vec![GrantType::ClientCredentials],
        scopes: ScopeSet::parse("read:users").expect("a scope"),
        token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
        id_token_signed_response_alg: Alg::Rs256,
        refresh_token_leeway_seconds: 0,
        registered_by: RegisteredBy::ManagementApi,
        resource_server: false,
        default_resource: None,
        jwks: None,
        jwks_uri: None,
        token_endpoint_auth_signing_alg: None,
        require_pushed_authorization_requests: false,
        application_type: ApplicationType::Web,
        dpop_bound_access_tokens: false,
        token_endpoint_auth_method_chosen: false,
    }
}

fn lookups(c: &mut Criterion) {
    let token = secrets::generate_secret("trusec_sess_").expect("a token");
    c.bench_function("session token hash", |b| {
        b.iter(|| secrets::hash_secret(black_box(&token)));
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (_test_db, db) = TestDb::migrated_sqlite();
    let now = Clock::System.now_naive();
    let row = rt
        .block_on(db.run(move |conn| clients::insert(conn, confidential(), now)))
        .expect("a client");
    let find = |id: String| {
        let db = db.clone();
        async move { db.run(move |conn| clients::find(conn, &id)).await }
    };
    let mut group = c.benchmark_group("client lookup");
    group.bench_function("database (SQLite)", |b| {
        b.iter(|| rt.block_on(find(row.id.clone())).expect("found"));
    });
    let store = EphemeralStore::memory(Clock::System);
    group.bench_function("read-through cache (in-process store), hit", |b| {
        b.iter(|| {
            let hit: Option<ClientRow> = rt
                .block_on(store.read_through::<_, StorageError, _>(
                    &Cached::client(black_box(&row.id)),
                    || find(row.id.clone()),
                ))
                .expect("found");
            hit
        });
    });
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
