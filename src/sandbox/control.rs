//! The control calls tests and load tests use to play the shopper (API.md, "Sandbox").

use std::time::Duration;

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;

use super::Sandbox;
use super::deliver::Notice;
use super::ledger::Fail;
use super::pay_api::lock;
use crate::wechat::types::RefundStatus;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/sandbox/orders/{no}/pay", web::post().to(pay))
        .route("/sandbox/orders/{no}/fail", web::post().to(fail))
        .route(
            "/sandbox/orders/{no}/bill-amount",
            web::post().to(bill_amount),
        )
        .route("/sandbox/fee-rate", web::post().to(fee_rate))
        .route(
            "/sandbox/refunds/{no}/succeed",
            web::post().to(succeed_refund),
        )
        .route(
            "/sandbox/refunds/{no}/abnormal",
            web::post().to(abnormal_refund),
        )
        .route("/sandbox/refunds/{no}/close", web::post().to(close_refund))
        .route("/sandbox/notifications", web::get().to(notifications))
        .route("/sandbox/messages", web::get().to(messages))
        .route("/sandbox/token/expire", web::post().to(expire_token))
        .route("/sandbox/keys", web::get().to(keys))
        .route("/sandbox/faults", web::post().to(faults));
}

/// `?duplicates=N` delivers N extra copies racing each other; `?delay_ms=M` holds the first
/// attempt back, so a query or another notification can overtake it; `?drop=true` (payments)
/// never sends the notification at all, as when WeChat's calls never reach the server.
#[derive(Deserialize, Default)]
struct DeliveryOptions {
    #[serde(default)]
    duplicates: u32,
    #[serde(default)]
    delay_ms: u64,
    #[serde(default)]
    drop: bool,
}

impl DeliveryOptions {
    fn duplicates(&self) -> u32 {
        self.duplicates.min(20)
    }

    fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.min(600_000))
    }
}

fn refuse(fail: &Fail) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(fail.status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .json(serde_json::json!({ "code": fail.code, "message": fail.message }))
}

fn internal(message: String) -> HttpResponse {
    HttpResponse::InternalServerError()
        .json(serde_json::json!({ "code": "SYSTEM_ERROR", "message": message }))
}

/// The shopper pays: the order becomes SUCCESS and `TRANSACTION.SUCCESS` goes to notify_url.
async fn pay(
    sb: web::Data<Sandbox>,
    no: web::Path<String>,
    opts: web::Query<DeliveryOptions>,
) -> HttpResponse {
    let paid = lock(&sb).and_then(|mut l| {
        let tx = l.pay(&no, Utc::now())?;
        Ok((tx, l.notify_url(&no).unwrap_or_default()))
    });
    let (tx, url) = match paid {
        Ok(v) => v,
        Err(fail) => return refuse(&fail),
    };
    let queued_drop = sb.drop_notifications.lock().ok().is_some_and(|mut n| {
        let take = *n > 0;
        *n = n.saturating_sub(1);
        take
    });
    if opts.drop || queued_drop {
        tracing::info!(category = "system", out_trade_no = %tx.out_trade_no, "sandbox: payment notification dropped");
        return HttpResponse::Ok().json(
            serde_json::json!({ "notification_id": null, "dropped": true, "transaction": tx }),
        );
    }
    let resource = match serde_json::to_vec(&tx) {
        Ok(r) => r,
        Err(e) => return internal(e.to_string()),
    };
    let notice = Notice {
        event_type: "TRANSACTION.SUCCESS",
        summary: "支付成功",
        original_type: "transaction",
        url,
        out_trade_no: tx.out_trade_no.clone(),
        out_refund_no: None,
        resource,
        duplicates: opts.duplicates(),
        delay: opts.delay(),
    };
    match sb.deliverer.send(notice) {
        Ok(id) => {
            HttpResponse::Ok().json(serde_json::json!({ "notification_id": id, "transaction": tx }))
        }
        Err(e) => internal(e),
    }
}

/// The payment fails: the order becomes PAYERROR (WeChat sends no notification for this).
async fn fail(sb: web::Data<Sandbox>, no: web::Path<String>) -> HttpResponse {
    match lock(&sb).and_then(|mut l| l.fail_payment(&no, Utc::now())) {
        Ok(tx) => HttpResponse::Ok().json(serde_json::json!({ "transaction": tx })),
        Err(fail) => refuse(&fail),
    }
}

#[derive(Deserialize)]
struct BillAmount {
    amount_fen: i64,
}

