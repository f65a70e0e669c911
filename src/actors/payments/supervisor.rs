//! The payment supervisor: the owner of every order's state machine on this node.
//!
//! Orders are sharded by order number over [`PaymentShard`] actors, each on its own arbiter
//! (thread). A shard runs every step of its orders — create and prepay, settle a
//! notification or a query answer, cancel, close at expiry, refund — and watches the ones
//! that can still change without a new request (created, paying): it closes the expired
//! ones at WeChat and re-queries the ones stuck in paying. The HTTP layer only sends
//! messages through the [`Payments`] handle. Shard 0 also re-drives outbox rows left behind
//! and asks WeChat about refunds whose outcome never arrived.
//!
//! Several instances may serve one database. Each watches the orders it created, and every
//! `APP_SUPERVISOR_RESCAN_SECS` each shard also rescans the database for open orders it owns
//! that are due, so the orders of an instance that died are still closed or re-queried.
//! Before a close or a re-query the shard claims the order's lease (`storage::leases`): only
//! one live instance acts on an order, and a dead instance's orders pass on when its leases
//! run out.
//!
//! Every step runs in its own future on the shard's thread, so a slow WeChat call never
//! blocks the shard's other orders, and a failing order cannot stop the others. Two steps
//! on one order (a notification racing an expiry) may overlap; storage applies each decided
//! transition with a compare-and-set on the previous status, so exactly one wins and the
//! other reads the order and decides again.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, NaiveDateTime, Utc};

use super::PaymentError;
use super::order_writer::OrderWriter;
use super::refunds::{RefundView, RequestRefund};
use super::service::{CreatePayment, CreatedPayment, PaymentCore, Settled};
use crate::domain::order::OrderStatus;
use crate::storage::orders::{self, OrderRow};
use crate::storage::{leases, outbox, refunds};
use crate::telemetry::Trace;
use crate::wechat::{NotificationVerifier, RefundResource, Transaction};

const TICK: Duration = Duration::from_secs(1);
const RECOVERY_TICK: Duration = Duration::from_secs(2);
/// How often shard 0 deletes refused notifications past their retention.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// An order paying this long without a notification is asked about at WeChat (the default
/// of `APP_SUPERVISOR_QUERY_AFTER_SECS`).
const QUERY_AFTER_SECS: i64 = 60;
/// At most this many due orders per rescan and shard (the rest come with the next rescan).
const RESCAN_LIMIT: i64 = 500;
/// Expired leases are deleted once they are this old.
const LEASE_RETENTION: chrono::Duration = chrono::Duration::hours(1);
/// At most this many WeChat calls per tick and shard, so a backlog cannot flood WeChat.
const PER_TICK: usize = 32;
/// Messages a shard may hold: far above any burst; a full mailbox answers "busy".
const MAILBOX: usize = 1 << 16;

/// The shard that owns an order: a stable hash of its number.
pub fn shard_of(order_no: &str, shards: usize) -> usize {
    let mut h = DefaultHasher::new();
    order_no.hash(&mut h);
    usize::try_from(h.finish() % shards.max(1) as u64).unwrap_or(0)
}

/// How this instance shares the supervision of open orders with the others on the database.
#[derive(Debug, Clone)]
pub struct Supervision {
    /// This instance's name in order leases.
    pub instance: Arc<str>,
    /// How often each shard rescans the database for due orders.
    pub rescan: Duration,
    /// How long an order may be paying without a notification before WeChat is asked.
    pub query_after: chrono::Duration,
}

impl Supervision {
    pub fn from_settings(settings: &crate::config::Settings) -> Supervision {
        let secs = |s: u64| i64::try_from(s.clamp(1, 86_400)).unwrap_or(86_400);
        Supervision {
            instance: settings
                .instance_id
                .clone()
                .filter(|id| !id.trim().is_empty())
                .map_or_else(default_instance_id, |id| id.chars().take(64).collect())
                .into(),
            rescan: Duration::from_secs(settings.supervisor_rescan_secs.clamp(1, 86_400)),
            query_after: chrono::Duration::seconds(secs(settings.supervisor_query_after_secs)),
        }
    }

    /// How long a claimed lease lasts: longer than the owner's time to its next query of
    /// the order, so a live owner renews before anyone else may take over.
    pub fn lease(&self) -> chrono::Duration {
        let rescan = chrono::Duration::from_std(self.rescan).unwrap_or(chrono::Duration::zero());
        self.query_after + rescan + rescan
    }
}

