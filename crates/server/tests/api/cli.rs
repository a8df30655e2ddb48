use serde_json::json;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    keys_and_users_from_the_cli,
    audit_verify_reports_tampering,
    audit_verify_expect_head_catches_a_deleted_tail,
    audit_export_and_prune_from_the_cli,
    serve_runs_and_stops_on_sigterm
);

/// The master key of `TestApp` (`Settings::for_tests`): the CLI must use
/// the deployment's key to write to, or verify, its audit chain.
pub(crate) const TEST_MASTER_KEY: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// Runs `trusec` in a temp dir with a clean TRUSEC_* environment.
pub(crate) fn trusec(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let dir = tempfile::tempdir().unwrap();
    trusec_in(dir.path(), args, env, stdin)
}

/// `trusec` with a clean TRUSEC_* environment, its working directory given.
fn command_in(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trusec"));
    cmd.current_dir(dir);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TRUSEC_")) {
        cmd.env_remove(k);
    }
    cmd
}

pub(crate) fn trusec_in(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Output {
    let mut cmd = command_in(dir);
    cmd.args(args).envs(env.iter().copied());
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn keys_and_users_from_the_cli(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = app.db.url_string();
    let env = [
        ("TRUSEC_DATABASE_URL", db.as_str()),
        ("TRUSEC_MASTER_KEY", TEST_MASTER_KEY),
    ];

    let out = tokio::task::spawn_blocking({
        let env = env.map(|(k, v)| (k, v.to_owned()));
        move || {
            trusec(
                &["keys", "create", "--type", "secret", "--name", "ops"],
                &[(env[0].0, &env[0].1), (env[1].0, &env[1].1)],
                None,
            )
        }
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "only the key, on one line");
    let key = stdout.trim().to_owned();
    assert!(key.starts_with("trusec_sk_"));
    assert_eq!(app.get("/v1/users", &key).await.status(), 200);

    let out = trusec(
        &[
            "users",
            "create",
            "--email",
            "cli@example.com",
            "--name",
            "Cli User",
        ],
        &env,
        Some("a long enough password\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let user: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(user["email"], "cli@example.com");
    assert_eq!(user["has_password"], true);
    let (status, _) = status_json(
        app.get(&format!("/v1/users/{}", user["id"].as_str().unwrap()), &key)
            .await,
    )
    .await;
    assert_eq!(status, 200);

    // No password, a short one, or a taken email: refused, nothing written.
    for (email, input) in [
        ("x@example.com", ""),
        ("x@example.com", "short\n"),
        ("cli@example.com", "long enough pw\n"),
    ] {
        let out = trusec(&["users", "create", "--email", email], &env, Some(input));
        assert_eq!(out.status.code(), Some(1), "{email} {input:?}");
        assert!(!text(&out.stderr).is_empty());
    }
    let (_, page) = status_json(app.get("/v1/users", &key).await).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    // Both commands were audited.
    let (_, events) = status_json(app.get("/v1/audit-events", &key).await).await;
    let types: Vec<_> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].clone(), e["actor"]["type"].clone()))
        .collect();
    assert!(types.contains(&(json!("user.created"), json!("cli"))));
    assert!(types.contains(&(json!("api_key.created"), json!("cli"))));
    // Under the deployment's key: the chain holds.
    let report = app.state.core.verify_audit(None).await.unwrap();
    assert_eq!(report.first_broken, None);

    // Under another master key a command writes nothing: its events would
    // break the chain.
    let other = "11".repeat(32);
    let out = trusec(
        &["keys", "create", "--type", "secret", "--name", "wrong"],
        &[("TRUSEC_DATABASE_URL", &db), ("TRUSEC_MASTER_KEY", &other)],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("TRUSEC_MASTER_KEY"));
    assert_eq!(
        app.state.core.verify_audit(None).await.unwrap().checked,
        report.checked
    );
}

async fn audit_verify_reports_tampering(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("v1@example.com").await;
    app.create_user("v2@example.com").await;
    let db = app.db.url_string();
    // Without the master key there is nothing to verify against, and none
    // is created.
    let dir = tempfile::tempdir().unwrap();
    let out = trusec_in(
        dir.path(),
        &["audit", "verify"],
        &[("TRUSEC_DATABASE_URL", &db)],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("TRUSEC_MASTER_KEY"));
    assert!(!dir.path().join("data/master.key").exists());
    let env = [
        ("TRUSEC_DATABASE_URL", db.as_str()),
        ("TRUSEC_MASTER_KEY", TEST_MASTER_KEY),
    ];
    let out = trusec(&["audit", "verify"], &env, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("OK: 2 events"),
        "{}",
        text(&out.stdout)
    );
    // Another key does not open the audit key (sealed in
    // deployment_secrets): a configuration error, exit 2 naming the setting.
    let other = "11".repeat(32);
    let out = trusec(
        &["audit", "verify"],
        &[("TRUSEC_DATABASE_URL", &db), ("TRUSEC_MASTER_KEY", &other)],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("TRUSEC_MASTER_KEY"),
        "{}",
        text(&out.stderr)
    );
    crate::audit::execute(
        &app,
        "UPDATE audit_events SET ip = '10.0.0.1' WHERE seq = 2",
    )
    .await;
    let out = trusec(&["audit", "verify"], &env, None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("BROKEN at event #2"),
        "{}",
        text(&out.stdout)
    );
}

/// `audit verify` prints the head; given it later with `--expect-head`, it
/// fails once the tail up to that head is deleted (what is left still
/// links up), and once that event is rewritten and its chain recomputed.
async fn audit_verify_expect_head_catches_a_deleted_tail(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for i in 0..3 {
        app.create_user(&format!("h{i}@example.com")).await;
    }
    let db = app.db.url_string();
    let env = [
        ("TRUSEC_DATABASE_URL", db.as_str()),
        ("TRUSEC_MASTER_KEY", TEST_MASTER_KEY),
    ];
    let out = trusec(&["audit", "verify"], &env, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let head = stdout.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(head.starts_with("3:") && head.len() == 66, "{stdout}");
    let expect = |head: &str| trusec(&["audit", "verify", "--expect-head", head], &env, None);
    assert!(expect(&head).status.success());
    // Events after the head are fine.
    app.create_user("h3@example.com").await;
    assert!(expect(&head).status.success());
    // A malformed head is a usage error.
    assert_eq!(expect("3:xyz").status.code(), Some(2));

    // Someone deletes the tail: what remains still links up...
    crate::audit::execute(&app, "DELETE FROM audit_events WHERE seq >= 3").await;
    let out = trusec(&["audit", "verify"], &env, None);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("head 2:"));
    // ...but not up to the head seen before.
    let out = expect(&head);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout}");
    assert!(stdout.contains("events were removed"), "{stdout}");

    // An event that is there with another hash: rewritten history.
    let out = trusec(&["audit", "verify"], &env, None);
    let second = text(&out.stdout)
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    let forged = format!("2:{}", "ab".repeat(32));
    let out = expect(&forged);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("rewritten"),
        "{}",
        text(&out.stdout)
    );
    assert!(expect(&second).status.success());
}

