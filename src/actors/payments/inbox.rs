//! WeChat's payment and refund notifications: verified over the raw body, decrypted, handed
//! to the shard that owns the order, and logged (every one, accepted or refused) in the
//! order writer's next group commit. The answer tells the HTTP layer what to send WeChat.

use std::num::NonZeroU32;

use chrono::Utc;

use super::supervisor::Payments;
use super::{PaymentError, Settled};
use crate::storage::outbox::NotificationLogRow;
use crate::wechat::NotificationResource;
use crate::wechat::sign::HeaderSource;

/// Which notification route it came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyKind {
    Pay,
    Refund,
}

impl NotifyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::Pay => "pay",
            NotifyKind::Refund => "refund",
        }
    }
}

/// What to answer WeChat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyAnswer {
    /// Recorded: do not send it again (204).
    Accepted,
    /// Refused or failed: WeChat's failure body with this status and message; a 5xx makes
    /// WeChat send it again.
    Failed { status: u16, message: &'static str },
}

/// Longest raw body kept in the log for a verified notification (WeChat's own are a few
/// hundred bytes).
const MAX_LOGGED_BODY: usize = 60_000;
/// Longest raw body kept for a refused one: anyone can send those, so only a sample is kept.
pub const MAX_REFUSED_BODY: usize = 2_048;
/// Refused notifications written to the log per instance: a steady 1 a second after a burst
/// of 20; the rest are only counted (`wechat_notifications_unlogged_total`).
pub const REFUSED_LOG_QUOTA: governor::Quota =
    governor::Quota::per_second(NonZeroU32::MIN).allow_burst(NonZeroU32::MIN.saturating_add(19));
/// How long refused notifications are kept: with the quota, at most about 86,400 rows of at
/// most 2 KiB a day per instance, and 7 days of them.
pub const REFUSED_LOG_RETENTION: chrono::Duration = chrono::Duration::days(7);

/// The headers a notification's signature needs, kept for a replay.
const SIGNATURE_HEADERS: [&str; 5] = [
    "Wechatpay-Serial",
    "Wechatpay-Timestamp",
    "Wechatpay-Nonce",
    "Wechatpay-Signature",
    "Wechatpay-Signature-Type",
];

/// WeChat's signature headers as a JSON object, each at most 1,024 characters.
fn signature_headers<H: HeaderSource + ?Sized>(headers: &H) -> String {
    let kept: serde_json::Map<String, serde_json::Value> = SIGNATURE_HEADERS
        .iter()
        .filter_map(|name| {
            let v: String = headers.header(name)?.chars().take(1_024).collect();
            Some((name.to_string(), serde_json::Value::String(v)))
        })
        .collect();
    serde_json::Value::Object(kept).to_string()
}

/// Stored headers, readable by the verifier again.
struct StoredHeaders(std::collections::HashMap<String, String>);