impl Default for Supervision {
    fn default() -> Self {
        Supervision {
            instance: default_instance_id().into(),
            rescan: Duration::from_secs(30),
            query_after: chrono::Duration::seconds(QUERY_AFTER_SECS),
        }
    }
}

/// `<hostname>-<8 random hex digits>`: readable in the leases table, unique per process.
fn default_instance_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().chars().take(48).collect::<String>())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "points-app".into());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}", &random[..8])
}

/// The time source of the supervision ticks: the system clock, or a manual one in tests.
pub trait SupervisorClock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl SupervisorClock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// An order the shard watches and what it last knew of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub status: OrderStatus,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub last_query: Option<NaiveDateTime>,
    /// The row as this shard last wrote or read it. A settle starts from it instead of
    /// reading the order again: every write is a compare-and-set on the status, so a row
    /// another instance has moved since only costs the read it would have made anyway.
    pub row: Option<Arc<OrderRow>>,
}

/// What a tick decided for one watched order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Past its expiry: close it (at WeChat first when WeChat holds it).
    Close,
    /// Paying for long without a notification: ask WeChat.
    Query,
}

/// The watch list of one shard: which orders need a step now. Pure (the clock is passed
/// in), so the timing rules are unit-tested without waiting.
#[derive(Debug)]
pub struct WatchList {
    watch: HashMap<String, Watched>,
    busy: HashSet<String>,
    query_after_secs: i64,
}

impl Default for WatchList {
    fn default() -> Self {
        WatchList::new(chrono::Duration::seconds(QUERY_AFTER_SECS))
    }
}

impl WatchList {
    /// A watch list that asks WeChat about an order paying for `query_after`.
    pub fn new(query_after: chrono::Duration) -> WatchList {
        WatchList {
            watch: HashMap::new(),
            busy: HashSet::new(),
            query_after_secs: query_after.num_seconds().max(1),
        }
    }

    /// Starts (or keeps) watching an order that can still change; stops for one that cannot.
    pub fn track(&mut self, order_no: &str, w: Watched) {
        if w.status.needs_supervision() && w.status != OrderStatus::Refunding {
            self.watch.entry(order_no.to_string()).or_insert(w);
        } else {
            self.watch.remove(order_no);
        }
    }

    pub fn forget(&mut self, order_no: &str) {
        self.watch.remove(order_no);
    }

    pub fn len(&self) -> usize {
        self.watch.len()
    }

    pub fn is_empty(&self) -> bool {
        self.watch.is_empty()
    }

    pub fn contains(&self, order_no: &str) -> bool {
        self.watch.contains_key(order_no)
    }

    /// The row last known of a watched order (see [`Watched::row`]).
    pub fn row(&self, order_no: &str) -> Option<Arc<OrderRow>> {
        self.watch.get(order_no).and_then(|w| w.row.clone())
    }

    /// The orders due at `now` (at most `limit`), marked busy until [`WatchList::done`].
    pub fn due(&mut self, now: NaiveDateTime, limit: usize) -> Vec<(String, Due)> {
        let mut due = Vec::new();
        for (order_no, w) in &mut self.watch {
            if due.len() >= limit {
                break;
            }
            if self.busy.contains(order_no) {
                continue;
            }
            let expired = w.expires_at <= now;
            let after = self.query_after_secs;
            let stale = w.status == OrderStatus::Paying
                && (now - w.created_at).num_seconds() >= after
                && w.last_query
                    .is_none_or(|t| (now - t).num_seconds() >= after);
            if expired || stale {
                w.last_query = Some(now);
                due.push((
                    order_no.clone(),
                    if expired { Due::Close } else { Due::Query },
                ));
            }
        }
        for (order_no, _) in &due {
            self.busy.insert(order_no.clone());
        }
        due
    }

    /// A step on the order finished: an outcome that ends the watch (the order is final,
    /// or another live instance holds it) removes it; anything else (an error, an order
    /// still unpaid) keeps it for the next tick.
    pub fn done(&mut self, order_no: &str, outcome: &Result<Step, PaymentError>) {
        self.busy.remove(order_no);
        if let Ok(Step::Final | Step::HeldElsewhere) = outcome {
            self.watch.remove(order_no);
        }
    }
}

/// What a supervision step on a due order came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The order is final (closed, paid, gone): nothing more to watch.
    Final,
    /// Still open (WeChat says not paid yet): asked again later.
    Open,
    /// Another live instance holds the order's lease and acts on it.
    HeldElsewhere,
}

impl Step {
    fn of(settled: Settled) -> Step {
        match settled {
            Settled::Paid | Settled::Duplicate | Settled::Closed => Step::Final,
            Settled::Unchanged => Step::Open,
        }
    }
}