/// `audit export` streams every event as JSON lines, oldest first, and
/// resumes after a seq; `audit prune` deletes what is older than the date
/// and the chain still verifies (from the CLI and the running server, which
/// goes on appending after the prune record).
async fn audit_export_and_prune_from_the_cli(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for i in 0..3 {
        app.create_user(&format!("x{i}@example.com")).await;
    }
    let db = app.db.url_string();
    let env = [
        ("TRUSEC_DATABASE_URL", db.as_str()),
        ("TRUSEC_MASTER_KEY", TEST_MASTER_KEY),
    ];
    let out = trusec(&["audit", "export"], &env, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let seqs: Vec<i64> = lines.iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert!(
        lines
            .iter()
            .all(|l| l["type"] == "user.created" && l["hash"].is_string())
    );
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);
    // Resuming after the last seq a previous export wrote.
    let out = trusec(&["audit", "export", "--after", "2"], &env, None);
    assert_eq!(text(&out.stdout).lines().count(), 1);
    // A bad date is a usage error naming the forms.
    let out = trusec(&["audit", "prune", "--before", "yesterday"], &env, None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("RFC 3339"),
        "{}",
        text(&out.stderr)
    );

    // Everything so far is older than a second from now (the app's clock).
    let before = (app.clock.now() + chrono::TimeDelta::seconds(1)).to_rfc3339();
    let out = trusec(&["audit", "prune", "--before", &before], &env, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("pruned 3 events through 3:"),
        "{}",
        text(&out.stdout)
    );
    let out = trusec(&["audit", "prune", "--before", "2000-01-01"], &env, None);
    assert!(
        text(&out.stdout).starts_with("nothing to prune"),
        "{}",
        text(&out.stdout)
    );
    // The server appends after the prune record; the chain verifies.
    app.create_user("x3@example.com").await;
    let out = trusec(&["audit", "verify"], &env, None);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("OK: 2 events"),
        "{}",
        text(&out.stdout)
    );
    let report = app.state.core.verify_audit(None).await.unwrap();
    assert_eq!(report.pruned_through.map(|h| h.seq), Some(3));
    let out = trusec(&["audit", "export"], &env, None);
    let types: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(types, ["audit.chain.pruned", "user.created"]);
}

