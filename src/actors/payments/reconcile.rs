//! Trade-bill reconciliation: a day's WeChat bill matched against our orders and refunds.
//!
//! Each bill row is matched by its order (payments) or refund number (refunds):
//!
//! - **matched**: the same amount, paid (or refunded) on both sides;
//! - **missing_here**: WeChat took the money but the order is not paid here (its
//!   notification never arrived). The order is re-queried through its payment shard, so the
//!   ordinary paid transition and its one award happen; nothing else writes "paid";
//! - **missing_at_wechat**: paid (or refunded) here that day, absent from the bill;
//! - **amount_mismatch** / **status_mismatch**: both sides know it but disagree. Reported,
//!   never repaired automatically: a person decides.
//!
//! For every matched row (and every order repaired), WeChat's own fee from the bill's `手续费`
//! column is recorded (`storage::bill_fees`, upserted, so a second run changes nothing):
//! settlement takes it instead of the estimate at the configured rate.
//!
//! A run that cannot get or verify the bill (a hash mismatch, a truncated file, WeChat
//! refusing) fails whole and changes nothing. Runs are recorded in `reconciliation_runs`,
//! differences in `reconciliation_discrepancies`; a second run of a day is a new run and
//! repairs nothing twice (a repaired order matches the bill).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use futures_util::StreamExt as _;

use super::supervisor::Payments;
use super::{PaymentError, Settled};
use crate::domain::order::OrderStatus;
use crate::domain::time::cst;
use crate::storage::bill_fees::{self, OrderFee, RefundFee};
use crate::storage::leases;
use crate::storage::reconciliation::{
    self as store, DiscrepancyRow, RUN_FAILED, RUN_RUNNING, RUN_SUCCEEDED, RunCounts, RunRow,
};
use crate::wechat::bill::{BillRow, BillRowKind, TradeBill};

pub const MISSING_HERE: &str = "missing_here";
pub const MISSING_AT_WECHAT: &str = "missing_at_wechat";
pub const AMOUNT_MISMATCH: &str = "amount_mismatch";
pub const STATUS_MISMATCH: &str = "status_mismatch";

/// Every discrepancy kind (metric labels).
pub const KINDS: [&str; 4] = [
    MISSING_HERE,
    MISSING_AT_WECHAT,
    AMOUNT_MISMATCH,
    STATUS_MISMATCH,
];

/// WeChat keeps trade bills for three months.
pub const MAX_AGE_DAYS: u64 = 90;

/// Who started a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The daily job.
    Schedule,
    /// An admin (their id).
    Admin(String),
}

impl Trigger {
    fn kind(&self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Admin(_) => "admin",
        }
    }
}

/// Why a bill date is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillDateError {
    #[error("date must be YYYY-MM-DD")]
    Malformed,
    #[error("date is in the future (China Standard Time)")]
    Future,
    #[error("WeChat keeps trade bills for {MAX_AGE_DAYS} days")]
    TooOld,
}

/// Checks a bill date: `YYYY-MM-DD`, not after today (CST), at most 90 days back. Today is
/// accepted (its bill so far); WeChat itself has a day's bill from 10:00 the next morning.
pub fn parse_bill_date(s: &str, now: DateTime<Utc>) -> Result<NaiveDate, BillDateError> {
    let ok_shape = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !ok_shape {
        return Err(BillDateError::Malformed);
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| BillDateError::Malformed)?;
    let today = crate::domain::time::cst_day(now);
    if date > today {
        return Err(BillDateError::Future);
    }
    if date < today - chrono::Days::new(MAX_AGE_DAYS) {
        return Err(BillDateError::TooOld);
    }
    Ok(date)
}

/// A finished (or failed) run with its differences.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run: RunRow,
    pub discrepancies: Vec<DiscrepancyRow>,
}