fn watched(c: &CreatedPayment) -> Watched {
    Watched {
        status: c.status,
        expires_at: c.expires_at,
        created_at: c.created_at,
        last_query: None,
        row: c.row.clone(),
    }
}

/// What one supervision step found.
enum Acted {
    /// Another live instance holds the order's lease and acts on it.
    HeldElsewhere,
    Missing,
    /// Paid, closed or refunded already.
    NotOpen,
    Settled(Settled),
}

/// One supervision step on an open order, as the watch list's tick and a reconciliation's
/// repair take it: the order's lease first, then the order (so an order another instance
/// finished and released is read after its final write and never acted on twice), then a
/// close or a question to WeChat settled through `core`; the lease is released once the
/// order is final.
async fn supervise_once(
    core: &PaymentCore,
    order_no: &str,
    due: Due,
    instance: &str,
    now: DateTime<Utc>,
    until: NaiveDateTime,
) -> Result<Acted, PaymentError> {
    let db = &core.db;
    if !leases::claim(db, order_no, instance, now.naive_utc(), until).await? {
        return Ok(Acted::HeldElsewhere);
    }
    let acted = match orders::find(db, order_no).await? {
        None => Acted::Missing,
        Some(order) if !matches!(order.status()?, OrderStatus::Created | OrderStatus::Paying) => {
            Acted::NotOpen
        }
        Some(order) => Acted::Settled(match due {
            Due::Close => {
                let settled = core.close(&order, now).await?;
                tracing::info!(category = "business", action = "order_expire", order_no = %order_no, user_id = %order.user_id, outcome = ?settled, "order past its expiry closed (or settled, if WeChat says paid)");
                settled
            }
            Due::Query => {
                let settled = core.reconcile(&order, now).await?;
                tracing::info!(category = "business", action = "order_query", order_no = %order_no, user_id = %order.user_id, outcome = ?settled, "open order asked about at WeChat");
                settled
            }
        }),
    };
    let done = match &acted {
        Acted::Settled(settled) => Step::of(*settled) == Step::Final,
        _ => true,
    };
    if done {
        leases::release(db, order_no, instance).await?;
    }
    Ok(acted)
}

/// One shard of the supervisor.
pub struct PaymentShard {
    core: PaymentCore,
    index: usize,
    shards: usize,
    clock: Arc<dyn SupervisorClock>,
    sup: Supervision,
    watch: WatchList,
    recovering: bool,
    rescanning: bool,
}

impl PaymentShard {
    fn owns(&self, order_no: &str) -> bool {
        shard_of(order_no, self.shards) == self.index
    }