#[test]
fn help_lists_every_command() {
    let out = trusec(&["--help"], &[], None);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for cmd in ["serve", "migrate", "keys", "users", "audit", "master-key"] {
        assert!(help.contains(cmd), "{cmd} in {help}");
    }
    for args in [
        &["keys", "create", "--help"][..],
        &["users", "create", "--help"],
        &["serve", "--help"],
        &["audit", "verify", "--help"],
        &["master-key", "rotate", "--help"],
    ] {
        let out = trusec(args, &[], None);
        assert!(out.status.success(), "{args:?}");
    }
    assert!(text(&trusec(&["serve", "--help"], &[], None).stdout).contains("TRUSEC_DATABASE_URL"));
}

/// The master key is never a flag (a command line is visible to every user
/// of the machine); the environment still sets it.
#[test]
fn the_master_key_is_not_a_flag() {
    let key = "ab".repeat(32);
    let out = trusec(&["serve", "--master-key", &key], &[], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--master-key"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&trusec(&["serve", "--help"], &[], None).stdout).contains("--master-key"));
}

#[test]
fn bad_configuration_exits_2_naming_the_setting() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 5] = [
        (
            &["migrate"],
            &[("TRUSEC_DATABASE_URL", "mysql://localhost/x")],
            "TRUSEC_DATABASE_URL",
        ),
        (
            &["migrate"],
            &[(
                "TRUSEC_DATABASE_URL",
                "postgres://postgres@127.0.0.1:1/none",
            )],
            "TRUSEC_DATABASE_URL",
        ),
        (
            &["serve"],
            &[("TRUSEC_MASTER_KEY", "too-short")],
            "TRUSEC_MASTER_KEY",
        ),
        (
            &["serve"],
            &[("TRUSEC_BIND", "not-an-address")],
            "TRUSEC_BIND",
        ),
        (
            &["serve"],
            &[("TRUSEC_RATE_LIMIT_LOGIN", "many")],
            "TRUSEC_RATE_LIMIT_LOGIN",
        ),
    ];
    for (args, env, setting) in cases {
        let out = trusec(args, env, None);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(setting), "{stderr}");
    }
}

#[test]
fn serve_refuses_an_unknown_key_in_trusec_toml() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("trusec.toml");
    std::fs::write(&config, "bnid = \"127.0.0.1:0\"\n").unwrap();
    let out = trusec(
        &["serve"],
        &[("TRUSEC_CONFIG", config.to_str().unwrap())],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("TRUSEC_CONFIG"));
}

