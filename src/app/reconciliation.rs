//! The read side of trade-bill reconciliation: runs and the differences they found, as admins
//! see them. Runs themselves are made by the payment actors (`actors::payments::reconcile`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::AppError;
use super::page::{PageRequest, Paged};
use crate::storage::Db;
use crate::storage::reconciliation::{self as store, DiscrepancyRow, RunRow};

/// One reconciliation run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunView {
    pub id: String,
    /// The bill's day, `YYYY-MM-DD` (China Standard Time).
    pub bill_date: String,
    /// `running`, `succeeded` or `failed` (the bill could not be had or verified; nothing
    /// was matched or repaired).
    pub status: String,
    /// `schedule` (the daily job) or `admin`.
    pub trigger: String,
    /// The admin who asked for it.
    pub requested_by: Option<String>,
    /// Rows in WeChat's bill.
    pub bill_rows: i64,
    pub matched: i64,
    /// Paid (or refunded) at WeChat, not here.
    pub missing_here: i64,
    /// Paid (or refunded) here that day, absent from WeChat's bill.
    pub missing_at_wechat: i64,
    pub amount_mismatches: i64,
    pub status_mismatches: i64,
    /// Differences repaired by this run (orders re-queried and paid through the payment path).
    pub repaired: i64,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One difference between WeChat's bill and our books.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DiscrepancyView {
    pub id: String,
    /// `missing_here`, `missing_at_wechat`, `amount_mismatch` or `status_mismatch`.
    pub kind: String,
    pub order_no: String,
    /// Set when the difference is about a refund.
    pub out_refund_no: Option<String>,
    /// Fen.
    pub our_amount_fen: Option<i64>,
    /// Fen, as the bill says.
    pub wechat_amount_fen: Option<i64>,
    pub our_status: Option<String>,
    pub wechat_status: Option<String>,
    /// When the run repaired it (only `missing_here` orders are ever repaired).
    pub repaired_at: Option<DateTime<Utc>>,
    /// What the repair did, or why there was none.
    pub repair_note: Option<String>,
}

/// A run with its differences.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunView,
    pub discrepancies: Vec<DiscrepancyView>,
}

pub fn run_view(r: &RunRow) -> RunView {
    RunView {
        id: r.id.clone(),
        bill_date: r.bill_date.clone(),
        status: r.status.clone(),
        trigger: r.trigger_kind.clone(),
        requested_by: r.requested_by.clone(),
        bill_rows: r.bill_rows,
        matched: r.matched,
        missing_here: r.missing_here,
        missing_at_wechat: r.missing_at_wechat,
        amount_mismatches: r.amount_mismatches,
        status_mismatches: r.status_mismatches,
        repaired: r.repaired,
        error: r.error.clone(),
        started_at: r.started_at.and_utc(),
        finished_at: r.finished_at.map(|t| t.and_utc()),
    }
}

pub fn discrepancy_view(d: &DiscrepancyRow) -> DiscrepancyView {
    DiscrepancyView {
        id: d.id.clone(),
        kind: d.kind.clone(),
        order_no: d.order_no.clone(),
        out_refund_no: d.out_refund_no.clone(),
        our_amount_fen: d.our_amount_fen,
        wechat_amount_fen: d.wechat_amount_fen,
        our_status: d.our_status.clone(),
        wechat_status: d.wechat_status.clone(),
        repaired_at: d.repaired_at.map(|t| t.and_utc()),
        repair_note: d.repair_note.clone(),
    }
}

pub fn detail(run: &RunRow, discrepancies: &[DiscrepancyRow]) -> RunDetail {
    RunDetail {
        run: run_view(run),
        discrepancies: discrepancies.iter().map(discrepancy_view).collect(),
    }
}

#[derive(Clone)]
pub struct Reconciliation {
    db: Db,
}

impl Reconciliation {
    pub fn new(db: Db) -> Reconciliation {
        Reconciliation { db }
    }

    /// Runs, newest first.
    pub async fn runs(&self, page: &PageRequest) -> Result<Paged<RunView>, AppError> {
        let rows = store::list_runs(&self.db, page.cursor(), page.fetch()).await?;
        Ok(Paged::from_rows(rows, page, |r| r.id.clone()).map(|r| run_view(&r)))
    }

    /// One run with its differences, if there is one.
    pub async fn run(&self, id: &str) -> Result<Option<RunDetail>, AppError> {
        let Some(run) = store::find_run(&self.db, id).await? else {
            return Ok(None);
        };
        let found = store::discrepancies(&self.db, id).await?;
        Ok(Some(detail(&run, &found)))
    }
}