    /// Expired orders get closed; long-paying ones get queried.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        for (order_no, due) in self.watch.due(now.naive_utc(), PER_TICK) {
            let core = self.core.clone();
            let key = order_no.clone();
            let instance = self.sup.instance.clone();
            let until = (now + self.sup.lease()).naive_utc();
            let trace = Trace::background("supervise").order(&order_no);
            let fut = async move {
                Ok(
                    match supervise_once(&core, &order_no, due, &instance, now, until).await? {
                        Acted::HeldElsewhere => Step::HeldElsewhere,
                        // Gone, or settled meanwhile (maybe by another instance): nothing to do.
                        Acted::Missing | Acted::NotOpen => Step::Final,
                        Acted::Settled(settled) => Step::of(settled),
                    },
                )
            };
            ctx.spawn(trace.run(fut).into_actor(self).map(move |res, act, _| {
                if let Err(e) = &res {
                    tracing::warn!(category = "business", order_no = %key, error = %e, "supervision step failed; will retry");
                }
                act.watch.done(&key, &res);
            }));
        }
    }

    /// Finds the due open orders this shard owns in the database, whoever created them, and
    /// watches them: the orders of an instance that died are closed or re-queried here.
    /// Orders whose lease another live instance holds are left to it.
    fn rescan(&mut self, ctx: &mut Context<Self>) {
        if self.rescanning {
            return;
        }
        self.rescanning = true;
        let db = self.core.db.clone();
        let (index, shards) = (self.index, self.shards);
        let instance = self.sup.instance.clone();
        let now = self.clock.now().naive_utc();
        let paying_before = now - self.sup.query_after;
        let fut = async move {
            let due = orders::due_for_supervision(&db, now, paying_before, RESCAN_LIMIT).await?;
            let mine: Vec<OrderRow> = due
                .into_iter()
                .filter(|o| shard_of(&o.order_no, shards) == index)
                .collect();
            let nos: Vec<&str> = mine.iter().map(|o| o.order_no.as_str()).collect();
            let held = leases::held_elsewhere(&db, &nos, &instance, now).await?;
            Ok::<_, crate::storage::StorageError>(
                mine.into_iter()
                    .filter(|o| !held.contains(&o.order_no))
                    .collect::<Vec<_>>(),
            )
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, _| {
            act.rescanning = false;
            let rows = match res {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(category = "system", shard = act.index, error = %e, "rescan of open orders failed; next rescan retries");
                    return;
                }
            };
            let mut adopted = 0;
            for order in &rows {
                if act.watch.contains(&order.order_no) {
                    continue;
                }
                match order.status() {
                    Ok(status) => {
                        act.watch.track(&order.order_no, reloaded(order, status));
                        adopted += 1;
                        tracing::info!(category = "business", order_no = %order.order_no, status = %status, "open order adopted by the rescan");
                    }
                    Err(e) => tracing::error!(category = "system", order_no = %order.order_no, error = %e, "order not supervised"),
                }
            }
            if adopted > 0 {
                act.core.metrics.adopted.inc_by(adopted);
            }
        }));
    }

    /// Re-drives outbox rows whose effect did not finish (a crash, a failed award), and asks
    /// WeChat about refunds whose outcome never arrived. Shard 0 only.
    fn recover(&mut self, ctx: &mut Context<Self>) {
        if self.recovering {
            return;
        }
        self.recovering = true;
        let core = self.core.clone();
        let now = self.clock.now();
        let query_after = self.sup.query_after;
        let fut = async move {
            let stale = (now - query_after).naive_utc();
            for refund in refunds::processing(&core.db, stale).await? {
                let trace = Trace::background("refund_query").order(&refund.order_no);
                trace
                    .run(async {
                        match core.wechat.query_refund(&refund.out_refund_no).await {
                            Ok(r) => {
                                core.settle_refund(
                                    &refund.out_refund_no,
                                    r.status,
                                    Some(&r.refund_id),
                                    now,
                                )
                                .await?;
                            }
                            Err(e) => {
                                tracing::warn!(category = "business", out_refund_no = %refund.out_refund_no, error = %e, "refund query failed")
                            }
                        }
                        Ok::<_, PaymentError>(())
                    })
                    .await?;
            }
            let rows = outbox::due(&core.db, now.naive_utc(), 200).await?;
            for row in rows {
                // The aggregate is the order (award) or the refund (clawback) it is about.
                let trace = match row.kind.as_str() {
                    outbox::AWARD_POINTS => Trace::background("outbox").order(&row.aggregate_id),
                    _ => Trace::background("outbox"),
                };
                if let Err(e) = trace.run(redrive(&core, &row)).await {
                    let attempts = row.attempts.saturating_add(1);
                    let backoff = 2_i64.saturating_pow(attempts.clamp(0, 10) as u32).min(600);
                    let next = now.naive_utc() + chrono::Duration::seconds(backoff);
                    tracing::warn!(category = "business", outbox_id = %row.id, kind = %row.kind, aggregate_id = %row.aggregate_id, attempts, error = %e, "outbox effect failed; retrying later");
                    outbox::reschedule(&core.db, &row.id, attempts, next, &e.to_string()).await?;
                }
            }
            Ok::<_, PaymentError>(())
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, _| {
            if let Err(e) = res {
                tracing::warn!(category = "system", error = %e, "outbox recovery pass failed");
            }
            act.recovering = false;
        }));
    }
}

impl PaymentShard {
    /// Deletes refused notifications older than their retention, so an unauthenticated
    /// sender can fill the log only up to rate x retention.
    fn prune(&mut self, ctx: &mut Context<Self>) {
        let db = self.core.db.clone();
        let now = self.clock.now();
        let before = (now - super::inbox::REFUSED_LOG_RETENTION).naive_utc();
        let expired = (now - LEASE_RETENTION).naive_utc();
        ctx.spawn(
            async move {
                leases::prune(&db, expired).await?;
                outbox::prune_refused_notifications(&db, before).await
            }
                .into_actor(self)
                .map(|res, _, _| match res {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(category = "system", deleted, "pruned refused notifications"),
                    Err(e) => tracing::warn!(category = "system", error = %e, "pruning refused notifications failed"),
                }),
        );
    }
}