/// A running `trusec serve` and the port it bound.
struct Served {
    child: std::process::Child,
    port: u64,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStderr>>,
}

async fn serve(dir: &std::path::Path, env: Vec<(String, String)>) -> Served {
    use std::io::BufRead;
    let mut cmd = command_in(dir);
    cmd.arg("serve")
        .env("TRUSEC_BIND", "127.0.0.1:0")
        .env("TRUSEC_LOG_FORMAT", "json")
        .env("TRUSEC_WORKERS", "1")
        .envs(env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    // The start-up line carries the bound port.
    let (port, lines) = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                && event["message"] == "trusec is serving"
            {
                return (event["port"].as_u64().unwrap(), lines);
            }
            seen.push(line);
        }
        panic!("trusec exited before serving: {}", seen.join("\n"));
    })
    .await
    .unwrap();
    Served { child, port, lines }
}

impl Served {
    /// SIGTERM, then the exit status and what it logged meanwhile.
    async fn terminate(self) -> (std::process::ExitStatus, String) {
        let Self {
            mut child, lines, ..
        } = self;
        let pid = child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        tokio::task::spawn_blocking(move || {
            let rest: Vec<String> = lines.map_while(Result::ok).collect();
            (child.wait().unwrap(), rest.join("\n"))
        })
        .await
        .unwrap()
    }
}

/// The real binary on a fresh database: first start creates the master key
/// and signing keys, serves the API, exits 0 on SIGTERM, and a warm restart
/// opens the same keys.
async fn serve_runs_and_stops_on_sigterm(backend: Backend) {
    let db = trusec_testkit::TestDb::for_backend(&backend);
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![("TRUSEC_DATABASE_URL".to_owned(), db.url_string())];
    if let Backend::Shared {
        redis_url: Some(url),
        ..
    } = &backend
    {
        env.push(("TRUSEC_REDIS_URL".to_owned(), url.clone()));
    }
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = trusec_in(
        dir.path(),
        &["keys", "create", "--type", "secret", "--name", "ops"],
        &env_refs,
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = text(&out.stdout).trim().to_owned();
    let client = reqwest::Client::new();

    let served = serve(dir.path(), env.clone()).await;
    let base = format!("http://127.0.0.1:{}", served.port);
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let resp = client
        .post(format!("{base}/v1/users"))
        .bearer_auth(&key)
        .json(&json!({"email": "binary@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let jwks: serde_json::Value = client
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The first start made a current and a next key for each algorithm.
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 6);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("data/master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (status, rest) = served.terminate().await;
    assert_eq!(status.code(), Some(0), "graceful exit on SIGTERM: {rest}");

    // A warm start opens the same keys with the same master key file.
    let served = serve(dir.path(), env.clone()).await;
    let base = format!("http://127.0.0.1:{}", served.port);
    let again: serde_json::Value = client
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again, jwks);
    let users: serde_json::Value = client
        .get(format!("{base}/v1/users"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users["data"][0]["email"], "binary@example.com");
    let (status, _) = served.terminate().await;
    assert_eq!(status.code(), Some(0));

    // A key file others can read is refused: exit 2 naming the setting.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key_file = dir.path().join("data/master.key");
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = trusec_in(dir.path(), &["serve"], &env_refs, None);
        assert_eq!(out.status.code(), Some(2));
        let err = text(&out.stderr);
        assert!(
            err.contains("TRUSEC_MASTER_KEY") && err.contains("chmod 600"),
            "{err}"
        );
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    // Another master key cannot open them: exit 2 naming the setting.
    let wrong = "11".repeat(32);
    let mut env_wrong = env_refs.clone();
    env_wrong.push(("TRUSEC_MASTER_KEY", &wrong));
    let out = trusec_in(dir.path(), &["serve"], &env_wrong, None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("TRUSEC_MASTER_KEY"),
        "{}",
        text(&out.stderr)
    );
}
