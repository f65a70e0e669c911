//! Orders as merchants and admins see them: lists, refunds, and takings per day.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, NaiveDate, Utc};
use serde::Deserialize;

use super::AppState;
use super::admin::audit;
use super::error::ApiError;
use super::extract::{AdminUser, MerchantOwner, Signed};
use super::payments::{PageQuery, order_page, payment_error};
use crate::actors::payments::RequestRefund;
use crate::storage::{orders, stats};

/// The longest range one stats request may cover.
const MAX_DAYS: i64 = 92;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    pub amount_fen: i64,
    pub reason: String,
}

async fn start_refund(
    state: &AppState,
    req: RequestRefund,
) -> Result<crate::actors::payments::RefundView, ApiError> {
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

/// `GET /api/merchants/{id}/orders`
pub async fn merchant_orders(
    state: web::Data<AppState>,
    owner: MerchantOwner,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit()?;
    let filter = orders::ListFilter {
        merchant_id: Some(&owner.merchant_id),
        ..Default::default()
    };
    let rows = orders::list(&state.db, &filter, query.cursor.as_deref(), limit + 1).await?;
    Ok(HttpResponse::Ok().json(order_page(&state, rows, limit).await?))
}

/// `POST /api/merchants/{id}/orders/{order_no}/refund` (signed).
pub async fn merchant_refund(
    req: HttpRequest,
    state: web::Data<AppState>,
    owner: MerchantOwner,
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
            requested_by: format!("merchant:{}", owner.merchant_id),
            merchant_id: Some(owner.merchant_id.clone()),
            idempotency_key: optional_key(&req)?,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize)]
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
pub async fn admin_orders(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: web::Query<AdminOrdersQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageQuery {
        cursor: query.cursor.clone(),
        limit: query.limit,
    };
    let limit = page.limit()?;
    if let Some(st) = query.status.as_deref()
        && crate::domain::order::OrderStatus::parse(st).is_none()
    {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            format!("unknown status '{st}'"),
        ));
    }
    let range = if query.from.is_some() || query.to.is_some() {
        let (from, to) = date_range(&RangeQuery {
            from: query.from.clone(),
            to: query.to.clone(),
        })?;
        Some((
            cst_midnight_utc(from),
            cst_midnight_utc(to + Duration::days(1)),
        ))
    } else {
        None
    };
    let filter = orders::ListFilter {
        user_id: query.user_id.as_deref(),
        merchant_id: query.merchant_id.as_deref(),
        status: query.status.as_deref(),
        created_from: range.map(|r| r.0),
        created_to: range.map(|r| r.1),
    };
    let rows = orders::list(&state.db, &filter, query.cursor.as_deref(), limit + 1).await?;
    Ok(HttpResponse::Ok().json(order_page(&state, rows, limit).await?))
}

/// `POST /api/admin/orders/{order_no}/refund`: audited.
pub async fn admin_refund(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminUser,
    path: web::Path<String>,
    body: web::Json<RefundBody>,
) -> Result<HttpResponse, ApiError> {
    let order_no = path.into_inner();
    let before = orders::find(&state.db, &order_no).await?;
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
    audit(
        &state,
        &req,
        &admin,
        "order.refund",
        ("order", &order_no),
        serde_json::json!({"status": before.as_ref().map(|o| o.status.clone()), "refunded_fen": before.map(|o| o.refunded_fen)}),
        serde_json::json!({"out_refund_no": view.out_refund_no, "amount_fen": view.amount_fen, "reason": body.reason}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Parses an inclusive CST date range (default: the last 7 days), at most 92 days.
pub fn date_range(q: &RangeQuery) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let parse = |s: &str| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
            ApiError::bad_request("INVALID_QUERY", format!("'{s}' is not a YYYY-MM-DD date"))
        })
    };
    let today = crate::domain::cst_day(Utc::now());
    let to = q.to.as_deref().map(parse).transpose()?.unwrap_or(today);
    let from = q
        .from
        .as_deref()
        .map(parse)
        .transpose()?
        .unwrap_or(to - Duration::days(6));
    if from > to {
        return Err(ApiError::bad_request("INVALID_QUERY", "from is after to"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            format!("at most {MAX_DAYS} days per request"),
        ));
    }
    Ok((from, to))
}

/// `GET /api/merchants/{id}/stats?from=YYYY-MM-DD&to=YYYY-MM-DD` (CST days, inclusive).
pub async fn merchant_stats(
    state: web::Data<AppState>,
    owner: MerchantOwner,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (from, to) = date_range(&query)?;
    let start = cst_midnight_utc(from);
    let end = cst_midnight_utc(to + Duration::days(1));
    // Days before today (CST) no longer change (a refund counts on the day it is made), so
    // such ranges are cached in L2; a range with today in it is always read fresh.
    let days = if to < crate::domain::cst_day(Utc::now()) {
        let id = format!("{}:{from}:{to}", owner.merchant_id);
        state
            .cache
            .get_or_load(crate::cache::Kind::MerchantStats, &id, || {
                stats::merchant_days(&state.db, &owner.merchant_id, start, end)
            })
            .await?
    } else {
        stats::merchant_days(&state.db, &owner.merchant_id, start, end).await?
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "merchant_id": owner.merchant_id,
        "from": from.to_string(),
        "to": to.to_string(),
        "items": days,
    })))
}

/// The UTC instant a CST (UTC+8) day starts.
pub fn cst_midnight_utc(day: NaiveDate) -> chrono::NaiveDateTime {
    day.and_time(chrono::NaiveTime::MIN) - Duration::hours(8)
}

/// `GET /api/admin/stats/overview?from=YYYY-MM-DD&to=YYYY-MM-DD` (CST days, inclusive).
pub async fn admin_overview(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (from, to) = date_range(&query)?;
    let days = stats::overview(
        &state.db,
        cst_midnight_utc(from),
        cst_midnight_utc(to + Duration::days(1)),
    )
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "from": from.to_string(),
        "to": to.to_string(),
        "items": days,
    })))
}

/// At most this many rows per export.
const CSV_MAX_ROWS: i64 = 100_000;

/// `GET /api/admin/reports/orders.csv?from=&to=`: UTF-8 with a BOM so Excel opens it.
pub async fn orders_csv(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (from, to) = date_range(&query)?;
    let rows = stats::orders_report(
        &state.db,
        cst_midnight_utc(from),
        cst_midnight_utc(to + Duration::days(1)),
        CSV_MAX_ROWS,
    )
    .await?;
    let cst = |t: chrono::NaiveDateTime| {
        (t + Duration::hours(8))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    let mut out = csv::Writer::from_writer(Vec::from("\u{feff}".as_bytes()));
    let header = [
        "order_no",
        "created_at_cst",
        "paid_at_cst",
        "status",
        "merchant_id",
        "merchant_name",
        "user_id",
        "amount_fen",
        "refunded_fen",
    ];
    let write = |out: &mut csv::Writer<Vec<u8>>, rec: &[String]| {
        out.write_record(rec).map_err(ApiError::internal)
    };
    write(&mut out, &header.map(str::to_string))?;
    for r in rows {
        write(
            &mut out,
            &[
                r.order_no,
                cst(r.created_at),
                r.paid_at.map(cst).unwrap_or_default(),
                r.status,
                r.merchant_id,
                r.merchant_name,
                r.user_id,
                r.amount_fen.to_string(),
                r.refunded_fen.to_string(),
            ],
        )?;
    }
    let body = out
        .into_inner()
        .map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"orders-{from}-{to}.csv\""),
        ))
        .body(body))
}