/// `[start, end)` of a CST day, as UTC wall times (how timestamps are stored).
fn day_range(date: NaiveDate) -> (NaiveDateTime, NaiveDateTime) {
    let start = date
        .and_time(NaiveTime::MIN)
        .and_local_timezone(cst())
        .single()
        .map(|t| t.naive_utc())
        .unwrap_or_else(|| date.and_time(NaiveTime::MIN));
    (start, start + chrono::Duration::days(1))
}

fn discrepancy(
    run_id: &str,
    kind: &str,
    order_no: &str,
    out_refund_no: Option<&str>,
    ours: (Option<i64>, Option<&str>),
    wechat: (Option<i64>, Option<&str>),
    now: NaiveDateTime,
) -> DiscrepancyRow {
    DiscrepancyRow {
        id: uuid::Uuid::now_v7().to_string(),
        run_id: run_id.to_string(),
        kind: kind.to_string(),
        order_no: order_no.to_string(),
        out_refund_no: out_refund_no.map(str::to_string),
        our_amount_fen: ours.0,
        wechat_amount_fen: wechat.0,
        our_status: ours.1.map(str::to_string),
        wechat_status: wechat.1.map(str::to_string),
        repaired_at: None,
        repair_note: None,
        created_at: now,
    }
}

/// What matching found: counts, the differences, and which of them to repair.
struct Matching {
    counts: RunCounts,
    found: Vec<DiscrepancyRow>,
    /// Indexes into `found` of orders to re-query, with the bill's fee on each.
    to_repair: Vec<(usize, i64)>,
    /// WeChat's fee on each matched order and refund.
    order_fees: Vec<OrderFee>,
    refund_fees: Vec<RefundFee>,
}

/// Matches the bill against our side. Pure: reads nothing, changes nothing.
fn match_bill(
    run_id: &str,
    bill: &TradeBill,
    orders: &HashMap<String, crate::storage::orders::OrderRow>,
    paid_that_day: &[crate::storage::orders::OrderRow],
    refunds: &HashMap<String, crate::storage::refunds::RefundRow>,
    refunded_that_day: &[crate::storage::refunds::RefundRow],
    now: NaiveDateTime,
) -> Matching {
    let mut m = Matching {
        counts: RunCounts {
            bill_rows: i64::try_from(bill.rows.len()).unwrap_or(i64::MAX),
            ..RunCounts::default()
        },
        found: Vec::new(),
        to_repair: Vec::new(),
        order_fees: Vec::new(),
        refund_fees: Vec::new(),
    };
    let mut paid_in_bill: HashSet<&str> = HashSet::new();
    let mut refunds_in_bill: HashSet<&str> = HashSet::new();
    for row in &bill.rows {
        match row.kind {
            BillRowKind::Payment | BillRowKind::Other => {
                paid_in_bill.insert(row.out_trade_no.as_str());
                match_payment(run_id, row, orders, now, &mut m);
            }
            BillRowKind::Refund => {
                if let Some(no) = &row.out_refund_no {
                    refunds_in_bill.insert(no.as_str());
                }
                match_refund(run_id, row, refunds, now, &mut m);
            }
        }
    }
    for o in paid_that_day {
        if !paid_in_bill.contains(o.order_no.as_str()) {
            m.counts.missing_at_wechat += 1;
            m.found.push(discrepancy(
                run_id,
                MISSING_AT_WECHAT,
                &o.order_no,
                None,
                (Some(o.amount_fen), Some(&o.status)),
                (None, None),
                now,
            ));
        }
    }
    for r in refunded_that_day {
        if !refunds_in_bill.contains(r.out_refund_no.as_str()) {
            m.counts.missing_at_wechat += 1;
            m.found.push(discrepancy(
                run_id,
                MISSING_AT_WECHAT,
                &r.order_no,
                Some(&r.out_refund_no),
                (Some(r.amount_fen), Some(&r.status)),
                (None, None),
                now,
            ));
        }
    }
    m
}