/// The trade bill shows `amount_fen` for this paid order instead of what was paid (nothing
/// else changes: queries and notifications keep the real amount).
async fn bill_amount(
    sb: web::Data<Sandbox>,
    no: web::Path<String>,
    body: web::Json<BillAmount>,
) -> HttpResponse {
    match lock(&sb).and_then(|mut l| l.alter_bill_amount(&no, body.amount_fen)) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(fail) => refuse(&fail),
    }
}

#[derive(Deserialize)]
struct FeeRate {
    rate_bp: i64,
}

/// The trade bill charges `rate_bp` basis points from now on (default 60, WeChat's usual
/// 0.6%), each row's fee rounded half up to the fen: a bill whose fee differs from the
/// server's configured estimate.
async fn fee_rate(sb: web::Data<Sandbox>, body: web::Json<FeeRate>) -> HttpResponse {
    match lock(&sb).and_then(|mut l| l.set_fee_rate_bp(body.rate_bp)) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(fail) => refuse(&fail),
    }
}

/// The refund reaches the shopper: SUCCESS, and `REFUND.SUCCESS` goes to its notify_url.
async fn succeed_refund(
    sb: web::Data<Sandbox>,
    no: web::Path<String>,
    opts: web::Query<DeliveryOptions>,
) -> HttpResponse {
    settle_refund(&sb, &no, RefundStatus::Success, &opts)
}

/// The refund fails at the bank: ABNORMAL, and `REFUND.ABNORMAL`.
async fn abnormal_refund(
    sb: web::Data<Sandbox>,
    no: web::Path<String>,
    opts: web::Query<DeliveryOptions>,
) -> HttpResponse {
    settle_refund(&sb, &no, RefundStatus::Abnormal, &opts)
}

/// The refund is closed: CLOSED (its amount can be refunded again), and `REFUND.CLOSED`.
async fn close_refund(
    sb: web::Data<Sandbox>,
    no: web::Path<String>,
    opts: web::Query<DeliveryOptions>,
) -> HttpResponse {
    settle_refund(&sb, &no, RefundStatus::Closed, &opts)
}

