//! Orders as merchants and admins see them: lists, refunds, and takings per day.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::admin::actor;
use super::error::{ApiError, ErrorCode};
use super::extract::{AdminUser, CanReadOrders, CanReadStats, CanRefund, Member, Signed};
use super::page::PageQuery;
use super::payments::payment_error;
use crate::actors::payments::{RefundView, RequestRefund};
use crate::app::page::Paged;
use crate::app::reports::{DayStats, OrderFilter, OrderView, OverviewDay};
use crate::domain::staff::OrdersScope;

/// The longest range one stats request may cover.
const MAX_DAYS: i64 = 92;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    pub amount_fen: i64,
    pub reason: String,
}

async fn start_refund(
    state: &AppState,
    mut req: RequestRefund,
) -> Result<crate::actors::payments::RefundView, ApiError> {
    // WeChat keeps 80 characters of a refund's reason and shows it to the shopper.
    req.reason = super::extract::text_field("reason", &req.reason, 80)?;
    let (order_no, requested_by) = (req.order_no.clone(), req.requested_by.clone());
    let merchant_id = req.merchant_id.clone().unwrap_or_default();
    let view = state.payments.refund(req).await.map_err(payment_error)?;
    tracing::info!(
        category = "business",
        action = "refund_request",
        merchant_id = %merchant_id,
        order_no = %order_no,
        out_refund_no = %view.out_refund_no,
        amount_fen = view.amount_fen,
        requested_by = %requested_by,
        "refund requested"
    );
    Ok(view)
}

fn optional_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    match req.headers().get("Idempotency-Key") {
        Some(_) => super::payments::idempotency_key(req).map(Some),
        None => Ok(None),
    }
}

/// `GET /api/merchants/{id}/orders`: owner, manager or cashier of an approved merchant; a
/// cashier's list holds only orders created today (China Standard Time).
#[utoipa::path(get, path = "/api/merchants/{id}/orders", tag = "merchants",
    summary = "The merchant's orders, cursor-paged (owner and manager: all; cashier: today's, CST)", security(("bearer" = [])),
    params(("id" = String, Path, description = "the merchant"), PageQuery),
    responses(
        (status = 200, body = Paged<OrderView>),
        (status = 400, description = "INVALID_QUERY / INVALID_CURSOR"),
        (status = 401, description = "not signed in"),
        (status = 403, description = "MERCHANT_NOT_APPROVED"),
        (status = 404, description = "not found"),
        (status = 409, description = "conflict"),
        (status = 422, description = "validation failed"),
        (status = 429, description = "rate limited"),
    ))]
pub async fn merchant_orders(
    state: web::Data<AppState>,
    member: Member<CanReadOrders>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    // A cashier sees today's payments only, whatever the query asks.
    let created_days = match member.role.orders_scope() {
        OrdersScope::All => None,
        OrdersScope::Today => {
            let today = crate::domain::cst_day(Utc::now());
            Some((today, today))
        }
    };
    let filter = OrderFilter {
        merchant_id: Some(member.merchant_id.clone()),
        created_days,
        ..Default::default()
    };
    let page = state.app.reports.orders(&filter, &query.page()?).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `POST /api/merchants/{id}/orders/{order_no}/refund` (signed): the owner or a manager,
/// whose membership is read from the database at the time. Only an approved merchant moves
/// money back: a pending or disabled one is refused (`403 MERCHANT_NOT_APPROVED`).
#[utoipa::path(post, path = "/api/merchants/{id}/orders/{order_no}/refund", tag = "merchants",
    summary = "Refund all or part of an order (signed; optional Idempotency-Key)",
    request_body = RefundBody, security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "the merchant"),
        ("order_no" = String, Path, description = "the order number"),
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[A-Za-z0-9_-]{8,64}$",
            description = "optional, 8-64 letters, digits, '-' or '_': the same key for the same order is the same refund"),
        ("X-Timestamp" = String, Header, description = "request signature: Unix seconds"),
        ("X-Nonce" = String, Header, description = "request signature: single-use nonce"),
        ("X-Signature" = String, Header, description = "request signature: hex HMAC-SHA256 with the session's sign_key"),
    ),
    responses(
        (status = 200, body = RefundView, description = "The refund, requested at WeChat Pay"),
        (status = 400, description = "IDEMPOTENCY_KEY_INVALID / MALFORMED_JSON"),
        (status = 401, description = "not signed in, or SIGNATURE_INVALID / SIGNATURE_EXPIRED"),
        (status = 403, description = "MERCHANT_NOT_APPROVED / FORBIDDEN: a cashier"),
        (status = 404, description = "ORDER_NOT_FOUND / MERCHANT_NOT_FOUND: not a member"),
        (status = 409, description = "ORDER_NOT_REFUNDABLE / REPLAYED_REQUEST"),
        (status = 422, description = "REFUND_EXCEEDS_PAID / VALIDATION_FAILED"),
        (status = 429, description = "rate limited"),
        (status = 503, description = "WECHAT_UNAVAILABLE / AWARD_PENDING / PAYMENTS_UNAVAILABLE: retry"),
    ))]
