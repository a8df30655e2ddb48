//! What the unit tests of the SAML handlers share: a `SamlState` over a
//! fresh, migrated database and the in-process store, with a fake clock.

use crate::SamlState;
use crate::sp_config::{SpInput, validate};
use trusec_storage::audit::AuditLog;
use trusec_storage::rate_limit::RateLimits;
use trusec_storage::service_providers::{self, NameIdFormat, ServiceProviderRow};
use trusec_storage::sessions::AuthMethod;
use trusec_storage::users::{self, NewUser};
use trusec_storage::{Core, EphemeralStore, ids};
use trusec_testdb::TestDb;
use trusec_ui::{LoginSession, UiState};

pub const ISSUER: &str = "http://idp.test";

pub async fn state(test_db: &TestDb) -> SamlState {
    let db = test_db.connect();
    db.migrate().unwrap();
    let clock = trusec_testdb::fake_clock();
    let key = trusec_storage::audit::AuditKey::derive(&[7; 32]).unwrap();
    let (audit, _writer) = AuditLog::start(db.clone(), clock.clone(), key);
    let store = EphemeralStore::memory(clock.clone());
    let core = Core::new(
        db.clone(),
        store,
        clock.clone(),
        audit,
        RateLimits::default(),
        trusec_storage::hashing::HashPool::start(trusec_storage::hashing::PasswordHashing {
            threads: 1,
            queue: 16,
        })
        .unwrap(),
    );
    let keys = crate::idp_key::IdpKeys::open(db, clock, [7; 32], ids::ENV_LIVE, ISSUER)
        .await
        .unwrap();
    let ui = UiState {
        core,
        secure_cookies: false,
        env: std::sync::Arc::new(trusec_ui::Environment::live(ISSUER)),
        seal_key: trusec_storage::sealed::SealKey::new([7; 32]),
    };
    SamlState::new(
        ui,
        std::sync::Arc::new(keys),
        &[7; 32],
        crate::xml_work::XmlWork::new(2),
    )
}

/// A live SP with an ACS at `{entity_id}/acs`.
pub async fn register_sp(
    state: &SamlState,
    entity_id: &str,
    name_id_format: Option<NameIdFormat>,
) -> ServiceProviderRow {
    let fields = validate(
        SpInput {
            entity_id: Some(entity_id.into()),
            acs_url: Some(format!("{entity_id}/acs")),
            name_id_format: name_id_format.map(|f| f.urn().to_owned()),
            ..SpInput::default()
        },
        None,
        state.core().clock.now(),
    )
    .unwrap();
    let now = state.core().clock.now_naive();
    state
        .core()
        .db
        .run(move |c| service_providers::insert(c, ids::ENV_LIVE, fields, now))
        .await
        .unwrap()
}

/// A new login session of a new live user.
pub async fn sign_in(state: &SamlState, email: &str) -> LoginSession {
    let new = NewUser {
        environment_id: ids::ENV_LIVE.into(),
        email: email.into(),
        password_hash: None,
        name: None,
        given_name: None,
        family_name: None,
        groups: Vec::new(),
        metadata: serde_json::json!({}),
    };
    let now = state.core().clock.now_naive();
    let user = state
        .core()
        .db
        .run(move |c| users::insert(c, new, now))
        .await
        .unwrap();
    another_session(state, &user).await
}

/// Another login session of the same user.
pub async fn another_session(
    state: &SamlState,
    user: &trusec_storage::users::UserRow,
) -> LoginSession {
    let now = state.core().clock.now_naive();
    let (_, session) = LoginSession::start(
        &state.ui,
        user,
        serde_json::json!({}),
        vec![AuthMethod::Pwd],
        now,
    )
    .await
    .unwrap();
    LoginSession {
        session,
        user: user.clone(),
    }
}

/// The DER of a fresh self-signed certificate, as an SP would register.
pub fn sp_certificate_der() -> Vec<u8> {
    let row = crate::idp_key::generate(
        trusec_storage::ids::ENV_LIVE,
        "sp.test",
        &[7; 32],
        trusec_testdb::fake_clock().now_naive(),
    )
    .unwrap();
    openssl::x509::X509::from_pem(row.certificate_pem.as_bytes())
        .and_then(|c| c.to_der())
        .unwrap()
}
