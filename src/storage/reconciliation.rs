//! Reconciliation runs and the differences they found, and the reads a run matches a day's
//! bill against: the orders paid and the refunds that succeeded in a time range, and the
//! orders and refunds a bill names.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;

use super::orders::OrderRow;
use super::refunds::RefundRow;
use super::schema::{payment_orders, reconciliation_discrepancies, reconciliation_runs, refunds};
use super::{Db, StorageError};
use crate::domain::order::OrderStatus;
use crate::with_conn;

/// Run statuses.
pub const RUN_RUNNING: &str = "running";
pub const RUN_SUCCEEDED: &str = "succeeded";
pub const RUN_FAILED: &str = "failed";

/// How many keys go into one `IN (…)` list.
const CHUNK: usize = 500;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = reconciliation_runs)]
pub struct RunRow {
    pub id: String,
    pub bill_date: String,
    pub status: String,
    pub trigger_kind: String,
    pub requested_by: Option<String>,
    pub bill_rows: i64,
    pub matched: i64,
    pub missing_here: i64,
    pub missing_at_wechat: i64,
    pub amount_mismatches: i64,
    pub status_mismatches: i64,
    pub repaired: i64,
    pub error: Option<String>,
    pub started_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = reconciliation_discrepancies)]
pub struct DiscrepancyRow {
    pub id: String,
    pub run_id: String,
    pub kind: String,
    pub order_no: String,
    pub out_refund_no: Option<String>,
    pub our_amount_fen: Option<i64>,
    pub wechat_amount_fen: Option<i64>,
    pub our_status: Option<String>,
    pub wechat_status: Option<String>,
    pub repaired_at: Option<NaiveDateTime>,
    pub repair_note: Option<String>,
    pub created_at: NaiveDateTime,
}

/// What a finished run counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunCounts {
    pub bill_rows: i64,
    pub matched: i64,
    pub missing_here: i64,
    pub missing_at_wechat: i64,
    pub amount_mismatches: i64,
    pub status_mismatches: i64,
    pub repaired: i64,
}

pub async fn insert_run(db: &Db, run: &RunRow) -> Result<(), StorageError> {
    let mut conn = db.write_conn().await?;
    with_conn!(&mut conn, |c| {
        diesel::insert_into(reconciliation_runs::table)
            .values(run)
            .execute(c)
            .await
    })?;
    Ok(())
}

/// Ends a run (only a running one): its status, counts and error.
pub async fn finish_run(
    db: &Db,
    id: &str,
    status: &str,
    counts: &RunCounts,
    error: Option<&str>,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    let mut conn = db.write_conn().await?;
    with_conn!(&mut conn, |c| {
        diesel::update(
            reconciliation_runs::table
                .filter(reconciliation_runs::id.eq(id))
                .filter(reconciliation_runs::status.eq(RUN_RUNNING)),
        )
        .set((
            reconciliation_runs::status.eq(status),
            reconciliation_runs::bill_rows.eq(counts.bill_rows),
            reconciliation_runs::matched.eq(counts.matched),
            reconciliation_runs::missing_here.eq(counts.missing_here),
            reconciliation_runs::missing_at_wechat.eq(counts.missing_at_wechat),
            reconciliation_runs::amount_mismatches.eq(counts.amount_mismatches),
            reconciliation_runs::status_mismatches.eq(counts.status_mismatches),
            reconciliation_runs::repaired.eq(counts.repaired),
            reconciliation_runs::error.eq(error),
            reconciliation_runs::finished_at.eq(Some(now)),
        ))
        .execute(c)
        .await
    })?;
    Ok(())
}

pub async fn insert_discrepancy(db: &Db, row: &DiscrepancyRow) -> Result<(), StorageError> {
    let mut conn = db.write_conn().await?;
    with_conn!(&mut conn, |c| {
        diesel::insert_into(reconciliation_discrepancies::table)
            .values(row)
            .execute(c)
            .await
    })?;
    Ok(())
}

pub async fn find_run(db: &Db, id: &str) -> Result<Option<RunRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        reconciliation_runs::table
            .filter(reconciliation_runs::id.eq(id))
            .select(RunRow::as_select())
            .first(c)
            .await
            .optional()
    })?)
}

