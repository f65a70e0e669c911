//! Business metrics of the payment path (names in docs/metrics.md).

use chrono::{DateTime, Utc};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts};

use crate::storage::orders::OrderRow;
use crate::telemetry::Metrics;

const SECONDS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
];

pub struct PaymentMetrics {
    pub created: IntCounter,
    pub completed: IntCounterVec,
    pub duration: Histogram,
    pub amount_fen: IntCounter,
    pub awards: IntCounterVec,
    pub award_delay: Histogram,
    pub notifications: IntCounterVec,
    pub notifications_unlogged: IntCounter,
    pub mismatches: IntCounter,
    pub illegal_transitions: IntCounter,
    pub risk_blocks: IntCounterVec,
    pub adopted: IntCounter,
    pub refunds: IntCounterVec,
    /// Reconciliation runs by outcome (`succeeded`, `failed`).
    pub reconciliation_runs: IntCounterVec,
    /// Differences reconciliation found, by kind.
    pub reconciliation_discrepancies: IntCounterVec,
}

impl PaymentMetrics {
    pub fn new(metrics: &Metrics) -> Result<PaymentMetrics, prometheus::Error> {
        let m = PaymentMetrics {
            created: IntCounter::new("payments_created_total", "Orders created")?,
            completed: IntCounterVec::new(
                Opts::new("payments_completed_total", "Orders that reached an outcome"),
                &["result"],
            )?,
            duration: Histogram::with_opts(
                HistogramOpts::new("payment_duration_seconds", "Order created -> paid")
                    .buckets(SECONDS.to_vec()),
            )?,
            amount_fen: IntCounter::new("payment_amount_fen_total", "Paid amount in fen")?,
            awards: IntCounterVec::new(
                Opts::new("points_awards_total", "Point awards for paid orders"),
                &["result"],
            )?,
            award_delay: Histogram::with_opts(
                HistogramOpts::new("points_award_delay_seconds", "Paid -> points committed")
                    .buckets(SECONDS.to_vec()),
            )?,
            notifications: IntCounterVec::new(
                Opts::new(
                    "wechat_notifications_total",
                    "WeChat notifications by result",
                ),
                &["kind", "result"],
            )?,
            notifications_unlogged: IntCounter::new(
                "wechat_notifications_unlogged_total",
                "Refused notifications counted but not written to the log (over its rate)",
            )?,
            mismatches: IntCounter::new(
                "payment_mismatches_total",
                "Payments refused because amount, merchant or app did not match the order",
            )?,
            illegal_transitions: IntCounter::new(
                "order_illegal_transitions_total",
                "Order transitions the state machine refused",
            )?,
            risk_blocks: IntCounterVec::new(
                Opts::new("risk_blocks_total", "Payments refused by a risk rule"),
                &["rule"],
            )?,
            adopted: IntCounter::new(
                "payment_orders_adopted_total",
                "Due open orders this instance found by its rescan that it was not watching (an instance that died, or a missed watch)",
            )?,
            refunds: IntCounterVec::new(
                Opts::new(
                    "refunds_total",
                    "Refund outcomes booked (success, closed, abnormal), once per refund",
                ),
                &["result"],
            )?,
            reconciliation_runs: IntCounterVec::new(
                Opts::new(
                    "reconciliation_runs_total",
                    "Trade-bill reconciliation runs by outcome",
                ),
                &["result"],
            )?,
            reconciliation_discrepancies: IntCounterVec::new(
                Opts::new(
                    "reconciliation_discrepancies_total",
                    "Differences between WeChat's trade bill and our books, by kind",
                ),
                &["kind"],
            )?,
        };
        metrics.register(Box::new(m.reconciliation_runs.clone()));
        metrics.register(Box::new(m.reconciliation_discrepancies.clone()));
        for r in ["succeeded", "failed"] {
            m.reconciliation_runs.with_label_values(&[r]);
        }
        for k in super::reconcile::KINDS {
            m.reconciliation_discrepancies.with_label_values(&[k]);
        }
        metrics.register(Box::new(m.refunds.clone()));
        metrics.register(Box::new(m.adopted.clone()));
        metrics.register(Box::new(m.risk_blocks.clone()));
        metrics.register(Box::new(m.created.clone()));
        metrics.register(Box::new(m.completed.clone()));
        metrics.register(Box::new(m.duration.clone()));
        metrics.register(Box::new(m.amount_fen.clone()));
        metrics.register(Box::new(m.awards.clone()));
        metrics.register(Box::new(m.award_delay.clone()));
        metrics.register(Box::new(m.notifications.clone()));
        metrics.register(Box::new(m.notifications_unlogged.clone()));
        metrics.register(Box::new(m.mismatches.clone()));
        metrics.register(Box::new(m.illegal_transitions.clone()));
        // Series exist from the start so rates and alerts see zeros, not gaps.
        for r in ["success", "failed", "closed"] {
            m.completed.with_label_values(&[r]);
        }
        for r in ["success", "failed"] {
            m.awards.with_label_values(&[r]);
        }
        for r in ["success", "closed", "abnormal"] {
            m.refunds.with_label_values(&[r]);
        }
        for k in ["pay", "refund"] {
            for r in ["ok", "duplicate", "ignored", "rejected", "error"] {
                m.notifications.with_label_values(&[k, r]);
            }
        }
        Ok(m)
    }

    pub fn record_paid(&self, order: &OrderRow, now: DateTime<Utc>) {
        self.completed.with_label_values(&["success"]).inc();
        self.amount_fen
            .inc_by(u64::try_from(order.amount_fen).unwrap_or(0));
        let created = DateTime::<Utc>::from_naive_utc_and_offset(order.created_at, Utc);
        self.duration
            .observe((now - created).num_milliseconds().max(0) as f64 / 1000.0);
    }

    pub fn record_award(&self, ok: bool, paid_at: DateTime<Utc>, duplicate: bool) {
        self.awards
            .with_label_values(&[if ok { "success" } else { "failed" }])
            .inc();
        if ok && !duplicate {
            let delay = (Utc::now() - paid_at).num_milliseconds().max(0) as f64 / 1000.0;
            self.award_delay.observe(delay);
        }
    }
}