fn match_payment(
    run_id: &str,
    row: &BillRow,
    orders: &HashMap<String, crate::storage::orders::OrderRow>,
    now: NaiveDateTime,
    m: &mut Matching,
) {
    let wechat = (Some(row.settlement_fen), Some(row.trade_state.as_str()));
    let Some(order) = orders.get(&row.out_trade_no) else {
        m.counts.missing_here += 1;
        let mut d = discrepancy(
            run_id,
            MISSING_HERE,
            &row.out_trade_no,
            None,
            (None, None),
            wechat,
            now,
        );
        d.repair_note = Some("no such order here: check by hand".into());
        m.found.push(d);
        return;
    };
    let ours = (Some(order.amount_fen), Some(order.status.as_str()));
    if order.amount_fen != row.settlement_fen {
        m.counts.amount_mismatches += 1;
        m.found.push(discrepancy(
            run_id,
            AMOUNT_MISMATCH,
            &order.order_no,
            None,
            ours,
            wechat,
            now,
        ));
        return;
    }
    let paid_here = store::paid_statuses().contains(&order.status.as_str());
    match (row.kind, paid_here) {
        (BillRowKind::Payment, true) => {
            m.counts.matched += 1;
            m.order_fees.push(OrderFee {
                order_no: order.order_no.clone(),
                fee_fen: row.fee_fen,
            });
        }
        (BillRowKind::Payment, false)
            if matches!(
                order.status(),
                Ok(OrderStatus::Created | OrderStatus::Paying)
            ) =>
        {
            m.counts.missing_here += 1;
            m.to_repair.push((m.found.len(), row.fee_fen));
            m.found.push(discrepancy(
                run_id,
                MISSING_HERE,
                &order.order_no,
                None,
                ours,
                wechat,
                now,
            ));
        }
        _ => {
            m.counts.status_mismatches += 1;
            m.found.push(discrepancy(
                run_id,
                STATUS_MISMATCH,
                &order.order_no,
                None,
                ours,
                wechat,
                now,
            ));
        }
    }
}

fn match_refund(
    run_id: &str,
    row: &BillRow,
    refunds: &HashMap<String, crate::storage::refunds::RefundRow>,
    now: NaiveDateTime,
    m: &mut Matching,
) {
    let no = row.out_refund_no.as_deref().unwrap_or_default();
    let wechat = (
        Some(row.refund_fen),
        Some(row.refund_status.as_deref().unwrap_or("REFUND")),
    );
    let Some(refund) = refunds.get(no) else {
        m.counts.missing_here += 1;
        let mut d = discrepancy(
            run_id,
            MISSING_HERE,
            &row.out_trade_no,
            Some(no),
            (None, None),
            wechat,
            now,
        );
        d.repair_note = Some("no such refund here: check by hand".into());
        m.found.push(d);
        return;
    };
    let ours = (Some(refund.amount_fen), Some(refund.status.as_str()));
    if refund.amount_fen != row.refund_fen {
        m.counts.amount_mismatches += 1;
        m.found.push(discrepancy(
            run_id,
            AMOUNT_MISMATCH,
            &refund.order_no,
            Some(no),
            ours,
            wechat,
            now,
        ));
    } else if refund.status == "success" && row.refund_status.as_deref() == Some("SUCCESS") {
        m.counts.matched += 1;
        // A refund row's fee is negative: the fee WeChat gives back.
        m.refund_fees.push(RefundFee {
            out_refund_no: refund.out_refund_no.clone(),
            order_no: refund.order_no.clone(),
            fee_returned_fen: -row.fee_fen,
        });
    } else if refund.status == "processing" {
        // The payment recovery asks WeChat about refunds still processing and books them.
        m.counts.missing_here += 1;
        let mut d = discrepancy(
            run_id,
            MISSING_HERE,
            &refund.order_no,
            Some(no),
            ours,
            wechat,
            now,
        );
        d.repair_note = Some(
            "refund still processing here: the refund query of the payment recovery books it"
                .into(),
        );
        m.found.push(d);
    } else {
        m.counts.status_mismatches += 1;
        m.found.push(discrepancy(
            run_id,
            STATUS_MISMATCH,
            &refund.order_no,
            Some(no),
            ours,
            wechat,
            now,
        ));
    }
}

