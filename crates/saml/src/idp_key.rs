//! The IdP's signing key: RSA-2048 with a self-signed X.509 certificate,
//! made on first start, its private part sealed under the master key.

use chrono::NaiveDateTime;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509, X509NameBuilder};
use trusec_storage::key_lifecycle::KeyState;
use trusec_storage::service_providers::{self, IdpKeyRow};
use trusec_storage::{Clock, Db, StorageError, ids, sealed};

const VALID_DAYS: u32 = 3650;

#[derive(Debug, thiserror::Error)]
pub enum IdpKeyError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error(transparent)]
    Sealed(#[from] sealed::SealError),
    #[error("no current SAML signing key")]
    Missing,
}

/// The key that signs assertions, ready to use.
pub struct IdpKey {
    pub id: String,
    /// PKCS#1 DER, what xmlsec's signer takes.
    pub private_der: Vec<u8>,
    pub certificate_der: Vec<u8>,
    pub certificate_pem: String,
    /// Certificates to publish: the current one first, then any next one.
    pub published_pem: Vec<String>,
}

/// `trusec master-key rotate` re-seals these rows: storage owns the label.
fn aad(id: &str) -> Vec<u8> {
    sealed::saml_idp_key_aad(id)
}

/// A new key and certificate of environment `env` for `common_name` (its
/// issuer), sealed.
///
/// # Errors
/// OpenSSL or sealing failures.
pub fn generate(
    env: &str,
    common_name: &str,
    master: &[u8; 32],
    now: NaiveDateTime,
) -> Result<IdpKeyRow, IdpKeyError> {
    let rsa = Rsa::generate(2048)?;
    let pkey: PKey<Private> = PKey::from_rsa(rsa.clone())?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", common_name)?;
    name.append_entry_by_text("O", "TruSec")?;
    let name = name.build();
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(&pkey)?;
    let not_before = Asn1Time::from_unix(now.and_utc().timestamp())?;
    builder.set_not_before(&not_before)?;
    let not_after = Asn1Time::days_from_now(VALID_DAYS)?;
    builder.set_not_after(&not_after)?;
    builder.sign(&pkey, MessageDigest::sha256())?;
    let cert = builder.build();
    let id = ids::new_id(ids::SAML_KEY);
    Ok(IdpKeyRow {
        private_key: sealed::seal(master, &aad(&id), &rsa.private_key_to_der()?)?,
        certificate_pem: String::from_utf8_lossy(&cert.to_pem()?).into_owned(),
        id,
        state: KeyState::Current,
        created_at: now,
        not_after: now + chrono::TimeDelta::days(i64::from(VALID_DAYS)),
        environment_id: env.to_owned(),
    })
}

/// The IdP key of one environment in force, swapped when a rotation is seen.
pub struct IdpKeys {
    db: Db,
    env: String,
    master: [u8; 32],
    common_name: String,
    clock: Clock,
    key: std::sync::RwLock<std::sync::Arc<IdpKey>>,
}

impl IdpKeys {
    /// Loads (or, on first start, creates) the key of environment `env`.
    ///
    /// # Errors
    /// As [`open`].
    pub async fn open(
        db: Db,
        clock: Clock,
        master: [u8; 32],
        env: &str,
        common_name: &str,
    ) -> Result<Self, IdpKeyError> {
        let key = open(&db, &clock, &master, env, common_name).await?;
        Ok(Self {
            db,
            env: env.to_owned(),
            master,
            common_name: common_name.to_owned(),
            clock,
            key: std::sync::RwLock::new(std::sync::Arc::new(key)),
        })
    }

    /// The key that signs now.
    pub fn current(&self) -> std::sync::Arc<IdpKey> {
        self.key
            .read()
            .map_or_else(|p| p.into_inner().clone(), |k| k.clone())
    }

    /// Re-reads the keys (another instance may have rotated them).
    ///
    /// # Errors
    /// As [`open`].
    pub async fn reload(&self) -> Result<(), IdpKeyError> {
        let key = std::sync::Arc::new(
            open(
                &self.db,
                &self.clock,
                &self.master,
                &self.env,
                &self.common_name,
            )
            .await?,
        );
        match self.key.write() {
            Ok(mut k) => *k = key,
            Err(p) => *p.into_inner() = key,
        }
        Ok(())
    }

    /// One rotation step: announce a next certificate (published in
    /// metadata, not yet signing) or, when one is announced, switch to it.
    /// SPs that refresh metadata between the two steps never see a gap.
    ///
    /// # Errors
    /// Generation or storage failures.
    pub async fn rotate(&self) -> Result<&'static str, IdpKeyError> {
        let (master, env, cn, now) = (
            self.master,
            self.env.clone(),
            self.common_name.clone(),
            self.clock.now_naive(),
        );
        let row = tokio::task::spawn_blocking(move || generate(&env, &cn, &master, now))
            .await
            .map_err(StorageError::backend)??;
        let step = self
            .db
            .run(move |conn| service_providers::rotate_idp_key(conn, &row))
            .await?;
        self.reload().await?;
        Ok(step)
    }
}

/// Loads the IdP key of environment `env`, creating it on first start
/// (never on a warm start).
///
/// # Errors
/// Storage failures, or a key sealed under another master key.
pub async fn open(
    db: &Db,
    clock: &Clock,
    master: &[u8; 32],
    env: &str,
    common_name: &str,
) -> Result<IdpKey, IdpKeyError> {
    let load = || {
        let env = env.to_owned();
        db.run(move |conn| service_providers::idp_keys(conn, &env))
    };
    let mut rows = load().await?;
    if !rows.iter().any(|r| r.state == KeyState::Current) {
        let (master_copy, env, cn, now) = (
            *master,
            env.to_owned(),
            common_name.to_owned(),
            clock.now_naive(),
        );
        let row = tokio::task::spawn_blocking(move || generate(&env, &cn, &master_copy, now))
            .await
            .map_err(StorageError::backend)??;
        db.run(move |conn| service_providers::install_first_idp_key(conn, &row))
            .await?;
        rows = load().await?;
    }
    let current = rows
        .iter()
        .find(|r| r.state == KeyState::Current)
        .ok_or(IdpKeyError::Missing)?;
    let private_der = sealed::unseal(master, &aad(&current.id), &current.private_key)?;
    let cert = X509::from_pem(current.certificate_pem.as_bytes())?;
    Ok(IdpKey {
        id: current.id.clone(),
        private_der,
        certificate_der: cert.to_der()?,
        certificate_pem: current.certificate_pem.clone(),
        published_pem: rows.iter().map(|r| r.certificate_pem.clone()).collect(),
    })
}

/// The base64 body of a PEM certificate (for `ds:X509Certificate`).
pub fn pem_body(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat()
}
