//! WeChat metrics: calls by name and outcome, their latency, and refused notifications.
//! Created unregistered with the client; `register` adds them to the server's registry.

use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

use super::error::WechatError;
use crate::telemetry::Metrics;

const BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Clone, Debug)]
pub struct WechatMetrics {
    /// `call` (prepay, query, close, refund, refund_query, code2session, token, subscribe_send,
    /// wxacode, trade_bill, bill_download)
    /// by `outcome` (ok, pay_error, mp_error, verify, timeout, transport, protocol, invalid).
    pub calls_total: IntCounterVec,
    pub call_duration_seconds: HistogramVec,
    /// Refused notifications by reason (the `NotifyError` variant).
    pub notifications_refused_total: IntCounterVec,
}

impl WechatMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        Ok(Self {
            calls_total: IntCounterVec::new(
                Opts::new(
                    "wechat_calls_total",
                    "Calls to WeChat (each attempt) by call and outcome",
                ),
                &["call", "outcome"],
            )?,
            call_duration_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "wechat_call_duration_seconds",
                    "Latency of one call attempt to WeChat",
                )
                .buckets(BUCKETS.to_vec()),
                &["call"],
            )?,
            notifications_refused_total: IntCounterVec::new(
                Opts::new(
                    "wechat_notifications_refused_total",
                    "WeChat notifications refused, by reason",
                ),
                &["reason"],
            )?,
        })
    }

    pub fn register(&self, metrics: &Metrics) {
        metrics.register(Box::new(self.calls_total.clone()));
        metrics.register(Box::new(self.call_duration_seconds.clone()));
        metrics.register(Box::new(self.notifications_refused_total.clone()));
        // Every series exists from the first scrape (at 0), so rates and alerts on a quiet
        // instance read 0, not "no data".
        for call in CALLS {
            self.call_duration_seconds.with_label_values(&[call]);
            for outcome in OUTCOMES {
                self.calls_total.with_label_values(&[call, outcome]);
            }
        }
        for reason in super::notify::REFUSAL_REASONS {
            self.notifications_refused_total
                .with_label_values(&[reason]);
        }
    }

    pub(super) fn observe<T>(
        &self,
        call: &str,
        elapsed: Duration,
        result: &Result<T, WechatError>,
    ) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(WechatError::Pay { .. }) => "pay_error",
            Err(WechatError::MiniProgram { .. }) => "mp_error",
            Err(WechatError::Verify(_)) => "verify",
            Err(WechatError::Timeout) => "timeout",
            Err(WechatError::Transport(_)) => "transport",
            Err(WechatError::Protocol(_)) => "protocol",
            Err(WechatError::InvalidRequest(_)) => "invalid",
            Err(WechatError::Sign(_)) => "sign",
        };
        self.calls_total.with_label_values(&[call, outcome]).inc();
        self.call_duration_seconds
            .with_label_values(&[call])
            .observe(elapsed.as_secs_f64());
    }
}

/// The metric label of a Pay or mini-program call, from its method and path.
/// The `call` label values ([`call_label`]).
const CALLS: [&str; 12] = [
    "prepay",
    "close",
    "query",
    "refund",
    "refund_query",
    "code2session",
    "token",
    "subscribe_send",
    "wxacode",
    "trade_bill",
    "bill_download",
    "other",
];

/// The `outcome` label values ([`WechatMetrics::observe`]).
const OUTCOMES: [&str; 9] = [
    "ok",
    "pay_error",
    "mp_error",
    "verify",
    "timeout",
    "transport",
    "protocol",
    "invalid",
    "sign",
];

pub(super) fn call_label(method: &str, path: &str) -> &'static str {
    match (method, path) {
        ("POST", "/v3/pay/transactions/jsapi") => "prepay",
        ("POST", p) if p.ends_with("/close") => "close",
        ("GET", p) if p.starts_with("/v3/pay/transactions/") => "query",
        ("POST", "/v3/refund/domestic/refunds") => "refund",
        ("GET", p) if p.starts_with("/v3/refund/domestic/refunds/") => "refund_query",
        (_, "/sns/jscode2session") => "code2session",
        (_, "/cgi-bin/token") => "token",
        (_, "/cgi-bin/message/subscribe/send") => "subscribe_send",
        (_, "/wxa/getwxacodeunlimit") => "wxacode",
        ("GET", p) if p.starts_with("/v3/bill/tradebill") => "trade_bill",
        ("GET", p) if p.starts_with("/v3/billdownload/") => "bill_download",
        _ => "other",
    }
}
