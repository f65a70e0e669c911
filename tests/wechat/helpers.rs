use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use points_app::sandbox::{self, SandboxConfig, SandboxHandle};
use points_app::wechat::{
    self, NotificationVerifier, VerifiedNotification, WechatClient, WechatConfig,
};

pub struct TestSandbox {
    pub handle: SandboxHandle,
    pub client: WechatClient,
    pub verifier: NotificationVerifier,
    pub http: reqwest::Client,
    pub _dir: tempfile::TempDir,
}

impl TestSandbox {
    /// A sandbox on port 0 with fresh keys; retries run 1000x faster than WeChat's.
    pub async fn start() -> Self {
        Self::start_with_notify("http://127.0.0.1:9").await
    }

    pub async fn start_with_notify(notify_base: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_template_keys(&dir.path().join("sandbox"));
        let mut config = SandboxConfig::new(dir.path().join("sandbox"), 0);
        config.time_scale = 0.001;
        let handle = sandbox::start(&config).await.unwrap();
        let wechat_config =
            wechat::sandbox_client_config(handle.keys(), &handle.base_url(), notify_base);
        let verifier = wechat::verifier_for(&wechat_config);
        TestSandbox {
            client: WechatClient::new(wechat_config).unwrap(),
            verifier,
            handle,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    pub fn config(&self) -> WechatConfig {
        self.client.config().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.handle.base_url(), path)
    }

    pub async fn control(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.http.post(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn get(&self, path: &str) -> serde_json::Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Deliveries recorded by the sandbox for an order.
    pub async fn deliveries(&self, out_trade_no: &str) -> Vec<serde_json::Value> {
        let v = self
            .get(&format!(
                "/sandbox/notifications?out_trade_no={out_trade_no}"
            ))
            .await;
        v["deliveries"].as_array().cloned().unwrap_or_default()
    }
}

/// RSA key generation is the slow part of a sandbox start: generate one set per test process
/// and give each sandbox its own copy (each still has its own orders and deliveries).
fn copy_template_keys(to: &std::path::Path) {
    static TEMPLATE: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let template = TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        points_app::sandbox::SandboxKeys::load_or_generate(dir.path()).unwrap();
        dir
    });
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(template.path()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// What the receiver saw: every request, and the ones the verifier accepted.
#[derive(Default)]
pub struct Received {
    pub attempts: AtomicU32,
    pub accepted: Mutex<Vec<VerifiedNotification>>,
    pub refused: Mutex<Vec<String>>,
}

struct ReceiverState {
    verifier: NotificationVerifier,
    fail_first: u32,
    received: Arc<Received>,
}

/// A stand-in for the server's notify endpoint: answers 500 to the first `fail_first`
/// requests, then verifies and answers 204 (401 when verification fails).
pub struct Receiver {
    pub base_url: String,
    pub received: Arc<Received>,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    pub async fn start(verifier: NotificationVerifier, fail_first: u32) -> Self {
        let received = Arc::new(Received::default());
        let state = web::Data::new(ReceiverState {
            verifier,
            fail_first,
            received: received.clone(),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/notify", web::post().to(receive))
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Receiver {
            base_url: format!("http://127.0.0.1:{port}"),
            received,
            server: handle,
        }
    }

    pub fn accepted(&self) -> Vec<VerifiedNotification> {
        self.received.accepted.lock().unwrap().clone()
    }

    /// Waits until `n` notifications were accepted (or fails after 10 s).
    pub async fn wait_for(&self, n: usize) -> Vec<VerifiedNotification> {
        for _ in 0..200 {
            let got = self.accepted();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "expected {n} notifications, got {:?}; refused {:?}",
            self.accepted(),
            self.received.refused.lock().unwrap()
        );
    }

    pub async fn stop(&self) {
        self.server.stop(false).await;
    }
}

async fn receive(
    state: web::Data<ReceiverState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let n = state.received.attempts.fetch_add(1, Ordering::SeqCst) + 1;
    if n <= state.fail_first {
        return HttpResponse::InternalServerError()
            .json(serde_json::json!({"code": "FAIL", "message": "try later"}));
    }
    match state.verifier.verify_and_decrypt(req.headers(), &body) {
        Ok(v) => {
            state.received.accepted.lock().unwrap().push(v);
            HttpResponse::NoContent().finish()
        }
        Err(e) => {
            state.received.refused.lock().unwrap().push(e.to_string());
            HttpResponse::Unauthorized()
                .json(serde_json::json!({"code": "FAIL", "message": "bad signature"}))
        }
    }
}

pub fn prepay_request(out_trade_no: &str, total_fen: i64, openid: &str) -> wechat::PrepayRequest {
    wechat::PrepayRequest {
        description: "Points shop - coffee".into(),
        out_trade_no: out_trade_no.into(),
        time_expire: None,
        attach: Some("store=1".into()),
        total_fen,
        payer_openid: openid.into(),
        notify_path: "/notify".into(),
    }
}
