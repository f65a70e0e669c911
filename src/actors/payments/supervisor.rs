//! PaymentSupervisor: one per node. It watches every order that can still change without a
//! new request (created, paying), closes the expired ones at WeChat, re-queries the ones
//! stuck in paying, reloads them all at start-up, and re-drives outbox rows left behind.
//! Each order is handled in its own future: a failing order cannot stop the others.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use actix::prelude::*;
use chrono::{NaiveDateTime, Utc};

use super::PaymentError;
use super::refunds::{RefundView, RequestRefund};
use super::service::{CreatedPayment, PaymentCore, Settled};
use crate::domain::order::OrderStatus;
use crate::storage::orders::{self, OrderRow};
use crate::storage::{outbox, refunds};
use crate::wechat::RefundResource;

const TICK: Duration = Duration::from_secs(1);
const RECOVERY_TICK: Duration = Duration::from_secs(2);
/// An order paying this long without a notification is asked about at WeChat.
const QUERY_AFTER_SECS: i64 = 60;
/// At most this many WeChat calls per tick, so a backlog cannot flood WeChat.
const PER_TICK: usize = 32;

struct Watched {
    status: OrderStatus,
    expires_at: NaiveDateTime,
    created_at: NaiveDateTime,
    last_query: Option<NaiveDateTime>,
}

pub struct PaymentSupervisor {
    core: PaymentCore,
    watch: HashMap<String, Watched>,
    busy: HashSet<String>,
    recovering: bool,
}

impl PaymentSupervisor {
    pub fn new(core: PaymentCore) -> Self {
        PaymentSupervisor {
            core,
            watch: HashMap::new(),
            busy: HashSet::new(),
            recovering: false,
        }
    }

    fn track(&mut self, order: &OrderRow, status: OrderStatus) {
        if matches!(status, OrderStatus::Created | OrderStatus::Paying) {
            self.watch.insert(
                order.order_no.clone(),
                Watched {
                    status,
                    expires_at: order.expires_at,
                    created_at: order.created_at,
                    last_query: None,
                },
            );
        } else {
            self.watch.remove(&order.order_no);
        }
    }

    fn settled(&mut self, order_no: &str, outcome: &Result<Settled, PaymentError>) {
        self.busy.remove(order_no);
        if let Ok(Settled::Paid | Settled::Duplicate | Settled::Closed) = outcome {
            self.watch.remove(order_no);
        }
    }