/// Runs newest first (ids are UUID v7), cursor-paged by id.
pub async fn list_runs(
    db: &Db,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<RunRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        let mut q = reconciliation_runs::table
            .select(RunRow::as_select())
            .order(reconciliation_runs::id.desc())
            .limit(limit)
            .into_boxed();
        if let Some(b) = before_id {
            q = q.filter(reconciliation_runs::id.lt(b));
        }
        q.load(c).await
    })?)
}

pub async fn discrepancies(db: &Db, run_id: &str) -> Result<Vec<DiscrepancyRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        reconciliation_discrepancies::table
            .filter(reconciliation_discrepancies::run_id.eq(run_id))
            .order(reconciliation_discrepancies::id.asc())
            .select(DiscrepancyRow::as_select())
            .load(c)
            .await
    })?)
}

/// Whether a run of `bill_date` by `trigger_kind` succeeded already (the daily job runs a
/// day once).
pub async fn succeeded_for(
    db: &Db,
    bill_date: &str,
    trigger_kind: &str,
) -> Result<bool, StorageError> {
    let mut conn = db.conn().await?;
    let n: i64 = with_conn!(&mut conn, |c| {
        reconciliation_runs::table
            .filter(reconciliation_runs::bill_date.eq(bill_date))
            .filter(reconciliation_runs::trigger_kind.eq(trigger_kind))
            .filter(reconciliation_runs::status.eq(RUN_SUCCEEDED))
            .count()
            .get_result(c)
            .await
    })?;
    Ok(n > 0)
}

/// The statuses of an order whose payment succeeded (refunded ones were paid too).
pub fn paid_statuses() -> [&'static str; 4] {
    [
        OrderStatus::Paid.as_str(),
        OrderStatus::Refunding.as_str(),
        OrderStatus::PartiallyRefunded.as_str(),
        OrderStatus::Refunded.as_str(),
    ]
}

/// Orders paid in `[from, to)` (UTC).
pub async fn orders_paid_between(
    db: &Db,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<OrderRow>, StorageError> {
    let paid = paid_statuses();
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        payment_orders::table
            .filter(payment_orders::paid_at.ge(from))
            .filter(payment_orders::paid_at.lt(to))
            .filter(payment_orders::status.eq_any(paid))
            .select(OrderRow::as_select())
            .load(c)
            .await
    })?)
}

/// The orders with these numbers (those that exist).
pub async fn orders_by_no(db: &Db, order_nos: &[String]) -> Result<Vec<OrderRow>, StorageError> {
    let mut out = Vec::with_capacity(order_nos.len());
    let mut conn = db.conn().await?;
    for chunk in order_nos.chunks(CHUNK) {
        let rows: Vec<OrderRow> = with_conn!(&mut conn, |c| {
            payment_orders::table
                .filter(payment_orders::order_no.eq_any(chunk))
                .select(OrderRow::as_select())
                .load(c)
                .await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

/// Refunds that succeeded in `[from, to)` (UTC).
pub async fn refunds_succeeded_between(
    db: &Db,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<RefundRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        refunds::table
            .filter(refunds::success_at.ge(from))
            .filter(refunds::success_at.lt(to))
            .filter(refunds::status.eq("success"))
            .select(RefundRow::as_select())
            .load(c)
            .await
    })?)
}

/// The refunds with these numbers (those that exist).
pub async fn refunds_by_no(
    db: &Db,
    out_refund_nos: &[String],
) -> Result<Vec<RefundRow>, StorageError> {
    let mut out = Vec::with_capacity(out_refund_nos.len());
    let mut conn = db.conn().await?;
    for chunk in out_refund_nos.chunks(CHUNK) {
        let rows: Vec<RefundRow> = with_conn!(&mut conn, |c| {
            refunds::table
                .filter(refunds::out_refund_no.eq_any(chunk))
                .select(RefundRow::as_select())
                .load(c)
                .await
        })?;
        out.extend(rows);
    }
    Ok(out)
}
