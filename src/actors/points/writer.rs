//! The ledger writer: collects the decided changes of many users for a short window (or up
//! to a bounded size) and commits them in ONE transaction: a duplicate-source check, one
//! version-checked summary update per user, one multi-row insert of the records, the lot
//! updates and the outbox deletes. A user whose version moved (another instance wrote) or
//! whose source already exists is left out of the commit and told `Conflict`; the others
//! commit. If the transaction fails as a whole, every user is retried alone, so one bad
//! change cannot fail its neighbours. Nobody is answered before the commit.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl};
use tokio::sync::oneshot;

use super::metrics::PointsMetrics;
use super::store::RecordInsert;
use crate::cache::{Cache, Kind};
use crate::domain::Totals;
use crate::storage::group_commit::{BatchPolicy, Batched, Committer, GroupCommit};
use crate::storage::reuse::Reuse;
use crate::storage::schema::{outbox, points_records, user_points};
use crate::storage::{Db, SqliteConn, StorageError};
use crate::with_conn;

/// Most rows in one multi-row insert (13 columns each stays far below SQLite's and MySQL's
/// placeholder limits).
const INSERT_CHUNK: usize = 1000;

/// One user's decided changes, ready to commit.
#[derive(Debug, Clone)]
pub struct UserWrite {
    pub user_id: Arc<str>,
    /// The summary version the changes were decided on.
    pub expected_version: i64,
    /// False when the `user_points` row does not exist yet (it is inserted).
    pub persisted: bool,
    pub totals: Totals,
    pub records: Vec<RecordInsert>,
    /// `(lot record id, new remaining)` for lots that existed before this batch.
    pub lot_updates: Vec<(String, i64)>,
    pub outbox_deletes: Vec<String>,
    pub now: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    Committed,
    /// Not written: the version moved or a source already exists. Reload and decide again.
    Conflict,
    Failed(String),
}

struct Job {
    write: UserWrite,
    reply: oneshot::Sender<WriteOutcome>,
}

#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub window: Duration,
    pub max_records: usize,
    pub tasks: usize,
}

impl Batched for Job {
    /// The bound is on ledger records, not users.
    fn weight(&self) -> usize {
        self.write.records.len()
    }
}

/// Commits a batch of users' changes (see the module docs).
#[derive(Clone)]
struct LedgerCommitter {
    db: Db,
    metrics: PointsMetrics,
    cache: Cache,
}

impl Committer<Job> for LedgerCommitter {
    async fn commit(&self, jobs: Vec<Job>) {
        commit(&self.db, &self.metrics, &self.cache, jobs).await;
    }
}

/// Handle to submit changes (cheap clone).
#[derive(Clone)]
pub struct LedgerWriter {
    engine: GroupCommit<Job>,
}

impl LedgerWriter {
    /// Starts the writer tasks on the current tokio runtime. The returned receivers resolve
    /// when each task has committed everything it was given and stopped (after every
    /// `LedgerWriter` clone was dropped).
    pub fn start(
        db: Db,
        config: WriterConfig,
        metrics: PointsMetrics,
        cache: Cache,
    ) -> (LedgerWriter, Vec<oneshot::Receiver<()>>) {
        let policy = BatchPolicy {
            window: config.window,
            max_weight: config.max_records,
            tasks: config.tasks,
        };
        let (engine, done) = GroupCommit::start(policy, LedgerCommitter { db, metrics, cache });
        (LedgerWriter { engine }, done)
    }

    /// Commits `write` with whatever else is waiting; resolves after the commit.
    pub async fn submit(&self, write: UserWrite) -> WriteOutcome {
        let (reply, rx) = oneshot::channel();
        if self.engine.send(Job { write, reply }).is_err() {
            return WriteOutcome::Failed("ledger writer stopped".into());
        }
        rx.await
            .unwrap_or_else(|_| WriteOutcome::Failed("ledger writer dropped the change".into()))
    }
}

/// Answers each job after its commit and after the users' cached balances are gone: the
/// keys are deleted before the transaction (and no fill of them is stored while it runs) and
/// again after it, so nobody — not even another request that already sees the commit, such
/// as the order view showing the award — reads a balance from before it.
async fn commit(db: &Db, metrics: &PointsMetrics, cache: &Cache, mut jobs: Vec<Job>) {
    // A fixed lock order across concurrent transactions (two writers, two instances).
    jobs.sort_by(|a, b| a.write.user_id.cmp(&b.write.user_id));
    let users: Vec<Arc<str>> = jobs.iter().map(|j| j.write.user_id.clone()).collect();
    let guard = cache.begin_write(Kind::Balance, &users).await;
    let outcomes = commit_all(db, metrics, &jobs).await;
    guard.end().await;
    for (job, outcome) in jobs.into_iter().zip(outcomes) {
        let _ = job.reply.send(outcome);
    }
}

