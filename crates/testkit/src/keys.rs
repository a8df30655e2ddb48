//! Signing keys made once per test process: generating two RSA-2048 keys
//! for every app would dominate the suite's time. Each fresh database is
//! migrated and seeded with the same keys (sealed under the test master key,
//! all zeros) before the app starts, so `Keyring::open` finds them.

use crate::TestDb;
use std::sync::OnceLock;
use trusec_oauth::crypto::Alg;
use trusec_storage::ids;
use trusec_storage::key_lifecycle::KeyState;
use trusec_storage::signing_keys::{self, SigningKeyRow};

/// The master key of `Settings::for_tests`.
pub const TEST_MASTER_KEY: [u8; 32] = [0; 32];

fn rows() -> &'static [SigningKeyRow] {
    static ROWS: OnceLock<Vec<SigningKeyRow>> = OnceLock::new();
    ROWS.get_or_init(|| {
        let now = crate::fake_clock().now_naive();
        let mut rows = Vec::new();
        // Each environment is its own issuer, with keys of its own.
        for env in [ids::ENV_LIVE, ids::ENV_TEST] {
            for &alg in Alg::ALL {
                for state in [KeyState::Current, KeyState::Next] {
                    rows.push(
                        trusec_oauth::keys::generate_row(env, alg, state, &TEST_MASTER_KEY, now)
                            .expect("key generation"),
                    );
                }
            }
        }
        rows
    })
}

/// One SAML IdP key per seeded environment (each is its own IdP).
fn saml_keys() -> &'static [trusec_storage::service_providers::IdpKeyRow] {
    static KEYS: OnceLock<Vec<trusec_storage::service_providers::IdpKeyRow>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let now = crate::fake_clock().now_naive();
        [
            (ids::ENV_LIVE, "http://127.0.0.1:8080"),
            (ids::ENV_TEST, "http://127.0.0.1:8080/env/test"),
        ]
        .into_iter()
        .map(|(env, cn)| {
            trusec_saml::idp_key::generate(env, cn, &TEST_MASTER_KEY, now)
                .expect("SAML key generation")
        })
        .collect()
    })
}

/// Migrates `db` and installs the shared keys.
///
/// # Panics
/// When the database cannot be prepared.
pub fn seed(db: &TestDb) {
    let pool = db.connect();
    pool.migrate().expect("migrations");
    let mut conn = pool.get().expect("connection");
    let rows = rows();
    for pair in rows.chunks(2) {
        if let [current, next] = pair {
            signing_keys::install_first(&mut conn, current, next).expect("seed signing keys");
        }
    }
    for key in saml_keys() {
        trusec_storage::service_providers::install_first_idp_key(&mut conn, key)
            .expect("seed the SAML keys");
    }
}
