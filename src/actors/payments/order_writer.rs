//! The order writer: group commit for the payment path's writes. Every payment writes its
//! order, then "paying" with the prepay id, then "paid" with the award's outbox row, and
//! every WeChat notification its `notification_log` row. Committing each alone makes the
//! database's commit rate (an fsync each) the ceiling; here concurrent writes are gathered
//! (whatever is queued, up to a bound, for at most a short window) and committed in ONE
//! transaction: the new orders, one version-bumping `UPDATE` per status change (from the
//! expected statuses only), one multi-row outbox insert, one multi-row log insert. Nobody is
//! answered before the commit. If the transaction fails as a whole (say one order's
//! idempotency key already exists), every job is retried alone, so one bad row cannot fail
//! its neighbours and each gets its own answer. Orders are changed in a fixed order, so
//! concurrent batches cannot deadlock on each other; duplicates of one order in one batch see
//! the first one's change.

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl};
use tokio::sync::oneshot;

use crate::config::DatabaseKind;
use crate::domain::order::OrderStatus;
use crate::storage::group_commit::{BatchPolicy, Batched, Committer, GroupCommit};
use crate::storage::orders::{self, Inserted, OrderRow, OutboxRow};
use crate::storage::outbox::NotificationLogRow;
use crate::storage::reuse::Reuse;
use crate::storage::schema::{notification_log, outbox, payment_orders};
use crate::storage::{Conn, Db, SqliteConn, StorageError};

/// Most jobs in one transaction.
const MAX_BATCH: usize = 500;
/// How long a batch waits for company once the first job is in.
const WINDOW: Duration = Duration::from_millis(1);

/// One order to mark paid, with the outbox row that will award its points: the decided
/// `from -> paid` transition, applied only if the order is still in `from`.
#[derive(Debug, Clone)]
pub struct PaidWrite {
    pub order_no: String,
    pub from: OrderStatus,
    pub transaction_id: String,
    pub paid_at: NaiveDateTime,
    pub now: NaiveDateTime,
    pub award: OutboxRow,
}

type Reply<T> = oneshot::Sender<Result<T, StorageError>>;

enum Job {
    /// A new order; the answer is false when it already exists (its idempotency key).
    Insert(Box<OrderRow>, Reply<bool>),
    /// `created -> paying` with the prepay id; false when the order was no longer created.
    Prepaid(PrepaidWrite, Reply<bool>),
    /// `from -> paid` with the award's outbox row; false when the order was not in `from`.
    Paid(PaidWrite, Reply<bool>),
    Log(Box<NotificationLogRow>, Reply<()>),
}

/// An order whose prepay WeChat answered.
#[derive(Debug, Clone)]
pub struct PrepaidWrite {
    pub order_no: String,
    pub prepay_id: String,
    pub now: NaiveDateTime,
}

impl Job {
    /// Lock order inside a batch: inserts, then status changes by order number, then logs.
    fn sort_key(&self) -> (u8, &str) {
        match self {
            Job::Insert(o, _) => (0, o.order_no.as_str()),
            Job::Prepaid(w, _) => (1, w.order_no.as_str()),
            Job::Paid(w, _) => (1, w.order_no.as_str()),
            Job::Log(..) => (2, ""),
        }
    }
}

impl Batched for Job {}

/// Commits a batch of order jobs (see the module docs).
#[derive(Clone)]
struct OrderCommitter {
    db: Db,
}

impl Committer<Job> for OrderCommitter {
    async fn commit(&self, jobs: Vec<Job>) {
        commit(&self.db, jobs).await;
    }
}

/// Handle to the writer tasks (cheap clone).
#[derive(Clone)]
pub struct OrderWriter {
    engine: GroupCommit<Job>,
    db: Db,
}

impl OrderWriter {
    /// Starts the writer tasks on the current tokio runtime: several on MySQL (their batches
    /// commit side by side), one on SQLite (one writer connection anyway).
    pub fn start(db: Db) -> OrderWriter {
        let tasks = match db.kind() {
            DatabaseKind::Mysql => 4,
            DatabaseKind::Sqlite => 1,
        };
        let policy = BatchPolicy {
            window: WINDOW,
            max_weight: MAX_BATCH,
            tasks,
        };
        let (engine, _done) = GroupCommit::start(policy, OrderCommitter { db: db.clone() });
        OrderWriter { engine, db }
    }