fn settle_refund(
    sb: &Sandbox,
    no: &str,
    outcome: RefundStatus,
    opts: &DeliveryOptions,
) -> HttpResponse {
    let (resource, url) = match lock(sb).and_then(|mut l| l.settle_refund(no, outcome, Utc::now()))
    {
        Ok(v) => v,
        Err(fail) => return refuse(&fail),
    };
    let bytes = match serde_json::to_vec(&resource) {
        Ok(r) => r,
        Err(e) => return internal(e.to_string()),
    };
    let Some(url) = url else {
        return HttpResponse::Ok().json(serde_json::json!({ "refund": resource }));
    };
    let (event_type, summary) = match outcome {
        RefundStatus::Success | RefundStatus::Processing => ("REFUND.SUCCESS", "退款成功"),
        RefundStatus::Abnormal => ("REFUND.ABNORMAL", "退款异常"),
        RefundStatus::Closed => ("REFUND.CLOSED", "退款关闭"),
    };
    let notice = Notice {
        event_type,
        summary,
        original_type: "refund",
        url,
        out_trade_no: resource.out_trade_no.clone(),
        out_refund_no: Some(resource.out_refund_no.clone()),
        resource: bytes,
        duplicates: opts.duplicates(),
        delay: opts.delay(),
    };
    match sb.deliverer.send(notice) {
        Ok(id) => HttpResponse::Ok()
            .json(serde_json::json!({ "notification_id": id, "refund": resource })),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct NotificationFilter {
    out_trade_no: Option<String>,
}

/// What was delivered, with every attempt and the receiver's answer.
async fn notifications(
    sb: web::Data<Sandbox>,
    filter: web::Query<NotificationFilter>,
) -> HttpResponse {
    let records: Vec<_> = sb
        .deliverer
        .records()
        .into_iter()
        .filter(|r| {
            filter
                .out_trade_no
                .as_ref()
                .is_none_or(|no| &r.out_trade_no == no)
        })
        .collect();
    HttpResponse::Ok().json(serde_json::json!({ "deliveries": records }))
}

/// Subscribe messages the sandbox accepted.
async fn messages(sb: web::Data<Sandbox>) -> HttpResponse {
    match sb.mini.lock() {
        Ok(mini) => HttpResponse::Ok().json(serde_json::json!({ "messages": mini.messages })),
        Err(_) => internal("state unavailable".into()),
    }
}

/// Invalidates the access token (the next send answers 42001).
async fn expire_token(sb: web::Data<Sandbox>) -> HttpResponse {
    match sb.mini.lock() {
        Ok(mut mini) => {
            mini.expire_token();
            HttpResponse::NoContent().finish()
        }
        Err(_) => internal("state unavailable".into()),
    }
}

/// Where the sandbox's key files are and the identities to configure a merchant with
/// (public material and paths only).
async fn keys(sb: web::Data<Sandbox>) -> HttpResponse {
    let k = &sb.keys;
    HttpResponse::Ok().json(serde_json::json!({
        "dir": k.dir.display().to_string(),
        "mchid": k.mchid,
        "appid": k.appid,
        "merchant_serial_no": k.merchant_serial,
        "platform_public_key_id": k.platform_key_id,
    }))
}

#[derive(Deserialize)]
struct FaultRequest {
    /// How many of the next calls are affected (at most 100).
    count: u32,
    /// An error answer for the next Pay calls: HTTP status and WeChat code.
    status: Option<u16>,
    code: Option<String>,
    /// Or: the next prepay calls are booked at once but answered this late, so the
    /// payment's notification can arrive before the prepay answer.
    delay_prepay_ms: Option<u64>,
    /// Or: the next subscribe-message sends answer this `errcode` (e.g. -1, system busy).
    subscribe_errcode: Option<i64>,
    /// Or: the next payment notifications are never sent (the payment itself succeeds).
    #[serde(default)]
    drop_notifications: bool,
    /// Or: the next trade-bill answers announce a hash that is not the bill's.
    #[serde(default)]
    bill_hash_mismatch: bool,
}

fn param_error(message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(serde_json::json!({"code": "PARAM_ERROR", "message": message}))
}

/// Queues faults: `{count, status, code}` makes the next `count` authentic Pay calls answer
/// `status` + `code` (signed, as WeChat's errors are); `{count, delay_prepay_ms}` holds back
/// the next prepay answers; `{count, subscribe_errcode}` fails the next subscribe sends;
/// `{count, drop_notifications: true}` never sends the next payment notifications;
/// `{count, bill_hash_mismatch: true}` makes the next trade bills announce a wrong hash.
async fn faults(sb: web::Data<Sandbox>, req: web::Json<FaultRequest>) -> HttpResponse {
    if req.count > 100 {
        return param_error("count <= 100");
    }
    let counter = if req.drop_notifications {
        Some(&sb.drop_notifications)
    } else if req.bill_hash_mismatch {
        Some(&sb.bill_hash_faults)
    } else {
        None
    };
    if let Some(counter) = counter {
        return match counter.lock() {
            Ok(mut n) => {
                *n = n.saturating_add(req.count);
                HttpResponse::NoContent().finish()
            }
            Err(_) => internal("state unavailable".into()),
        };
    }
    if let Some(ms) = req.delay_prepay_ms {
        if ms > 60_000 {
            return param_error("delay_prepay_ms <= 60000");
        }
        return match sb.prepay_delays.lock() {
            Ok(mut q) => {
                q.extend((0..req.count).map(|_| Duration::from_millis(ms)));
                HttpResponse::NoContent().finish()
            }
            Err(_) => internal("state unavailable".into()),
        };
    }
    if let Some(errcode) = req.subscribe_errcode {
        if errcode == 0 {
            return param_error("subscribe_errcode must not be 0");
        }
        return match sb.mini.lock() {
            Ok(mut mini) => {
                mini.send_failures.extend((0..req.count).map(|_| errcode));
                HttpResponse::NoContent().finish()
            }
            Err(_) => internal("state unavailable".into()),
        };
    }
    let code: &'static str = match req.code.as_deref() {
        Some("SYSTEM_ERROR") => "SYSTEM_ERROR",
        Some("FREQUENCY_LIMITED") => "FREQUENCY_LIMITED",
        Some("BANK_ERROR") => "BANK_ERROR",
        Some("PARAM_ERROR") => "PARAM_ERROR",
        Some("NO_AUTH") => "NO_AUTH",
        Some("INVALID_REQUEST") => "INVALID_REQUEST",
        _ => {
            return param_error(
                "code: SYSTEM_ERROR, FREQUENCY_LIMITED, BANK_ERROR, PARAM_ERROR, NO_AUTH or INVALID_REQUEST (or delay_prepay_ms, or subscribe_errcode)",
            );
        }
    };
    let Some(status) = req.status.filter(|s| (400..=599).contains(s)) else {
        return param_error("status 400-599");
    };
    match sb.faults.lock() {
        Ok(mut q) => {
            for _ in 0..req.count {
                q.push_back(Fail {
                    status,
                    code,
                    message: "sandbox: injected fault".into(),
                });
            }
            HttpResponse::NoContent().finish()
        }
        Err(_) => internal("state unavailable".into()),
    }
}