/// All jobs in one transaction, or, when it fails as a whole, each alone.
async fn commit_all(db: &Db, metrics: &PointsMetrics, jobs: &[Job]) -> Vec<WriteOutcome> {
    let writes: Vec<&UserWrite> = jobs.iter().map(|j| &j.write).collect();
    match commit_txn(db, &writes).await {
        Ok(committed) => {
            metrics.commits_total.with_label_values(&["ok"]).inc();
            record_metrics(metrics, &writes, &committed);
            committed
                .into_iter()
                .map(|ok| {
                    if ok {
                        WriteOutcome::Committed
                    } else {
                        WriteOutcome::Conflict
                    }
                })
                .collect()
        }
        Err(e) => {
            metrics.commits_total.with_label_values(&["error"]).inc();
            tracing::warn!(category = "system", error = %e, users = jobs.len(), "ledger commit failed; retrying each user alone");
            let mut outcomes = Vec::with_capacity(jobs.len());
            for job in jobs {
                outcomes.push(match commit_txn(db, &[&job.write]).await {
                    Ok(committed) => {
                        metrics.commits_total.with_label_values(&["ok"]).inc();
                        record_metrics(metrics, &[&job.write], &committed);
                        if matches!(committed.as_slice(), [true]) {
                            WriteOutcome::Committed
                        } else {
                            WriteOutcome::Conflict
                        }
                    }
                    Err(e) if e.is_unique_violation() => {
                        metrics.commits_total.with_label_values(&["conflict"]).inc();
                        WriteOutcome::Conflict
                    }
                    Err(e) => {
                        metrics.commits_total.with_label_values(&["error"]).inc();
                        tracing::error!(category = "system", error = %e, user_id = %job.write.user_id, "ledger commit failed");
                        WriteOutcome::Failed(e.to_string())
                    }
                });
            }
            outcomes
        }
    }
}

fn record_metrics(metrics: &PointsMetrics, writes: &[&UserWrite], committed: &[bool]) {
    let mut changes = 0usize;
    for (w, ok) in writes.iter().zip(committed) {
        if !ok {
            metrics.commits_total.with_label_values(&["conflict"]).inc();
            continue;
        }
        changes += w.records.len();
        for r in &w.records {
            metrics
                .changes_total
                .with_label_values(&[r.kind.as_str()])
                .inc();
            metrics
                .points_total
                .with_label_values(&[r.kind.as_str()])
                .inc_by(r.points_change.unsigned_abs());
        }
    }
    if changes > 0 {
        metrics.commit_batch_size.observe(changes as f64);
    }
}

/// One transaction for all `writes`; returns which of them were committed.
async fn commit_txn(db: &Db, writes: &[&UserWrite]) -> Result<Vec<bool>, StorageError> {
    let mut conn = db.write_conn().await?;
    let source_ids: Vec<&str> = writes
        .iter()
        .flat_map(|w| w.records.iter().map(|r| r.source_id.as_str()))
        .collect();
    let committed = with_conn!(&mut conn, |c| {
        c.transaction::<_, diesel::result::Error, _>(async |c| {
            // Take the write lock first: on SQLite a deferred transaction that reads and
            // then writes fails with SQLITE_BUSY (no wait) when another connection (another
            // instance) committed in between; a write as the first statement waits instead.
            // (MySQL's row locks need no such step.)
            c.take_write_lock().await?;
            let mut existing: HashSet<(String, String)> = HashSet::new();
            for chunk in source_ids.chunks(INSERT_CHUNK) {
                let found: Vec<(String, String)> = match chunk {
                    // One source: a statement of one shape, kept prepared.
                    [one] => {
                        points_records::table
                            .filter(points_records::source_id.eq(*one))
                            .select((points_records::source_type, points_records::source_id))
                            .load(c)
                            .await?
                    }
                    _ => {
                        points_records::table
                            .filter(points_records::source_id.eq_any(chunk))
                            .select((points_records::source_type, points_records::source_id))
                            .load(c)
                            .await?
                    }
                };
                existing.extend(found);
            }
            let mut committed = vec![false; writes.len()];
            let mut new_users: Vec<(usize, SummaryInsert)> = Vec::new();
            for (i, w) in writes.iter().enumerate() {
                let duplicate = w
                    .records
                    .iter()
                    .any(|r| existing.contains(&(r.source_type.clone(), r.source_id.clone())));
                if duplicate {
                    continue;
                }
                let t = &w.totals;
                let next = w.expected_version + 1;
                if !w.persisted {
                    new_users.push((i, SummaryInsert::new(w)));
                    continue;
                }
                let n = Reuse(
                    diesel::update(
                        user_points::table
                            .filter(user_points::user_id.eq(&*w.user_id))
                            .filter(user_points::version.eq(w.expected_version)),
                    )
                    .set((
                        user_points::available.eq(t.available),
                        user_points::total_earned.eq(t.total_earned),
                        user_points::total_used.eq(t.total_used),
                        user_points::total_expired.eq(t.total_expired),
                        user_points::total_clawed_back.eq(t.total_clawed_back),
                        user_points::version.eq(next),
                        user_points::updated_at.eq(w.now),
                    )),
                )
                .execute(c)
                .await?;
                if let Some(slot) = committed.get_mut(i) {
                    *slot = n == 1;
                }
            }
            // First changes of new users: one multi-row INSERT IGNORE. If any row already
            // existed (another instance got there first), roll back: the per-user retry
            // finds out whose.
            if !new_users.is_empty() {
                let rows: Vec<SummaryInsert> = new_users.iter().map(|(_, r)| r.clone()).collect();
                let n = c.insert_summaries(rows).await?;
                if n != new_users.len() {
                    if writes.len() == 1 {
                        return Ok(vec![false]);
                    }
                    return Err(diesel::result::Error::RollbackTransaction);
                }
                for (i, _) in &new_users {
                    if let Some(slot) = committed.get_mut(*i) {
                        *slot = true;
                    }
                }
            }
            let mut rows = Vec::new();
            let mut outbox_ids = Vec::new();
            for (w, _) in writes.iter().zip(&committed).filter(|(_, ok)| **ok) {
                rows.extend(w.records.iter().cloned());
                outbox_ids.extend(w.outbox_deletes.iter().cloned());
                for (lot, remaining) in &w.lot_updates {
                    Reuse(
                        diesel::update(points_records::table.find(lot))
                            .set(points_records::remaining.eq(*remaining)),
                    )
                    .execute(c)
                    .await?;
                }
            }
            while !rows.is_empty() {
                let rest = rows.split_off(rows.len().min(INSERT_CHUNK));
                c.insert_records(rows).await?;
                rows = rest;
            }
            match outbox_ids.as_slice() {
                [] => {}
                // The usual case below saturation: a statement of one shape.
                [id] => {
                    diesel::delete(outbox::table.filter(outbox::id.eq(id)))
                        .execute(c)
                        .await?;
                }
                _ => {
                    diesel::delete(outbox::table.filter(outbox::id.eq_any(&outbox_ids)))
                        .execute(c)
                        .await?;
                }
            }
            Ok(committed)
        })
        .await
    })?;
    Ok(committed)
}

