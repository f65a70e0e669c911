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
use crate::actors::payments::{
    CreatePayment, CreatedPayment, NotifyAnswer, NotifyKind, PaymentError, Settled,
};
use crate::app::page::Paged;
use crate::app::reports::{OrderFilter, OrderView};
use crate::wechat::types::NotificationBody;

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
#[utoipa::path(post, path = "/api/payments", tag = "payments", operation_id = "create_payment", request_body = CreateBody,
    summary = "Create an order (signed, Idempotency-Key) and get wx.requestPayment parameters",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = String, Header, pattern = r"^[A-Za-z0-9_-]{8,64}$",
            description = "8-64 letters, digits, '-' or '_': the same key and body answer the same order"),
        ("X-Timestamp" = String, Header, description = "request signature: Unix seconds"),
        ("X-Nonce" = String, Header, description = "request signature: single-use nonce"),
        ("X-Signature" = String, Header, description = "request signature: hex HMAC-SHA256 with the session's sign_key"),
    ),
    responses(
        (status = 200, body = CreatedPayment, description = "The order, and `pay_params` for wx.requestPayment"),
        (status = 400, description = "IDEMPOTENCY_KEY_REQUIRED / IDEMPOTENCY_KEY_INVALID / MALFORMED_JSON"),
        (status = 401, description = "not signed in, or SIGNATURE_INVALID / SIGNATURE_EXPIRED"),
        (status = 403, description = "RISK_BLOCKED / RISK_VERIFICATION_REQUIRED / USER_DISABLED"),
        (status = 404, description = "PAYMENT_CODE_NOT_FOUND"),
        (status = 409, description = "PAYMENT_CODE_DISABLED / MERCHANT_NOT_ACTIVE / REPLAYED_REQUEST"),
        (status = 422, description = "AMOUNT_INVALID / IDEMPOTENCY_KEY_REUSED / VALIDATION_FAILED"),
        (status = 429, description = "RATE_LIMITED"),
        (status = 503, description = "WECHAT_UNAVAILABLE / PAYMENTS_UNAVAILABLE: retry"),
    ))]
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
#[utoipa::path(get, path = "/api/payments/{order_no}", tag = "payments", operation_id = "get_payment",
    summary = "One of the caller's orders. With ?wait_ms=N (0..=10000), an order still moving (created, paying, or paid before its points are booked) is answered when it settles or after N ms",
    security(("bearer" = [])),
    params(("order_no" = String, Path, description = "the order number"), OrderQuery),
    responses(
        (status = 200, body = OrderView),
        (status = 400, description = "INVALID_QUERY (wait_ms above 10000)"),
        (status = 401, description = "not signed in"),
        (status = 403, description = "USER_DISABLED"),
        (status = 404, description = "ORDER_NOT_FOUND (also for another user's order)"),
        (status = 409, description = "conflict"),
        (status = 422, description = "validation failed"),
        (status = 429, description = "rate limited"),
    ))]
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
#[utoipa::path(get, path = "/api/payments", tag = "payments", operation_id = "list_payments",
    summary = "The caller's orders, newest first, cursor-paged",
    security(("bearer" = [])), params(PageQuery),
    responses(
        (status = 200, body = Paged<OrderView>),
        (status = 400, description = "INVALID_QUERY / INVALID_CURSOR"),
        (status = 401, description = "not signed in"),
        (status = 403, description = "USER_DISABLED"),
        (status = 404, description = "not found"),
        (status = 409, description = "conflict"),
        (status = 422, description = "validation failed"),
        (status = 429, description = "rate limited"),
    ))]
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
#[utoipa::path(post, path = "/api/payments/{order_no}/cancel", tag = "payments", operation_id = "cancel_payment",
    summary = "Close an unpaid order (signed)",
    security(("bearer" = [])),
    params(
        ("order_no" = String, Path, description = "the order number"),
        ("X-Timestamp" = String, Header, description = "request signature: Unix seconds"),
        ("X-Nonce" = String, Header, description = "request signature: single-use nonce"),
        ("X-Signature" = String, Header, description = "request signature: hex HMAC-SHA256 with the session's sign_key"),
    ),
    responses(
        (status = 200, body = OrderView, description = "The order, closed"),
        (status = 400, description = "{code, message, trace_id}"),
        (status = 401, description = "not signed in, or SIGNATURE_INVALID / SIGNATURE_EXPIRED"),
        (status = 403, description = "not allowed"),
        (status = 404, description = "ORDER_NOT_FOUND"),
        (status = 409, description = "ORDER_ALREADY_PAID / ORDER_NOT_PAYABLE / REPLAYED_REQUEST"),
        (status = 422, description = "validation failed"),
        (status = 429, description = "rate limited"),
        (status = 503, description = "PAYMENTS_UNAVAILABLE: retry"),
    ))]
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
#[derive(serde::Serialize, ToSchema)]
pub struct NotifyFailure {
    /// Always `FAIL`.
    #[schema(example = "FAIL")]
    pub code: &'static str,
    pub message: &'static str,
}