    async fn submit<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, StorageError> {
        let (reply, rx) = oneshot::channel();
        if self.engine.send(job(reply)).is_err() {
            return Err(StorageError::Pool("order writer stopped".into()));
        }
        rx.await
            .map_err(|_| StorageError::Pool("order writer dropped the job".into()))?
    }

    /// Inserts a new order; an order with the same idempotency key (a retried request, or a
    /// race with one) is answered as it exists.
    pub async fn insert(&self, order: OrderRow) -> Result<Inserted, StorageError> {
        match self
            .submit(|r| Job::Insert(Box::new(order.clone()), r))
            .await
        {
            Ok(_) => Ok(Inserted::New(order)),
            Err(e) if e.is_unique_violation() => {
                match orders::find_by_idempotency(&self.db, &order.user_id, &order.idempotency_key)
                    .await?
                {
                    Some(existing) => Ok(Inserted::Existing(existing)),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// `created -> paying` with the prepay id; false when the order had moved on (paid by a
    /// notification that beat the prepay answer, or closed).
    pub async fn prepaid(&self, write: PrepaidWrite) -> Result<bool, StorageError> {
        self.submit(|r| Job::Prepaid(write, r)).await
    }

    /// One transaction (shared with whatever else is waiting): the order becomes paid (only
    /// from `write.from`) and the award's outbox row is inserted. Both or neither. False when
    /// the order had moved on: the caller reads it and decides again.
    pub async fn mark_paid(&self, write: PaidWrite) -> Result<bool, StorageError> {
        self.submit(|r| Job::Paid(write, r)).await
    }

    /// Stores a notification's log row (in the next group commit).
    pub async fn log(&self, row: NotificationLogRow) -> Result<(), StorageError> {
        self.submit(|r| Job::Log(Box::new(row), r)).await
    }
}

async fn commit(db: &Db, mut jobs: Vec<Job>) {
    jobs.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    match commit_txn(db, &jobs).await {
        Ok(outcomes) => answer(jobs, outcomes),
        Err(e) if jobs.len() > 1 => {
            if !e.is_unique_violation() {
                tracing::warn!(category = "system", error = %e, jobs = jobs.len(), "order batch failed; retrying each alone");
            }
            for job in jobs {
                let mut job = vec![job];
                match commit_txn(db, &job).await {
                    Ok(outcomes) => answer(job, outcomes),
                    Err(e) => {
                        if let Some(job) = job.pop() {
                            fail(job, e);
                        }
                    }
                }
            }
        }
        Err(e) => {
            if let Some(job) = jobs.pop() {
                fail(job, e);
            }
        }
    }
}

/// What one job's transaction decided: whether its row was written or moved.
struct Outcome(bool);

fn answer(jobs: Vec<Job>, outcomes: Vec<Outcome>) {
    for (job, outcome) in jobs.into_iter().zip(outcomes) {
        match (job, outcome) {
            (Job::Insert(_, r) | Job::Prepaid(_, r) | Job::Paid(_, r), Outcome(done)) => {
                let _ = r.send(Ok(done));
            }
            (Job::Log(_, r), Outcome(_)) => {
                let _ = r.send(Ok(()));
            }
        }
    }
}

fn fail(job: Job, e: StorageError) {
    if !e.is_unique_violation() {
        tracing::error!(category = "system", error = %e, "order write failed");
    }
    match job {
        Job::Insert(_, r) | Job::Prepaid(_, r) | Job::Paid(_, r) => {
            let _ = r.send(Err(e));
        }
        Job::Log(_, r) => {
            let _ = r.send(Err(e));
        }
    }
}

/// One transaction for a batch; the outcome of every job, in order.
async fn commit_txn(db: &Db, jobs: &[Job]) -> Result<Vec<Outcome>, StorageError> {
    let mut inserts = Vec::new();
    let mut changes = Vec::new();
    let mut logs = Vec::new();
    for job in jobs {
        match job {
            Job::Insert(o, _) => inserts.push((**o).clone()),
            Job::Prepaid(w, _) => changes.push(Change::Prepaid(w.clone())),
            Job::Paid(w, _) => changes.push(Change::Paid(w.clone())),
            Job::Log(row, _) => logs.push((**row).clone()),
        }
    }
    let mut conn = db.write_conn().await?;
    macro_rules! body {
        ($c:expr) => {
            $c.transaction::<_, diesel::result::Error, _>(async |c| {
                let mut outcomes = Vec::with_capacity(jobs.len());
                // New orders first: a duplicate key fails the batch, and each job is then
                // retried alone (the caller reads the existing order).
                c.insert_orders(inserts.clone()).await?;
                outcomes.extend(inserts.iter().map(|_| Outcome(true)));
                let mut awards = Vec::new();
                for change in &changes {
                    match change {
                        Change::Prepaid(w) => {
                            let n = Reuse(
                                diesel::update(
                                    payment_orders::table
                                        .filter(payment_orders::order_no.eq(&w.order_no))
                                        .filter(
                                            payment_orders::status
                                                .eq(OrderStatus::Created.as_str()),
                                        ),
                                )
                                .set((
                                    payment_orders::status.eq(OrderStatus::Paying.as_str()),
                                    payment_orders::prepay_id.eq(&w.prepay_id),
                                    payment_orders::updated_at.eq(w.now),
                                    payment_orders::version.eq(payment_orders::version + 1),
                                )),
                            )
                            .execute(c)
                            .await?;
                            outcomes.push(Outcome(n == 1));
                        }
                        Change::Paid(w) => {
                            let n = Reuse(
                                diesel::update(
                                    payment_orders::table
                                        .filter(payment_orders::order_no.eq(&w.order_no))
                                        .filter(payment_orders::status.eq(w.from.as_str())),
                                )
                                .set((
                                    payment_orders::status.eq(OrderStatus::Paid.as_str()),
                                    payment_orders::wechat_transaction_id.eq(&w.transaction_id),
                                    payment_orders::paid_at.eq(w.paid_at),
                                    payment_orders::updated_at.eq(w.now),
                                    payment_orders::version.eq(payment_orders::version + 1),
                                )),
                            )
                            .execute(c)
                            .await?;
                            if n == 1 {
                                awards.push(w.award.clone());
                            }
                            outcomes.push(Outcome(n == 1));
                        }
                    }
                }
                outcomes.extend(logs.iter().map(|_| Outcome(true)));
                c.insert_rows(awards, logs.clone()).await?;
                Ok(outcomes)
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

enum Change {
    Prepaid(PrepaidWrite),
    Paid(PaidWrite),
}

/// Multi-row inserts of outbox and log rows. diesel-async has no batch insert for SQLite:
/// there the rows go through diesel's own batch insert on the wrapped connection, inside
/// the same transaction.
trait InsertRows {
    /// Inserts every order or fails (a duplicate key fails the whole statement).
    fn insert_orders(
        &mut self,
        orders: Vec<OrderRow>,
    ) -> impl std::future::Future<Output = QueryResult<usize>> + Send;
    fn insert_rows(
        &mut self,
        awards: Vec<OutboxRow>,
        logs: Vec<NotificationLogRow>,
    ) -> impl std::future::Future<Output = QueryResult<()>> + Send;
}

impl InsertRows for AsyncMysqlConnection {
    async fn insert_orders(&mut self, orders: Vec<OrderRow>) -> QueryResult<usize> {
        match orders.as_slice() {
            [] => Ok(0),
            // One row (most batches below saturation): a statement kept per connection.
            [order] => {
                Reuse(diesel::insert_into(payment_orders::table).values(order))
                    .execute(self)
                    .await
            }
            _ => {
                diesel::insert_into(payment_orders::table)
                    .values(&orders)
                    .execute(self)
                    .await
            }
        }
    }

    async fn insert_rows(
        &mut self,
        awards: Vec<OutboxRow>,
        logs: Vec<NotificationLogRow>,
    ) -> QueryResult<()> {
        match awards.as_slice() {
            [] => {}
            [award] => {
                Reuse(diesel::insert_or_ignore_into(outbox::table).values(award))
                    .execute(self)
                    .await?;
            }
            _ => {
                diesel::insert_or_ignore_into(outbox::table)
                    .values(&awards)
                    .execute(self)
                    .await?;
            }
        }
        match logs.as_slice() {
            [] => {}
            [log] => {
                Reuse(diesel::insert_into(notification_log::table).values(log))
                    .execute(self)
                    .await?;
            }
            _ => {
                diesel::insert_into(notification_log::table)
                    .values(&logs)
                    .execute(self)
                    .await?;
            }
        }
        Ok(())
    }
}

impl InsertRows for SqliteConn {
    async fn insert_orders(&mut self, orders: Vec<OrderRow>) -> QueryResult<usize> {
        if orders.is_empty() {
            return Ok(0);
        }
        self.spawn_blocking(move |c| {
            diesel::RunQueryDsl::execute(
                diesel::insert_into(payment_orders::table).values(&orders),
                c,
            )
        })
        .await
    }

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
