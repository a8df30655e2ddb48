use trusec_testdb::{Backend, TestDb, on_every_backend};

on_every_backend!(up_down_up);

/// Reverts the newest migrations down to and including `name` (a
/// migration directory's name); returns how many, for the `migrate` that
/// runs them again. Tests of one migration's expand step use it, so a
/// later migration does not shift their counts.
fn revert_through(db: &trusec_storage::Db, name: &str) -> usize {
    let version: String = name
        .split('_')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let mut reverted = 0;
    loop {
        reverted += 1;
        assert!(reverted <= 100, "{name} was never reverted");
        let last: String = db
            .revert_last()
            .unwrap()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        if last == version {
            return reverted;
        }
    }
}

async fn up_down_up(backend: Backend) {
    let test_db = TestDb::for_backend(&backend);
    let db = test_db.connect();
    let ran = db.migrate().unwrap();
    assert!(ran >= 1);
    assert_eq!(db.migrate().unwrap(), 0, "a second run has nothing to do");
    assert_eq!(db.revert_all().unwrap(), ran);
    assert_eq!(db.migrate().unwrap(), ran);
}

#[test]
fn both_trees_hold_the_same_migrations() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let names = |dir: &str| {
        let mut v: Vec<String> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("postgres"));
    for name in &sqlite {
        for tree in ["sqlite", "postgres"] {
            for file in ["up.sql", "down.sql"] {
                assert!(
                    root.join(tree).join(name).join(file).is_file(),
                    "{tree}/{name}/{file}"
                );
            }
        }
    }
}

on_every_backend!(
    sp_flags_expand_keeps_old_writers_in_step,
    refresh_lifecycle_expand_keeps_existing_families_working,
    client_auth_expand_enforces_only_chosen_methods,
);

/// `2026-12-02-100000_oauth_client_auth_and_resource_server`: clients made
/// through `/v1` before it never chose a `token_endpoint_auth_method` (it
/// took a default), so it is not enforced for them; RFC 7591 registrations
/// always chose. Nobody is a resource server.
async fn client_auth_expand_enforces_only_chosen_methods(backend: Backend) {
    use trusec_storage::clients::{self, AuthMethod, ClientType, RegisteredBy};
    use trusec_storage::{Clock, StorageError, ids};

    let (_test_db, db) = crate::fresh_db(&backend);
    let now = Clock::System.now_naive();
    let confidential = |by: RegisteredBy| clients::NewClient {
        client_type: ClientType::Confidential,
        secret_hash: Some("hash".to_owned()),
        token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
        registered_by: by,
        resource_server: true,
        ..crate::clients::new_client()
    };
    let (by_v1, by_rfc7591) = db
        .run(move |c| {
            let v1 = clients::insert(c, confidential(RegisteredBy::ManagementApi), now)?;
            let rfc = clients::insert(c, confidential(RegisteredBy::ApiKey), now)?;
            Ok::<_, StorageError>((v1.id, rfc.id))
        })
        .await
        .unwrap();
    let reverted = revert_through(
        &db,
        "2026-12-02-100000_oauth_client_auth_and_resource_server",
    );
    assert_eq!(db.migrate().unwrap(), reverted);
    let get = |id: String| {
        let db = db.clone();
        async move {
            db.run(move |c| clients::get(c, ids::ENV_LIVE, &id))
                .await
                .unwrap()
        }
    };
    let (v1, rfc) = (get(by_v1).await, get(by_rfc7591).await);
    assert!(v1.accepts(AuthMethod::ClientSecretPost) && v1.accepts(AuthMethod::ClientSecretBasic));
    assert!(
        !rfc.accepts(AuthMethod::ClientSecretPost) && rfc.accepts(AuthMethod::ClientSecretBasic)
    );
    assert!(!v1.resource_server && !rfc.resource_server);
}