/// Performs one outbox row's effect again (idempotent: the points engine keys the award on
/// the order and the clawback on the refund).
async fn redrive(core: &PaymentCore, row: &outbox::PendingEffect) -> Result<(), PaymentError> {
    let effect = outbox::Effect::from_row(&row.kind, &row.payload)
        .map_err(|e| PaymentError::AmountInvalid(e.to_string()))?;
    match effect {
        // The row exists only for a paid transition, whose effects include the message.
        outbox::Effect::AwardPoints {
            user_id,
            order_no,
            amount_fen,
            paid_at,
        } => {
            core.award(
                &user_id,
                &order_no,
                amount_fen,
                Some(row.id.clone()),
                paid_at,
                true,
            )
            .await
        }
        outbox::Effect::ClawBackPoints { out_refund_no } => {
            core.clawback(&out_refund_no, Some(&row.id)).await
        }
    }
}

impl Actor for PaymentShard {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        let db = self.core.db.clone();
        ctx.spawn(
            async move { orders::supervised(&db).await }
                .into_actor(self)
                .map(|res, act, _| match res {
                    Ok(rows) => {
                        let mut mine = 0;
                        let (index, shards) = (act.index, act.shards);
                        for order in rows
                            .iter()
                            .filter(|o| shard_of(&o.order_no, shards) == index)
                        {
                            match order.status() {
                                Ok(status) => {
                                    act.watch.track(&order.order_no, reloaded(order, status));
                                    mine += 1;
                                }
                                Err(e) => tracing::error!(category = "system", order_no = %order.order_no, error = %e, "order not supervised"),
                            }
                        }
                        tracing::info!(category = "system", shard = act.index, orders = mine, "payment shard reloaded open orders");
                    }
                    Err(e) => tracing::error!(category = "system", error = %e, "payment shard could not reload orders"),
                }),
        );
        ctx.run_interval(TICK, |act, ctx| act.tick(ctx));
        ctx.run_interval(self.sup.rescan, |act, ctx| act.rescan(ctx));
        if self.index == 0 {
            ctx.run_interval(RECOVERY_TICK, |act, ctx| act.recover(ctx));
            ctx.run_interval(PRUNE_EVERY, |act, ctx| act.prune(ctx));
        }
    }
}

fn reloaded(order: &OrderRow, status: OrderStatus) -> Watched {
    Watched {
        status,
        expires_at: order.expires_at,
        created_at: order.created_at,
        last_query: None,
        row: Some(Arc::new(order.clone())),
    }
}

/// Create (or find again) an order and get its prepay. Sent to the shard of the new
/// order's number.
#[derive(Message)]
#[rtype(result = "Result<CreatedPayment, PaymentError>")]
struct Create {
    req: CreatePayment,
    order_id: uuid::Uuid,
    trace: Trace,
}

impl Handler<Create> for PaymentShard {
    type Result = ResponseActFuture<Self, Result<CreatedPayment, PaymentError>>;

    fn handle(&mut self, msg: Create, _: &mut Context<Self>) -> Self::Result {
        let core = self.core.clone();
        let now = self.clock.now();
        Box::pin(
            msg.trace
                .run(async move { core.create(msg.req, msg.order_id, now).await })
                .into_actor(self)
                .map(|res, act, _| {
                    if let Ok(created) = &res
                        && act.owns(&created.order_no)
                    {
                        act.watch.track(&created.order_no, watched(created));
                    }
                    res
                }),
        )
    }
}

/// Watch an order this shard owns (an earlier order found again by another shard).
#[derive(Message)]
#[rtype(result = "()")]
struct Watch(CreatedPayment);

impl Handler<Watch> for PaymentShard {
    type Result = ();

    fn handle(&mut self, msg: Watch, _: &mut Context<Self>) {
        self.watch.track(&msg.0.order_no, watched(&msg.0));
    }
}

/// What WeChat reports about a payment (a verified notification).
#[derive(Message)]
#[rtype(result = "Result<Settled, PaymentError>")]
struct Settle(Transaction, Trace);

impl Handler<Settle> for PaymentShard {
    type Result = ResponseActFuture<Self, Result<Settled, PaymentError>>;

    fn handle(&mut self, msg: Settle, _: &mut Context<Self>) -> Self::Result {
        let core = self.core.clone();
        let now = self.clock.now();
        let order_no = msg.0.out_trade_no.clone();
        let known = self.watch.row(&order_no);
        Box::pin(
            msg.1
                .run(async move { core.settle_from(&msg.0, known, now).await })
                .into_actor(self)
                .map(move |res, act, _| {
                    if let Ok(Settled::Paid | Settled::Duplicate | Settled::Closed) = &res {
                        act.watch.forget(&order_no);
                    }
                    res
                }),
        )
    }
}

