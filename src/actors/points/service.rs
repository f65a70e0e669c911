//! `PointsService`: the cheap-to-clone handle the rest of the application uses. Changes go
//! through the user's actor; reads come from the database read models.

use std::sync::{Arc, Weak};
use std::time::Duration;

use actix::{Arbiter, ArbiterHandle, Handler, Message};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;

use super::actor::{PointsActor, Shared};
use super::error::PointsError;
use super::messages::*;
use super::metrics::PointsMetrics;
use super::read_model::{self, AuditReport, AuditSummary, Balance, HistoryItem, Page, Statistics};
use super::registry::Registry;
use super::rules::{PointsRuleView, RuleCache};
use super::store;
use super::writer::{LedgerWriter, WriterConfig};
use crate::cache::{Cache, Kind};
use crate::config::{DatabaseKind, Settings};
use crate::domain::{Clock, PointsRule, PointsRuleSpec, SystemClock};
use crate::storage::Db;
use crate::telemetry::Metrics;

#[derive(Debug, Clone)]
pub struct PointsConfig {
    /// An actor with nothing to do for this long stops.
    pub idle: Duration,
    /// How long the ledger writer waits for more changes before it commits.
    pub writer_window: Duration,
    /// Most point changes in one commit.
    pub max_commit_records: usize,
    /// Parallel writer transactions (1 on SQLite: it has one writer).
    pub writer_tasks: usize,
    /// Most commands one actor decides per batch.
    pub max_actor_batch: usize,
    /// Threads the actors run on.
    pub arbiters: usize,
    /// Expiry sweep period; `None` disables the sweep.
    pub sweep_interval: Option<Duration>,
    /// How long a caller waits for an actor's answer.
    pub send_timeout: Duration,
}

impl PointsConfig {
    pub fn from_settings(settings: &Settings) -> PointsConfig {
        let sqlite = settings.database_kind() == DatabaseKind::Sqlite;
        PointsConfig {
            idle: Duration::from_secs(settings.actor_idle_secs.max(1)),
            writer_window: Duration::from_millis(2),
            max_commit_records: 1000,
            writer_tasks: if sqlite { 1 } else { 4 },
            max_actor_batch: 1000,
            arbiters: settings.points_arbiters.max(1),
            sweep_interval: (settings.points_expiry_sweep_secs > 0)
                .then(|| Duration::from_secs(settings.points_expiry_sweep_secs)),
            send_timeout: Duration::from_secs(30),
        }
    }
}

/// What one expiry sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepSummary {
    pub users: usize,
    pub lots: usize,
    pub points: i64,
    pub failed: usize,
}

struct Inner {
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    config: PointsConfig,
    /// Kept so the actor threads live as long as the service.
    _arbiters: Vec<ArbiterHandle>,
    sweep: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[derive(Clone)]
pub struct PointsService {
    inner: Arc<Inner>,
}

fn check_id(what: &str, value: &str, max: usize) -> Result<(), PointsError> {
    if value.trim().is_empty() || value.len() > max {
        return Err(PointsError::Invalid(format!(
            "{what} must be 1..={max} characters"
        )));
    }
    Ok(())
}

impl PointsService {
    /// Starts the engine: arbiters for the actors, the ledger writer, the expiry sweep.
    /// Must run inside an actix `System` (the server's, or `actix_rt::System` in tools).
    pub fn start(
        db: Db,
        config: PointsConfig,
        metrics: &Metrics,
        clock: Arc<dyn Clock>,
    ) -> Result<PointsService, PointsError> {
        let cache =
            Cache::unregistered().map_err(|e| PointsError::Unavailable(format!("cache: {e}")))?;
        Self::start_with_cache(db, config, metrics, clock, cache)
    }

    /// `start` with the application's cache: balances are read through it (L2) and
    /// invalidated by the ledger writer after each commit, the rule is held in its L1.
    pub fn start_with_cache(
        db: Db,
        config: PointsConfig,
        metrics: &Metrics,
        clock: Arc<dyn Clock>,
        cache: Cache,
    ) -> Result<PointsService, PointsError> {
        if actix::System::try_current().is_none() {
            return Err(PointsError::Unavailable("no actix system running".into()));
        }
        let metrics = PointsMetrics::new(metrics)
            .map_err(|e| PointsError::Unavailable(format!("metrics: {e}")))?;
        let (writer, _done) = LedgerWriter::start(
            db.clone(),
            WriterConfig {
                window: config.writer_window,
                max_records: config.max_commit_records,
                tasks: config.writer_tasks,
            },
            metrics.clone(),
            cache.clone(),
        );
        let shared = Arc::new(Shared {
            rules: RuleCache::new(db.clone(), &cache),
            cache,
            db,
            writer,
            clock,
            metrics,
            idle: config.idle,
            max_batch: config.max_actor_batch,
        });
        let arbiters: Vec<ArbiterHandle> = (0..config.arbiters.max(1))
            .map(|_| Arbiter::new().handle())
            .collect();
        let registry = Arc::new(Registry::new(shared.clone(), arbiters.clone()));
        let service = PointsService {
            inner: Arc::new(Inner {
                shared,
                registry,
                config: config.clone(),
                _arbiters: arbiters,
                sweep: Mutex::new(None),
            }),
        };
        if let Some(every) = config.sweep_interval {
            let weak = Arc::downgrade(&service.inner);
            *service.inner.sweep.lock() = Some(tokio::spawn(sweep_loop(weak, every)));
        }
        Ok(service)
    }

