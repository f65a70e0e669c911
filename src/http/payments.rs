//! Payment routes: create (signed, idempotent), read, list, cancel, and WeChat's
//! notifications. Handlers authenticate, parse and send a message to the supervisor.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{self, AuthUser, Signed};
use super::page::PageQuery;
use crate::actors::payments::{
    CancelPayment, CreatePayment, PaymentError, Settled, Unwatch, Watch,
};
use crate::app::reports::OrderFilter;
use crate::storage::outbox::NotificationLogRow;
use crate::wechat::NotificationResource;

const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
const SUPERVISOR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    pub payment_code_id: String,
    pub amount_fen: i64,
}

pub fn payment_error(e: PaymentError) -> ApiError {
    use PaymentError as P;
    match e {
        P::AmountInvalid(m) => ApiError::new(ErrorCode::AmountInvalid, m),
        P::CodeNotFound => ApiError::new(ErrorCode::PaymentCodeNotFound, "no such payment code"),
        P::CodeDisabled => ApiError::new(
            ErrorCode::PaymentCodeDisabled,
            "this payment code is disabled",
        ),
        P::MerchantNotActive => ApiError::new(
            ErrorCode::MerchantNotActive,
            "the merchant is not accepting payments",
        ),
        P::IdempotencyKeyReused => ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used for a different request",
        ),
        P::OrderNotFound => ApiError::new(ErrorCode::OrderNotFound, "no such order"),
        P::Forbidden => ApiError::forbidden("not allowed"),
        P::NotPayable(s) => ApiError::new(ErrorCode::OrderNotPayable, format!("the order is {s}")),
        P::RiskBlocked(rule) => ApiError::new(
            ErrorCode::RiskBlocked,
            format!("refused by risk rule {rule}"),
        ),
        P::VerificationRequired => ApiError::new(
            ErrorCode::RiskVerificationRequired,
            "sign in again on this device to confirm it is you",
        ),
        P::Wechat(w) => ApiError::new(
            ErrorCode::WechatUnavailable,
            "WeChat Pay did not accept the request; retry",
        )
        .with_cause(w),
        P::NotRefundable(s) => ApiError::new(
            ErrorCode::OrderNotRefundable,
            format!(
                "the order is {s}; only paid orders without a refund in progress can be refunded"
            ),
        ),
        P::RefundExceedsPaid { refundable } => ApiError::new(
            ErrorCode::RefundExceedsPaid,
            format!("at most {refundable} fen is left to refund"),
        ),
        P::AwardPending => ApiError::new(
            ErrorCode::AwardPending,
            "the order's points are still being awarded; retry",
        ),
        // A busy pool is "retry" (503), as everywhere else.
        P::Storage(e) => crate::app::AppError::from(e).into(),
        other @ (P::Mismatch(_) | P::Illegal(_) | P::Points(_)) => ApiError::internal(other),
    }
}

fn mailbox(e: actix::MailboxError) -> ApiError {
    ApiError::new(ErrorCode::PaymentsUnavailable, "payments are busy; retry").with_cause(e)
}

pub fn idempotency_key(req: &HttpRequest) -> Result<String, ApiError> {
    let key = req
        .headers()
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::IdempotencyKeyRequired,
                "send an Idempotency-Key header",
            )
        })?;
    let ok = (8..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(ApiError::new(
            ErrorCode::IdempotencyKeyInvalid,
            "Idempotency-Key must be 8-64 letters, digits, '-' or '_'",
        ));
    }
    Ok(key.to_string())
}

/// `POST /api/payments`
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    signed: Signed,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let body: CreateBody = signed.json()?;
    extract::rate_limit(&state, &state.security.limits.payments, &user.user_id).await?;
    let payment = CreatePayment {
        user_id: user.user_id,
        payment_code_id: body.payment_code_id,
        amount_fen: body.amount_fen,
        idempotency_key: key,
        client_ip: extract::client_ip(&req),
    };
    // Run on this worker, in its own task: it finishes even if the client goes away.
    let core = state.payment_core.clone();
    let created = actix_web::rt::spawn(async move { core.create(payment, Utc::now()).await })
        .await
        .map_err(ApiError::internal)?
        .map_err(payment_error)?;
    state.payments.do_send(Watch(created.clone()));
    Ok(HttpResponse::Ok().json(created))
}

/// `GET /api/payments/{order_no}`: the caller's own order only.
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let order = state
        .app
        .reports
        .order_of_user(&user.user_id, &path)
        .await?
        .ok_or_else(|| payment_error(PaymentError::OrderNotFound))?;
    Ok(HttpResponse::Ok().json(order))
}

/// `GET /api/payments`: the caller's orders, newest first.
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = OrderFilter {
        user_id: Some(user.user_id),
        ..Default::default()
    };
    let page = state.app.reports.orders(&filter, &query.page()?).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `POST /api/payments/{order_no}/cancel`
