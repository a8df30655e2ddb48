//! Where SAML's XML work runs: parsing messages, checking signatures,
//! signing responses and metadata. That work is synchronous C (libxml2,
//! xmlsec) and, on a hostile message, the slowest thing the IdP does, so it
//! never runs on an async worker: it runs on the blocking pool, at most
//! `concurrency` jobs at once, and a caller waits a bounded time for a slot
//! and for its job. A flood of messages then costs the SAML endpoints a
//! "busy" page (503), never the rest of the server its workers.
//!
//! The first job also switches off every URI resolver in libxml2 and
//! xmlsec (`trusec_xmlsec_io::lock_down`): no XML this process handles can
//! make it read a file or fetch a URL.

use samael::crypto::{CertificateDer, Crypto, CryptoProvider};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Why a job did not run to its end.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    #[error("no XML worker became free within {0:?}")]
    Queue(Duration),
    #[error("an XML job took longer than {0:?}")]
    TooSlow(Duration),
    #[error("the XML worker stopped")]
    Stopped,
    #[error("libxml2 and xmlsec could not be locked down")]
    Unsafe,
}

/// The bounded XML pool. Cheap to clone.
#[derive(Clone, Debug)]
pub struct XmlWork {
    permits: Arc<Semaphore>,
    queue_wait: Duration,
    job_limit: Duration,
}

impl XmlWork {
    /// A pool of `concurrency` jobs (at least one).
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            queue_wait: Duration::from_secs(2),
            job_limit: Duration::from_secs(5),
        }
    }

    /// One job per core: XML work is CPU-bound.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, usize::from))
    }

    /// Runs `job` on the blocking pool once a slot is free. The slot stays
    /// taken until the job ends, even when the caller stopped waiting for
    /// it, so slow jobs cannot pile up beyond the bound.
    ///
    /// # Errors
    /// [`Busy`] when no slot came free in time, the job outlived its limit,
    /// or the lock-down failed (then nothing runs at all).
    pub async fn run<T, F>(&self, job: F) -> Result<T, Busy>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = tokio::time::timeout(self.queue_wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| Busy::Queue(self.queue_wait))?
            .map_err(|_| Busy::Stopped)?;
        let task = tokio::task::spawn_blocking(move || {
            let _slot = permit;
            locked_down().map(|()| job())
        });
        match tokio::time::timeout(self.job_limit, task).await {
            Err(_) => Err(Busy::TooSlow(self.job_limit)),
            Ok(Err(_)) => Err(Busy::Stopped),
            Ok(Ok(outcome)) => outcome,
        }
    }
}

/// Initialises xmlsec (samael does that on its first key load) and then
/// removes every URI resolver, once per process, before any job runs.
pub fn locked_down() -> Result<(), Busy> {
    static DONE: std::sync::OnceLock<Result<(), Busy>> = std::sync::OnceLock::new();
    *DONE.get_or_init(|| {
        // Loading a key makes samael run `xmlSecInit`, which fills xmlsec's
        // IO table: it must run before the table is emptied, or it would
        // refill it later. A throwaway certificate loads quietly (the
        // document has no signature to check); should making one fail, an
        // empty one still initialises xmlsec, with a line of noise on stderr.
        let der = throwaway_certificate().unwrap_or_default();
        let _ = Crypto::verify_signed_xml("<x/>", &CertificateDer::from(der), None);
        trusec_xmlsec_io::lock_down().map_err(|e| {
            tracing::error!(error = %e, "XML is refused: the URI resolvers could not be switched off");
            Busy::Unsafe
        })
    })
}

/// A self-signed P-256 certificate, DER (cheap to make, unlike RSA).
fn throwaway_certificate() -> Result<Vec<u8>, openssl::error::ErrorStack> {
    use openssl::{asn1::Asn1Time, ec, hash::MessageDigest, nid::Nid, pkey::PKey, x509};
    let group = ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(ec::EcKey::generate(&group)?)?;
    let mut name = x509::X509NameBuilder::new()?;
    name.append_entry_by_text("CN", "xmlsec init")?;
    let name = name.build();
    let mut cert = x509::X509::builder()?;
    cert.set_subject_name(&name)?;
    cert.set_issuer_name(&name)?;
    cert.set_pubkey(&key)?;
    cert.set_not_before(Asn1Time::days_from_now(0)?.as_ref())?;
    cert.set_not_after(Asn1Time::days_from_now(1)?.as_ref())?;
    cert.sign(&key, MessageDigest::sha256())?;
    cert.build().to_der()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[tokio::test]
    async fn jobs_beyond_the_bound_wait_then_are_turned_away() {
        let mut work = XmlWork::new(1);
        work.queue_wait = Duration::from_millis(50);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let first = {
            let work = work.clone();
            tokio::spawn(async move { work.run(move || rx.recv().is_ok()).await })
        };
        // Let the first job take the only slot.
        while work.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            work.run(|| ()).await,
            Err(Busy::Queue(Duration::from_millis(50)))
        );
        tx.send(()).ok();
        assert_eq!(first.await.ok(), Some(Ok(true)));
        assert_eq!(work.run(|| 7).await, Ok(7));
    }

    /// The second wall, without the first: samael's own verifier, given a
    /// reference to a local listener, opens no connection once the pool has
    /// locked libxml2 and xmlsec down (before, xmlsec fetched it).
    #[tokio::test]
    async fn xmlsec_fetches_nothing_after_the_lock_down() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let xml = format!(
            r##"<r ID="_a"><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="http://127.0.0.1:{port}/x"><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>AA==</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>AA==</ds:SignatureValue></ds:Signature></r>"##
        );
        let cert = crate::test_support::sp_certificate_der();
        let verified = XmlWork::new(1)
            .run(move || {
                samael::crypto::Crypto::reduce_xml_to_signed(
                    &xml,
                    &[CertificateDer::from(cert)],
                    samael::crypto::ReduceMode::ValidateAndMarkNoAncestors,
                )
                .is_ok()
            })
            .await;
        assert_eq!(verified, Ok(false));
        assert!(
            matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "xmlsec connected to the reference's URL"
        );
    }
}
