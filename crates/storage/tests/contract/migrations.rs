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
