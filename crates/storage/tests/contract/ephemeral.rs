use chrono::TimeDelta;
use std::time::Duration;
use trusec_storage::StoreKey;
use trusec_storage::rate_limit::{Decision, Limit};
use trusec_storage::rate_limit::{Family, Subject};
use trusec_storage::{Clock, EphemeralStore};
use trusec_testdb::{Backend, fake_clock};

/// The in-process store, and Redis under a fresh prefix when configured.
async fn stores() -> Vec<(EphemeralStore, Clock)> {
    let clock = fake_clock();
    let mut stores = vec![(EphemeralStore::memory(clock.clone()), clock)];
    match Backend::redis_url() {
        Some(url) => {
            let prefix = format!("trusec-test:{}:", ulid::Ulid::new());
            stores.push((
                EphemeralStore::redis(&url, &prefix).await.unwrap(),
                Clock::System,
            ));
        }
        None => eprintln!("skipped Redis: TRUSEC_TEST_REDIS_URL is not set"),
    }
    stores
}

#[tokio::test]
async fn put_get_take_delete() {
    for (store, _) in stores().await {
        let name = store.backend_name();
        store
            .put(&StoreKey::code("a"), b"1", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            store.get(&StoreKey::code("a")).await.unwrap(),
            Some(b"1".to_vec()),
            "{name}"
        );
        assert_eq!(
            store.take(&StoreKey::code("a")).await.unwrap(),
            Some(b"1".to_vec()),
            "{name}"
        );
        assert_eq!(
            store.take(&StoreKey::code("a")).await.unwrap(),
            None,
            "{name}: single use"
        );
        assert!(
            store
                .put_if_absent(&StoreKey::interaction("b"), b"x", Duration::from_secs(60))
                .await
                .unwrap()
        );
        assert!(
            !store
                .put_if_absent(&StoreKey::interaction("b"), b"y", Duration::from_secs(60))
                .await
                .unwrap(),
            "{name}"
        );
        assert_eq!(
            store.get(&StoreKey::interaction("b")).await.unwrap(),
            Some(b"x".to_vec())
        );
        store
            .delete(&[StoreKey::interaction("b"), StoreKey::interaction("missing")])
            .await
            .unwrap();
        assert_eq!(
            store.get(&StoreKey::interaction("b")).await.unwrap(),
            None,
            "{name}"
        );
        store.ping().await.unwrap();
    }
}

#[tokio::test]
async fn take_is_atomic_under_concurrency() {
    for (store, _) in stores().await {
        store
            .put(&StoreKey::code("once"), b"once", Duration::from_secs(60))
            .await
            .unwrap();
        let takers: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.take(&StoreKey::code("once")).await.unwrap() })
            })
            .collect();
        let mut winners = 0;
        for t in takers {
            if t.await.unwrap().is_some() {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "{}", store.backend_name());
    }
}

#[tokio::test]
async fn memory_entries_expire_with_the_clock() {
    let clock = fake_clock();
    let store = EphemeralStore::memory(clock.clone());
    store
        .put(&StoreKey::logout_intent("k"), b"v", Duration::from_secs(30))
        .await
        .unwrap();
    clock.advance(TimeDelta::seconds(29));
    assert!(
        store
            .get(&StoreKey::logout_intent("k"))
            .await
            .unwrap()
            .is_some()
    );
    clock.advance(TimeDelta::seconds(1));
    assert!(
        store
            .get(&StoreKey::logout_intent("k"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn rate_limits_admit_the_burst_then_refuse() {
    for (store, clock) in stores().await {
        let limit = Limit::parse("5/min").unwrap().unwrap();
        for _ in 0..5 {
            assert!(matches!(
                store
                    .rate_limit(
                        &StoreKey::rate_limit(Family::Login, &Subject::Caller("rl")),
                        &limit
                    )
                    .await
                    .unwrap(),
                Decision::Allowed { .. }
            ));
        }
        match store
            .rate_limit(
                &StoreKey::rate_limit(Family::Login, &Subject::Caller("rl")),
                &limit,
            )
            .await
            .unwrap()
        {
            Decision::Limited { retry_after } => {
                assert!(
                    retry_after > Duration::ZERO && retry_after <= Duration::from_secs(12),
                    "{retry_after:?}"
                );
            }
            other => panic!(
                "{}: expected a refusal, got {other:?}",
                store.backend_name()
            ),
        }
        // Keys are independent.
        assert!(matches!(
            store
                .rate_limit(
                    &StoreKey::rate_limit(Family::Login, &Subject::Caller("other")),
                    &limit
                )
                .await
                .unwrap(),
            Decision::Allowed { .. }
        ));
        // With the fake clock, one interval later one more request fits.
        if let Clock::Fake(_) = clock {
            clock.advance(TimeDelta::seconds(12));
            assert!(matches!(
                store
                    .rate_limit(
                        &StoreKey::rate_limit(Family::Login, &Subject::Caller("rl")),
                        &limit
                    )
                    .await
                    .unwrap(),
                Decision::Allowed { .. }
            ));
        }
    }
}
