//! Prometheus metrics. One registry per application instance (tests run several in one
//! process); names follow Prometheus conventions (`_total`, `_seconds`, base units).

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Latency buckets in seconds, fine below 50 ms where the hot path lives.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub http_requests_total: IntCounterVec,
    pub http_request_duration_seconds: HistogramVec,
    pub http_requests_in_flight: IntGauge,
    pub db_pool_connections: IntGaugeVec,
    pub redis_pool_connections: IntGaugeVec,
    pub dependency_up: IntGaugeVec,
    /// Outbox rows not yet processed (database-wide, sampled at scrape).
    pub outbox_pending: IntGauge,
    /// Age of the oldest unprocessed outbox row (database-wide, sampled at scrape).
    pub outbox_oldest_age_seconds: Gauge,
    /// Subscribe messages to shoppers by result (`sent`, `failed`, `dead`).
    pub subscribe_messages_total: IntCounterVec,
    /// Shoppers with an order in the window (`5m`, `24h`), database-wide.
    pub business_active_users: IntGaugeVec,
    /// The 7-day retention cohort (`cohort`: signed up 14 to 7 days ago; `retained`: of
    /// them, ordered in the last 7 days), database-wide.
    pub business_retention_users: IntGaugeVec,
    /// The data directory's file system (`free`, `total` bytes).
    pub data_dir_bytes: IntGaugeVec,
    /// When the database-wide business gauges were last read (at most once a minute).
    business_read_at: std::sync::Arc<parking_lot::Mutex<Option<std::time::Instant>>>,
}

/// How often a scrape may read the business gauges from the database.
const BUSINESS_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let http_requests_total = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route template and status",
            ),
            &["method", "route", "status"],
        )?;
        let http_request_duration_seconds = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route"],
        )?;
        let http_requests_in_flight =
            IntGauge::new("http_requests_in_flight", "HTTP requests being served")?;
        let db_pool_connections = IntGaugeVec::new(
            Opts::new("db_pool_connections", "Database pool connections by state"),
            &["state"],
        )?;
        let redis_pool_connections = IntGaugeVec::new(
            Opts::new("redis_pool_connections", "Redis pool connections by state"),
            &["state"],
        )?;
        let dependency_up = IntGaugeVec::new(
            Opts::new(
                "dependency_up",
                "1 when a dependency answered its last check",
            ),
            &["dependency"],
        )?;
        let outbox_pending = IntGauge::new(
            "outbox_pending",
            "Outbox rows not yet processed (database-wide)",
        )?;
        let outbox_oldest_age_seconds = Gauge::new(
            "outbox_oldest_age_seconds",
            "Age of the oldest unprocessed outbox row, 0 when empty (database-wide)",
        )?;
        let subscribe_messages_total = IntCounterVec::new(
            Opts::new(
                "subscribe_messages_total",
                "Shopper subscribe messages by kind and result (sent, retry, refused, dead)",
            ),
            &["kind", "result"],
        )?;
        for kind in ["payment", "refund"] {
            for r in ["sent", "retry", "refused", "dead"] {
                subscribe_messages_total.with_label_values(&[kind, r]);
            }
        }
        let business_active_users = IntGaugeVec::new(
            Opts::new(
                "business_active_users",
                "Shoppers who created an order within the window (database-wide)",
            ),
            &["window"],
        )?;
        let business_retention_users = IntGaugeVec::new(
            Opts::new(
                "business_retention_users",
                "7-day retention: users who signed up 14 to 7 days ago (cohort) and those of them who ordered in the last 7 days (retained)",
            ),
            &["group"],
        )?;
        let data_dir_bytes = IntGaugeVec::new(
            Opts::new(
                "data_dir_bytes",
                "The data directory's file system: free and total bytes",
            ),
            &["kind"],
        )?;
        for w in ["5m", "24h"] {
            business_active_users.with_label_values(&[w]);
        }
        for g in ["cohort", "retained"] {
            business_retention_users.with_label_values(&[g]);
        }
        for k in ["free", "total"] {
            data_dir_bytes.with_label_values(&[k]);
        }
        registry.register(Box::new(business_active_users.clone()))?;
        registry.register(Box::new(business_retention_users.clone()))?;
        registry.register(Box::new(data_dir_bytes.clone()))?;
        registry.register(Box::new(outbox_pending.clone()))?;
        registry.register(Box::new(outbox_oldest_age_seconds.clone()))?;
        registry.register(Box::new(subscribe_messages_total.clone()))?;
        registry.register(Box::new(http_requests_total.clone()))?;
        registry.register(Box::new(http_request_duration_seconds.clone()))?;
        registry.register(Box::new(http_requests_in_flight.clone()))?;
        registry.register(Box::new(db_pool_connections.clone()))?;
        registry.register(Box::new(redis_pool_connections.clone()))?;
        registry.register(Box::new(dependency_up.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Metrics {
            registry,
            http_requests_total,
            http_request_duration_seconds,
            http_requests_in_flight,
            db_pool_connections,
            redis_pool_connections,
            dependency_up,
            outbox_pending,
            outbox_oldest_age_seconds,
            subscribe_messages_total,
            business_active_users,
            business_retention_users,
            data_dir_bytes,
            business_read_at: Default::default(),
        })
    }

    /// True at most once a minute: whether this scrape reads the business gauges again.
    pub fn business_due(&self) -> bool {
        let mut last = self.business_read_at.lock();
        let due = last.is_none_or(|t| t.elapsed() >= BUSINESS_EVERY);
        if due {
            *last = Some(std::time::Instant::now());
        }
        due
    }

    /// The data directory's free and total bytes (statvfs); unchanged if it cannot be read.
    pub fn sample_disk(&self, dir: &std::path::Path) {
        if let Ok(s) = nix::sys::statvfs::statvfs(dir) {
            let frag = s.fragment_size();
            let bytes =
                |blocks: u64| i64::try_from(blocks.saturating_mul(frag)).unwrap_or(i64::MAX);
            self.data_dir_bytes
                .with_label_values(&["free"])
                .set(bytes(s.blocks_available()));
            self.data_dir_bytes
                .with_label_values(&["total"])
                .set(bytes(s.blocks()));
        }
    }

    /// Registers a collector owned by another module (actors, cache, payments).
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        if let Err(e) = self.registry.register(collector) {
            tracing::warn!(category = "system", error = %e, "metric registration failed");
        }
    }

    /// The Prometheus text exposition of every registered metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let families = self.registry.gather();
        if let Err(e) = TextEncoder::new().encode(&families, &mut buf) {
            tracing::warn!(category = "system", error = %e, "metrics encoding failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Series that must exist from start-up (at their true value), so a scrape shows every name
/// the dashboards and alerts use: the database answered (the server could not have started
/// otherwise); Redis pool gauges at 0 when no Redis is configured (a pool of none).
pub fn init_series(metrics: &Metrics) {
    metrics
        .dependency_up
        .with_label_values(&["database"])
        .set(1);
    for state in ["idle", "in_use"] {
        metrics.db_pool_connections.with_label_values(&[state]);
        metrics.redis_pool_connections.with_label_values(&[state]);
    }
}
