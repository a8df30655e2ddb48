//! `trusec master-key rotate`: every sealed value re-sealed under a new
//! key, nothing a client or SP knows changed, the old key locked out.

use crate::cli::{TEST_MASTER_KEY, text, trusec, trusec_in};
use crate::oauth_support::{confidential_client, token, verify_jwt};
use serde_json::{Value, json};
use trusec_server::settings::MasterKeySource;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    rotation_keeps_name_ids_keys_and_the_audit_chain,
    a_rotation_under_the_wrong_key_changes_nothing,
    a_key_file_is_replaced_after_the_commit,
    an_upgrade_keeps_name_ids_and_a_wrong_key_stores_no_secret
);

const SP: &str = "https://sp.example.com/metadata";

/// What a rotation must not change, as clients, SPs and auditors see it.
#[derive(Debug, PartialEq)]
struct Seen {
    name_ids: Vec<String>,
    kids: Vec<String>,
}

async fn seen(app: &TestApp, user_id: &str) -> Seen {
    let name_ids = app
        .state
        .environments
        .iter()
        .flat_map(|e| {
            [
                e.saml.persistent_name_id(SP, user_id),
                e.saml.session_index(SP, "ses_1"),
                e.saml.transient_name_id(SP, "ses_1"),
            ]
        })
        .map(Result::unwrap)
        .collect();
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    Seen { name_ids, kids }
}

/// `trusec audit verify` under `key`: (exit code, stdout).
fn verify(db: &str, key: &str, expect_head: Option<&str>) -> (Option<i32>, String) {
    let mut args = vec!["audit", "verify"];
    if let Some(head) = expect_head {
        args.extend(["--expect-head", head]);
    }
    let out = trusec(
        &args,
        &[("TRUSEC_DATABASE_URL", db), ("TRUSEC_MASTER_KEY", key)],
        None,
    );
    (out.status.code(), text(&out.stdout))
}

fn head_of(stdout: &str) -> String {
    stdout.trim().rsplit(' ').next().unwrap().to_owned()
}

/// The same database and Redis prefix as `app`, started with `key`.
async fn restart_with(app: &TestApp, key: &str) -> TestApp {
    let key = key.to_owned();
    TestApp::builder(app.backend.clone())
        .with_clock(app.clock.clone())
        .sharing(app)
        .with_settings(move |s| s.master_key = MasterKeySource::Inline(key.into()))
        .spawn()
        .await
}

