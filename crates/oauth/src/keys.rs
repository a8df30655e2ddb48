//! The keyring: JWT signing keys, rotated by themselves.
//!
//! Each algorithm has a `current` key (signs) and a `next` key (already in
//! JWKS, so relying parties have it cached before it signs anything). A
//! rotation retires `current` (kept in JWKS until every token it signed has
//! expired), promotes `next`, and adds a new `next`. Every instance reloads
//! the published set periodically and whenever it meets an unknown `kid`, so
//! a rotation anywhere is seen everywhere without a restart. JWKS is kept as
//! pre-serialised bytes, rebuilt only when the set changes.

use crate::crypto::{self, Alg, CryptoError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use josekit::jws::{JwsSigner, JwsVerifier};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use trusec_storage::audit::EventType;
use trusec_storage::key_lifecycle::KeyState;
use trusec_storage::signing_keys::{self, SigningKeyRow};
use trusec_storage::{Clock, Db, StorageError, ids};

/// Keys rotate by themselves this often.
pub const ROTATION_PERIOD: Duration = Duration::from_secs(90 * 86_400);
/// A kid we do not know triggers a reload at most this often.
const RELOAD_ON_MISS_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("no current signing key for {0}")]
    Missing(&'static str),
}

impl From<trusec_storage::sealed::SealError> for KeyError {
    fn from(e: trusec_storage::sealed::SealError) -> Self {
        Self::Crypto(e.into())
    }
}

/// One signing key in use.
pub struct ActiveSigner {
    pub kid: String,
    pub signer: Box<dyn JwsSigner>,
    /// The base64url JOSE header of an access token signed with this key
    /// (`typ: at+jwt`, RFC 9068 §2.1; `alg`, `kid`), made once per key
    /// rather than per token.
    pub access_token_header: String,
}

impl ActiveSigner {
    fn new(kid: String, signer: Box<dyn JwsSigner>) -> Result<Self, KeyError> {
        let header = serde_json::json!({
            "typ": "at+jwt",
            "alg": signer.algorithm().name(),
            "kid": kid,
        });
        let header = serde_json::to_vec(&header).map_err(StorageError::backend)?;
        Ok(Self {
            kid,
            signer,
            access_token_header: URL_SAFE_NO_PAD.encode(header),
        })
    }
}

/// The published keys as loaded at one moment.
pub struct KeySet {
    signers: HashMap<Alg, Arc<ActiveSigner>>,
    verifiers: HashMap<String, Arc<dyn JwsVerifier>>,
    /// `{"keys": [...]}`, ready to send.
    pub jwks: actix_web::web::Bytes,
}

impl KeySet {
    /// The signer of `alg`.
    ///
    /// # Errors
    /// `Missing` when the algorithm has no current key.
    pub fn signer(&self, alg: Alg) -> Result<Arc<ActiveSigner>, KeyError> {
        self.signers
            .get(&alg)
            .cloned()
            .ok_or(KeyError::Missing(alg.as_str()))
    }

    pub fn verifier(&self, kid: &str) -> Option<Arc<dyn JwsVerifier>> {
        self.verifiers.get(kid).cloned()
    }
}

/// The signing keys of one environment (each environment is its own
/// issuer, with keys of its own).
pub struct Keyring {
    db: Db,
    env: String,
    clock: Clock,
    master: secrecy::SecretBox<[u8; 32]>,
    /// Retired keys stay published this long: the longest token lifetime
    /// plus clock skew.
    publish_retired_for: Duration,
    set: RwLock<Arc<KeySet>>,
    last_reload_us: AtomicI64,
}

/// `trusec master-key rotate` re-seals these rows: storage owns the label.
fn kid_aad(kid: &str) -> Vec<u8> {
    trusec_storage::sealed::signing_key_aad(kid)
}

/// A new key of environment `env` and `alg` in `state`, its private part
/// sealed under `master`.
///
/// # Errors
/// Generation or sealing failures.
pub fn generate_row(
    env: &str,
    alg: Alg,
    state: KeyState,
    master: &[u8; 32],
    now: chrono::NaiveDateTime,
) -> Result<SigningKeyRow, KeyError> {
    let kid = ids::new_id(ids::SIGNING_KEY);
    let (pem, jwk) = crypto::generate(alg, &kid)?;
    let sealed = crypto::seal(master, &kid_aad(&kid), &pem)?;
    Ok(SigningKeyRow {
        id: kid,
        algorithm: alg,
        state,
        private_key: sealed,
        public_jwk: jwk.to_string(),
        created_at: now,
        activated_at: (state == KeyState::Current).then_some(now),
        retired_at: None,
        publish_until: None,
        environment_id: env.to_owned(),
    })
}

impl Keyring {
    /// Loads the keyring of environment `env`, creating the first keys of
    /// any algorithm that has none (first start only: a warm start
    /// generates nothing).
    ///
    /// # Errors
    /// Storage failures, or keys sealed under another master key.
    pub async fn open(
        db: Db,
        clock: Clock,
        master: secrecy::SecretBox<[u8; 32]>,
        publish_retired_for: Duration,
        env: &str,
    ) -> Result<Self, KeyError> {
        let ring = Self {
            db,
            env: env.to_owned(),
            clock,
            master,
            publish_retired_for,
            set: RwLock::new(Arc::new(KeySet {
                signers: HashMap::new(),
                verifiers: HashMap::new(),
                jwks: actix_web::web::Bytes::from_static(b"{\"keys\":[]}"),
            })),
            last_reload_us: AtomicI64::new(0),
        };
        let env = ring.env.clone();
        let have = ring
            .db
            .run(move |conn| signing_keys::algorithms_with_current(conn, &env))
            .await?;
        for &alg in Alg::ALL {
            if !have.contains(&alg) {
                let current = ring.new_key(alg, KeyState::Current).await?;
                let next = ring.new_key(alg, KeyState::Next).await?;
                ring.db
                    .run(move |conn| signing_keys::install_first(conn, &current, &next))
                    .await?;
            }
        }
        ring.reload().await?;
        Ok(ring)
    }

