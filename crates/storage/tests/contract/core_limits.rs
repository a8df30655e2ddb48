use crate::fresh_db;
use trusec_storage::audit::{self, Actor, AuditFilter, ClientInfo, EventType, NewAuditEvent};
use trusec_storage::rate_limit::{Family, Limit, RateLimits, Subject};
use trusec_storage::{Clock, Core, EphemeralStore, PageRequest, ids};
use trusec_testdb::{Backend, on_every_backend};

/// Redis under a fresh prefix when the backend has it, else the in-process
/// store.
async fn fresh_store(backend: &Backend) -> EphemeralStore {
    match Backend::redis_url().filter(|_| backend.has_redis()) {
        Some(url) => EphemeralStore::redis(&url, &format!("trusec-test:{}:", ulid::Ulid::new()))
            .await
            .unwrap(),
        None => EphemeralStore::memory(Clock::System),
    }
}

on_every_backend!(one_limiter_counts_audits_once_and_scales_per_ip);

/// `Core::limit` is the one rate limiter of every surface: a caller's budget
/// is the configured limit, an IP's is ten callers' worth on the machine
/// surfaces, a refusal is counted in metrics on each refusal and audited
/// once per client address, family and minute, and a switched-off family
/// never refuses.
async fn one_limiter_counts_audits_once_and_scales_per_ip(backend: Backend) {
    let (_test_db, db) = fresh_db(&backend);
    let store = fresh_store(&backend).await;
    let (log, writer) = audit::AuditLog::start(
        db.clone(),
        Clock::System,
        audit::AuditKey::derive(&[3; 32]).unwrap(),
    );
    let limits = RateLimits {
        token: Limit::parse("2/min").unwrap(),
        ..RateLimits::default()
    };
    let core = Core::new(db.clone(), store, Clock::System, log, limits, hash_pool());
    let client = ClientInfo {
        ip: Some("192.0.2.7".into()),
        user_agent: None,
    };
    let refusal = || {
        NewAuditEvent::new(
            EventType::RateLimitExceeded,
            Some(ids::ENV_LIVE),
            Actor::oauth_client("client_x"),
        )
        .client(&client)
    };
    let mut verdicts = Vec::new();
    for _ in 0..4 {
        let v = core
            .limit(Family::Token, Subject::Caller("client_x"), refusal)
            .await;
        verdicts.push(v.map_err(|l| l.retry_after_secs()));
    }
    let (allowed, refused) = verdicts.split_at(2);
    assert!(allowed.iter().all(Result::is_ok), "{verdicts:?}");
    for refused in refused {
        let secs = refused.unwrap_err();
        assert!((1..=60).contains(&secs), "{secs}");
    }
    // Ten callers' worth per IP.
    let mut allowed = 0;
    for _ in 0..25 {
        if core
            .limit(Family::Token, Subject::Ip(Some("192.0.2.7")), refusal)
            .await
            .is_ok()
        {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 20);
    // Login is switched off here: never refused.
    for _ in 0..10 {
        assert!(
            core.limit(Family::Login, Subject::Ip(Some("192.0.2.7")), refusal)
                .await
                .is_ok()
        );
    }
    let metrics = core.metrics().encode().unwrap();
    assert!(
        metrics.contains(r#"trusec_rate_limited_total{family="token"} 7"#),
        "{metrics}"
    );
    drop(core);
    writer.await.unwrap();
    let filter = AuditFilter {
        outcome: None,
        event_type: Some(EventType::RateLimitExceeded),
        ..AuditFilter::default()
    };
    let page = PageRequest {
        limit: 10,
        after: None,
    };
    let events = db
        .run(move |c| audit::list(c, ids::ENV_LIVE, &filter, &page))
        .await
        .unwrap();
    // The caller's and the IP's budgets were refused from one address in
    // one minute: audited once.
    assert_eq!(events.data.len(), 1);
    assert!(
        events
            .data
            .iter()
            .all(|e| e.outcome.as_str() == "failure" && e.ip.as_deref() == Some("192.0.2.7"))
    );
}

on_every_backend!(reserve_is_all_or_none_and_refund_gives_a_step_back);

/// Limits that count failures only: `reserve` takes a step of every budget
/// or of none (a refusal gives back what it took), and `refund` returns the
/// step of an attempt that succeeded, on both stores.
async fn reserve_is_all_or_none_and_refund_gives_a_step_back(backend: Backend) {
    let (_test_db, db) = fresh_db(&backend);
    let store = fresh_store(&backend).await;
    let (log, _writer) = audit::AuditLog::start(
        db.clone(),
        Clock::System,
        audit::AuditKey::derive(&[3; 32]).unwrap(),
    );
    let limits = RateLimits {
        login: Limit::parse("2/min").unwrap(),
        ..RateLimits::default()
    };
    let core = Core::new(db, store, Clock::System, log, limits, hash_pool());
    let refusal = || NewAuditEvent::new(EventType::RateLimitExceeded, None, Actor::anonymous());
    let at = |ip| Subject::AccountAtIp {
        environment: ids::ENV_LIVE,
        email: "ada@example.com",
        ip: Some(ip),
    };
    let account = Subject::Account {
        environment: ids::ENV_LIVE,
        email: "ada@example.com",
    };
    let from_a = [at("192.0.2.1"), account];
    // Successes give their step back: any number of them fits.
    for _ in 0..5 {
        core.reserve(Family::Login, &from_a, refusal).await.unwrap();
        core.refund(Family::Login, &from_a).await;
    }
    // Two failures spend the (account, IP) budget, not the account's ceiling
    // (ten addresses' worth).
    for _ in 0..2 {
        core.reserve(Family::Login, &from_a, refusal).await.unwrap();
    }
    assert!(core.reserve(Family::Login, &from_a, refusal).await.is_err());
    // Another address still has its budget.
    let from_b = [at("192.0.2.2"), account];
    core.reserve(Family::Login, &from_b, refusal).await.unwrap();
    core.refund(Family::Login, &from_b).await;
    // A refund makes room for exactly one more.
    core.refund(Family::Login, &from_a[..1]).await;
    core.reserve(Family::Login, &from_a, refusal).await.unwrap();
    assert!(core.reserve(Family::Login, &from_a, refusal).await.is_err());
    // All or none: a refusal of the second budget gives back the first.
    let ceiling = [at("192.0.2.3"), Subject::Caller("exhausted")];
    for _ in 0..2 {
        core.limit(Family::Login, Subject::Caller("exhausted"), refusal)
            .await
            .unwrap();
    }
    for _ in 0..3 {
        assert!(
            core.reserve(Family::Login, &ceiling, refusal)
                .await
                .is_err()
        );
    }
    core.limit(Family::Login, at("192.0.2.3"), refusal)
        .await
        .unwrap();
    core.limit(Family::Login, at("192.0.2.3"), refusal)
        .await
        .unwrap();
}

fn hash_pool() -> trusec_storage::hashing::HashPool {
    trusec_storage::hashing::HashPool::start(trusec_storage::hashing::PasswordHashing {
        threads: 1,
        queue: 16,
    })
    .unwrap()
}

/// Issue #12: with Redis gone, rate limits are kept per instance (a limit
/// still bites), counted in `trusec_rate_limiter_unavailable_total`; when
/// Redis is back, the shared budgets are used again without a restart.
#[tokio::test]
async fn limits_hold_per_instance_while_redis_is_down() {
    if std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(std::env::var_os("CI").is_none(), "CI needs redis-server");
        eprintln!("skipped: no redis-server here");
        return;
    }
    let Some(mut redis) = trusec_testdb::OwnRedis::start() else {
        return;
    };
    let (_test_db, db) = fresh_db(&Backend::Sqlite);
    let store = EphemeralStore::redis(&redis.url(), "trusec-test:")
        .await
        .unwrap();
    let (log, _writer) = audit::AuditLog::start(
        db.clone(),
        Clock::System,
        audit::AuditKey::derive(&[3; 32]).unwrap(),
    );
    let limits = RateLimits {
        token: Limit::parse("2/min").unwrap(),
        ..RateLimits::default()
    };
    let core = Core::new(db, store, Clock::System, log, limits, hash_pool());
    let refusal = || NewAuditEvent::new(EventType::RateLimitExceeded, None, Actor::anonymous());
    let step = |caller: &'static str| {
        let core = core.clone();
        async move {
            core.limit(Family::Token, Subject::Caller(caller), refusal)
                .await
                .is_ok()
        }
    };
    assert!(step("client_a").await);
    redis.down();
    // The budget starts afresh in this process: two, then refused.
    let down: Vec<bool> = [
        step("client_b").await,
        step("client_b").await,
        step("client_b").await,
    ]
    .into();
    assert_eq!(down, [true, true, false]);
    let metrics = core.metrics().encode().unwrap();
    assert!(
        metrics.contains("trusec_rate_limiter_unavailable_total{family=\"token\"} 3"),
        "{metrics}"
    );
    // Back: the shared store answers again (a fresh, empty Redis), with no
    // restart of ours.
    redis.up();
    let mut back = false;
    for _ in 0..100 {
        if core.store.ping().await.is_ok() {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(back, "the store reconnects by itself");
    let up: Vec<bool> = [
        step("client_c").await,
        step("client_c").await,
        step("client_c").await,
    ]
    .into();
    assert_eq!(up, [true, true, false]);
    let metrics = core.metrics().encode().unwrap();
    assert!(
        metrics.contains("trusec_rate_limiter_unavailable_total{family=\"token\"} 3"),
        "no more store failures once it is back: {metrics}"
    );
}