/// `2026-12-01-000000_sp_flags_boolean`: the BOOLEAN flag columns follow
/// the BIGINT ones that an instance of the previous release writes, and
/// down → up fills them again from those.
async fn sp_flags_expand_keeps_old_writers_in_step(backend: Backend) {
    use diesel::prelude::*;
    use trusec_storage::schema::saml_service_providers as t;
    use trusec_storage::service_providers;
    use trusec_storage::{StorageError, ids};

    let (_test_db, db) = crate::fresh_db(&backend);
    let id = crate::service_providers::insert(&db, "https://sp.test").await;
    let flags = |id: &str| {
        let (db, id) = (db.clone(), id.to_owned());
        async move {
            db.run(move |c| service_providers::get(c, ids::ENV_LIVE, &id))
                .await
                .map(|sp| {
                    (
                        sp.sign_response,
                        sp.sign_assertion,
                        sp.want_authn_requests_signed,
                    )
                })
        }
    };
    assert_eq!(flags(&id).await.unwrap(), (false, true, false));
    let old_columns = |id: &str| {
        let (db, id) = (db.clone(), id.to_owned());
        async move {
            db.run(move |c| {
                t::table
                    .filter(t::id.eq(&id))
                    .select((
                        t::sign_response,
                        t::sign_assertion,
                        t::want_authn_requests_signed,
                    ))
                    .first::<(i64, i64, i64)>(c)
                    .map_err(StorageError::from)
            })
            .await
            .unwrap()
        }
    };
    assert_eq!(old_columns(&id).await, (0, 1, 0), "new code writes both");

    // The previous release updates and inserts through the BIGINT columns only.
    let updated = id.clone();
    db.run(move |c| {
        diesel::update(t::table.filter(t::id.eq(&updated)))
            .set((
                t::sign_response.eq(1i64),
                t::want_authn_requests_signed.eq(1i64),
            ))
            .execute(c)
            .map_err(StorageError::from)
    })
    .await
    .unwrap();
    assert_eq!(flags(&id).await.unwrap(), (true, true, true));
    db.run(|c| {
        let now = chrono::NaiveDateTime::default();
        diesel::insert_into(t::table)
            .values((
                t::id.eq("sp_old"),
                t::environment_id.eq(ids::ENV_LIVE),
                t::entity_id.eq("https://old.test"),
                t::name.eq("old"),
                t::acs_endpoints.eq("[]"),
                t::slo_endpoints.eq("[]"),
                t::name_id_format.eq("persistent"),
                t::attributes.eq("{}"),
                t::sign_response.eq(0i64),
                t::sign_assertion.eq(1i64),
                t::want_authn_requests_signed.eq(1i64),
                t::created_at.eq(now),
                t::updated_at.eq(now),
            ))
            .execute(c)
            .map_err(StorageError::from)
    })
    .await
    .unwrap();
    assert_eq!(flags("sp_old").await.unwrap(), (false, true, true));

    // Down drops the new columns (this version can no longer read the
    // row) and keeps the old ones; up fills the new ones from them again.
    // (Later migrations are reverted first, down to this one.)
    let mut reverted = 0;
    while flags(&id).await.is_ok() {
        db.revert_last().unwrap();
        reverted += 1;
        assert!(reverted < 10, "the sp_flags migration never reverted");
    }
    assert_eq!(old_columns(&id).await, (1, 1, 1));
    assert_eq!(db.migrate().unwrap(), reverted);
    assert_eq!(flags(&id).await.unwrap(), (true, true, true));
    assert_eq!(flags("sp_old").await.unwrap(), (false, true, true));
}

on_every_backend!(environment_keys_keep_existing_keys_live);