    fn master(&self) -> &[u8; 32] {
        secrecy::ExposeSecret::expose_secret(&self.master)
    }

    /// Generates and seals a key (off the async runtime: RSA takes a while).
    async fn new_key(&self, alg: Alg, state: KeyState) -> Result<SigningKeyRow, KeyError> {
        let master = *self.master();
        let (env, now) = (self.env.clone(), self.clock.now_naive());
        tokio::task::spawn_blocking(move || generate_row(&env, alg, state, &master, now))
            .await
            .map_err(StorageError::backend)?
    }

    /// The key set in force.
    pub fn keys(&self) -> Arc<KeySet> {
        self.set
            .read()
            .map_or_else(|p| p.into_inner().clone(), |s| s.clone())
    }

    /// Reads the published keys from the database and swaps them in.
    ///
    /// # Errors
    /// Storage failures, or a key that cannot be unsealed or parsed.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let (env, now) = (self.env.clone(), self.clock.now_naive());
        let rows = self
            .db
            .run(move |conn| signing_keys::published(conn, &env, now))
            .await?;
        let mut signers = HashMap::new();
        let mut verifiers: HashMap<String, Arc<dyn JwsVerifier>> = HashMap::new();
        let mut jwks = Vec::with_capacity(rows.len());
        for row in rows {
            let alg = row.algorithm;
            let jwk = Jwk::from_bytes(row.public_jwk.as_bytes()).map_err(CryptoError::from)?;
            verifiers.insert(row.id.clone(), Arc::from(crypto::verifier(alg, &jwk)?));
            if row.state == KeyState::Current {
                let pem = crypto::unseal(self.master(), &kid_aad(&row.id), &row.private_key)?;
                let signer = crypto::signer(alg, &pem, &row.id)?;
                signers.insert(alg, Arc::new(ActiveSigner::new(row.id.clone(), signer)?));
            }
            jwks.push(serde_json::Value::Object(jwk.as_ref().clone()));
        }
        let body = serde_json::to_vec(&serde_json::json!({ "keys": jwks }))
            .map_err(StorageError::backend)?;
        let set = Arc::new(KeySet {
            signers,
            verifiers,
            jwks: body.into(),
        });
        match self.set.write() {
            Ok(mut guard) => *guard = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        self.last_reload_us
            .store(self.clock.now().timestamp_micros(), Ordering::Relaxed);
        Ok(())
    }

    /// The verifier for `kid`, reloading once if it is unknown (a rotation
    /// made by another instance).
    pub async fn verifier(&self, kid: &str) -> Option<Arc<dyn JwsVerifier>> {
        if let Some(v) = self.keys().verifier(kid) {
            return Some(v);
        }
        let since =
            self.clock.now().timestamp_micros() - self.last_reload_us.load(Ordering::Relaxed);
        if since > i64::try_from(RELOAD_ON_MISS_EVERY.as_micros()).unwrap_or(i64::MAX) {
            if let Err(e) = self.reload().await {
                tracing::error!(error = %e, "could not reload signing keys");
            }
            return self.keys().verifier(kid);
        }
        None
    }

    /// Rotates every algorithm now (`POST /v1/signing-keys/rotate`), or only
    /// those whose current key is older than the rotation period.
    /// Returns the algorithms rotated.
    ///
    /// # Errors
    /// Storage or key generation failures.
    pub async fn rotate(&self, only_if_due: bool) -> Result<Vec<&'static str>, KeyError> {
        let now = self.clock.now_naive();
        let cutoff = only_if_due
            .then(|| now - chrono::TimeDelta::from_std(ROTATION_PERIOD).unwrap_or_default());
        let publish_until =
            now + chrono::TimeDelta::from_std(self.publish_retired_for).unwrap_or_default();
        let mut rotated = Vec::new();
        for &alg in Alg::ALL {
            if let Some(cutoff) = cutoff {
                let env = self.env.clone();
                let since = self
                    .db
                    .run(move |c| signing_keys::current_since(c, &env, alg))
                    .await?;
                if since.is_none_or(|t| t >= cutoff) {
                    continue;
                }
            }
            let next = self.new_key(alg, KeyState::Next).await?;
            let did = self
                .db
                .run(move |conn| signing_keys::rotate(conn, alg, &next, now, publish_until, cutoff))
                .await?;
            if did {
                rotated.push(alg.as_str());
            }
        }
        self.reload().await?;
        Ok(rotated)
    }

    /// One maintenance step (the server runs it once a minute for every
    /// kind of key): rotates the algorithms whose current key is due (any
    /// instance may; the rotation lock makes it happen once), audits that,
    /// and reloads what other instances did.
    pub async fn maintain(&self, core: &trusec_storage::Core) {
        match self.rotate(true).await {
            Ok(done) if !done.is_empty() => {
                tracing::info!(?done, "signing keys rotated on schedule");
                let event = trusec_storage::audit::NewAuditEvent::new(
                    EventType::SigningKeyRotated,
                    Some(&self.env),
                    trusec_storage::audit::Actor::system(),
                )
                .data(serde_json::json!({"algorithms": done, "reason": "schedule"}));
                if let Err(e) = core.audit(event).await {
                    tracing::error!(error = %e, "could not audit a scheduled key rotation");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "signing key maintenance failed"),
        }
    }
}