pub async fn merchant_refund(
    req: HttpRequest,
    state: web::Data<AppState>,
    member: Member<CanRefund>,
    signed: Signed,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let body: RefundBody = signed.json()?;
    let (_, order_no) = path.into_inner();
    let view = start_refund(
        &state,
        RequestRefund {
            order_no,
            amount_fen: body.amount_fen,
            reason: body.reason,
            requested_by: format!("user:{}", member.user.user_id),
            merchant_id: Some(member.merchant_id.clone()),
            idempotency_key: optional_key(&req)?,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminOrdersQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
    pub merchant_id: Option<String>,
    pub user_id: Option<String>,
    pub status: Option<String>,
    /// CST dates, inclusive.
    pub from: Option<String>,
    pub to: Option<String>,
}

/// `GET /api/admin/orders`
#[utoipa::path(get, path = "/api/admin/orders", tag = "admin",
    summary = "All orders, filterable by merchant_id, user_id, status and CST created dates, cursor-paged",
    security(("bearer" = [])), params(AdminOrdersQuery),
    responses(
        (status = 200, body = Paged<OrderView>),
        (status = 400, description = "INVALID_QUERY / INVALID_CURSOR"),
        (status = 401, description = "not signed in"),
        (status = 403, description = "not allowed"),
        (status = 404, description = "not found"),
        (status = 409, description = "conflict"),
        (status = 422, description = "validation failed"),
        (status = 429, description = "rate limited"),
    ))]
pub async fn admin_orders(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: web::Query<AdminOrdersQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageQuery {
        cursor: query.cursor.clone(),
        limit: query.limit,
    }
    .page()?;
    if let Some(st) = query.status.as_deref()
        && crate::domain::order::OrderStatus::parse(st).is_none()
    {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("unknown status '{st}'"),
        ));
    }
    let created_days = if query.from.is_some() || query.to.is_some() {
        Some(date_range(&RangeQuery {
            from: query.from.clone(),
            to: query.to.clone(),
        })?)
    } else {
        None
    };
    let filter = OrderFilter {
        user_id: query.user_id.clone(),
        merchant_id: query.merchant_id.clone(),
        status: query.status.clone(),
        created_days,
    };
    let page = state.app.reports.orders(&filter, &page).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `POST /api/admin/orders/{order_no}/refund`: audited.
#[utoipa::path(post, path = "/api/admin/orders/{order_no}/refund", tag = "admin",
    summary = "Refund all or part of an order (audited)",
    request_body = RefundBody, security(("bearer" = [])),
    params(
        ("order_no" = String, Path, description = "the order number"),
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[A-Za-z0-9_-]{8,64}$",
            description = "optional, 8-64 letters, digits, '-' or '_': the same key for the same order is the same refund"),
    ),
    responses(
        (status = 200, body = RefundView, description = "The refund, requested at WeChat Pay"),
        (status = 400, description = "IDEMPOTENCY_KEY_INVALID / MALFORMED_JSON"),
        (status = 401, description = "not signed in"),
        (status = 403, description = "not an admin"),
        (status = 404, description = "ORDER_NOT_FOUND"),
        (status = 409, description = "ORDER_NOT_REFUNDABLE"),
        (status = 422, description = "REFUND_EXCEEDS_PAID / VALIDATION_FAILED"),
        (status = 429, description = "rate limited"),
        (status = 503, description = "WECHAT_UNAVAILABLE / AWARD_PENDING / PAYMENTS_UNAVAILABLE: retry"),
    ))]