pub async fn cancel(
    state: web::Data<AppState>,
    user: AuthUser,
    _signed: Signed,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let outcome = state
        .payments
        .send(CancelPayment {
            user_id: user.user_id.clone(),
            order_no: path.clone(),
        })
        .timeout(SUPERVISOR_TIMEOUT)
        .await
        .map_err(mailbox)?
        .map_err(payment_error)?;
    let order = state
        .app
        .reports
        .order(&path)
        .await?
        .ok_or_else(|| payment_error(PaymentError::OrderNotFound))?;
    if outcome == Settled::Paid {
        return Err(ApiError::new(
            ErrorCode::OrderAlreadyPaid,
            "the order was paid before it could be cancelled",
        ));
    }
    Ok(HttpResponse::Ok().json(order))
}

/// WeChat's answer format for a failed notification.
fn notify_fail(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({"code": "FAIL", "message": message}))
}

/// `POST /api/wechat/pay/notify` and `/api/wechat/refund/notify`: verify over the raw body,
/// decrypt, log, then settle. 204 means "recorded; do not send again".
pub async fn notify(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let kind = if req.path().ends_with("/refund/notify") {
        "refund"
    } else {
        "pay"
    };
    let now = Utc::now();
    let serial = req
        .headers()
        .get("Wechatpay-Serial")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut log = NotificationLogRow {
        id: uuid::Uuid::now_v7().to_string(),
        notification_id: String::new(),
        event_type: String::new(),
        out_trade_no: None,
        out_refund_no: None,
        serial: serial.chars().take(64).collect(),
        raw_body: String::from_utf8_lossy(&body)
            .chars()
            .take(60_000)
            .collect(),
        result: String::new(),
        error: None,
        received_at: now.naive_utc(),
    };
    let verified = match state
        .wechat
        .notifications
        .verify_and_decrypt(req.headers(), &body)
    {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(category = "security", kind, serial = %log.serial, error = %e, "notification refused");
            state
                .payment_metrics
                .notifications
                .with_label_values(&[kind, "rejected"])
                .inc();
            log.result = "rejected".into();
            log.error = Some(e.to_string());
            if let Err(e) = state.order_writer.log(log).await {
                tracing::error!(category = "system", error = %e, "notification log write failed");
            }
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
            return notify_fail(status, "verification failed");
        }
    };
    log.notification_id = verified.id.chars().take(64).collect();
    log.event_type = verified.event_type.chars().take(64).collect();
    let outcome = match verified.resource {
        NotificationResource::Transaction(txn) => {
            log.out_trade_no = Some(txn.out_trade_no.chars().take(32).collect());
            // Settled on this worker, in its own task (it finishes even if WeChat hangs up);
            // the supervisor stops watching a settled order.
            let core = state.payment_core.clone();
            let order_no = txn.out_trade_no.clone();
            let settled = actix_web::rt::spawn(async move { core.settle(&txn, Utc::now()).await })
                .await
                .map_err(|e| e.to_string());
            if let Ok(Ok(Settled::Paid | Settled::Duplicate | Settled::Closed)) = &settled {
                state.payments.do_send(Unwatch(order_no));
            }
            settled
        }
        NotificationResource::Refund(refund) => {
            log.out_refund_no = Some(refund.out_refund_no.chars().take(64).collect());
            state
                .payments
                .send(crate::actors::payments::RefundNotified(refund))
                .timeout(SUPERVISOR_TIMEOUT)
                .await
                .map_err(|e| e.to_string())
        }
    };
    let (result, response) = match outcome {
        Ok(Ok(Settled::Duplicate)) => ("duplicate", HttpResponse::NoContent().finish()),
        Ok(Ok(_)) => ("ok", HttpResponse::NoContent().finish()),
        Ok(Err(e @ PaymentError::Mismatch(_))) => {
            tracing::error!(category = "security", kind, error = %e, "notification does not match its order; refused");
            log.error = Some(e.to_string());
            (
                "rejected",
                notify_fail(StatusCode::BAD_REQUEST, "does not match the order"),
            )
        }
        Ok(Err(e)) => {
            tracing::error!(category = "business", kind, error = %e, "notification processing failed; WeChat will retry");
            log.error = Some(e.to_string().chars().take(250).collect());
            (
                "error",
                notify_fail(StatusCode::INTERNAL_SERVER_ERROR, "processing failed"),
            )
        }
        Err(e) => {
            log.error = Some(e.to_string());
            (
                "error",
                notify_fail(StatusCode::SERVICE_UNAVAILABLE, "busy"),
            )
        }
    };
    state
        .payment_metrics
        .notifications
        .with_label_values(&[kind, result])
        .inc();
    log.result = result.into();
    if let Err(e) = state.order_writer.log(log).await {
        tracing::error!(category = "system", error = %e, "notification log write failed");
    }
    response
}
