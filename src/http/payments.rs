//! Payment routes: create (signed, idempotent), read, list, cancel, and WeChat's
//! notifications. Handlers authenticate, parse and send a message to the supervisor.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use super::extract::{self, AuthUser, Signed};
use crate::actors::payments::{CreatePayment, NotifyAnswer, NotifyKind, PaymentError, Settled};
use crate::storage::orders::{self, OrderRow};

const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    pub payment_code_id: String,
    pub amount_fen: i64,
}

pub fn payment_error(e: PaymentError) -> ApiError {
    use PaymentError as P;
    match e {
        P::AmountInvalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "AMOUNT_INVALID", m),
        P::CodeNotFound => ApiError::new(
            StatusCode::NOT_FOUND,
            "PAYMENT_CODE_NOT_FOUND",
            "no such payment code",
        ),
        P::CodeDisabled => {
            ApiError::conflict("PAYMENT_CODE_DISABLED", "this payment code is disabled")
        }
        P::MerchantNotActive => ApiError::conflict(
            "MERCHANT_NOT_ACTIVE",
            "the merchant is not accepting payments",
        ),
        P::IdempotencyKeyReused => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_KEY_REUSED",
            "this Idempotency-Key was used for a different request",
        ),
        P::OrderNotFound => {
            ApiError::new(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND", "no such order")
        }
        P::Forbidden => ApiError::forbidden("not allowed"),
        P::NotPayable(s) => ApiError::conflict("ORDER_NOT_PAYABLE", format!("the order is {s}")),
        P::RiskBlocked(rule) => ApiError::new(
            StatusCode::FORBIDDEN,
            "RISK_BLOCKED",
            format!("refused by risk rule {rule}"),
        ),
        P::VerificationRequired => ApiError::new(
            StatusCode::FORBIDDEN,
            "RISK_VERIFICATION_REQUIRED",
            "sign in again on this device to confirm it is you",
        ),
        P::Wechat(w) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "WECHAT_UNAVAILABLE",
            "WeChat Pay did not accept the request; retry",
        )
        .with_cause(w),
        P::NotRefundable(s) => ApiError::conflict(
            "ORDER_NOT_REFUNDABLE",
            format!(
                "the order is {s}; only paid orders without a refund in progress can be refunded"
            ),
        ),
        P::RefundExceedsPaid { refundable } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "REFUND_EXCEEDS_PAID",
            format!("at most {refundable} fen is left to refund"),
        ),
        P::AwardPending => ApiError::unavailable(
            "AWARD_PENDING",
            "the order's points are still being awarded; retry",
        ),
        // A busy pool is "retry" (503), as everywhere else.
        P::Storage(e) => ApiError::from(e),
        P::Raced => ApiError::conflict(
            "ORDER_CHANGED",
            "the order changed while this request was served; retry",
        ),
        P::Unavailable(cause) => {
            ApiError::unavailable("PAYMENTS_UNAVAILABLE", "payments are busy; retry")
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
            ApiError::bad_request("IDEMPOTENCY_KEY_REQUIRED", "send an Idempotency-Key header")
        })?;
    let ok = (8..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(ApiError::bad_request(
            "IDEMPOTENCY_KEY_INVALID",
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
        // Chosen by the supervisor (the order's number picks its shard).
        order_id: uuid::Uuid::nil(),
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

#[derive(Debug, Serialize)]
pub struct OrderView {
    pub order_no: String,
    pub status: String,
    pub amount_fen: i64,
    pub refunded_fen: i64,
    pub merchant_id: String,
    pub merchant_name: String,
    pub points_awarded: i64,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
}

pub async fn order_view(state: &AppState, order: OrderRow) -> Result<OrderView, ApiError> {
    let names =
        crate::storage::shop::merchant_names(&state.db, std::slice::from_ref(&order.merchant_id))
            .await?;
    let points =
        crate::storage::shop::points_for_orders(&state.db, std::slice::from_ref(&order.order_no))
            .await?;
    Ok(view(order, &names, &points))
}

fn view(
    order: OrderRow,
    names: &std::collections::HashMap<String, String>,
    points: &std::collections::HashMap<String, i64>,
) -> OrderView {
    let utc = |t| DateTime::<Utc>::from_naive_utc_and_offset(t, Utc);
    OrderView {
        merchant_name: names.get(&order.merchant_id).cloned().unwrap_or_default(),
        points_awarded: points.get(&order.order_no).copied().unwrap_or(0),
        order_no: order.order_no,
        status: order.status,
        amount_fen: order.amount_fen,
        refunded_fen: order.refunded_fen,
        merchant_id: order.merchant_id,
        created_at: utc(order.created_at),
        paid_at: order.paid_at.map(utc),
    }
}

/// Views of many orders with two queries, not two per order.
pub async fn order_views(
    state: &AppState,
    rows: Vec<OrderRow>,
) -> Result<Vec<OrderView>, ApiError> {
    let merchants: Vec<String> = rows.iter().map(|o| o.merchant_id.clone()).collect();
    let order_nos: Vec<String> = rows.iter().map(|o| o.order_no.clone()).collect();
    let names = crate::storage::shop::merchant_names(&state.db, &merchants).await?;
    let points = crate::storage::shop::points_for_orders(&state.db, &order_nos).await?;
    Ok(rows.into_iter().map(|o| view(o, &names, &points)).collect())
}

/// `GET /api/payments/{order_no}`: the caller's own order only.
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let order = orders::find(&state.db, &path)
        .await?
        .filter(|o| o.user_id == user.user_id)
        .ok_or_else(|| payment_error(PaymentError::OrderNotFound))?;
    Ok(HttpResponse::Ok().json(order_view(&state, order).await?))
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(20),
            Some(l) if (1..=100).contains(&l) => Ok(l),
            Some(_) => Err(ApiError::bad_request(
                "INVALID_QUERY",
                "limit must be 1..100",
            )),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Pages order rows (fetched with one extra to know whether more exist).
pub async fn order_page(
    state: &AppState,
    mut rows: Vec<OrderRow>,
    limit: i64,
) -> Result<Page<OrderView>, ApiError> {
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(20));
    let next_cursor = if more {
        rows.last().map(|o| o.id.clone())
    } else {
        None
    };
    Ok(Page {
        items: order_views(state, rows).await?,
        next_cursor,
    })
}

/// `GET /api/payments`: the caller's orders, newest first.
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit()?;
    let filter = orders::ListFilter {
        user_id: Some(&user.user_id),
        ..Default::default()
    };
    let rows = orders::list(&state.db, &filter, query.cursor.as_deref(), limit + 1).await?;
    Ok(HttpResponse::Ok().json(order_page(&state, rows, limit).await?))
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
    let order = orders::find(&state.db, &path)
        .await?
        .ok_or_else(|| payment_error(PaymentError::OrderNotFound))?;
    if outcome == Settled::Paid {
        return Err(ApiError::conflict(
            "ORDER_ALREADY_PAID",
            "the order was paid before it could be cancelled",
        ));
    }
    Ok(HttpResponse::Ok().json(order_view(&state, order).await?))
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