/// `2026-12-02-000000_environment_keys`: the JWT and SAML keys a deployment
/// had before each environment got its own are live's afterwards (same
/// `kid`s, same certificate), and no other environment sees them.
async fn environment_keys_keep_existing_keys_live(backend: Backend) {
    use diesel::prelude::*;
    use trusec_storage::{StorageError, ids, service_providers, signing_keys};

    let (_test_db, db) = crate::fresh_db(&backend);
    let reverted = revert_through(&db, "2026-12-02-000000_environment_keys");
    // Written as the previous release did, without the column.
    db.run(|c| {
        diesel::sql_query(
            "INSERT INTO signing_keys (id, algorithm, state, private_key, public_jwk, created_at) \
             VALUES ('sig_old', 'ES256', 'current', 'sealed', '{}', CURRENT_TIMESTAMP)",
        )
        .execute(c)?;
        diesel::sql_query(
            "INSERT INTO saml_idp_keys (id, state, private_key, certificate_pem, created_at, not_after) \
             VALUES ('samlkey_old', 'current', 'sealed', 'PEM', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        )
        .execute(c)
        .map_err(StorageError::from)
    })
    .await
    .unwrap();
    assert_eq!(db.migrate().unwrap(), reverted);
    let now = chrono::NaiveDateTime::default();
    let jwt = |env: &'static str| {
        let db = db.clone();
        async move {
            db.run(move |c| signing_keys::published(c, env, now))
                .await
                .unwrap()
                .into_iter()
                .map(|k| k.id)
                .collect::<Vec<_>>()
        }
    };
    let saml = |env: &'static str| {
        let db = db.clone();
        async move {
            db.run(move |c| service_providers::idp_keys(c, env))
                .await
                .unwrap()
                .into_iter()
                .map(|k| k.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(jwt(ids::ENV_LIVE).await, ["sig_old"]);
    assert!(jwt(ids::ENV_TEST).await.is_empty());
    assert_eq!(saml(ids::ENV_LIVE).await, ["samlkey_old"]);
    assert!(saml(ids::ENV_TEST).await.is_empty());
}

/// `2026-12-02-000001_refresh_token_lifecycle`: families issued before it
/// are bound to no session, keep the `offline_access` their scope says, and
/// end 90 days after they started — or 90 days from the upgrade when that
/// is already past; rows the previous release writes afterwards get the
/// defaults, and their lifetime counts from their own creation.
async fn refresh_lifecycle_expand_keeps_existing_families_working(backend: Backend) {
    use chrono::{NaiveDateTime, TimeDelta};
    use diesel::prelude::*;
    use trusec_storage::refresh_tokens::{self, RefreshRow};
    use trusec_storage::schema::refresh_tokens as t;
    use trusec_storage::{Clock, StorageError, clients, ids, users};

    let (_test_db, db) = crate::fresh_db(&backend);
    let now = Clock::System.now_naive();
    // The client and user are written by this release, before the rollback:
    // the migrations rolled back below change neither in a way they need.
    let (client, user) = db
        .run(move |c| {
            let client = clients::insert(c, crate::clients::new_client(), now)?;
            let new_user = users::NewUser {
                environment_id: ids::ENV_LIVE.to_owned(),
                email: "old@example.com".to_owned(),
                password_hash: None,
                name: None,
                given_name: None,
                family_name: None,
                groups: Vec::new(),
                metadata: serde_json::json!({}),
            };
            Ok::<_, StorageError>((client.id, users::insert(c, new_user, now)?.id))
        })
        .await
        .unwrap();
    let reverted = revert_through(&db, "2026-12-02-000001_refresh_token_lifecycle");
    // As the previous release wrote them: no lifecycle columns.
    let writer = db.clone();
    let old_row =
        move |id: &'static str, family: &'static str, scope: &'static str, age: TimeDelta| {
            let (db, client, user) = (writer.clone(), client.clone(), user.clone());
            async move {
                db.run(move |c| {
                    diesel::insert_into(t::table)
                        .values((
                            t::id.eq(id),
                            t::environment_id.eq(ids::ENV_LIVE),
                            t::family_id.eq(family),
                            t::client_id.eq(&client),
                            t::user_id.eq(Some(&user)),
                            t::token_hash.eq(id),
                            t::scope.eq(scope),
                            t::session_id.eq(Some("sess_old")),
                            t::created_at.eq(now - age),
                            t::expires_at.eq(now - age + TimeDelta::days(30)),
                        ))
                        .execute(c)
                        .map_err(StorageError::from)
                })
                .await
                .unwrap();
            }
        };
    old_row(
        "rt_young_1",
        "fam_young",
        "openid offline_access",
        TimeDelta::days(10),
    )
    .await;
    old_row(
        "rt_young_2",
        "fam_young",
        "openid offline_access",
        TimeDelta::days(1),
    )
    .await;
    old_row("rt_old", "fam_old", "openid", TimeDelta::days(100)).await;
    assert_eq!(db.migrate().unwrap(), reverted);

    let row = |hash: &'static str| {
        let db = db.clone();
        async move {
            db.run(move |c| refresh_tokens::find_by_hash(c, hash))
                .await
                .unwrap()
                .unwrap()
        }
    };
    // Within a second: SQLite's date functions drop the fraction.
    let near = |got: Option<NaiveDateTime>, want: NaiveDateTime| {
        let got = got.unwrap();
        assert!(
            (got - want).abs() <= TimeDelta::seconds(1),
            "{got} != {want}"
        );
    };
    for hash in ["rt_young_1", "rt_young_2"] {
        let young: RefreshRow = row(hash).await;
        assert!(young.offline_access && !young.session_bound);
        near(
            young.family_expires_at,
            now - TimeDelta::days(10) + TimeDelta::days(90),
        );
    }
    let old = row("rt_old").await;
    assert!(!old.offline_access && !old.session_bound);
    // Already past 90 days: 90 days from the upgrade.
    let after = Clock::System.now_naive();
    let expiry = old.family_expires_at.unwrap();
    assert!(expiry >= now + TimeDelta::days(90) - TimeDelta::seconds(1));
    assert!(expiry <= after + TimeDelta::days(90) + TimeDelta::seconds(1));

    // Bound to no session: ending the one they came from leaves them be.
    let ended = db
        .run(move |c| refresh_tokens::revoke_for_sessions(c, &["sess_old"], now))
        .await
        .unwrap();
    assert_eq!(ended.families, Vec::<String>::new());
    assert_eq!(row("rt_old").await.revoked_at, None);

    // The previous release keeps writing during a rolling upgrade.
    old_row("rt_during", "fam_during", "openid", TimeDelta::zero()).await;
    let during = row("rt_during").await;
    assert_eq!(during.family_expires_at, None);
    assert!(!during.session_bound);
    assert_eq!(
        during.family_expiry(TimeDelta::days(90)),
        during.created_at + TimeDelta::days(90)
    );

    // Down, then up again.
    let reverted = revert_through(&db, "2026-12-02-000001_refresh_token_lifecycle");
    assert_eq!(db.migrate().unwrap(), reverted);
    assert!(row("rt_old").await.family_expires_at.is_some());
}