pub async fn admin_refund(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminUser,
    path: web::Path<String>,
    body: web::Json<RefundBody>,
) -> Result<HttpResponse, ApiError> {
    let order_no = path.into_inner();
    let before = state.app.reports.order(&order_no).await?;
    let body = body.into_inner();
    let view = start_refund(
        &state,
        RequestRefund {
            order_no: order_no.clone(),
            amount_fen: body.amount_fen,
            reason: body.reason.clone(),
            requested_by: format!("admin:{}", admin.admin_id),
            merchant_id: None,
            idempotency_key: optional_key(&req)?,
        },
    )
    .await?;
    state
        .app
        .audit
        .record(
        &actor(&req, &admin),
        "order.refund",
        ("order", &order_no),
        serde_json::json!({"status": before.as_ref().map(|o| o.status.clone()), "refunded_fen": before.map(|o| o.refunded_fen)}),
        serde_json::json!({"out_refund_no": view.out_refund_no, "amount_fen": view.amount_fen, "reason": body.reason}),
        )
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    /// First CST day, `YYYY-MM-DD` (default: six days before `to`).
    pub from: Option<String>,
    /// Last CST day, `YYYY-MM-DD`, inclusive (default: today). At most 92 days in all.
    pub to: Option<String>,
}

/// The answer of `GET /api/merchants/{id}/stats`.
#[derive(Serialize, ToSchema)]
pub struct MerchantStats {
    pub merchant_id: String,
    /// `YYYY-MM-DD`, China Standard Time.
    pub from: String,
    pub to: String,
    /// One row per CST day with takings.
    pub items: Vec<DayStats>,
}

/// The answer of `GET /api/admin/stats/overview`.
#[derive(Serialize, ToSchema)]
pub struct Overview {
    /// `YYYY-MM-DD`, China Standard Time.
    pub from: String,
    pub to: String,
    /// One row per CST day.
    pub items: Vec<OverviewDay>,
}

/// The days a range may name: every day a database DATETIME holds, with room for the CST
/// offset and the day after `to`, so no date arithmetic on a range can overflow.
const FIRST_DAY: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
const LAST_DAY: NaiveDate = NaiveDate::from_ymd_opt(9999, 12, 30).expect("a valid date");

/// Parses one CST date, `YYYY-MM-DD`, between 1970-01-01 and 9999-12-30 (`INVALID_QUERY`
/// otherwise).
pub fn cst_date(s: &str) -> Result<NaiveDate, ApiError> {
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            format!("'{s}' is not a YYYY-MM-DD date"),
        )
    })?;
    if !(FIRST_DAY..=LAST_DAY).contains(&day) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("'{s}' is outside {FIRST_DAY}..{LAST_DAY}"),
        ));
    }
    Ok(day)
}

/// Parses an inclusive CST date range (default: the last 7 days), at most 92 days, between
/// 1970-01-01 and 9999-12-30.
pub fn date_range(q: &RangeQuery) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let parse = cst_date;
    let today = crate::domain::cst_day(Utc::now());
    let to = q.to.as_deref().map(parse).transpose()?.unwrap_or(today);
    let from = q
        .from
        .as_deref()
        .map(parse)
        .transpose()?
        .unwrap_or(to - Duration::days(6));
    if from > to {
        return Err(ApiError::new(ErrorCode::InvalidQuery, "from is after to"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("at most {MAX_DAYS} days per request"),
        ));
    }
    Ok((from, to))
}