/// How many orders are re-queried at once by a run.
const REPAIRS_IN_FLIGHT: usize = 8;

impl Payments {
    /// Reconciles one CST day: downloads and verifies WeChat's trade bill, matches it, re-queries
    /// the orders WeChat says are paid but we do not (so they are paid and awarded through the
    /// payment path), and records the run and its differences. A bill that cannot be had or
    /// verified fails the run, which is recorded with its error; nothing else changes.
    pub async fn reconcile_day(
        &self,
        date: NaiveDate,
        trigger: Trigger,
    ) -> Result<RunOutcome, PaymentError> {
        let core = self.core();
        let db = &core.db;
        let started = Utc::now().naive_utc();
        let mut run = RunRow {
            id: uuid::Uuid::now_v7().to_string(),
            bill_date: date.format("%Y-%m-%d").to_string(),
            status: RUN_RUNNING.into(),
            trigger_kind: trigger.kind().into(),
            requested_by: match &trigger {
                Trigger::Admin(id) => Some(id.clone()),
                Trigger::Schedule => None,
            },
            bill_rows: 0,
            matched: 0,
            missing_here: 0,
            missing_at_wechat: 0,
            amount_mismatches: 0,
            status_mismatches: 0,
            repaired: 0,
            error: None,
            started_at: started,
            finished_at: None,
        };
        store::insert_run(db, &run).await?;
        let bill = match self.fetch_bill(date).await {
            Ok(bill) => bill,
            Err(e) => {
                let error = e.to_string();
                tracing::error!(category = "business", action = "reconcile", run_id = %run.id, bill_date = %run.bill_date, error = %error, "trade bill not reconciled: the bill could not be had or verified");
                let now = Utc::now().naive_utc();
                store::finish_run(
                    db,
                    &run.id,
                    RUN_FAILED,
                    &RunCounts::default(),
                    Some(&error),
                    now,
                )
                .await?;
                core.metrics
                    .reconciliation_runs
                    .with_label_values(&[RUN_FAILED])
                    .inc();
                run.status = RUN_FAILED.into();
                run.error = Some(error);
                run.finished_at = Some(now);
                return Ok(RunOutcome {
                    run,
                    discrepancies: Vec::new(),
                });
            }
        };
        let (from, to) = day_range(date);
        let named_orders: Vec<String> = bill
            .rows
            .iter()
            .map(|r| r.out_trade_no.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let named_refunds: Vec<String> = bill
            .rows
            .iter()
            .filter_map(|r| r.out_refund_no.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let orders: HashMap<_, _> = store::orders_by_no(db, &named_orders)
            .await?
            .into_iter()
            .map(|o| (o.order_no.clone(), o))
            .collect();
        let refunds: HashMap<_, _> = store::refunds_by_no(db, &named_refunds)
            .await?
            .into_iter()
            .map(|r| (r.out_refund_no.clone(), r))
            .collect();
        let paid_that_day = store::orders_paid_between(db, from, to).await?;
        let refunded_that_day = store::refunds_succeeded_between(db, from, to).await?;
        let now = Utc::now().naive_utc();
        let mut m = match_bill(
            &run.id,
            &bill,
            &orders,
            &paid_that_day,
            &refunds,
            &refunded_that_day,
            now,
        );
        // Repairs: each order WeChat says is paid, re-queried through its shard.
        let repairs: Vec<(usize, i64, Result<Settled, PaymentError>)> =
            futures_util::stream::iter(m.to_repair.clone())
                .map(|(i, fee_fen)| {
                    let order_no = m.found[i].order_no.clone();
                    async move { (i, fee_fen, self.requery(&order_no).await) }
                })
                .buffer_unordered(REPAIRS_IN_FLIGHT)
                .collect()
                .await;
        for (i, fee_fen, result) in repairs {
            let d = &mut m.found[i];
            let at = Utc::now().naive_utc();
            if matches!(result, Ok(Settled::Paid | Settled::Duplicate)) {
                m.order_fees.push(OrderFee {
                    order_no: d.order_no.clone(),
                    fee_fen,
                });
            }
            match result {
                Ok(Settled::Paid) => {
                    d.repaired_at = Some(at);
                    d.repair_note = Some("re-queried at WeChat: paid here through the payment path, points awarded once".into());
                    m.counts.repaired += 1;
                }
                Ok(Settled::Duplicate) => {
                    d.repaired_at = Some(at);
                    d.repair_note =
                        Some("paid here meanwhile (a late notification or query)".into());
                    m.counts.repaired += 1;
                }
                Ok(Settled::Closed | Settled::Unchanged) => {
                    d.repair_note =
                        Some("WeChat's query did not confirm the payment: check by hand".into());
                }
                Err(e) => {
                    d.repair_note = Some(format!("re-query failed: {e}"));
                }
            }
            tracing::info!(category = "business", action = "reconcile_repair", run_id = %run.id, order_no = %d.order_no, repaired = d.repaired_at.is_some(), note = d.repair_note.as_deref().unwrap_or(""), "order WeChat says is paid re-queried");
        }
        for d in &m.found {
            store::insert_discrepancy(db, d).await?;
            core.metrics
                .reconciliation_discrepancies
                .with_label_values(&[d.kind.as_str()])
                .inc();
        }
        bill_fees::record(db, &run.bill_date, &m.order_fees, &m.refund_fees, now).await?;
        let finished = Utc::now().naive_utc();
        store::finish_run(db, &run.id, RUN_SUCCEEDED, &m.counts, None, finished).await?;
        core.metrics
            .reconciliation_runs
            .with_label_values(&[RUN_SUCCEEDED])
            .inc();
        let c = m.counts;
        tracing::info!(category = "business", action = "reconcile", run_id = %run.id, bill_date = %run.bill_date, rows = c.bill_rows, matched = c.matched, missing_here = c.missing_here, missing_at_wechat = c.missing_at_wechat, amount_mismatches = c.amount_mismatches, status_mismatches = c.status_mismatches, repaired = c.repaired, "trade bill reconciled");
        run.status = RUN_SUCCEEDED.into();
        run.bill_rows = c.bill_rows;
        run.matched = c.matched;
        run.missing_here = c.missing_here;
        run.missing_at_wechat = c.missing_at_wechat;
        run.amount_mismatches = c.amount_mismatches;
        run.status_mismatches = c.status_mismatches;
        run.repaired = c.repaired;
        run.finished_at = Some(finished);
        Ok(RunOutcome {
            run,
            discrepancies: m.found,
        })
    }

    async fn fetch_bill(&self, date: NaiveDate) -> Result<TradeBill, PaymentError> {
        let wechat = &self.core().wechat;
        let location = wechat
            .trade_bill(date)
            .await
            .map_err(PaymentError::Wechat)?;
        let bill = wechat
            .download_trade_bill(&location)
            .await
            .map_err(PaymentError::Wechat)?;
        let cfg = wechat.config();
        if let Some(row) = bill.rows.iter().find(|r| r.mchid != cfg.mchid) {
            return Err(PaymentError::Mismatch(if row.mchid.is_empty() {
                "bill row without mchid"
            } else {
                "bill of another merchant"
            }));
        }
        Ok(bill)
    }
}

/// The daily job's settings: the CST time after which yesterday's bill is reconciled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailySchedule {
    pub at: NaiveTime,
}

impl DailySchedule {
    /// The bill date due at `now`, if the time of day has come.
    fn due(&self, now: DateTime<Utc>) -> Option<NaiveDate> {
        let local = now.with_timezone(&cst());
        (local.time() >= self.at).then(|| local.date_naive() - chrono::Days::new(1))
    }
}

/// How often the daily job looks at the clock, and waits after a failed run.
const JOB_TICK: Duration = Duration::from_secs(60);
const JOB_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);
/// How long the daily job's lease lasts (longer than a run).
const JOB_LEASE_MINUTES: i64 = 30;

