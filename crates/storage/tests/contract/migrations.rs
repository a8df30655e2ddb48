use trusec_testdb::{Backend, TestDb, on_every_backend};

on_every_backend!(up_down_up);

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

on_every_backend!(sp_flags_expand_keeps_old_writers_in_step);

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