    /// `start` with the settings' configuration and the system clock.
    pub fn from_settings(
        db: Db,
        settings: &Settings,
        metrics: &Metrics,
        cache: Cache,
    ) -> Result<PointsService, PointsError> {
        Self::start_with_cache(
            db,
            PointsConfig::from_settings(settings),
            metrics,
            Arc::new(SystemClock),
            cache,
        )
    }

    async fn send<M, T>(&self, user_id: &str, msg: M) -> Result<T, PointsError>
    where
        M: Message<Result = Result<T, PointsError>> + Clone + Send + 'static,
        T: Send + 'static,
        PointsActor: Handler<M>,
    {
        check_id("user_id", user_id, 36)?;
        let depth = &self.inner.shared.metrics.mailbox_depth;
        for attempt in 0..4u32 {
            if attempt > 0 {
                // Let the stopping actor leave the registry before the next try.
                tokio::time::sleep(Duration::from_millis(2 << attempt)).await;
            }
            let addr = self.inner.registry.get(user_id)?;
            depth.inc();
            let answer = addr
                .send(msg.clone())
                .timeout(self.inner.config.send_timeout)
                .await;
            depth.dec();
            match answer {
                Ok(Err(PointsError::Unavailable(_))) | Err(actix::MailboxError::Closed) => {
                    // The actor stopped (idle) before deciding: nothing was applied; a new
                    // actor takes the command.
                    continue;
                }
                Ok(result) => return result,
                Err(actix::MailboxError::Timeout) => {
                    return Err(PointsError::Busy(
                        "points actor did not answer in time".into(),
                    ));
                }
            }
        }
        Err(PointsError::Unavailable(
            "points actor keeps stopping".into(),
        ))
    }

    /// Credits the points a paid order earns (idempotent on `order_no`).
    pub async fn award(
        &self,
        user_id: &str,
        msg: AwardPoints,
    ) -> Result<PointsChange, PointsError> {
        check_id("order_no", &msg.order_no, 128)?;
        let order_no = msg.order_no.clone();
        let change = self.send(user_id, msg).await?;
        log_change("points_award", &change, "order_no", &order_no);
        Ok(change)
    }

    /// Spends points (idempotent on the Idempotency-Key); `Insufficient` when short.
    pub async fn deduct(
        &self,
        user_id: &str,
        msg: DeductPoints,
    ) -> Result<PointsChange, PointsError> {
        check_id("Idempotency-Key", &msg.idempotency_key, 64)?;
        if msg.points.value() == 0 {
            return Err(PointsError::Invalid("points must be positive".into()));
        }
        let key = msg.idempotency_key.clone();
        let change = self.send(user_id, msg).await?;
        log_change("points_deduct", &change, "idempotency_key", &key);
        Ok(change)
    }

    /// Takes back the caller's share of points for a refund (idempotent on `refund_no`).
    pub async fn clawback(
        &self,
        user_id: &str,
        msg: ClawbackPoints,
    ) -> Result<PointsChange, PointsError> {
        check_id("refund_no", &msg.refund_no, 128)?;
        let refund_no = msg.refund_no.clone();
        let change = self.send(user_id, msg).await?;
        log_change("points_clawback", &change, "refund_no", &refund_no);
        Ok(change)
    }

    /// An admin's correction; `reason` is required.
    pub async fn adjust(
        &self,
        user_id: &str,
        msg: AdjustPoints,
    ) -> Result<PointsChange, PointsError> {
        check_id("reason", &msg.reason, 255)?;
        check_id("request_id", &msg.request_id, 128)?;
        if msg.delta == 0 || msg.delta.unsigned_abs() > 1_000_000_000_000 {
            return Err(PointsError::Invalid(
                "delta must be non-zero and at most 10^12".into(),
            ));
        }
        let request_id = msg.request_id.clone();
        let change = self.send(user_id, msg).await?;
        log_change("points_adjust", &change, "request_id", &request_id);
        Ok(change)
    }

    /// Expires the user's due lots now.
    pub async fn expire(&self, user_id: &str) -> Result<ExpireSummary, PointsError> {
        self.send(user_id, ExpirePoints).await
    }

    /// The actor's view (after everything queued before it).
    pub async fn actor_balance(&self, user_id: &str) -> Result<BalanceView, PointsError> {
        self.send(user_id, GetBalance).await
    }