/// The shopper cancels an unpaid order.
#[derive(Message)]
#[rtype(result = "Result<Settled, PaymentError>")]
struct Cancel {
    user_id: String,
    order_no: String,
    trace: Trace,
}

impl Handler<Cancel> for PaymentShard {
    type Result = ResponseActFuture<Self, Result<Settled, PaymentError>>;

    fn handle(&mut self, msg: Cancel, _: &mut Context<Self>) -> Self::Result {
        let core = self.core.clone();
        let now = self.clock.now();
        let order_no = msg.order_no.clone();
        let trace = msg.trace;
        let fut = async move {
            let order = orders::find(&core.db, &msg.order_no)
                .await?
                .filter(|o| o.user_id == msg.user_id)
                .ok_or(PaymentError::OrderNotFound)?;
            match order.status()? {
                OrderStatus::Created | OrderStatus::Paying => core.close(&order, now).await,
                status => Err(PaymentError::NotPayable(status)),
            }
        };
        Box::pin(trace.run(fut).into_actor(self).map(move |res, act, _| {
            if let Ok(Settled::Paid | Settled::Closed) = &res {
                act.watch.forget(&order_no);
            }
            res
        }))
    }
}

/// WeChat reported a refund's outcome (verified notification).
#[derive(Message)]
#[rtype(result = "Result<Settled, PaymentError>")]
struct RefundNotified(RefundResource, Trace);

impl Handler<RefundNotified> for PaymentShard {
    type Result = ResponseFuture<Result<Settled, PaymentError>>;

    fn handle(&mut self, msg: RefundNotified, _: &mut Context<Self>) -> Self::Result {
        let core = self.core.clone();
        let now = self.clock.now();
        Box::pin(msg.1.run(async move {
            let r = msg.0;
            if r.mchid != core.wechat.config().mchid {
                return Err(PaymentError::Mismatch("mchid"));
            }
            let refund = refunds::find(&core.db, &r.out_refund_no)
                .await?
                .ok_or(PaymentError::OrderNotFound)?;
            if refund.order_no != r.out_trade_no || refund.amount_fen != r.amount.refund {
                return Err(PaymentError::Mismatch("refund order or amount"));
            }
            core.settle_refund(&r.out_refund_no, r.refund_status, Some(&r.refund_id), now)
                .await
        }))
    }
}

/// Ask WeChat about an order again and settle what it says (reconciliation found it paid at
/// WeChat, not here). The same step as the supervision's re-query: the order's lease first,
/// then the paid transition through `settle`, so its award is made once.
#[derive(Message)]
#[rtype(result = "Result<Settled, PaymentError>")]
struct Requery(String, Trace);

impl Handler<Requery> for PaymentShard {
    type Result = ResponseActFuture<Self, Result<Settled, PaymentError>>;

    fn handle(&mut self, msg: Requery, _: &mut Context<Self>) -> Self::Result {
        let core = self.core.clone();
        let now = self.clock.now();
        let instance = self.sup.instance.clone();
        let until = (now + self.sup.lease()).naive_utc();
        let order_no = msg.0.clone();
        let fut = async move {
            match supervise_once(&core, &msg.0, Due::Query, &instance, now, until).await? {
                Acted::HeldElsewhere => Err(PaymentError::Unavailable(
                    "another instance is asking WeChat about this order now".into(),
                )),
                Acted::Missing => Err(PaymentError::OrderNotFound),
                Acted::NotOpen => Ok(Settled::Duplicate),
                Acted::Settled(settled) => Ok(settled),
            }
        };
        Box::pin(msg.1.run(fut).into_actor(self).map(move |res, act, _| {
            if let Ok(Settled::Paid | Settled::Duplicate | Settled::Closed) = &res {
                act.watch.forget(&order_no);
            }
            res
        }))
    }
}

/// A merchant or an admin asks for a refund.
#[derive(Message)]
#[rtype(result = "Result<RefundView, PaymentError>")]
struct StartRefund(RequestRefund, Trace);

impl Handler<StartRefund> for PaymentShard {
    type Result = ResponseFuture<Result<RefundView, PaymentError>>;

    fn handle(&mut self, msg: StartRefund, _: &mut Context<Self>) -> Self::Result {
        let core = self.core.clone();
        let now = self.clock.now();
        Box::pin(
            msg.1
                .run(async move { core.request_refund(msg.0, now).await }),
        )
    }
}