/// Starts the daily job on the current arbiter: once the time of day has come, yesterday's
/// bill is reconciled by exactly one instance (the holder of the day's lease in
/// `order_leases`, key `recon-YYYY-MM-DD`), once (a day with a succeeded scheduled run is
/// done); a failed run is tried again 15 minutes later.
pub fn start_daily(payments: Payments, schedule: DailySchedule, instance: Arc<str>) {
    actix::spawn(async move {
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut interval = tokio::time::interval(JOB_TICK);
        loop {
            interval.tick().await;
            if retry_at.is_some_and(|t| tokio::time::Instant::now() < t) {
                continue;
            }
            let now = Utc::now();
            let Some(date) = schedule.due(now) else {
                continue;
            };
            match scheduled_day(&payments, date, &instance, now).await {
                Ok(Some(status)) if status == RUN_FAILED => {
                    retry_at = Some(tokio::time::Instant::now() + JOB_RETRY_AFTER);
                }
                Ok(_) => retry_at = None,
                Err(e) => {
                    tracing::warn!(category = "system", bill_date = %date, error = %e, "daily reconciliation step failed; retrying later");
                    retry_at = Some(tokio::time::Instant::now() + JOB_RETRY_AFTER);
                }
            }
        }
    });
}

/// One step of the daily job for `date` as instance `instance`: nothing when a scheduled run of
/// the day succeeded already or another instance holds the day's lease; otherwise the run.
/// Answers the run's status when it ran.
pub async fn scheduled_day(
    payments: &Payments,
    date: NaiveDate,
    instance: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, PaymentError> {
    let db = &payments.core().db;
    let day = date.format("%Y-%m-%d").to_string();
    if store::succeeded_for(db, &day, Trigger::Schedule.kind()).await? {
        return Ok(None);
    }
    let key = format!("recon-{day}");
    let until = now + chrono::Duration::minutes(JOB_LEASE_MINUTES);
    if !leases::claim(db, &key, instance, now.naive_utc(), until.naive_utc()).await? {
        return Ok(None);
    }
    // Read again under the lease: another instance may have finished the day just before.
    if store::succeeded_for(db, &day, Trigger::Schedule.kind()).await? {
        return Ok(None);
    }
    let outcome = payments.reconcile_day(date, Trigger::Schedule).await?;
    if outcome.run.status == RUN_SUCCEEDED {
        leases::release(db, &key, instance).await?;
    }
    Ok(Some(outcome.run.status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn bill_dates_are_checked_against_the_cst_calendar() {
        // 2026-12-07 02:00 CST.
        let now = at("2026-12-06T18:00:00Z");
        assert_eq!(
            parse_bill_date("2026-12-07", now),
            Ok(NaiveDate::from_ymd_opt(2026, 12, 7).unwrap())
        );
        assert_eq!(
            parse_bill_date("2026-12-08", now),
            Err(BillDateError::Future)
        );
        assert_eq!(
            parse_bill_date("2026-08-01", now),
            Err(BillDateError::TooOld)
        );
        for bad in [
            "",
            "2026-12-7",
            "2026/12/06",
            "2026-13-01",
            "2026-02-30",
            "20261206",
            " 2026-12-06",
            "2026-12-06T00",
        ] {
            assert_eq!(
                parse_bill_date(bad, now),
                Err(BillDateError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_cst_day_is_16_00_to_16_00_utc() {
        let (from, to) = day_range(NaiveDate::from_ymd_opt(2026, 12, 7).unwrap());
        assert_eq!(from.to_string(), "2026-12-06 16:00:00");
        assert_eq!(to.to_string(), "2026-12-07 16:00:00");
    }

    #[test]
    fn the_daily_job_runs_yesterday_after_its_time() {
        let s = DailySchedule {
            at: NaiveTime::from_hms_opt(10, 30, 0).unwrap(),
        };
        assert_eq!(s.due(at("2026-12-07T02:29:00Z")), None);
        assert_eq!(
            s.due(at("2026-12-07T02:30:00Z")),
            NaiveDate::from_ymd_opt(2026, 12, 6)
        );
    }
}
