//! The WeChat Pay v3 client: signed requests, verified answers, typed errors, and retries
//! only for calls that are safe to repeat.

use std::sync::Arc;

use reqwest::Method;
use serde::de::DeserializeOwned;

use super::config::WechatConfig;
use super::error::{PayErrorCode, WechatError};
use super::metrics::{WechatMetrics, call_label};
use super::sign::{HEADER_NONCE, HEADER_SERIAL, HeaderSource as _, new_nonce};
use super::token::TokenCache;
use super::types::{
    JsapiPrepayBody, PayParams, Payer, PrepayAmount, PrepayRequest, PrepayResponse, Refund,
    RefundAmountRequest, RefundBody, RefundRequest, RefundTarget, Transaction,
};

const USER_AGENT: &str = concat!("points-app/", env!("CARGO_PKG_VERSION"), " wechatpay-v3");

/// Largest order WeChat Pay takes in one JSAPI payment here (fen): a sanity bound that
/// stops a unit mistake (yuan vs fen) before it leaves the process.
pub const MAX_TOTAL_FEN: i64 = 100_000_000;

/// Cheap to clone: everything lives behind one `Arc`.
#[derive(Clone, Debug)]
pub struct WechatClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) config: WechatConfig,
    pub(super) http: reqwest::Client,
    pub(super) token: TokenCache,
    pub(super) metrics: WechatMetrics,
}