/// The supervisor as the rest of the server sees it: one method per request, each a
/// message to the shard that owns the order. Cheap to clone.
#[derive(Clone)]
pub struct Payments {
    shards: Arc<[Addr<PaymentShard>]>,
    core: PaymentCore,
    verifier: NotificationVerifier,
    /// How many refused (unverified) notifications this instance writes to the log.
    refused_log: Arc<governor::DefaultDirectRateLimiter>,
    _arbiters: Arc<ShardThreads>,
}

/// The shards' arbiters: stopped when the last handle goes (the server stops, or a test's
/// server is dropped), so no shard keeps polling a database nobody serves any more.
struct ShardThreads(Vec<ArbiterHandle>);

impl Drop for ShardThreads {
    fn drop(&mut self) {
        for arbiter in &self.0 {
            arbiter.stop();
        }
    }
}

fn unavailable(e: MailboxError) -> PaymentError {
    PaymentError::Unavailable(e.to_string())
}

impl Payments {
    /// Starts `shards` shards (at least one), each on its own arbiter, with the system clock.
    pub fn start(
        core: PaymentCore,
        verifier: NotificationVerifier,
        shards: usize,
        sup: Supervision,
    ) -> Payments {
        Self::start_with_clock(core, verifier, shards, sup, Arc::new(SystemClock))
    }

    pub fn start_with_clock(
        core: PaymentCore,
        verifier: NotificationVerifier,
        shards: usize,
        sup: Supervision,
        clock: Arc<dyn SupervisorClock>,
    ) -> Payments {
        let n = shards.max(1);
        let arbiters: Vec<ArbiterHandle> = (0..n).map(|_| Arbiter::new().handle()).collect();
        let addrs: Vec<Addr<PaymentShard>> = arbiters
            .iter()
            .enumerate()
            .map(|(index, arbiter)| {
                let (core, clock, sup) = (core.clone(), clock.clone(), sup.clone());
                PaymentShard::start_in_arbiter(arbiter, move |_| PaymentShard {
                    core,
                    index,
                    shards: n,
                    clock,
                    watch: WatchList::new(sup.query_after),
                    sup,
                    recovering: false,
                    rescanning: false,
                })
            })
            .collect();
        Payments {
            shards: addrs.into(),
            core,
            verifier,
            refused_log: Arc::new(governor::RateLimiter::direct(
                super::inbox::REFUSED_LOG_QUOTA,
            )),
            _arbiters: Arc::new(ShardThreads(arbiters)),
        }
    }

    fn shard(&self, order_no: &str) -> &Addr<PaymentShard> {
        &self.shards[shard_of(order_no, self.shards.len())]
    }

    /// The group-commit writer the payment steps use (notification logs go through it too).
    pub fn writer(&self) -> &OrderWriter {
        &self.core.order_writer
    }

    pub fn core(&self) -> &PaymentCore {
        &self.core
    }

    /// Checks WeChat's notification signatures and decrypts their resources.
    pub fn verifier(&self) -> &NotificationVerifier {
        &self.verifier
    }

    /// Starts watching an order for its next change (see [`super::changes`]).
    pub fn watch(&self, order_no: &str) -> super::OrderWatch {
        self.core.changes.watch(order_no)
    }

    /// An admin changed a risk rule: the next payment here reads the rules again.
    pub fn risk_rules_changed(&self) {
        self.core.risk_rules.forget();
    }

    /// Whether one more refused notification may be written to the log now.
    pub(super) fn may_log_refusal(&self) -> bool {
        self.refused_log.check().is_ok()
    }

    /// How many shards own the orders.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Creates the order (or finds the one this Idempotency-Key already made) and gets its
    /// prepay. The step finishes even if the caller goes away.
    pub async fn create(&self, req: CreatePayment) -> Result<CreatedPayment, PaymentError> {
        let order_id = uuid::Uuid::now_v7();
        let order_no = order_id.simple().to_string();
        let created = self
            .shard(&order_no)
            .send(Create {
                req,
                order_id,
                trace: Trace::current(),
            })
            .await
            .map_err(unavailable)??;
        if created.order_no != order_no {
            // An earlier order, owned by another shard: make sure that one watches it.
            self.shard(&created.order_no)
                .do_send(Watch(created.clone()));
        }
        Ok(created)
    }

    /// Settles a verified payment notification.
    pub async fn settle(&self, txn: Transaction) -> Result<Settled, PaymentError> {
        self.shard(&txn.out_trade_no)
            .send(Settle(txn, Trace::current()))
            .await
            .map_err(unavailable)?
    }