/// `GET /api/merchants/{id}/stats?from=YYYY-MM-DD&to=YYYY-MM-DD` (CST days, inclusive): the
/// owner or a manager of an approved merchant.
#[utoipa::path(get, path = "/api/merchants/{id}/stats", tag = "merchants",
    summary = "Takings per China Standard Time day: date, order_count, amount_fen, refund_fen, points_awarded",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the merchant"), RangeQuery),
    responses(
        (status = 200, body = MerchantStats),
        (status = 400, description = "INVALID_QUERY: a bad date, from after to, or more than 92 days"),
        (status = 401, description = "not signed in"),
        (status = 403, description = "MERCHANT_NOT_APPROVED / FORBIDDEN: a cashier"),
        (status = 404, description = "not found"),
        (status = 409, description = "conflict"),
        (status = 422, description = "validation failed"),
        (status = 429, description = "rate limited"),
    ))]
pub async fn merchant_stats(
    state: web::Data<AppState>,
    owner: Member<CanReadStats>,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (from, to) = date_range(&query)?;
    let days = state
        .app
        .reports
        .merchant_days(&owner.merchant_id, from, to)
        .await?;
    Ok(HttpResponse::Ok().json(MerchantStats {
        merchant_id: owner.merchant_id,
        from: from.to_string(),
        to: to.to_string(),
        items: days,
    }))
}

/// `GET /api/admin/stats/overview?from=YYYY-MM-DD&to=YYYY-MM-DD` (CST days, inclusive).
#[utoipa::path(get, path = "/api/admin/stats/overview", tag = "admin",
    summary = "Per CST day: date, order_count, amount_fen, refund_fen, new_users, points_awarded, points_spent, points_expired, payment_success_rate",
    security(("bearer" = [])), params(RangeQuery),
    responses(
        (status = 200, body = Overview),
        (status = 400, description = "INVALID_QUERY: a bad date, from after to, or more than 92 days"),
        (status = 401, description = "not signed in"),
        (status = 403, description = "not allowed"),
        (status = 404, description = "not found"),
        (status = 409, description = "conflict"),
        (status = 422, description = "validation failed"),
        (status = 429, description = "rate limited"),
    ))]
pub async fn admin_overview(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (from, to) = date_range(&query)?;
    let days = state.app.reports.overview(from, to).await?;
    Ok(HttpResponse::Ok().json(Overview {
        from: from.to_string(),
        to: to.to_string(),
        items: days,
    }))
}

/// `GET /api/admin/reports/orders.csv?from=&to=`: UTF-8 with a BOM so Excel opens it,
/// streamed (every order of the days, in constant memory). `X-Export-Filter` says which
/// orders it holds. A failure after the first chunk can only cut the download short: it is
/// logged, and the client sees an incomplete transfer.
#[utoipa::path(get, path = "/api/admin/reports/orders.csv", tag = "admin",
    summary = "Orders created in the CST date range as CSV (UTF-8 with BOM)",
    security(("bearer" = [])), params(RangeQuery),
    responses(
        (status = 200, content_type = "text/csv", body = String,
            description = "CSV with a header row, as an attachment (`Content-Disposition`); `X-Export-Filter` says which orders it holds",
            headers(("Content-Disposition" = String), ("X-Export-Filter" = String))),
        (status = 400, description = "INVALID_QUERY: a bad date, from after to, or more than 92 days"),
        (status = 401, description = "not signed in"),
        (status = 403, description = "not allowed"),
        (status = 404, description = "not found"),
        (status = 409, description = "conflict"),
        (status = 422, description = "validation failed"),
        (status = 429, description = "rate limited"),
    ))]
pub async fn orders_csv(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    use futures_util::StreamExt;
    let (from, to) = date_range(&query)?;
    let body = state.app.reports.orders_csv(from, to).map(|chunk| {
        chunk.map_err(|e| {
            tracing::error!(category = "system", error = %e.message, cause = ?e.cause, "orders export failed mid-stream");
            actix_web::error::ErrorInternalServerError("export failed")
        })
    });
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"orders-{from}-{to}.csv\""),
        ))
        .insert_header((
            "X-Export-Filter",
            format!("orders created {from}..{to} (China Standard Time days), all of them"),
        ))
        .streaming(body))
}