/// The writes that differ by backend. A multi-row insert of ledger rows: diesel-async has
/// no batch insert for SQLite, so there the rows go through diesel's own (synchronous) batch
/// insert on the wrapped connection, inside the same transaction.
trait LedgerWrites {
    /// Takes the database's write lock at the start of the transaction (SQLite only).
    fn take_write_lock(&mut self) -> impl std::future::Future<Output = QueryResult<()>> + Send;
    fn insert_records(
        &mut self,
        rows: Vec<RecordInsert>,
    ) -> impl std::future::Future<Output = QueryResult<usize>> + Send;
    fn insert_summaries(
        &mut self,
        rows: Vec<SummaryInsert>,
    ) -> impl std::future::Future<Output = QueryResult<usize>> + Send;
}

/// A new `user_points` row.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = user_points)]
struct SummaryInsert {
    user_id: String,
    available: i64,
    total_earned: i64,
    total_used: i64,
    total_expired: i64,
    total_clawed_back: i64,
    version: i64,
    updated_at: NaiveDateTime,
}

impl SummaryInsert {
    fn new(w: &UserWrite) -> SummaryInsert {
        let t = &w.totals;
        SummaryInsert {
            user_id: w.user_id.to_string(),
            available: t.available,
            total_earned: t.total_earned,
            total_used: t.total_used,
            total_expired: t.total_expired,
            total_clawed_back: t.total_clawed_back,
            version: w.expected_version + 1,
            updated_at: w.now,
        }
    }
}

impl LedgerWrites for AsyncMysqlConnection {
    async fn take_write_lock(&mut self) -> QueryResult<()> {
        Ok(())
    }

    async fn insert_summaries(&mut self, rows: Vec<SummaryInsert>) -> QueryResult<usize> {
        diesel::insert_or_ignore_into(user_points::table)
            .values(&rows)
            .execute(self)
            .await
    }

    async fn insert_records(&mut self, rows: Vec<RecordInsert>) -> QueryResult<usize> {
        if let [row] = rows.as_slice() {
            // One record (most commits below saturation): a statement kept per connection.
            return Reuse(diesel::insert_into(points_records::table).values(row))
                .execute(self)
                .await;
        }
        diesel::insert_into(points_records::table)
            .values(&rows)
            .execute(self)
            .await
    }
}

impl LedgerWrites for SqliteConn {
    async fn take_write_lock(&mut self) -> QueryResult<()> {
        diesel::sql_query("UPDATE user_points SET version = version WHERE 1 = 0")
            .execute(self)
            .await
            .map(|_| ())
    }

    async fn insert_summaries(&mut self, rows: Vec<SummaryInsert>) -> QueryResult<usize> {
        self.spawn_blocking(move |c| {
            diesel::RunQueryDsl::execute(
                diesel::insert_or_ignore_into(user_points::table).values(&rows),
                c,
            )
        })
        .await
    }

    async fn insert_records(&mut self, rows: Vec<RecordInsert>) -> QueryResult<usize> {
        self.spawn_blocking(move |c| {
            diesel::RunQueryDsl::execute(
                diesel::insert_into(points_records::table).values(&rows),
                c,
            )
        })
        .await
    }
}
