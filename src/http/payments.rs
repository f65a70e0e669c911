//! Payment routes: create (signed, idempotent), read, list, cancel, and WeChat's
//! notifications. Handlers authenticate, parse and send a message to the supervisor.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{self, AuthUser, Signed};
use super::page::PageQuery;
use crate::actors::payments::{CreatePayment, NotifyAnswer, NotifyKind, PaymentError, Settled};
use crate::app::reports::OrderFilter;

const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

#[derive(Debug, Deserialize, ToSchema)]
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
        P::Database(e) => crate::app::AppError::from(e).into(),
        P::Raced => ApiError::new(
            ErrorCode::OrderChanged,
            "the order changed while this request was served; retry",
        ),
        P::Unavailable(cause) => {
            ApiError::new(ErrorCode::PaymentsUnavailable, "payments are busy; retry")
                .with_cause(anyhow::anyhow!(cause))
        }
        other @ (P::Mismatch(_) | P::Illegal(_) | P::Points(_)) => ApiError::internal(other),
    }
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
    let created = state
        .payments
        .create(payment)
        .await
        .map_err(payment_error)?;
    Ok(HttpResponse::Ok().json(created))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OrderQuery {
    /// Milliseconds (at most 10,000) to wait for an order still moving to settle.
    pub wait_ms: Option<u64>,
}

/// Longest `wait_ms` a caller may ask for.
const MAX_WAIT_MS: u64 = 10_000;
/// A waiter reads its order again at least this often: a change committed by another
/// instance wakes nobody here.
const REREAD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// `GET /api/payments/{order_no}[?wait_ms=N]`: the caller's own order only. With `wait_ms`,
/// an order still moving (not yet paid or closed, or paid with its points not booked yet) is
/// answered when it settles or when `wait_ms` has passed, whichever comes first: one request
/// instead of polling.
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
    query: web::Query<OrderQuery>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || payment_error(PaymentError::OrderNotFound);
    let wait_ms = query.wait_ms.unwrap_or(0);
    if wait_ms > MAX_WAIT_MS {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("wait_ms is at most {MAX_WAIT_MS}"),
        ));
    }
    if wait_ms == 0 {
        let order = state
            .app
            .reports
            .order_of_user(&user.user_id, &path)
            .await?
            .ok_or_else(not_found)?;
        return Ok(HttpResponse::Ok().json(order));
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(wait_ms);
    let watch = state.payments.watch(&path);
    loop {
        // Before the read, so a commit between the read and the wait still wakes us.
        let next = watch.next_change();
        let (order, moving) = state
            .app
            .reports
            .order_of_user_moving(&user.user_id, &path)
            .await?
            .ok_or_else(not_found)?;
        let now = tokio::time::Instant::now();
        if !moving || now >= deadline {
            return Ok(HttpResponse::Ok().json(order));
        }
        let _ = tokio::time::timeout_at(deadline.min(now + REREAD_EVERY), next).await;
    }
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
        .cancel(&user.user_id, &path)
        .await
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

/// `POST /api/wechat/pay/notify` and `/api/wechat/refund/notify`: the supervisor verifies
/// over the raw body, decrypts, settles and logs. 204 means "recorded; do not send again".
pub async fn notify(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let kind = if req.path().ends_with("/refund/notify") {
        NotifyKind::Refund
    } else {
        NotifyKind::Pay
    };
    match state
        .payments
        .receive_notification(kind, req.headers(), &body)
        .await
    {
        NotifyAnswer::Accepted => HttpResponse::NoContent().finish(),
        NotifyAnswer::Failed { status, message } => notify_fail(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message,
        ),
    }
}