    /// Expired orders get closed; long-paying ones get queried.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = Utc::now();
        let naive = now.naive_utc();
        let mut due = Vec::new();
        for (order_no, w) in &mut self.watch {
            if due.len() >= PER_TICK {
                break;
            }
            if self.busy.contains(order_no) {
                continue;
            }
            let expired = w.expires_at <= naive;
            let stale = w.status == OrderStatus::Paying
                && (naive - w.created_at).num_seconds() >= QUERY_AFTER_SECS
                && w.last_query
                    .is_none_or(|t| (naive - t).num_seconds() >= QUERY_AFTER_SECS);
            if expired || stale {
                w.last_query = Some(naive);
                due.push((order_no.clone(), expired));
            }
        }
        for (order_no, expired) in due {
            self.busy.insert(order_no.clone());
            let core = self.core.clone();
            let key = order_no.clone();
            let fut = async move {
                let Some(order) = orders::find(&core.db, &order_no).await? else {
                    return Ok(Settled::Closed);
                };
                if expired {
                    core.close(&order, now).await
                } else {
                    core.reconcile(&order, now).await
                }
            };
            ctx.spawn(fut.into_actor(self).map(move |res, act, _| {
                if let Err(e) = &res {
                    tracing::warn!(category = "business", order_no = %key, error = %e, "supervision step failed; will retry");
                }
                act.settled(&key, &res);
            }));
        }
    }

    /// Re-drives outbox rows whose effect did not finish (a crash, a failed award).
    fn recover(&mut self, ctx: &mut Context<Self>) {
        if self.recovering {
            return;
        }
        self.recovering = true;
        let core = self.core.clone();
        let fut = async move {
            let now = Utc::now();
            // Refunds whose outcome we never heard: ask WeChat.
            let stale = (now - chrono::Duration::seconds(QUERY_AFTER_SECS)).naive_utc();
            for refund in refunds::processing(&core.db, stale).await? {
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
            }
            let rows = outbox::due(&core.db, now.naive_utc(), 200).await?;
            for row in rows {
                if let Err(e) = redrive(&core, &row).await {
                    let attempts = row.attempts.saturating_add(1);
                    let backoff = 2_i64.saturating_pow(attempts.clamp(0, 10) as u32).min(600);
                    let next = now.naive_utc() + chrono::Duration::seconds(backoff);
                    tracing::warn!(category = "business", outbox_id = %row.id, kind = %row.kind, attempts, error = %e, "outbox effect failed; retrying later");
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

/// Performs one outbox row's effect again (idempotent: the points engine keys on the order).
async fn redrive(core: &PaymentCore, row: &outbox::PendingEffect) -> Result<(), PaymentError> {
    #[derive(serde::Deserialize)]
    struct Award {
        user_id: String,
        order_no: String,
        amount_fen: i64,
        paid_at: chrono::DateTime<Utc>,
    }
    match row.kind.as_str() {
        outbox::AWARD_POINTS => {
            let a: Award = serde_json::from_str(&row.payload)
                .map_err(|e| PaymentError::AmountInvalid(format!("bad outbox payload: {e}")))?;
            core.award(
                &a.user_id,
                &a.order_no,
                a.amount_fen,
                Some(row.id.clone()),
                a.paid_at,
            )
            .await
        }
        outbox::CLAWBACK_POINTS => core.clawback(&row.aggregate_id, Some(&row.id)).await,
        other => Err(PaymentError::AmountInvalid(format!(
            "unknown outbox kind {other}"
        ))),
    }
}

impl Actor for PaymentSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let db = self.core.db.clone();
        ctx.spawn(
            async move { orders::supervised(&db).await }
                .into_actor(self)
                .map(|res, act, _| match res {
                    Ok(rows) => {
                        for order in &rows {
                            act.track(order, order.status());
                        }
                        tracing::info!(category = "system", orders = rows.len(), "payment supervisor reloaded open orders");
                    }
                    Err(e) => tracing::error!(category = "system", error = %e, "payment supervisor could not reload orders"),
                }),
        );
        ctx.run_interval(TICK, |act, ctx| act.tick(ctx));
        ctx.run_interval(RECOVERY_TICK, |act, ctx| act.recover(ctx));
    }
}

/// An order created (or found again) outside the supervisor, by the HTTP worker that
/// served the request: watch it until it is paid or closed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Watch(pub CreatedPayment);

impl Handler<Watch> for PaymentSupervisor {
    type Result = ();

    fn handle(&mut self, msg: Watch, _: &mut Context<Self>) {
        let c = msg.0;
        if matches!(c.status, OrderStatus::Created | OrderStatus::Paying) {
            self.watch.entry(c.order_no).or_insert(Watched {
                status: c.status,
                expires_at: c.expires_at,
                created_at: c.created_at,
                last_query: None,
            });
        } else {
            self.watch.remove(&c.order_no);
        }
    }
}

/// An order settled outside the supervisor (a notification served by an HTTP worker).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unwatch(pub String);

impl Handler<Unwatch> for PaymentSupervisor {
    type Result = ();

    fn handle(&mut self, msg: Unwatch, _: &mut Context<Self>) {
        self.watch.remove(&msg.0);
    }
}

/// The shopper cancels an unpaid order.
#[derive(Message)]
#[rtype(result = "Result<Settled, PaymentError>")]
pub struct CancelPayment {
    pub user_id: String,
    pub order_no: String,
}

impl Handler<CancelPayment> for PaymentSupervisor {
    type Result = ResponseActFuture<Self, Result<Settled, PaymentError>>;

    fn handle(&mut self, msg: CancelPayment, _: &mut Context<Self>) -> Self::Result {
        let core = self.core.clone();
        let order_no = msg.order_no.clone();
        let fut = async move {
            let order = orders::find(&core.db, &msg.order_no)
                .await?
                .filter(|o| o.user_id == msg.user_id)
                .ok_or(PaymentError::OrderNotFound)?;
            match order.status() {
                OrderStatus::Created | OrderStatus::Paying => core.close(&order, Utc::now()).await,
                status => Err(PaymentError::NotPayable(status)),
            }
        };
        Box::pin(fut.into_actor(self).map(move |res, act, _| {
            if let Ok(Settled::Paid | Settled::Closed) = &res {
                act.watch.remove(&order_no);
            }
            res
        }))
    }
}

/// WeChat reported a refund's outcome (verified notification).
#[derive(Message)]
#[rtype(result = "Result<Settled, PaymentError>")]
pub struct RefundNotified(pub RefundResource);

impl Handler<RefundNotified> for PaymentSupervisor {
    type Result = ResponseFuture<Result<Settled, PaymentError>>;

    fn handle(&mut self, msg: RefundNotified, _: &mut Context<Self>) -> Self::Result {
        let core = self.core.clone();
        Box::pin(async move {
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
            core.settle_refund(
                &r.out_refund_no,
                r.refund_status,
                Some(&r.refund_id),
                Utc::now(),
            )
            .await
        })
    }
}

/// A merchant or an admin asks for a refund.
#[derive(Message)]
#[rtype(result = "Result<RefundView, PaymentError>")]
pub struct StartRefund(pub RequestRefund);

impl Handler<StartRefund> for PaymentSupervisor {
    type Result = ResponseFuture<Result<RefundView, PaymentError>>;

    fn handle(&mut self, msg: StartRefund, _: &mut Context<Self>) -> Self::Result {
        let core = self.core.clone();
        Box::pin(async move { core.request_refund(msg.0, Utc::now()).await })
    }
}