async fn rotation_keeps_name_ids_keys_and_the_audit_chain(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.create_user("nameid@example.com").await;
    let user_id = user["id"].as_str().unwrap().to_owned();
    let client = confidential_client(&app, json!({})).await;
    // A client_secret_jwt client's secret is sealed under the master key.
    let mac_client = confidential_client(
        &app,
        json!({"token_endpoint_auth_method": "client_secret_jwt"}),
    )
    .await;
    let before = seen(&app, &user_id).await;
    let db = app.db.url_string();
    let (code, out) = verify(&db, TEST_MASTER_KEY, None);
    assert_eq!(code, Some(0), "{out}");
    let head = head_of(&out);
    app.stop().await;

    let out = trusec(
        &["master-key", "rotate", "--generate"],
        &[
            ("TRUSEC_DATABASE_URL", &db),
            ("TRUSEC_MASTER_KEY", TEST_MASTER_KEY),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let new_key = text(&out.stdout).trim().to_owned();
    assert_eq!(text(&out.stdout).lines().count(), 1, "only the new key");
    assert!(new_key.len() == 64 && new_key.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(
        text(&out.stderr).contains("TRUSEC_MASTER_KEY"),
        "{}",
        text(&out.stderr)
    );

    // Restarted with the new key: the same NameIDs and keys, new tokens verify.
    let again = restart_with(&app, &new_key).await;
    assert_eq!(seen(&again, &user_id).await, before);
    // The chain still verifies, through the old head, plus the rotation.
    let (code, out) = verify(&db, &new_key, Some(&head));
    assert_eq!(code, Some(0), "{out}");
    let seq: i64 = head.split(':').next().unwrap().parse().unwrap();
    assert!(out.contains(&format!("head {}:", seq + 1)), "{out}");
    let (status, tokens) = token(
        &again,
        &client,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read:users"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    verify_jwt(
        &again,
        tokens["access_token"].as_str().unwrap(),
        "http://127.0.0.1:8080",
    )
    .await;
    // Its MAC still verifies: the secret was re-sealed, not changed.
    let assertion = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &crate::client_jwt::claims(&mac_client.id, json!("http://127.0.0.1:8080")),
        &jsonwebtoken::EncodingKey::from_secret(mac_client.secret.as_deref().unwrap().as_bytes()),
    )
    .unwrap();
    let (status, tokens, _) = crate::client_jwt::post_assertion(
        &again,
        "/oauth/token",
        &assertion,
        &crate::client_jwt::CC,
    )
    .await;
    assert_eq!(
        status, 200,
        "client_secret_jwt after the rotation: {tokens}"
    );
    let (_, events) = status_json(
        again
            .get(
                "/v1/audit-events?type=master_key.rotated",
                &again.secret_key,
            )
            .await,
    )
    .await;
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor"]["type"], "cli");
    assert_eq!(
        events[0]["data"]["resealed"]["client_secrets"], 1,
        "{events:?}"
    );
    again.stop().await;

    // The old key opens nothing any more: one clear line, exit 2.
    let dir = tempfile::tempdir().unwrap();
    let out = trusec_in(
        dir.path(),
        &["serve"],
        &[
            ("TRUSEC_DATABASE_URL", &db),
            ("TRUSEC_MASTER_KEY", TEST_MASTER_KEY),
            ("TRUSEC_BIND", "127.0.0.1:0"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("TRUSEC_MASTER_KEY") && err.contains("rotate"),
        "{err}"
    );
}

async fn a_rotation_under_the_wrong_key_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.create_user("wrong@example.com").await;
    let user_id = user["id"].as_str().unwrap().to_owned();
    let before = seen(&app, &user_id).await;
    let db = app.db.url_string();
    let (_, out) = verify(&db, TEST_MASTER_KEY, None);
    let head = head_of(&out);
    app.stop().await;

    let wrong = "11".repeat(32);
    let new_key = "22".repeat(32);
    let env = [
        ("TRUSEC_DATABASE_URL", db.as_str()),
        ("TRUSEC_MASTER_KEY", wrong.as_str()),
    ];
    let out = trusec(&["master-key", "rotate"], &env, Some(&new_key));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("nothing changed"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    // A new key that is not one, or the current key again: refused too.
    let env = [
        ("TRUSEC_DATABASE_URL", db.as_str()),
        ("TRUSEC_MASTER_KEY", TEST_MASTER_KEY),
    ];
    for input in ["abcd", "zz".repeat(32).as_str(), TEST_MASTER_KEY] {
        let out = trusec(&["master-key", "rotate"], &env, Some(input));
        assert_eq!(out.status.code(), Some(1), "{input}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("nothing changed"),
            "{}",
            text(&out.stderr)
        );
    }

    // Nothing was appended or re-sealed: the old key still opens everything.
    let (code, out) = verify(&db, TEST_MASTER_KEY, None);
    assert_eq!((code, head_of(&out)), (Some(0), head));
    let again = restart_with(&app, TEST_MASTER_KEY).await;
    assert_eq!(seen(&again, &user_id).await, before);
    again.stop().await;
}

/// With the key in `data/master.key`, the file holds the new key (mode
/// 0600) once the rotation has committed, and the next command uses it.
async fn a_key_file_is_replaced_after_the_commit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = app.db.url_string();
    app.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data/master.key");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, format!("{TEST_MASTER_KEY}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let new_key = "33".repeat(32);
    let env = [("TRUSEC_DATABASE_URL", db.as_str())];
    let out = trusec_in(
        dir.path(),
        &["master-key", "rotate"],
        &env,
        Some(&format!("{new_key}\n")),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "a key from stdin is not echoed");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), new_key);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = trusec_in(dir.path(), &["audit", "verify"], &env, None);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let again = restart_with(&app, &new_key).await;
    assert_eq!(again.get("/healthz", "").await.status(), 200);
    again.stop().await;
}

/// A deployment from before `deployment_secrets` (no rows): its first
/// start stores the values it used before, so NameIDs and the audit chain
/// carry on; a start under another master key stores nothing (it would
/// lock the right key out) and exits 2.
async fn an_upgrade_keeps_name_ids_and_a_wrong_key_stores_no_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.create_user("upgrade@example.com").await;
    let user_id = user["id"].as_str().unwrap().to_owned();
    let before = seen(&app, &user_id).await;
    crate::audit::execute(&app, "DELETE FROM deployment_secrets").await;
    app.stop().await;
    let db = app.db.url_string();

    let dir = tempfile::tempdir().unwrap();
    let wrong = "11".repeat(32);
    let out = trusec_in(
        dir.path(),
        &["serve"],
        &[
            ("TRUSEC_DATABASE_URL", &db),
            ("TRUSEC_MASTER_KEY", &wrong),
            ("TRUSEC_BIND", "127.0.0.1:0"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("TRUSEC_MASTER_KEY"),
        "{}",
        text(&out.stderr)
    );

    let again = restart_with(&app, TEST_MASTER_KEY).await;
    assert_eq!(seen(&again, &user_id).await, before);
    again.stop().await;
    let (code, out) = verify(&db, TEST_MASTER_KEY, None);
    assert_eq!(code, Some(0), "{out}");
}