impl HeaderSource for StoredHeaders {
    fn header(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Replayed {
    /// `ok`, `duplicate`, `ignored`, `rejected` or `error`, as for a delivery.
    pub result: String,
    /// The log row the replay wrote.
    pub log_id: String,
}

impl Payments {
    /// Verifies, settles and logs one notification.
    pub async fn receive_notification<H: HeaderSource + ?Sized>(
        &self,
        kind: NotifyKind,
        headers: &H,
        body: &[u8],
    ) -> NotifyAnswer {
        self.receive(kind, headers, body, None).await.0
    }

    /// Runs a logged notification through the same path again: verified as of the time it
    /// arrived (its signature, key and decryption; the freshness window as it was then),
    /// then settled. Idempotent as every delivery is: an applied one answers `duplicate` and
    /// changes nothing.
    pub async fn replay_notification(&self, row: &NotificationLogRow) -> Replayed {
        let kind = match row.kind.as_str() {
            "refund" => NotifyKind::Refund,
            "pay" => NotifyKind::Pay,
            _ if row.event_type.starts_with("REFUND") => NotifyKind::Refund,
            _ => NotifyKind::Pay,
        };
        let headers: std::collections::HashMap<String, String> = row
            .headers
            .as_deref()
            .and_then(|h| serde_json::from_str(h).ok())
            .unwrap_or_default();
        let at = row.received_at.and_utc().timestamp();
        let (_, result, log_id) = self
            .receive(
                kind,
                &StoredHeaders(headers),
                row.raw_body.as_bytes(),
                Some(at),
            )
            .await;
        Replayed {
            result: result.to_string(),
            log_id,
        }
    }

    /// One notification: verified (as of `as_of` for a replay, else now), settled, logged.
    /// Returns the answer, the result and the log row's id.
    async fn receive<H: HeaderSource + ?Sized>(
        &self,
        kind: NotifyKind,
        headers: &H,
        body: &[u8],
        as_of: Option<i64>,
    ) -> (NotifyAnswer, &'static str, String) {
        let core = self.core();
        let now = Utc::now();
        let serial = headers.header("Wechatpay-Serial").unwrap_or("").to_string();
        let mut log = NotificationLogRow {
            id: uuid::Uuid::now_v7().to_string(),
            notification_id: String::new(),
            event_type: String::new(),
            out_trade_no: None,
            out_refund_no: None,
            serial: serial.chars().take(64).collect(),
            raw_body: String::from_utf8_lossy(body)
                .chars()
                .take(MAX_LOGGED_BODY)
                .collect(),
            result: String::new(),
            error: None,
            received_at: now.naive_utc(),
            kind: kind.as_str().to_string(),
            headers: Some(signature_headers(headers)),
        };
        let log_id = log.id.clone();
        let count = |result: &str| {
            core.metrics
                .notifications
                .with_label_values(&[kind.as_str(), result])
                .inc();
        };
        let verifier = as_of.map(|t| self.verifier().as_of(t));
        let verified = match verifier
            .as_ref()
            .unwrap_or(self.verifier())
            .verify_and_decrypt(headers, body)
        {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(category = "security", kind = kind.as_str(), serial = %log.serial, error = %e, "notification refused");
                count("rejected");
                // A replay is an operator's, not anyone's: always logged.
                if as_of.is_some() || self.may_log_refusal() {
                    log.result = "rejected".into();
                    log.error = Some(e.to_string().chars().take(250).collect());
                    log.raw_body = log.raw_body.chars().take(MAX_REFUSED_BODY).collect();
                    self.log(log).await;
                } else {
                    core.metrics.notifications_unlogged.inc();
                }
                return (
                    NotifyAnswer::Failed {
                        status: e.http_status(),
                        message: "verification failed",
                    },
                    "rejected",
                    log_id,
                );
            }
        };
        log.notification_id = verified.id.chars().take(64).collect();
        log.event_type = verified.event_type.chars().take(64).collect();
        let outcome = match verified.resource {
            NotificationResource::Transaction(txn) => {
                log.out_trade_no = Some(txn.out_trade_no.chars().take(32).collect());
                self.settle(txn).await
            }
            NotificationResource::Refund(refund) => {
                log.out_refund_no = Some(refund.out_refund_no.chars().take(64).collect());
                self.refund_notified(refund).await
            }
        };
        let (result, answer) = match outcome {
            Ok(Settled::Duplicate) => ("duplicate", NotifyAnswer::Accepted),
            Ok(_) => ("ok", NotifyAnswer::Accepted),
            Err(e @ PaymentError::Mismatch(_)) => {
                tracing::error!(category = "security", kind = kind.as_str(), order_no = log.out_trade_no.as_deref().unwrap_or(""), out_refund_no = log.out_refund_no.as_deref().unwrap_or(""), error = %e, "notification does not match its order; refused");
                log.error = Some(e.to_string());
                (
                    "rejected",
                    NotifyAnswer::Failed {
                        status: 400,
                        message: "does not match the order",
                    },
                )
            }
            // Signed by WeChat, yet about an order or refund this system never made, or a
            // report the order cannot take (CLOSED for a paid order). Sending it again
            // cannot change that: it is recorded, alerted on, and acknowledged.
            Err(e @ (PaymentError::OrderNotFound | PaymentError::Illegal(_))) => {
                tracing::error!(category = "security", kind = kind.as_str(), order_no = log.out_trade_no.as_deref().unwrap_or(""), out_refund_no = log.out_refund_no.as_deref().unwrap_or(""), error = %e, "verified notification that cannot apply; recorded and acknowledged");
                log.error = Some(e.to_string().chars().take(250).collect());
                ("ignored", NotifyAnswer::Accepted)
            }
            Err(e @ PaymentError::Unavailable(_)) => {
                log.error = Some(e.to_string());
                (
                    "error",
                    NotifyAnswer::Failed {
                        status: 503,
                        message: "busy",
                    },
                )
            }
            Err(e) => {
                tracing::error!(category = "business", kind = kind.as_str(), order_no = log.out_trade_no.as_deref().unwrap_or(""), out_refund_no = log.out_refund_no.as_deref().unwrap_or(""), error = %e, "notification processing failed; WeChat will retry");
                log.error = Some(e.to_string().chars().take(250).collect());
                (
                    "error",
                    NotifyAnswer::Failed {
                        status: 500,
                        message: "processing failed",
                    },
                )
            }
        };
        count(result);
        log.result = result.into();
        self.log(log).await;
        (answer, result, log_id)
    }

    async fn log(&self, row: NotificationLogRow) {
        if let Err(e) = self.writer().log(row).await {
            tracing::error!(category = "system", error = %e, "notification log write failed");
        }
    }
}