    /// The shopper cancels an unpaid order of theirs.
    pub async fn cancel(&self, user_id: &str, order_no: &str) -> Result<Settled, PaymentError> {
        self.shard(order_no)
            .send(Cancel {
                user_id: user_id.to_string(),
                order_no: order_no.to_string(),
                trace: Trace::current(),
            })
            .await
            .map_err(unavailable)?
    }

    /// Books a verified refund notification.
    pub async fn refund_notified(&self, r: RefundResource) -> Result<Settled, PaymentError> {
        self.shard(&r.out_trade_no)
            .send(RefundNotified(r, Trace::current()))
            .await
            .map_err(unavailable)?
    }

    /// Asks WeChat about an open order and settles the answer (through the owning shard).
    pub async fn requery(&self, order_no: &str) -> Result<Settled, PaymentError> {
        self.shard(order_no)
            .send(Requery(order_no.to_string(), Trace::current()))
            .await
            .map_err(unavailable)?
    }

    /// Requests a refund at WeChat.
    pub async fn refund(&self, req: RequestRefund) -> Result<RefundView, PaymentError> {
        self.shard(&req.order_no)
            .send(StartRefund(req, Trace::current()))
            .await
            .map_err(unavailable)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn t(secs: i64) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d + chrono::Duration::seconds(secs))
            .unwrap()
    }

    fn order(status: OrderStatus, created: i64, expires: i64) -> Watched {
        Watched {
            status,
            expires_at: t(expires),
            created_at: t(created),
            last_query: None,
            row: None,
        }
    }

    #[test]
    fn an_order_is_closed_at_its_expiry_and_not_before() {
        let mut w = WatchList::default();
        w.track("a", order(OrderStatus::Created, 0, 900));
        assert!(w.due(t(899), 32).is_empty());
        assert_eq!(w.due(t(900), 32), vec![("a".to_string(), Due::Close)]);
        // Busy until the step reports: not handed out twice.
        assert!(w.due(t(901), 32).is_empty());
        w.done("a", &Ok(Step::Final));
        assert!(!w.contains("a"));
    }

    #[test]
    fn a_paying_order_is_queried_once_a_minute_until_it_settles() {
        let mut w = WatchList::default();
        w.track("p", order(OrderStatus::Paying, 0, 900));
        assert!(w.due(t(59), 32).is_empty());
        assert_eq!(w.due(t(60), 32), vec![("p".to_string(), Due::Query)]);
        w.done("p", &Ok(Step::Open));
        assert!(w.contains("p"), "still paying: still watched");
        assert!(w.due(t(100), 32).is_empty(), "asked 40 s ago");
        assert_eq!(w.due(t(120), 32), vec![("p".to_string(), Due::Query)]);
        w.done("p", &Ok(Step::Final));
        assert!(w.is_empty());
    }

    #[test]
    fn a_failed_step_is_retried_on_a_later_tick() {
        let mut w = WatchList::default();
        w.track("a", order(OrderStatus::Paying, 0, 10));
        assert_eq!(w.due(t(10), 32).len(), 1);
        w.done("a", &Err(PaymentError::Raced));
        assert_eq!(w.due(t(11), 32), vec![("a".to_string(), Due::Close)]);
    }

    #[test]
    fn a_tick_hands_out_at_most_its_limit() {
        let mut w = WatchList::default();
        for i in 0..100 {
            w.track(&format!("o{i}"), order(OrderStatus::Created, 0, 5));
        }
        assert_eq!(w.due(t(5), 32).len(), 32);
        assert_eq!(w.due(t(5), 32).len(), 32);
        assert_eq!(w.due(t(5), 100).len(), 36);
        assert_eq!(w.len(), 100);
    }

    #[test]
    fn final_orders_are_not_watched() {
        let mut w = WatchList::default();
        for s in [
            OrderStatus::Paid,
            OrderStatus::Closed,
            OrderStatus::Refunded,
            OrderStatus::Refunding,
        ] {
            w.track("x", order(s, 0, 5));
            assert!(!w.contains("x"), "{s}");
        }
        w.track("x", order(OrderStatus::Created, 0, 5));
        w.track("x", order(OrderStatus::Paid, 0, 5));
        assert!(!w.contains("x"), "paid ends the watch");
    }

    #[test]
    fn orders_spread_over_the_shards_and_always_land_on_the_same_one() {
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            let no = uuid::Uuid::now_v7().simple().to_string();
            let s = shard_of(&no, 4);
            assert_eq!(s, shard_of(&no, 4));
            counts[s] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
        assert_eq!(shard_of("anything", 1), 0);
    }
}