impl WechatClient {
    pub fn new(config: WechatConfig) -> Result<Self, WechatError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.network.connect_timeout)
            .timeout(config.network.request_timeout)
            // An idle connection is dropped here before the other side is likely to close
            // it (the sandbox keeps them 75 s), so a call is not sent on a closing one.
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| WechatError::Transport(e.without_url().to_string()))?;
        let metrics = WechatMetrics::new().map_err(|e| WechatError::Protocol(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http,
                token: TokenCache::default(),
                metrics,
            }),
        })
    }

    pub fn config(&self) -> &WechatConfig {
        &self.inner.config
    }

    /// Call counts and latencies; `metrics().register(&server_metrics)` exposes them.
    pub fn metrics(&self) -> &WechatMetrics {
        &self.inner.metrics
    }

    pub(super) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// `POST /v3/pay/transactions/jsapi`. Safe to repeat: WeChat answers the same
    /// `prepay_id` for the same `out_trade_no` and parameters.
    pub async fn jsapi_prepay(&self, req: &PrepayRequest) -> Result<PrepayResponse, WechatError> {
        check_out_no("out_trade_no", &req.out_trade_no)?;
        if req.total_fen < 1 || req.total_fen > MAX_TOTAL_FEN {
            return Err(WechatError::InvalidRequest(format!(
                "total must be 1..={MAX_TOTAL_FEN} fen"
            )));
        }
        let c = self.config();
        let body = JsapiPrepayBody {
            appid: c.appid.clone(),
            mchid: c.mchid.clone(),
            description: req.description.clone(),
            out_trade_no: req.out_trade_no.clone(),
            time_expire: req.time_expire.clone(),
            attach: req.attach.clone(),
            notify_url: c.notify_url(&req.notify_path),
            amount: PrepayAmount {
                total: req.total_fen,
                currency: "CNY".into(),
            },
            payer: Payer {
                openid: req.payer_openid.clone(),
            },
        };
        self.pay_json(Method::POST, "/v3/pay/transactions/jsapi", Some(&body))
            .await
    }

    /// `GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=…`.
    pub async fn query_by_out_trade_no(
        &self,
        out_trade_no: &str,
    ) -> Result<Transaction, WechatError> {
        check_out_no("out_trade_no", out_trade_no)?;
        let path = format!(
            "/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={}",
            self.config().mchid
        );
        self.pay_json::<(), _>(Method::GET, &path, None).await
    }

    /// `GET /v3/pay/transactions/id/{transaction_id}?mchid=…`.
    pub async fn query_by_transaction_id(
        &self,
        transaction_id: &str,
    ) -> Result<Transaction, WechatError> {
        check_out_no("transaction_id", transaction_id)?;
        let path = format!(
            "/v3/pay/transactions/id/{transaction_id}?mchid={}",
            self.config().mchid
        );
        self.pay_json::<(), _>(Method::GET, &path, None).await
    }

    /// `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close`; closing twice is harmless.
    pub async fn close(&self, out_trade_no: &str) -> Result<(), WechatError> {
        check_out_no("out_trade_no", out_trade_no)?;
        let path = format!("/v3/pay/transactions/out-trade-no/{out_trade_no}/close");
        let body = serde_json::json!({ "mchid": self.config().mchid });
        let bytes = serde_json::to_vec(&body).map_err(|e| WechatError::Protocol(e.to_string()))?;
        let (status, _) = self.pay_call(Method::POST, &path, Some(bytes)).await?;
        if status == 204 || status == 200 {
            Ok(())
        } else {
            Err(WechatError::Protocol(format!("close answered {status}")))
        }
    }

    /// `POST /v3/refund/domestic/refunds`. Safe to repeat: `out_refund_no` refunds once.
    pub async fn refund(&self, req: &RefundRequest) -> Result<Refund, WechatError> {
        check_out_no("out_refund_no", &req.out_refund_no)?;
        if req.refund_fen < 1 || req.refund_fen > req.total_fen || req.total_fen > MAX_TOTAL_FEN {
            return Err(WechatError::InvalidRequest(
                "refund must be 1..=total fen".into(),
            ));
        }
        let (transaction_id, out_trade_no) = match &req.target {
            RefundTarget::TransactionId(id) => (Some(id.clone()), None),
            RefundTarget::OutTradeNo(no) => (None, Some(no.clone())),
        };
        let body = RefundBody {
            transaction_id,
            out_trade_no,
            out_refund_no: req.out_refund_no.clone(),
            reason: req.reason.clone(),
            notify_url: req
                .notify_path
                .as_deref()
                .map(|p| self.config().notify_url(p)),
            amount: RefundAmountRequest {
                refund: req.refund_fen,
                total: req.total_fen,
                currency: "CNY".into(),
            },
        };
        self.pay_json(Method::POST, "/v3/refund/domestic/refunds", Some(&body))
            .await
    }

    /// `GET /v3/refund/domestic/refunds/{out_refund_no}`.
    pub async fn query_refund(&self, out_refund_no: &str) -> Result<Refund, WechatError> {
        check_out_no("out_refund_no", out_refund_no)?;
        let path = format!("/v3/refund/domestic/refunds/{out_refund_no}");
        self.pay_json::<(), _>(Method::GET, &path, None).await
    }

    /// Parameters for `wx.requestPayment`, signed with the merchant key over
    /// `appId\ntimeStamp\nnonceStr\nprepay_id=…\n`.
    pub fn pay_params(&self, prepay_id: &str) -> Result<PayParams, WechatError> {
        let timestamp = chrono::Utc::now().timestamp().to_string();
        self.pay_params_at(prepay_id, &timestamp, &new_nonce())
    }

    /// [`Self::pay_params`] with a given time and nonce (deterministic, for tests).
    pub fn pay_params_at(
        &self,
        prepay_id: &str,
        time_stamp: &str,
        nonce_str: &str,
    ) -> Result<PayParams, WechatError> {
        let c = self.config();
        let package = format!("prepay_id={prepay_id}");
        let message = format!("{}\n{time_stamp}\n{nonce_str}\n{package}\n", c.appid);
        let pay_sign = c.merchant.sign(message.as_bytes())?;
        Ok(PayParams {
            time_stamp: time_stamp.to_string(),
            nonce_str: nonce_str.to_string(),
            package,
            sign_type: "RSA".into(),
            pay_sign,
        })
    }

    /// A signed GET of a Pay v3 path (with its query), the verified JSON answer.
    pub(super) async fn pay_get<T: DeserializeOwned>(&self, path: &str) -> Result<T, WechatError> {
        self.pay_json::<(), _>(Method::GET, path, None).await
    }

    async fn pay_json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, WechatError> {
        let bytes = match body {
            Some(b) => {
                Some(serde_json::to_vec(b).map_err(|e| WechatError::Protocol(e.to_string()))?)
            }
            None => None,
        };
        let (_, answer) = self.pay_call(method, path, bytes).await?;
        serde_json::from_slice(&answer).map_err(|e| WechatError::Protocol(format!("{path}: {e}")))
    }

    /// Sends one signed call, verifying the answer; repeats transient failures with backoff.
    /// Every Pay v3 call here is safe to repeat: prepay by `out_trade_no`, refund by
    /// `out_refund_no`, close and the queries change nothing the second time.
    async fn pay_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Vec<u8>), WechatError> {
        let policy = &self.config().network;
        let mut backoff = policy.initial_backoff;
        let mut attempt = 1;
        loop {
            let started = std::time::Instant::now();
            let result = self.pay_call_once(&method, path, body.as_deref()).await;
            self.metrics().observe(
                call_label(method.as_str(), path),
                started.elapsed(),
                &result,
            );
            match result {
                Err(e) if e.is_transient() && attempt < policy.max_attempts => {
                    tracing::warn!(category = "system", path, attempt, error = %e, "wechat pay call failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn pay_call_once(
        &self,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(u16, Vec<u8>), WechatError> {
        let c = self.config();
        let timestamp = chrono::Utc::now().timestamp();
        let nonce = new_nonce();
        let body_bytes = body.unwrap_or_default();
        let authorization =
            c.merchant
                .authorization(method.as_str(), path, timestamp, &nonce, body_bytes)?;
        let mut request = self
            .inner
            .http
            .request(method.clone(), format!("{}{}", c.pay_base_url, path))
            .header("Authorization", authorization)
            .header("Accept", "application/json");
        if let Some(b) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(b.to_vec());
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let answer = response.bytes().await.map_err(transport_error)?.to_vec();
        let signed = headers.get(super::sign::HEADER_SIGNATURE).is_some();
        // Success must be signed; error answers are checked when signed (gateways in front of
        // WeChat may answer unsigned errors, which carry no money anyway).
        let must_verify = (200..300).contains(&status) || signed;
        if must_verify && let Err(e) = c.platform.verify_headers(&headers, &answer) {
            tracing::warn!(
                category = "security",
                path,
                serial = headers.header(HEADER_SERIAL).unwrap_or(""),
                nonce = headers.header(HEADER_NONCE).unwrap_or(""),
                error = %e,
                "wechat pay answer refused"
            );
            return Err(e.into());
        }
        if (200..300).contains(&status) {
            return Ok((status, answer));
        }
        Err(pay_error(status, &answer))
    }
}

/// Turns a 4xx/5xx answer into a typed error.
pub(super) fn pay_error(status: u16, answer: &[u8]) -> WechatError {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<ErrorBody>(answer) {
        Ok(e) => WechatError::Pay {
            status,
            code: PayErrorCode::parse(&e.code),
            message: e.message,
        },
        Err(_) if status >= 500 => WechatError::Pay {
            status,
            code: PayErrorCode::SystemError,
            message: String::new(),
        },
        Err(_) => WechatError::Protocol(format!("status {status} without an error body")),
    }
}

/// A reqwest error without its URL (URLs of the mini-program API carry secrets).
pub(super) fn transport_error(e: reqwest::Error) -> WechatError {
    if e.is_timeout() {
        WechatError::Timeout
    } else {
        WechatError::Transport(e.without_url().to_string())
    }
}

/// Out-numbers go into URL paths: only the characters WeChat allows, 1..=64 long.
fn check_out_no(field: &str, value: &str) -> Result<(), WechatError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*'));
    if ok {
        Ok(())
    } else {
        Err(WechatError::InvalidRequest(format!(
            "{field} has characters WeChat refuses"
        )))
    }
}
