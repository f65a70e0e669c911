//! Test support shared by the test binaries: a fresh database per test (an SQLite temp file,
//! or a new MySQL database when `TEST_MYSQL_URL` is set, dropped afterwards) and settings
//! for a server on port 0.
#![allow(dead_code)]

use points_app::config::Settings;

/// A database made for one test; dropping it removes the SQLite file or the MySQL database.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    mysql: Option<(String, String)>,
}

impl TestDatabase {
    pub fn create() -> TestDatabase {
        match std::env::var("TEST_MYSQL_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            Some(admin_url) => {
                let name = format!("t_{}", uuid::Uuid::now_v7().simple());
                mysql_admin(&admin_url, &format!("CREATE DATABASE {name}"));
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(b, _)| b)
                    .unwrap_or(&admin_url);
                TestDatabase {
                    url: format!("{base}/{name}"),
                    _dir: None,
                    mysql: Some((admin_url.clone(), name)),
                }
            }
            None => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().join("test.sqlite");
                TestDatabase {
                    url: format!("sqlite://{}", path.display()),
                    _dir: Some(dir),
                    mysql: None,
                }
            }
        }
    }

    pub fn is_mysql(&self) -> bool {
        self.mysql.is_some()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.mysql {
            // Bounded: if a connection of a server that has not finished stopping still holds
            // a lock, the database is left behind rather than the test run hanging (MariaDB's
            // metadata-lock wait is a year by default).
            mysql_admin_best_effort(
                admin_url,
                &format!("SET SESSION lock_wait_timeout = 15; DROP DATABASE IF EXISTS {name}"),
            );
        }
    }
}

/// Runs one administrative statement on its own thread and runtime (safe from any context,
/// including `Drop` inside an async test).
fn mysql_admin(admin_url: &str, sql: &str) {
    let (url, sql) = (admin_url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl};
            let mut conn = AsyncMysqlConnection::establish(&url)
                .await
                .expect("TEST_MYSQL_URL must point at a reachable MySQL/MariaDB");
            diesel::sql_query(sql)
                .execute(&mut conn)
                .await
                .expect("admin statement");
        })
    })
    .join()
    .expect("admin thread");
}

/// Like [`mysql_admin`], for clean-up: statements separated by `; `, a failure only printed.
fn mysql_admin_best_effort(admin_url: &str, sql: &str) {
    let (url, sql) = (admin_url.to_string(), sql.to_string());
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl};
            let Ok(mut conn) = AsyncMysqlConnection::establish(&url).await else {
                return;
            };
            for statement in sql.split("; ") {
                if let Err(e) = diesel::sql_query(statement).execute(&mut conn).await {
                    eprintln!("test clean-up: {statement}: {e}");
                    return;
                }
            }
        })
    })
    .join();
}

/// Settings for a test server: port 0, the given database, a per-test Redis key prefix when
/// `REDIS_URL` is set, a private data directory, and test-sized limits.
pub fn test_settings(db: &TestDatabase, data_dir: &std::path::Path) -> Settings {
    let mut vars = vec![
        ("APP_ENV".to_string(), "test".to_string()),
        ("APP_PORT".to_string(), "0".to_string()),
        ("APP_SANDBOX_PORT".to_string(), "0".to_string()),
        ("APP_DATA_DIR".to_string(), data_dir.display().to_string()),
        ("APP_DB_POOL_SIZE".to_string(), "8".to_string()),
        ("APP_SHUTDOWN_TIMEOUT_SECS".to_string(), "5".to_string()),
        // WeChat's retry schedule in milliseconds instead of minutes.
        ("APP_SANDBOX_TIME_SCALE".to_string(), "0.001".to_string()),
        ("DATABASE_URL".to_string(), db.url.clone()),
        (
            "APP_REDIS_PREFIX".to_string(),
            format!("t{}", uuid::Uuid::now_v7().simple()),
        ),
    ];
    if let Ok(url) = std::env::var("REDIS_URL")
        && !url.is_empty()
    {
        vars.push(("REDIS_URL".to_string(), url));
    }
    Settings::load_from(&vars).expect("test settings")
}
