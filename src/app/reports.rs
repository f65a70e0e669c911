//! The read side of orders: listings with merchant names and points, one order, takings
//! per day, the admin overview and the CSV export. Days are China Standard Time (UTC+8).

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;

use super::error::AppError;
use super::page::{PageRequest, Paged};
use crate::cache::{Cache, Kind};
use crate::storage::orders::{self, OrderRow};
use crate::storage::{Db, shop, stats};

pub use crate::storage::stats::{DayStats, OverviewDay};

/// Rows read and written per chunk of a CSV export: what one export holds in memory,
/// however many rows it has.
pub const CSV_CHUNK_ROWS: i64 = 1_000;

/// An order as its shopper, its merchant and admins see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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

/// Which orders a listing shows; all set conditions apply.
#[derive(Debug, Default)]
pub struct OrderFilter {
    pub user_id: Option<String>,
    pub merchant_id: Option<String>,
    pub status: Option<String>,
    /// Created on these CST days, inclusive.
    pub created_days: Option<(NaiveDate, NaiveDate)>,
}

/// The CSV text of `rows`, after the BOM and the header when `first`.
fn csv_chunk(first: bool, rows: Vec<stats::ReportRow>) -> Result<bytes::Bytes, AppError> {
    let cst = |t: NaiveDateTime| {
        (t + Duration::hours(8))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    let mut out = csv::Writer::from_writer(if first {
        Vec::from("\u{feff}".as_bytes())
    } else {
        Vec::new()
    });
    let mut write = |rec: &[String]| {
        out.write_record(rec.iter().map(|cell| spreadsheet_safe(cell).into_owned()))
            .map_err(AppError::internal)
    };
    if first {
        write(
            &[
                "order_no",
                "created_at_cst",
                "paid_at_cst",
                "status",
                "merchant_id",
                "merchant_name",
                "user_id",
                "amount_fen",
                "refunded_fen",
            ]
            .map(str::to_string),
        )?;
    }
    for r in rows {
        write(&[
            r.order_no,
            cst(r.created_at),
            r.paid_at.map(cst).unwrap_or_default(),
            r.status,
            r.merchant_id,
            r.merchant_name,
            r.user_id,
            r.amount_fen.to_string(),
            r.refunded_fen.to_string(),
        ])?;
    }
    let bytes = out
        .into_inner()
        .map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))?;
    Ok(bytes::Bytes::from(bytes))
}

/// A CSV cell a spreadsheet will not run: a cell starting with `=`, `+`, `-`, `@`, a tab or
/// a carriage return is a formula to Excel and LibreOffice (a merchant could name itself
/// `=HYPERLINK(...)`), so it gets a leading `'`, which they show as text (OWASP's advice).
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// The UTC instant a CST (UTC+8) day starts.
pub fn cst_midnight_utc(day: NaiveDate) -> NaiveDateTime {
    day.and_time(chrono::NaiveTime::MIN) - Duration::hours(8)
}

/// The UTC bounds `[start, end)` of the CST days `from..=to`.
fn cst_bounds(from: NaiveDate, to: NaiveDate) -> (NaiveDateTime, NaiveDateTime) {
    (
        cst_midnight_utc(from),
        cst_midnight_utc(to + Duration::days(1)),
    )
}

fn view(order: OrderRow, merchant_name: Option<String>, points_awarded: Option<i64>) -> OrderView {
    view_of(orders::ViewRow {
        order_no: order.order_no,
        user_id: order.user_id,
        merchant_id: order.merchant_id,
        status: order.status,
        amount_fen: order.amount_fen,
        refunded_fen: order.refunded_fen,
        created_at: order.created_at,
        paid_at: order.paid_at,
        merchant_name,
        points_awarded,
    })
}

fn view_of(row: orders::ViewRow) -> OrderView {
    let utc = |t| DateTime::<Utc>::from_naive_utc_and_offset(t, Utc);
    OrderView {
        merchant_name: row.merchant_name.unwrap_or_default(),
        points_awarded: row.points_awarded.unwrap_or(0),
        order_no: row.order_no,
        status: row.status,
        amount_fen: row.amount_fen,
        refunded_fen: row.refunded_fen,
        merchant_id: row.merchant_id,
        created_at: utc(row.created_at),
        paid_at: row.paid_at.map(utc),
    }
}

#[derive(Clone)]
pub struct Reports {
    db: Db,
    cache: Cache,
}

impl Reports {
    pub fn new(db: Db, cache: Cache) -> Reports {
        Reports { db, cache }
    }

    /// Views of many orders with two queries, not two per order.
    async fn views(&self, rows: Vec<OrderRow>) -> Result<Vec<OrderView>, AppError> {
        let merchants: Vec<String> = rows.iter().map(|o| o.merchant_id.clone()).collect();
        let order_nos: Vec<String> = rows.iter().map(|o| o.order_no.clone()).collect();
        let names = shop::merchant_names(&self.db, &merchants).await?;
        let points = shop::points_for_orders(&self.db, &order_nos).await?;
        Ok(rows
            .into_iter()
            .map(|o| {
                let name = names.get(&o.merchant_id).cloned();
                let awarded = points.get(&o.order_no).copied();
                view(o, name, awarded)
            })
            .collect())
    }

