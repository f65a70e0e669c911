//! The settle writer: group commit for WeChat's payment notifications. Under load thousands
//! of notifications a second each need "order paid + its award in the outbox" committed, and
//! every notification needs its `notification_log` row. Committing each alone makes the
//! database's commit rate the ceiling; here concurrent requests are gathered (whatever is
//! queued, up to a bound, for at most a short window) and committed in ONE transaction:
//! one version-bumping `UPDATE` per order (payable statuses only), one multi-row outbox
//! insert, one multi-row log insert. Nobody is answered before the commit. If the
//! transaction fails as a whole, every job is retried alone, so one bad row cannot fail its
//! neighbours. Orders are updated in a fixed order, so concurrent batches cannot deadlock on
//! each other; duplicates of one order in one batch see the first one's update.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::config::DatabaseKind;
use crate::domain::order::OrderStatus;
use crate::storage::orders::{MarkPaid, OutboxRow};
use crate::storage::outbox::NotificationLogRow;
use crate::storage::schema::{notification_log, outbox, payment_orders};
use crate::storage::{Conn, Db, SqliteConn, StorageError};

/// Most jobs in one transaction.
const MAX_BATCH: usize = 500;
/// How long a batch waits for company once the first job is in.
const WINDOW: Duration = Duration::from_millis(1);

/// One order to mark paid, with the outbox row that will award its points.
#[derive(Debug, Clone)]
pub struct PaidWrite {
    pub order_no: String,
    pub transaction_id: String,
    pub paid_at: NaiveDateTime,
    pub now: NaiveDateTime,
    pub award: OutboxRow,
}

enum Job {
    Paid(PaidWrite, oneshot::Sender<Result<MarkPaid, String>>),
    Log(NotificationLogRow, oneshot::Sender<Result<(), String>>),
}

/// Handle to the writer tasks (cheap clone).
#[derive(Clone)]
pub struct SettleWriter {
    tx: mpsc::UnboundedSender<Job>,
}

impl SettleWriter {
    /// Starts the writer tasks on the current tokio runtime: several on MySQL (their batches
    /// commit side by side), one on SQLite (one writer connection anyway).
    pub fn start(db: Db) -> SettleWriter {
        let tasks = match db.kind() {
            DatabaseKind::Mysql => 4,
            DatabaseKind::Sqlite => 1,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..tasks {
            let (db, rx) = (db.clone(), rx.clone());
            tokio::spawn(async move {
                while let Some(jobs) = collect(&rx).await {
                    commit(&db, jobs).await;
                }
            });
        }
        SettleWriter { tx }
    }

    /// One transaction (shared with whatever else is waiting): the order becomes paid (only
    /// from created/paying) and the award's outbox row is inserted. Both or neither.
    pub async fn mark_paid(&self, write: PaidWrite) -> Result<MarkPaid, StorageError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Paid(write, reply))
            .map_err(|_| StorageError::Pool("settle writer stopped".into()))?;
        rx.await
            .map_err(|_| StorageError::Pool("settle writer dropped the job".into()))?
            .map_err(StorageError::Pool)
    }

    /// Stores a notification's log row (in the next group commit).
    pub async fn log(&self, row: NotificationLogRow) -> Result<(), StorageError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Log(row, reply))
            .map_err(|_| StorageError::Pool("settle writer stopped".into()))?;
        rx.await
            .map_err(|_| StorageError::Pool("settle writer dropped the job".into()))?
            .map_err(StorageError::Pool)
    }
}

async fn collect(rx: &Mutex<mpsc::UnboundedReceiver<Job>>) -> Option<Vec<Job>> {
    let mut rx = rx.lock().await;
    let first = rx.recv().await?;
    let mut jobs = vec![first];
    let deadline = tokio::time::Instant::now() + WINDOW;
    while jobs.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(job)) => jobs.push(job),
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
    Some(jobs)
}

async fn commit(db: &Db, mut jobs: Vec<Job>) {
    // A fixed lock order across concurrent batches.
    jobs.sort_by(|a, b| match (a, b) {
        (Job::Paid(a, _), Job::Paid(b, _)) => a.order_no.cmp(&b.order_no),
        (Job::Paid(..), Job::Log(..)) => std::cmp::Ordering::Less,
        (Job::Log(..), Job::Paid(..)) => std::cmp::Ordering::Greater,
        (Job::Log(..), Job::Log(..)) => std::cmp::Ordering::Equal,
    });
    let (paid, logs) = split(&jobs);
    match commit_txn(db, &paid, &logs).await {
        Ok(outcomes) => answer(jobs, outcomes),
        Err(e) if jobs.len() > 1 => {
            tracing::warn!(category = "system", error = %e, jobs = jobs.len(), "settle batch failed; retrying each alone");
            for job in jobs {
                let (paid, logs) = split(std::slice::from_ref(&job));
                match commit_txn(db, &paid, &logs).await {
                    Ok(outcomes) => answer(vec![job], outcomes),
                    Err(e) => fail(job, &e),
                }
            }
        }
        Err(e) => {
            for job in jobs {
                fail(job, &e);
            }
        }
    }
}

fn split(jobs: &[Job]) -> (Vec<&PaidWrite>, Vec<&NotificationLogRow>) {
    let mut paid = Vec::new();
    let mut logs = Vec::new();
    for job in jobs {
        match job {
            Job::Paid(w, _) => paid.push(w),
            Job::Log(row, _) => logs.push(row),
        }
    }
    (paid, logs)
}

