//! Collectors of the points engine, registered on the application's `Metrics`.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts};

use crate::domain::PointsKind;
use crate::telemetry::Metrics;

const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0,
];

#[derive(Clone)]
pub struct PointsMetrics {
    pub actors_active: IntGauge,
    pub mailbox_depth: IntGauge,
    pub commit_batch_size: Histogram,
    pub commits_total: IntCounterVec,
    pub changes_total: IntCounterVec,
    pub points_total: IntCounterVec,
}

impl PointsMetrics {
    pub fn new(metrics: &Metrics) -> Result<PointsMetrics, prometheus::Error> {
        let m = PointsMetrics {
            actors_active: IntGauge::new("points_actors_active", "Points actors alive")?,
            mailbox_depth: IntGauge::new(
                "points_actor_mailbox_depth",
                "Points commands sent to actors and not yet answered",
            )?,
            commit_batch_size: Histogram::with_opts(
                HistogramOpts::new(
                    "ledger_commit_batch_size",
                    "Point changes per ledger commit",
                )
                .buckets(BATCH_BUCKETS.to_vec()),
            )?,
            commits_total: IntCounterVec::new(
                Opts::new(
                    "ledger_commits_total",
                    "Ledger commits (ok), users refused by a version or source conflict \
                     (conflict), failed transactions (error)",
                ),
                &["result"],
            )?,
            changes_total: IntCounterVec::new(
                Opts::new("points_changes_total", "Committed point changes by kind"),
                &["kind"],
            )?,
            points_total: IntCounterVec::new(
                Opts::new("points_total", "Committed points moved, by kind (absolute)"),
                &["kind"],
            )?,
        };
        metrics.register(Box::new(m.actors_active.clone()));
        metrics.register(Box::new(m.mailbox_depth.clone()));
        metrics.register(Box::new(m.commit_batch_size.clone()));
        metrics.register(Box::new(m.commits_total.clone()));
        metrics.register(Box::new(m.changes_total.clone()));
        metrics.register(Box::new(m.points_total.clone()));
        // Every series exists from the first scrape (at 0).
        for result in ["ok", "conflict", "error"] {
            m.commits_total.with_label_values(&[result]);
        }
        for kind in [
            PointsKind::Award,
            PointsKind::Deduct,
            PointsKind::Expire,
            PointsKind::Clawback,
            PointsKind::Adjust,
        ] {
            m.changes_total.with_label_values(&[kind.as_str()]);
            m.points_total.with_label_values(&[kind.as_str()]);
        }
        Ok(m)
    }
}