    /// One order, whoever it belongs to (callers check who may see it).
    pub async fn order(&self, order_no: &str) -> Result<Option<OrderView>, AppError> {
        Ok(orders::find_with_view(&self.db, order_no)
            .await?
            .map(view_of))
    }

    /// One order of this user; another user's order reads as missing.
    pub async fn order_of_user(
        &self,
        user_id: &str,
        order_no: &str,
    ) -> Result<Option<OrderView>, AppError> {
        Ok(orders::find_with_view(&self.db, order_no)
            .await?
            .filter(|o| o.user_id == user_id)
            .map(view_of))
    }

    /// The caller's order, and whether it is still moving: not yet paid or closed, or paid
    /// with its points not booked yet.
    pub async fn order_of_user_moving(
        &self,
        user_id: &str,
        order_no: &str,
    ) -> Result<Option<(OrderView, bool)>, AppError> {
        let Some(view) = self.order_of_user(user_id, order_no).await? else {
            return Ok(None);
        };
        use crate::domain::order::OrderStatus as S;
        let moving = match S::parse(&view.status) {
            Some(S::Created | S::Paying) => true,
            Some(S::Paid) if view.points_awarded == 0 => {
                crate::storage::outbox::award_pending(&self.db, order_no).await?
            }
            _ => false,
        };
        Ok(Some((view, moving)))
    }

    /// Orders newest first, one page.
    pub async fn orders(
        &self,
        filter: &OrderFilter,
        page: &PageRequest,
    ) -> Result<Paged<OrderView>, AppError> {
        let range = filter.created_days.map(|(from, to)| cst_bounds(from, to));
        let f = orders::ListFilter {
            user_id: filter.user_id.as_deref(),
            merchant_id: filter.merchant_id.as_deref(),
            status: filter.status.as_deref(),
            created_from: range.map(|r| r.0),
            created_to: range.map(|r| r.1),
        };
        let rows = orders::list(&self.db, &f, page.cursor(), page.fetch()).await?;
        let paged = Paged::from_rows(rows, page, |o| o.id.clone());
        Ok(Paged {
            items: self.views(paged.items).await?,
            next_cursor: paged.next_cursor,
        })
    }

    /// A merchant's takings per CST day `from..=to`. Days before today no longer change (a
    /// refund counts on the day it is made), so such ranges are cached in L2; a range with
    /// today in it is always read fresh.
    pub async fn merchant_days(
        &self,
        merchant_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayStats>, AppError> {
        let (start, end) = cst_bounds(from, to);
        let days = if to < crate::domain::cst_day(Utc::now()) {
            let id = format!("{merchant_id}:{from}:{to}");
            self.cache
                .get_or_load(Kind::MerchantStats, &id, || {
                    stats::merchant_days(&self.db, merchant_id, start, end)
                })
                .await?
        } else {
            stats::merchant_days(&self.db, merchant_id, start, end).await?
        };
        Ok(days)
    }

    /// The business per CST day `from..=to`, for the admin dashboard.
    pub async fn overview(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<OverviewDay>, AppError> {
        let (start, end) = cst_bounds(from, to);
        Ok(stats::overview(&self.db, start, end).await?)
    }

    /// The orders created on CST days `from..=to` as CSV (UTF-8 with a BOM so Excel opens
    /// it, times in CST), streamed in chunks of [`CSV_CHUNK_ROWS`] read by keyset: no row
    /// cap, constant memory. Cells a spreadsheet would run are neutralised.
    pub fn orders_csv(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl futures_util::Stream<Item = Result<bytes::Bytes, AppError>> + 'static {
        let (start, end) = cst_bounds(from, to);
        let db = self.db.clone();
        // (the first chunk is still to write, the last row written, no more rows)
        let state = (true, None::<(NaiveDateTime, String)>, false);
        futures_util::stream::try_unfold(state, move |(first, after, done)| {
            let db = db.clone();
            async move {
                if done {
                    return Ok(None);
                }
                let rows =
                    stats::orders_report_page(&db, start, end, after.as_ref(), CSV_CHUNK_ROWS)
                        .await?;
                let last = rows.last().map(|r| (r.created_at, r.order_no.clone()));
                let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) == CSV_CHUNK_ROWS;
                let chunk = csv_chunk(first, rows)?;
                Ok(Some((chunk, (false, last.or(after), !more))))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised_and_others_kept() {
        for bad in [
            "=1+2",
            "+1",
            "-1+1",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "=HYPERLINK(\"http://x\")",
        ] {
            assert_eq!(spreadsheet_safe(bad), format!("'{bad}"), "{bad:?}");
        }
        for ok in ["", "验收咖啡", "Shop = best", "1500", "0195a2b3", "'quoted"] {
            assert_eq!(spreadsheet_safe(ok), ok);
        }
    }
}