/// Outcomes are in the order of the paid jobs.
fn answer(jobs: Vec<Job>, outcomes: Vec<MarkPaid>) {
    let mut outcomes = outcomes.into_iter();
    for job in jobs {
        match job {
            Job::Paid(_, reply) => {
                let _ = reply.send(
                    outcomes
                        .next()
                        .ok_or_else(|| "settle writer lost an outcome".to_string()),
                );
            }
            Job::Log(_, reply) => {
                let _ = reply.send(Ok(()));
            }
        }
    }
}

fn fail(job: Job, e: &StorageError) {
    tracing::error!(category = "system", error = %e, "settle write failed");
    match job {
        Job::Paid(_, reply) => {
            let _ = reply.send(Err(e.to_string()));
        }
        Job::Log(_, reply) => {
            let _ = reply.send(Err(e.to_string()));
        }
    }
}

/// One transaction for a batch; the outcome of each paid job, in order.
async fn commit_txn(
    db: &Db,
    paid: &[&PaidWrite],
    logs: &[&NotificationLogRow],
) -> Result<Vec<MarkPaid>, StorageError> {
    let payable = [OrderStatus::Created.as_str(), OrderStatus::Paying.as_str()];
    let mut conn = db.write_conn().await?;
    let paid: Vec<PaidWrite> = paid.iter().map(|w| (*w).clone()).collect();
    let logs: Vec<NotificationLogRow> = logs.iter().map(|r| (*r).clone()).collect();
    macro_rules! body {
        ($c:expr) => {
            $c.transaction::<_, diesel::result::Error, _>(async |c| {
                let mut outcomes = Vec::with_capacity(paid.len());
                let mut awards = Vec::new();
                let mut unsettled = Vec::new();
                for (i, w) in paid.iter().enumerate() {
                    let n = diesel::update(
                        payment_orders::table
                            .filter(payment_orders::order_no.eq(&w.order_no))
                            .filter(payment_orders::status.eq_any(payable)),
                    )
                    .set((
                        payment_orders::status.eq(OrderStatus::Paid.as_str()),
                        payment_orders::wechat_transaction_id.eq(&w.transaction_id),
                        payment_orders::paid_at.eq(w.paid_at),
                        payment_orders::updated_at.eq(w.now),
                        payment_orders::version.eq(payment_orders::version + 1),
                    ))
                    .execute(c)
                    .await?;
                    if n == 1 {
                        outcomes.push(Some(MarkPaid::Paid));
                        awards.push(w.award.clone());
                    } else {
                        outcomes.push(None);
                        unsettled.push((i, w.order_no.clone()));
                    }
                }
                if !unsettled.is_empty() {
                    let nos: Vec<&str> = unsettled.iter().map(|(_, no)| no.as_str()).collect();
                    let found: HashMap<String, String> = payment_orders::table
                        .filter(payment_orders::order_no.eq_any(&nos))
                        .select((payment_orders::order_no, payment_orders::status))
                        .load::<(String, String)>(c)
                        .await?
                        .into_iter()
                        .collect();
                    for (i, no) in &unsettled {
                        let outcome = match found.get(no).map(|s| OrderStatus::parse(s)) {
                            None | Some(None) => MarkPaid::NotFound,
                            Some(Some(s)) if s.was_paid() => MarkPaid::AlreadyPaid,
                            Some(Some(s)) => MarkPaid::NotPayable(s),
                        };
                        if let Some(slot) = outcomes.get_mut(*i) {
                            *slot = Some(outcome);
                        }
                    }
                }
                c.insert_rows(awards, logs.clone()).await?;
                Ok(outcomes
                    .into_iter()
                    .map(|o| o.unwrap_or(MarkPaid::NotFound))
                    .collect::<Vec<_>>())
            })
            .await
        };
    }
    let outcomes = match &mut conn {
        Conn::Mysql(pooled) => {
            let c: &mut AsyncMysqlConnection = &mut *pooled;
            body!(c)
        }
        Conn::Sqlite(pooled) => {
            let c: &mut SqliteConn = &mut *pooled;
            body!(c)
        }
    }?;
    Ok(outcomes)
}

/// Multi-row inserts of outbox and log rows. diesel-async has no batch insert for SQLite:
/// there the rows go through diesel's own batch insert on the wrapped connection, inside
/// the same transaction.
trait InsertRows {
    fn insert_rows(
        &mut self,
        awards: Vec<OutboxRow>,
        logs: Vec<NotificationLogRow>,
    ) -> impl std::future::Future<Output = QueryResult<()>> + Send;
}

impl InsertRows for AsyncMysqlConnection {
    async fn insert_rows(
        &mut self,
        awards: Vec<OutboxRow>,
        logs: Vec<NotificationLogRow>,
    ) -> QueryResult<()> {
        if !awards.is_empty() {
            diesel::insert_or_ignore_into(outbox::table)
                .values(&awards)
                .execute(self)
                .await?;
        }
        if !logs.is_empty() {
            diesel::insert_into(notification_log::table)
                .values(&logs)
                .execute(self)
                .await?;
        }
        Ok(())
    }
}

impl InsertRows for SqliteConn {
    async fn insert_rows(
        &mut self,
        awards: Vec<OutboxRow>,
        logs: Vec<NotificationLogRow>,
    ) -> QueryResult<()> {
        self.spawn_blocking(move |c| {
            if !awards.is_empty() {
                diesel::RunQueryDsl::execute(
                    diesel::insert_or_ignore_into(outbox::table).values(&awards),
                    c,
                )?;
            }
            if !logs.is_empty() {
                diesel::RunQueryDsl::execute(
                    diesel::insert_into(notification_log::table).values(&logs),
                    c,
                )?;
            }
            Ok(())
        })
        .await
    }
}
