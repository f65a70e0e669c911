//! The command lines of `points-app` and `sandbox`, run as the built binaries.

use std::io::{BufRead, Write};
use std::process::{Command, Output, Stdio};

use points_app::sandbox::keys::{
    APIV3_KEY_FILE, MERCHANT_KEY_FILE, PLATFORM_PUBLIC_FILE, SANDBOX_APPID, SANDBOX_MCHID,
    SANDBOX_MERCHANT_SERIAL, SANDBOX_PUBLIC_KEY_ID,
};
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::identity::{ADMIN_PASSWORD, get_auth, post_json, spawn_identity_app};

/// `points-app` with nothing but the given settings in its environment.
pub fn points_app(data_dir: &std::path::Path, database_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_points-app"));
    cmd.env_clear()
        .current_dir(data_dir)
        .env("APP_ENV", "test")
        .env("APP_DATA_DIR", data_dir)
        .env("APP_LOG_FORMAT", "json")
        .env("DATABASE_URL", database_url);
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

#[test]
fn help_prints_the_commands_and_starts_nothing() {
    let data = tempfile::tempdir().unwrap();
    // The port the server would listen on is held here: a server starting would fail on it,
    // and it would create its SQLite file in the data directory first.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    for args in [&["--help"][..], &["-h"], &["help"]] {
        let out = points_app(data.path(), "")
            .env_remove("DATABASE_URL")
            .env("APP_PORT", &port)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
        let help = text(&out.stdout);
        for command in ["serve", "migrate", "admin", "rotate-field-keys"] {
            assert!(help.contains(command), "{args:?} lacks {command}: {help}");
        }
    }
    assert_eq!(
        std::fs::read_dir(data.path()).unwrap().count(),
        0,
        "--help created a database or keys: it must not start anything"
    );

    let out = points_app(data.path(), "")
        .args(["admin", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(text(&out.stdout).contains("reset-password"));
    let out = points_app(data.path(), "")
        .args(["rotate-field-keys", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    for option in ["--batch-size", "--from-id", "--limit", "--table"] {
        assert!(text(&out.stdout).contains(option), "{option}");
    }
    // A password is never taken from the command line.
    let out = points_app(data.path(), "")
        .args(["admin", "reset-password", "admin", "a-password-on-argv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let out = points_app(data.path(), "")
        .arg("no-such-command")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    drop(held);
}

#[test]
fn sandbox_help_lists_its_options_ids_and_key_files() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let keys_str = keys.to_str().unwrap();
    for args in [
        vec!["--keys-dir", keys_str, "--help"],
        vec!["--help", "--keys-dir", keys_str],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sandbox"))
            .env_remove("SANDBOX_KEYS_DIR")
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", describe(&out));
        let help = text(&out.stdout);
        for needle in [
            "--host",
            "--port",
            "--keys-dir",
            "--time-scale",
            "--max-in-flight",
            "SANDBOX_PORT",
            "SANDBOX_KEYS_DIR",
            "verify-notification",
            "env",
            SANDBOX_APPID,
            SANDBOX_MCHID,
            SANDBOX_MERCHANT_SERIAL,
            SANDBOX_PUBLIC_KEY_ID,
        ] {
            assert!(help.contains(needle), "{needle} missing from:\n{help}");
        }
        for file in [MERCHANT_KEY_FILE, PLATFORM_PUBLIC_FILE, APIV3_KEY_FILE] {
            let path = keys.join(file).display().to_string();
            assert!(help.contains(&path), "{path} missing from:\n{help}");
        }
    }
    // The environment names the directory when no flag does.
    let out = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .env("SANDBOX_KEYS_DIR", &keys)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains(&keys.join(MERCHANT_KEY_FILE).display().to_string()),
        "{}",
        describe(&out)
    );
    assert!(!keys.exists(), "--help generated keys: it must not start");
}

#[test]
fn the_sandbox_still_takes_its_flags_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .env("SANDBOX_TIME_SCALE", "0.001")
        .env("SANDBOX_MAX_IN_FLIGHT", "4")
        .env("APP_LOG_FORMAT", "json")
        .args(["--host", "127.0.0.1", "--port", "0", "--keys-dir"])
        .arg(&keys)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = std::io::BufReader::new(stdout)
        .lines()
        .find(|l| l.as_ref().is_ok_and(|l| l.starts_with("sandbox listening")));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("the sandbox started").unwrap();
    assert!(
        line.starts_with("sandbox listening on http://127.0.0.1:"),
        "{line}"
    );
    assert!(keys.join(MERCHANT_KEY_FILE).exists());

    // `env` reads the keys directory from the environment as before.
    let out = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .env("SANDBOX_KEYS_DIR", &keys)
        .args(["env", "--base-url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let exports = text(&out.stdout);
    assert!(exports.contains(&format!("export WECHAT_APPID='{SANDBOX_APPID}'")));
    assert!(exports.contains("export WECHAT_PAY_BASE_URL='http://127.0.0.1:9'"));
    // A bad value is a usage error, as before.
    let out = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(["--port", "not-a-port"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
}

#[test]
fn migrate_creates_the_schema_of_a_fresh_sqlite_file_and_exits() {
    use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("db").join("fresh.sqlite");
    let url = format!("sqlite://{}", file.display());
    let out = points_app(data.path(), &url)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(text(&out.stdout).contains("applied"), "{}", describe(&out));

    let mut conn = SqliteConnection::establish(file.to_str().unwrap()).unwrap();
    let tables: Vec<String> =
        diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'table'")
            .load::<Name>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|n| n.name)
            .collect();
    for table in [
        "users",
        "merchants",
        "payment_orders",
        "admin_users",
        "audit_log",
    ] {
        assert!(tables.iter().any(|t| t == table), "{table}: {tables:?}");
    }
    let versions = diesel::sql_query("SELECT version AS name FROM __diesel_schema_migrations")
        .load::<Name>(&mut conn)
        .unwrap();
    let dirs = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert_eq!(versions.len(), dirs, "every migration applied");
    // Migrating only: no admin was created, nothing else was written.
    let admins = diesel::sql_query("SELECT username AS name FROM admin_users")
        .load::<Name>(&mut conn)
        .unwrap();
    assert!(admins.is_empty());
    drop(conn);

    let again = points_app(data.path(), &url)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", describe(&again));
    assert!(
        text(&again.stdout).contains("up to date"),
        "{}",
        describe(&again)
    );
}

async fn admin_login(app: &TestApp, password: &str) -> reqwest::Response {
    post_json(
        app,
        "/api/admin/login",
        json!({"username": "admin", "password": password}),
    )
    .await
}

/// Runs `points-app admin reset-password …` against the app's database, the password on
/// stdin.
async fn reset(app: &TestApp, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = points_app(data.path(), &app.db.url);
    cmd.env("USER", "ops-alice")
        .args(["admin", "reset-password"])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let stdin = stdin.to_string();
    // The child runs on a blocking thread: the server it talks to runs on this one.
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(stdin.as_bytes()).unwrap();
        drop(pipe);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

#[actix_web::test]
async fn admin_reset_password_lets_the_admin_sign_in_with_the_new_one() {
    let app = spawn_identity_app().await;
    // A session from before the reset, and an account locked by wrong passwords.
    let before: Value = admin_login(&app, ADMIN_PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let old_token = before["access_token"].as_str().unwrap().to_string();
    for _ in 0..5 {
        admin_login(&app, "wrong-password").await;
    }
    let locked = admin_login(&app, ADMIN_PASSWORD).await;
    assert_eq!(locked.status(), 429, "locked after five failures");

    let out = reset(&app, &["admin"], "a-new-admin-password-42\n", &[]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let said = text(&out.stdout);
    assert!(said.contains("new password set"), "{said}");
    assert!(
        !said.contains("a-new-admin-password-42")
            && !text(&out.stderr).contains("a-new-admin-password-42")
    );

    // The lock is gone and the new password works at once; the old one does not.
    let res = admin_login(&app, "a-new-admin-password-42").await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(admin_login(&app, ADMIN_PASSWORD).await.status(), 401);
    // The session from before the reset was ended.
    let res = get_auth(&app, &old_token, "/api/admin/audit-log").await;
    assert_eq!(res.status(), 401);

    // Audited, as done on the command line by the account that ran it.
    let log: Value = get_auth(&app, &token, "/api/admin/audit-log")
        .await
        .json()
        .await
        .unwrap();
    let entry = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "admin.reset_password")
        .unwrap_or_else(|| panic!("no audit record: {log}"));
    assert_eq!(entry["actor_type"], "cli");
    assert_eq!(entry["actor_id"], "ops-alice");
    assert_eq!(entry["target_type"], "admin");
    assert_eq!(entry["before"]["failed_logins"], 5, "{entry}");
    assert_eq!(entry["after"]["failed_logins"], 0, "{entry}");
    assert!(!entry.to_string().contains("argon2"), "no hash in the log");

    // From a variable named on the command line, never from argv.
    let out = reset(
        &app,
        &["admin", "--password-env", "NEW_ADMIN_PASSWORD"],
        "",
        &[("NEW_ADMIN_PASSWORD", "second-new-password-7")],
    )
    .await;
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        admin_login(&app, "second-new-password-7").await.status(),
        200
    );

    // Refusals: too short, no such admin, nothing on stdin. Nothing changes.
    let out = reset(&app, &["admin"], "short\n", &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stderr).contains("at least 12 characters"));
    let out = reset(&app, &["nobody"], "a-long-enough-password\n", &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stderr).contains("no admin named \"nobody\""));
    let out = reset(&app, &["admin"], "", &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(text(&out.stderr).contains("no password on stdin"));
    assert_eq!(
        admin_login(&app, "second-new-password-7").await.status(),
        200
    );
}

/// `points-app` (serve) prints where the console, the API and the probes are, and the
/// console address it prints answers: the embedded console, no separate build.
#[actix_web::test]
async fn serve_prints_the_console_and_api_addresses_and_they_answer() {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", data.path().join("app.sqlite").display());
    let mut child = points_app(data.path(), &url)
        .env("APP_PORT", "0")
        .env("APP_SANDBOX_PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut banner = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.starts_with("wechat sandbox listening");
        banner.push(line);
        if done {
            break;
        }
    }
    let banner = banner.join("\n");
    let field = |label: &str| -> String {
        banner
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {label:?} in the banner:\n{banner}"))
            .to_string()
    };
    let console = field("admin console");
    let api = field("API");
    assert!(
        console.starts_with("http://127.0.0.1:") && console.ends_with("/admin/"),
        "{banner}"
    );
    let client = reqwest::Client::new();
    let page = client.get(&console).send().await.unwrap();
    let docs = client
        .get(api.replace("/api/", "/api-docs/openapi.json"))
        .send()
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(docs.status(), 200, "{banner}");
    if points_app::http::admin_web::CONSOLE_BUILD.starts_with("not built") {
        assert!(banner.contains("ADMIN_NOT_BUILT"), "{banner}");
        assert_eq!(page.status(), 503);
    } else {
        assert!(banner.contains("(embedded, "), "{banner}");
        assert_eq!(page.status(), 200, "{banner}");
        assert!(page.text().await.unwrap().contains("<div id=\"app\">"));
    }
}
