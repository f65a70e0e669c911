//! The HTTP client of the virtual users: the server's API as API.md describes it (bearer
//! tokens, signed mutating calls) and the sandbox's control calls. Every call is timed and
//! recorded under a step name; a failure is recorded with its kind and returned as `Err`.

use std::time::{Duration, Instant};

use points_app::security::signing;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::stats::Recorder;

#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    /// The server (or the proxy in front of the instances).
    pub base: String,
    pub sandbox: String,
    pub rec: Recorder,
}

#[derive(Clone, Debug)]
pub struct Session {
    pub access_token: String,
    pub sign_key: String,
    pub user_id: String,
}

/// Why a call failed, as the scenario needs to know it.
#[derive(Debug)]
pub enum CallError {
    /// The budget of requests is spent or the run is stopping: not an error.
    Stopped,
    /// The server answered with this status and error code (already recorded).
    Status(StatusCode, String),
    /// No answer (connection refused or reset, timeout): the outcome is unknown.
    Transport,
}

fn nonce() -> String {
    format!("n{}", uuid::Uuid::now_v7().simple())
}

impl Api {
    pub fn new(
        base: String,
        sandbox: String,
        rec: Recorder,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(4096)
            // Shorter than the server's and the sandbox's 75 s keep-alive, so the generator
            // never sends on a connection the other side is closing.
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Api {
            http,
            base,
            sandbox,
            rec,
        })
    }

    /// Sends one request and records it under `step`; answers the JSON body of a 2xx.
    pub async fn send(
        &self,
        step: &str,
        req: reqwest::RequestBuilder,
        expected: &[u16],
    ) -> Result<Value, CallError> {
        if !self.rec.admit() {
            return Err(CallError::Stopped);
        }
        let started = Instant::now();
        match req.send().await {
            Ok(res) => {
                let status = res.status();
                let bytes = res.bytes().await;
                let took = started.elapsed();
                let body: Value = bytes
                    .as_ref()
                    .ok()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                if status.is_success() || expected.contains(&status.as_u16()) {
                    self.rec.ok(step, took);
                    if status.is_success() {
                        Ok(body)
                    } else {
                        let code = body["code"].as_str().unwrap_or("").to_string();
                        Err(CallError::Status(status, code))
                    }
                } else {
                    let code = body["code"].as_str().unwrap_or("").to_string();
                    let kind = format!("http {} {}", status.as_u16(), code);
                    let detail = match &bytes {
                        Ok(b) => String::from_utf8_lossy(b).to_string(),
                        Err(e) => e.to_string(),
                    };
                    self.rec.error(step, kind.trim(), &detail, took);
                    Err(CallError::Status(status, code))
                }
            }
            Err(e) => {
                let took = started.elapsed();
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "transport"
                };
                self.rec
                    .error(step, kind, &e.without_url().to_string(), took);
                Err(CallError::Transport)
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn get(&self, s: &Session, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(&s.access_token)
    }

    /// A mutating call signed as API.md says: HMAC-SHA256 over method, path, timestamp,
    /// nonce and the body's hash, keyed by the session's `sign_key`.
    pub fn signed(
        &self,
        s: &Session,
        method: Method,
        path: &str,
        body: &Value,
    ) -> reqwest::RequestBuilder {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let ts = chrono::Utc::now().timestamp().to_string();
        let nonce = nonce();
        let canonical = signing::canonical_string(method.as_str(), path, &ts, &nonce, &bytes);
        let signature = signing::sign(&s.sign_key, &canonical);
        self.http
            .request(method, self.url(path))
            .bearer_auth(&s.access_token)
            .header("X-Timestamp", ts)
            .header("X-Nonce", nonce)
            .header("X-Signature", signature)
            .header("Content-Type", "application/json")
            .body(bytes)
    }

    /// Logs in through the sandbox's `jscode2session`: `test-<name>.<n>` is `<name>`.
    pub async fn login(&self, name: &str) -> Result<Session, CallError> {
        let code = format!("test-{name}.{}", uuid::Uuid::now_v7().simple());
        let body = self
            .send(
                "login",
                self.http
                    .post(self.url("/api/auth/wechat-login"))
                    .json(&json!({ "code": code })),
                &[],
            )
            .await?;
        session_of(&body).ok_or(CallError::Transport)
    }

    pub async fn admin_login(&self, password: &str) -> Result<String, CallError> {
        let body = self
            .send(
                "admin_login",
                self.http
                    .post(self.url("/api/admin/login"))
                    .json(&json!({"username": "admin", "password": password})),
                &[],
            )
            .await?;
        body["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or(CallError::Transport)
    }

    /// Switches a risk rule off through the admin API, as an operator would.
    pub async fn disable_risk_rule(&self, admin: &str, name: &str) -> Result<(), CallError> {
        let list = self
            .send(
                "admin_risk_rules",
                self.http
                    .get(self.url("/api/admin/risk-rules"))
                    .bearer_auth(admin),
                &[],
            )
            .await?;
        let id = list["items"]
            .as_array()
            .and_then(|rules| rules.iter().find(|r| r["name"] == name))
            .and_then(|r| r["id"].as_str())
            .map(str::to_string)
            .ok_or(CallError::Transport)?;
        self.send(
            "admin_risk_rules",
            self.http
                .patch(self.url(&format!("/api/admin/risk-rules/{id}")))
                .bearer_auth(admin)
                .json(&json!({"enabled": false})),
            &[],
        )
        .await?;
        Ok(())
    }

    /// The sandbox's control call: the shopper pays at WeChat.
    pub async fn sandbox_pay(&self, order_no: &str, query: &str) -> Result<Value, CallError> {
        let url = format!("{}/sandbox/orders/{order_no}/pay{query}", self.sandbox);
        self.send("sandbox_pay", self.http.post(url), &[]).await
    }

    pub async fn sandbox_refund_succeeds(
        &self,
        out_refund_no: &str,
        query: &str,
    ) -> Result<Value, CallError> {
        let url = format!(
            "{}/sandbox/refunds/{out_refund_no}/succeed{query}",
            self.sandbox
        );
        self.send("sandbox_refund", self.http.post(url), &[]).await
    }
}

pub fn session_of(body: &Value) -> Option<Session> {
    Some(Session {
        access_token: body["access_token"].as_str()?.to_string(),
        sign_key: body["sign_key"].as_str()?.to_string(),
        user_id: body["user"]["id"].as_str()?.to_string(),
    })
}
