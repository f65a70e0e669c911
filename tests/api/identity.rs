//! Support for the identity tests: an app with a known admin password (logging in through
//! the in-process WeChat sandbox), and clients that sign in and sign requests.

use std::sync::atomic::{AtomicU64, Ordering};

use points_app::config::Settings;
use points_app::security::signing;
use points_app::startup::Application;
use serde_json::{Value, json};

use crate::helpers::{Server, TestApp, TestDatabase, test_settings};

pub const ADMIN_PASSWORD: &str = "test-admin-password-1";

/// An app (its WeChat is the in-process sandbox) with a known admin password; `tweak` adjusts
/// settings.
pub async fn spawn_identity_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDatabase::create();
    spawn_on(db, tweak).await
}

pub async fn spawn_identity_app() -> TestApp {
    spawn_identity_app_with(|_| {}).await
}

/// A server on an existing database (a second instance, or a restart with new settings).
pub async fn spawn_on(db: TestDatabase, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&db, data_dir.path());
    settings.admin_password = Some(ADMIN_PASSWORD.to_string().into());
    tweak(&mut settings);
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

#[derive(Clone, Debug)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub sign_key: String,
    pub user_id: String,
}

static CODES: AtomicU64 = AtomicU64::new(0);

/// A fresh sandbox login code for `name` (each code works once; the openid is stable).
pub fn code_for(name: &str) -> String {
    format!("test-{name}.{}", CODES.fetch_add(1, Ordering::Relaxed))
}

pub fn nonce() -> String {
    format!("n{}", uuid::Uuid::now_v7().simple())
}

pub async fn post_json(app: &impl Server, path: &str, body: Value) -> reqwest::Response {
    app.client()
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub async fn login(app: &impl Server, name: &str) -> Session {
    let res = post_json(
        app,
        "/api/auth/wechat-login",
        json!({"code": code_for(name)}),
    )
    .await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let body: Value = res.json().await.unwrap();
    Session {
        access_token: body["access_token"].as_str().unwrap().into(),
        refresh_token: body["refresh_token"].as_str().unwrap().into(),
        sign_key: body["sign_key"].as_str().unwrap().into(),
        user_id: body["user"]["id"].as_str().unwrap().into(),
    }
}

pub async fn admin_token(app: &impl Server) -> String {
    let res = post_json(
        app,
        "/api/admin/login",
        json!({"username": "admin", "password": ADMIN_PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

/// The signature headers for a request, as the mini-program computes them.
pub fn signature_headers(
    sign_key: &str,
    method: &str,
    path: &str,
    body: &[u8],
    ts: i64,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    let canonical = signing::canonical_string(method, path, &ts.to_string(), nonce, body);
    vec![
        ("X-Timestamp", ts.to_string()),
        ("X-Nonce", nonce.to_string()),
        ("X-Signature", signing::sign(sign_key, &canonical)),
    ]
}

/// Builds a signed request (not sent), so tests can send it twice or alter it.
pub fn signed_request(
    app: &impl Server,
    s: &Session,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> reqwest::RequestBuilder {
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    let mut req = app
        .client()
        .request(method.parse().unwrap(), app.url(path))
        .bearer_auth(&s.access_token);
    for (k, v) in signature_headers(&s.sign_key, method, path, &bytes, now, &nonce()) {
        req = req.header(k, v);
    }
    if body.is_some() {
        req = req.header("Content-Type", "application/json").body(bytes);
    }
    req
}

pub async fn signed(
    app: &impl Server,
    s: &Session,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    signed_request(app, s, method, path, body.as_ref())
        .send()
        .await
        .unwrap()
}

pub async fn get_auth(app: &impl Server, token: &str, path: &str) -> reqwest::Response {
    app.client()
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

pub fn merchant_body(name: &str) -> Value {
    json!({
        "merchant_name": name,
        "contact_name": "Wang",
        "contact_phone": "13912345678",
        "business_license": "91110000MA01ABCD2X",
        "address": "1 Chang'an Avenue, Beijing",
    })
}

/// A user who owns an approved merchant: (session, merchant id).
pub async fn approved_merchant(app: &impl Server, name: &str) -> (Session, String) {
    let s = login(app, name).await;
    let res = signed(
        app,
        &s,
        "POST",
        "/api/merchants",
        Some(merchant_body(&format!("{name} shop"))),
    )
    .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let admin = admin_token(app).await;
    let res = app
        .client()
        .post(app.url(&format!("/api/admin/merchants/{id}/approve")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    (s, id)
}

/// Another instance of the server on the same database as `app` (and the same Redis prefix,
/// so shared state is shared), with settings adjusted by `tweak`.
pub struct OtherInstance {
    pub address: String,
    pub state: points_app::http::AppState,
    _data_dir: tempfile::TempDir,
}

impl OtherInstance {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }
}

pub async fn spawn_other_instance(
    app: &TestApp,
    tweak: impl FnOnce(&mut Settings),
) -> OtherInstance {
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&app.db, data_dir.path());
    settings.admin_password = Some(ADMIN_PASSWORD.to_string().into());
    settings.redis_prefix = app.state.settings.redis_prefix.clone();
    tweak(&mut settings);
    let built = Application::build(settings)
        .await
        .expect("application builds");
    let port = built.port();
    let state = built.state().clone();
    actix_web::rt::spawn(built.run_until_stopped());
    OtherInstance {
        address: format!("http://127.0.0.1:{port}"),
        state,
        _data_dir: data_dir,
    }
}