/// The headers WeChat signs a notification with: documented here, read and verified by the
/// payment supervisor over the raw body.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct WechatpayHeaders {
    /// the platform certificate serial or public-key id that signed
    #[param(rename = "Wechatpay-Serial")]
    serial: String,
    /// Unix seconds; refused outside the freshness window
    #[param(rename = "Wechatpay-Timestamp")]
    timestamp: String,
    /// the signature's nonce
    #[param(rename = "Wechatpay-Nonce")]
    nonce: String,
    /// Base64 SHA256withRSA over timestamp, nonce and the raw body
    #[param(rename = "Wechatpay-Signature")]
    signature: String,
    /// WECHATPAY2-SHA256-RSA2048
    #[param(rename = "Wechatpay-Signature-Type")]
    signature_type: Option<String>,
}

fn notify_fail(status: StatusCode, message: &'static str) -> HttpResponse {
    HttpResponse::build(status).json(NotifyFailure {
        code: "FAIL",
        message,
    })
}

/// `POST /api/wechat/pay/notify` and `/api/wechat/refund/notify`: the supervisor verifies
/// over the raw body, decrypts, settles and logs. 204 means "recorded; do not send again".
/// WeChat calls these: they take no bearer token, the `Wechatpay-*` headers authenticate
/// them.
#[utoipa::path(post, path = "/api/wechat/pay/notify", tag = "wechat", operation_id = "pay_notify",
    summary = "WeChat Pay payment notification: verified over the raw body; 204, or 4xx/5xx {code: FAIL}",
    request_body = NotificationBody,
    params(WechatpayHeaders),
    responses(
        (status = 204, description = "recorded: WeChat does not send it again"),
        (status = 400, body = NotifyFailure, description = "malformed, or does not match the order"),
        (status = 401, body = NotifyFailure, description = "verification failed"),
        (status = 403, body = NotifyFailure, description = "not allowed"),
        (status = 404, body = NotifyFailure, description = "not found"),
        (status = 409, body = NotifyFailure, description = "conflict"),
        (status = 422, body = NotifyFailure, description = "validation failed"),
        (status = 429, body = NotifyFailure, description = "rate limited"),
        (status = 500, body = NotifyFailure, description = "processing failed: WeChat retries"),
        (status = 503, body = NotifyFailure, description = "busy: WeChat retries"),
    ))]
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

/// The refund notification: the same handler as [`notify`], documented under its own path.
#[utoipa::path(post, path = "/api/wechat/refund/notify", tag = "wechat", operation_id = "refund_notify",
    summary = "WeChat Pay refund notification: verified over the raw body; 204, or 4xx/5xx {code: FAIL}",
    request_body = NotificationBody,
    params(WechatpayHeaders),
    responses(
        (status = 204, description = "recorded: WeChat does not send it again"),
        (status = 400, body = NotifyFailure, description = "malformed, or does not match the refund"),
        (status = 401, body = NotifyFailure, description = "verification failed"),
        (status = 403, body = NotifyFailure, description = "not allowed"),
        (status = 404, body = NotifyFailure, description = "not found"),
        (status = 409, body = NotifyFailure, description = "conflict"),
        (status = 422, body = NotifyFailure, description = "validation failed"),
        (status = 429, body = NotifyFailure, description = "rate limited"),
        (status = 500, body = NotifyFailure, description = "processing failed: WeChat retries"),
        (status = 503, body = NotifyFailure, description = "busy: WeChat retries"),
    ))]
pub fn refund_notify() {}
