//! `spawn_app()`: the real server on port 0 against a fresh database, and a client for it.

use points_app::startup::Application;
use points_app::telemetry;

#[path = "../common/mod.rs"]
mod common;
pub use common::{TestDatabase, test_settings};

#[allow(dead_code)]
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub handle: actix_web::dev::ServerHandle,
    pub state: points_app::http::AppState,
    // Dropped last: the database outlives the server that uses it.
    pub _data_dir: tempfile::TempDir,
    pub db: TestDatabase,
}

pub async fn spawn_app() -> TestApp {
    // Logs only when asked for (`TEST_LOG=1`), so test output stays readable.
    if std::env::var("TEST_LOG").is_ok() {
        telemetry::init_subscriber("pretty");
    }
    let db = TestDatabase::create();
    let data_dir = tempfile::tempdir().expect("data dir");
    let settings = test_settings(&db, data_dir.path());
    let app = Application::build(settings)
        .await
        .expect("application builds");
    let port = app.port();
    let handle = app.handle();
    let state = app.state().clone();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::new(),
        handle,
        state,
        _data_dir: data_dir,
        db,
    }
}

/// Anything the tests talk HTTP to: an in-process app, or the real binary as a child process.
pub trait Server {
    fn url(&self, path: &str) -> String;
    fn client(&self) -> &reqwest::Client;
}

impl Server for TestApp {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }
}

/// Reads an error answer and checks its shape: `{code, message, trace_id}` with the trace id
/// equal to the response's `X-Request-Id`.
pub async fn error_body(res: reqwest::Response) -> serde_json::Value {
    let trace = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .expect("x-request-id on every answer");
    let body: serde_json::Value = res.json().await.expect("JSON error body");
    assert!(body["code"].is_string(), "{body}");
    assert!(body["message"].is_string(), "{body}");
    assert_eq!(body["trace_id"], trace.as_str(), "{body}");
    body
}