    /// One sweep: every user with expired remainders gets `ExpirePoints` through its actor.
    pub async fn expire_due(&self) -> Result<SweepSummary, PointsError> {
        let mut summary = SweepSummary::default();
        loop {
            let now = self.inner.shared.clock.now();
            let users = read_model::users_with_expired(&self.inner.shared.db, now, 500).await?;
            if users.is_empty() {
                return Ok(summary);
            }
            let before = summary.users;
            for chunk in users.chunks(64) {
                let results =
                    futures_util::future::join_all(chunk.iter().map(|u| self.expire(u))).await;
                for (u, r) in chunk.iter().zip(results) {
                    match r {
                        Ok(s) => {
                            summary.users += 1;
                            summary.lots += s.lots;
                            summary.points += s.expired;
                        }
                        Err(e) => {
                            summary.failed += 1;
                            tracing::warn!(category = "business", action = "points_expire", user_id = %u, error = %e, "expiry sweep failed for a user");
                        }
                    }
                }
            }
            if summary.users == before || users.len() < 500 {
                return Ok(summary);
            }
        }
    }

    /// The balance, through the L2 cache (`user:points:{userId}`): the ledger writer deletes
    /// the key before and after every commit of the user's changes (storing no fill in
    /// between), before anyone is answered, so a read after an award or deduct never shows
    /// the value from before it.
    pub async fn balance(&self, user_id: &str) -> Result<Balance, PointsError> {
        check_id("user_id", user_id, 36)?;
        let shared = &self.inner.shared;
        Ok(shared
            .cache
            .get_or_load(Kind::Balance, user_id, || {
                read_model::balance(&shared.db, user_id, shared.clock.now())
            })
            .await?)
    }

    /// Newest first; `cursor` is the `next_cursor` of the previous page; `limit` 1..=100.
    pub async fn history(
        &self,
        user_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<HistoryItem>, PointsError> {
        check_id("user_id", user_id, 36)?;
        Ok(read_model::history(&self.inner.shared.db, user_id, cursor, limit).await?)
    }

    pub async fn statistics(&self, user_id: &str) -> Result<Statistics, PointsError> {
        check_id("user_id", user_id, 36)?;
        Ok(read_model::statistics(
            &self.inner.shared.db,
            user_id,
            self.inner.shared.clock.now(),
        )
        .await?)
    }

    pub async fn audit(&self, user_id: &str) -> Result<AuditReport, PointsError> {
        Ok(read_model::audit(&self.inner.shared.db, user_id).await?)
    }

    pub async fn audit_all(&self) -> Result<AuditSummary, PointsError> {
        Ok(read_model::audit_all(&self.inner.shared.db).await?)
    }

    pub async fn current_rule(&self) -> Result<PointsRuleView, PointsError> {
        let now = self.inner.shared.clock.now();
        Ok(self.inner.shared.rules.current_view(now).await?.1)
    }

    /// Stores a new rule, in force from `effective_from` (now when `None`).
    pub async fn set_rule(
        &self,
        spec: PointsRuleSpec,
        effective_from: Option<DateTime<Utc>>,
        created_by: &str,
    ) -> Result<PointsRuleView, PointsError> {
        let rule = PointsRule::try_from(spec)?;
        let now = self.inner.shared.clock.now();
        let from = effective_from.unwrap_or(now);
        let id = store::insert_rule(&self.inner.shared.db, &rule, from, created_by, now).await?;
        self.inner.shared.rules.invalidate().await;
        Ok(PointsRuleView {
            id: Some(id),
            spec: rule.spec().clone(),
            effective_from: Some(from),
            created_by: Some(created_by.to_string()),
        })
    }

    pub fn active_actors(&self) -> usize {
        self.inner.registry.len()
    }

    /// Refuses new commands and lets every actor commit what it holds and stop. Call after
    /// the HTTP server stopped.
    pub async fn shutdown(&self) {
        if let Some(sweep) = self.inner.sweep.lock().take() {
            sweep.abort();
        }
        self.inner.registry.close();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while !self.inner.registry.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let left = self.inner.registry.len();
        if left > 0 {
            tracing::warn!(
                category = "system",
                actors = left,
                "points actors still running at shutdown"
            );
        }
        // The actor threads are left running (idle, no actors): pooled connections made on
        // them do their I/O through their runtimes, and the pool is shared with code that
        // may still query after this (the process exits right after in production).
        tracing::info!(category = "system", "points engine stopped");
    }
}

/// The business log line of a committed change (source design's log fields: category,
/// userId, action; the request span adds the trace id where there is one).
fn log_change(action: &'static str, change: &PointsChange, source: &'static str, source_id: &str) {
    tracing::info!(
        category = "business",
        action,
        user_id = %change.user_id,
        source,
        source_id,
        points = change.change,
        balance_after = change.balance_after,
        duplicate = change.duplicate,
        "points changed"
    );
}

async fn sweep_loop(service: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = service.upgrade() else {
            return;
        };
        let svc = PointsService { inner };
        match crate::telemetry::Trace::background("expiry_sweep")
            .run(svc.expire_due())
            .await
        {
            Ok(s) if s.users > 0 => {
                tracing::info!(
                    category = "business",
                    action = "points_expire",
                    users = s.users,
                    points = s.points,
                    "expiry sweep"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(category = "system", error = %e, "expiry sweep failed"),
        }
    }
}
