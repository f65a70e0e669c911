//! Merchant settlement: what each merchant was paid, refunded, charged by WeChat Pay and
//! nets per China Standard Time day, for the merchant's owner and for admins, as JSON and
//! as CSV. The figures come from `app::settlements` (computed on read; rules in
//! docs/payments.md, *Settlement*).

use actix_web::{HttpResponse, web};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::error::ApiError;
use super::extract::{AdminUser, CanReadSettlements, Member};
use super::orders::{RangeQuery, cst_date, date_range};
use super::page::PageQuery;
use crate::app::AppError;

pub use crate::app::settlements::{DaySettlement, MerchantSettlement};

/// `?date=YYYY-MM-DD&cursor=&limit=` of the admin settlement list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DayQuery {
    /// The CST day, `YYYY-MM-DD`.
    pub date: String,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Merchants per page, 1..=100 (default 20).
    pub limit: Option<i64>,
}

/// `?date=YYYY-MM-DD` of the admin settlement export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DayCsvQuery {
    /// The CST day, `YYYY-MM-DD`.
    pub date: String,
}

/// A CSV answer streamed from `body`: UTF-8 (with the BOM the body starts with), as an
/// attachment named `filename`. A failure after the first chunk can only cut the download
/// short: it is logged, and the client sees an incomplete transfer.
fn csv_response(
    filename: String,
    body: impl Stream<Item = Result<bytes::Bytes, AppError>> + 'static,
) -> HttpResponse {
    let body = body.map(|chunk| {
        chunk.map_err(|e| {
            tracing::error!(category = "system", error = %e.message, cause = ?e.cause, "settlement export failed mid-stream");
            actix_web::error::ErrorInternalServerError("export failed")
        })
    });
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .streaming(body)
}

/// `GET /api/merchants/{id}/settlements?from=&to=`: the owner only, whatever the merchant's
/// status (a disabled merchant still reads what it was paid); another owner's merchant
/// answers 404 like a missing one.
#[utoipa::path(get, path = "/api/merchants/{id}/settlements", tag = "merchants",
    summary = "Settlement per China Standard Time day (gross, refunds, WeChat fee from the trade bill or estimated, net) and totals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the merchant"), RangeQuery),
    responses(
        (status = 200, body = MerchantSettlement),
        (status = 400, description = "INVALID_QUERY: a bad date, from after to, or more than 92 days"),
        (status = 401, description = "not signed in"),
        (status = 403, description = "not allowed"),
        (status = 404, description = "MERCHANT_NOT_FOUND (also another owner's merchant)"),
        (status = 429, description = "rate limited"),
    ))]
pub async fn merchant_settlements(
    state: web::Data<AppState>,
    owner: Member<CanReadSettlements>,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (from, to) = date_range(&query)?;
    let settlement = state
        .app
        .settlements
        .merchant(&owner.merchant_id, from, to)
        .await?;
    Ok(HttpResponse::Ok().json(settlement))
}

/// `GET /api/merchants/{id}/settlements.csv?from=&to=`: the same figures as CSV.
#[utoipa::path(get, path = "/api/merchants/{id}/settlements.csv", tag = "merchants",
    summary = "Settlement per CST day as CSV (UTF-8 with BOM), a last line `total`",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the merchant"), RangeQuery),
    responses(
        (status = 200, content_type = "text/csv", body = String,
            description = "CSV: date, order_count, gross_fen, refund_count, refund_fen, fee_fen, fee_refund_fen, net_fen, fee_from_bill_orders, fee_from_bill_refunds, fee_source; as an attachment",
            headers(("Content-Disposition" = String))),
        (status = 400, description = "INVALID_QUERY: a bad date, from after to, or more than 92 days"),
        (status = 401, description = "not signed in"),
        (status = 403, description = "not allowed"),
        (status = 404, description = "MERCHANT_NOT_FOUND (also another owner's merchant)"),
        (status = 429, description = "rate limited"),
    ))]
pub async fn merchant_settlements_csv(
    state: web::Data<AppState>,
    owner: Member<CanReadSettlements>,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (from, to) = date_range(&query)?;
    let body = state
        .app
        .settlements
        .merchant_csv(&owner.merchant_id, from, to);
    Ok(csv_response(
        format!("settlement-{}-{from}-{to}.csv", owner.merchant_id),
        body,
    ))
}

/// `GET /api/admin/settlements?date=&cursor=&limit=`: every merchant with an order paid or a
/// refund made that day, in merchant id order, cursor-paged; totals over all of them.
#[utoipa::path(get, path = "/api/admin/settlements", tag = "admin",
    summary = "Every merchant's settlement for a CST day, cursor-paged, with the day's totals",
    security(("bearer" = [])), params(DayQuery),
    responses(
        (status = 200, body = DaySettlement),
        (status = 400, description = "INVALID_QUERY (a missing or bad date, a bad limit) / INVALID_CURSOR"),
        (status = 401, description = "not signed in"),
        (status = 403, description = "not an admin"),
        (status = 429, description = "rate limited"),
    ))]
pub async fn admin_settlements(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: web::Query<DayQuery>,
) -> Result<HttpResponse, ApiError> {
    let date = cst_date(&query.date)?;
    let page = PageQuery {
        cursor: query.cursor.clone(),
        limit: query.limit,
    }
    .page()?;
    let settlement = state.app.settlements.day(date, &page).await?;
    Ok(HttpResponse::Ok().json(settlement))
}

/// `GET /api/admin/settlements.csv?date=`: every merchant of the day as CSV, streamed.
#[utoipa::path(get, path = "/api/admin/settlements.csv", tag = "admin",
    summary = "Every merchant's settlement for a CST day as CSV (UTF-8 with BOM), a last line `total`",
    security(("bearer" = [])), params(DayCsvQuery),
    responses(
        (status = 200, content_type = "text/csv", body = String,
            description = "CSV: date, merchant_id, merchant_name, order_count, gross_fen, refund_count, refund_fen, fee_fen, fee_refund_fen, net_fen, fee_from_bill_orders, fee_from_bill_refunds, fee_source; as an attachment",
            headers(("Content-Disposition" = String))),
        (status = 400, description = "INVALID_QUERY: a missing or bad date"),
        (status = 401, description = "not signed in"),
        (status = 403, description = "not an admin"),
        (status = 429, description = "rate limited"),
    ))]
pub async fn admin_settlements_csv(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: web::Query<DayCsvQuery>,
) -> Result<HttpResponse, ApiError> {
    let date = cst_date(&query.date)?;
    let body = state.app.settlements.day_csv(date);
    Ok(csv_response(format!("settlements-{date}.csv"), body))
}
