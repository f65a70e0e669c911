//! The shopper notifier: after a payment's points are awarded and after a refund, a WeChat
//! subscribe message tells the shopper. Messages are queued in memory, written to
//! `subscribe_messages` in batches (one row per (kind, reference), so a re-driven award never
//! sends twice), sent, and marked in batches. A failed send is retried with back-off by a
//! periodic pass, which also picks up rows a crashed process left leased; after
//! `MAX_ATTEMPTS` a row is dead-lettered. Nothing here can fail a payment: the payment path
//! only posts a message to this actor.

use std::time::Duration;

use actix::prelude::*;
use chrono::{NaiveDateTime, Utc};
use futures_util::StreamExt;
use prometheus::IntCounterVec;

use crate::domain::time::cst;
use crate::storage::Db;
use crate::storage::subscribe::{self, MessageRow};
use crate::telemetry::{Metrics, Trace};
use crate::wechat::types::SubscribeMessage;
use crate::wechat::{MpErrorCode, WechatClient, WechatError};

/// How often queued messages are written and sent.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// How often due retries (and rows a crash left behind) are looked for.
const RETRY_EVERY: Duration = Duration::from_secs(2);
/// A row being sent is leased this long; after it, the retry pass may take it.
const LEASE_SECS: i64 = 60;
/// Attempts before a message is dead-lettered.
pub const MAX_ATTEMPTS: i32 = 5;
/// Sends in flight at once.
const CONCURRENCY: usize = 16;
/// Messages written per flush (13 columns each stays below placeholder limits).
const MAX_BATCH: usize = 1000;
/// Messages taken per retry pass.
const RETRY_BATCH: i64 = 100;

pub const KIND_PAYMENT: &str = "payment";
pub const KIND_REFUND: &str = "refund";

/// Template ids; an empty one turns that message off.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    pub payment: String,
    pub refund: String,
}

/// What happened to the shopper.
#[derive(Debug, Clone)]
pub enum ShopperEvent {
    Paid {
        order_no: String,
        amount_fen: i64,
        points: i64,
        at: chrono::DateTime<Utc>,
    },
    Refunded {
        out_refund_no: String,
        order_no: String,
        amount_fen: i64,
        points: i64,
        at: chrono::DateTime<Utc>,
    },
}

#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Notify {
    pub user_id: String,
    pub event: ShopperEvent,
}

pub struct Notifier {
    db: Db,
    wechat: WechatClient,
    templates: Templates,
    results: IntCounterVec,
    queue: Vec<Notify>,
    flushing: bool,
    retrying: bool,
}

impl Notifier {
    pub fn new(db: Db, wechat: WechatClient, templates: Templates, metrics: &Metrics) -> Self {
        let results = metrics.subscribe_messages_total.clone();
        Notifier {
            db,
            wechat,
            templates,
            results,
            queue: Vec::new(),
            flushing: false,
            retrying: false,
        }
    }

    fn template(&self, event: &ShopperEvent) -> &str {
        match event {
            ShopperEvent::Paid { .. } => &self.templates.payment,
            ShopperEvent::Refunded { .. } => &self.templates.refund,
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.flushing || self.queue.is_empty() {
            return;
        }
        self.flushing = true;
        let take = self.queue.len().min(MAX_BATCH);
        let batch: Vec<Notify> = self.queue.drain(..take).collect();
        let (db, wechat, templates, results) = (
            self.db.clone(),
            self.wechat.clone(),
            self.templates.clone(),
            self.results.clone(),
        );
        let fut = async move {
            let now = Utc::now().naive_utc();
            let users: Vec<&str> = batch.iter().map(|n| n.user_id.as_str()).collect();
            let openids = subscribe::openids(&db, &users).await?;
            let rows: Vec<MessageRow> = batch
                .iter()
                .filter_map(|n| {
                    let openid = openids.get(&n.user_id)?;
                    build_row(n, openid, &templates, now)
                })
                .collect();
            let ours = subscribe::enqueue(&db, &rows).await?;
            let to_send: Vec<MessageRow> =
                rows.into_iter().filter(|r| ours.contains(&r.id)).collect();
            deliver(&db, &wechat, &results, to_send).await
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, _| {
            if let Err(e) = res {
                tracing::warn!(category = "system", error = %e, "subscribe messages not queued");
            }
            act.flushing = false;
        }));
    }

    fn retry(&mut self, ctx: &mut Context<Self>) {
        if self.retrying {
            return;
        }
        self.retrying = true;
        let (db, wechat, results) = (self.db.clone(), self.wechat.clone(), self.results.clone());
        let fut = async move {
            let now = Utc::now().naive_utc();
            let lease = now + chrono::Duration::seconds(LEASE_SECS);
            let mut taken = Vec::new();
            for mut row in subscribe::due(&db, now, RETRY_BATCH).await? {
                if subscribe::claim(&db, &row, lease, now).await? {
                    row.attempts += 1;
                    taken.push(row);
                }
            }
            deliver(&db, &wechat, &results, taken).await
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, _| {
            if let Err(e) = res {
                tracing::warn!(category = "system", error = %e, "subscribe message retry pass failed");
            }
            act.retrying = false;
        }));
    }
}

/// The message row for an event, leased to this process for its first attempt.
fn build_row(
    n: &Notify,
    openid: &str,
    templates: &Templates,
    now: NaiveDateTime,
) -> Option<MessageRow> {
    let (kind, reference, template, data, page) = match &n.event {
        ShopperEvent::Paid {
            order_no,
            amount_fen,
            points,
            at,
        } => (
            KIND_PAYMENT,
            order_no.clone(),
            &templates.payment,
            serde_json::json!({
                "character_string1": {"value": order_no},
                "amount2": {"value": yuan(*amount_fen)},
                "number3": {"value": points.to_string()},
                "time4": {"value": at.with_timezone(&cst()).format("%Y-%m-%d %H:%M").to_string()},
            }),
            format!("payment/pages/result/index?order_no={order_no}"),
        ),
        ShopperEvent::Refunded {
            out_refund_no,
            order_no,
            amount_fen,
            points,
            at,
        } => (
            KIND_REFUND,
            out_refund_no.clone(),
            &templates.refund,
            serde_json::json!({
                "character_string1": {"value": order_no},
                "amount2": {"value": yuan(*amount_fen)},
                "number3": {"value": points.to_string()},
                "time4": {"value": at.with_timezone(&cst()).format("%Y-%m-%d %H:%M").to_string()},
            }),
            format!("payment/pages/result/index?order_no={order_no}"),
        ),
    };
    if template.is_empty() {
        return None;
    }
    let message = SubscribeMessage {
        touser: openid.to_string(),
        template_id: template.clone(),
        page: Some(page),
        data,
        miniprogram_state: None,
        lang: Some("zh_CN".into()),
    };
    Some(MessageRow {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: n.user_id.clone(),
        openid: openid.to_string(),
        template_id: template.clone(),
        kind: kind.into(),
        reference,
        payload: serde_json::to_string(&message).ok()?,
        status: subscribe::PENDING.into(),
        attempts: 1,
        last_error: None,
        next_attempt_at: now + chrono::Duration::seconds(LEASE_SECS),
        created_at: now,
        updated_at: now,
    })
}

fn yuan(fen: i64) -> String {
    format!("¥{}.{:02}", fen / 100, (fen % 100).abs())
}

/// How a failed send ends: tried again later, or never.
fn outcome_of(error: &WechatError, attempts: i32) -> &'static str {
    match error {
        WechatError::MiniProgram {
            code: MpErrorCode::NotSubscribed,
            ..
        } => subscribe::REFUSED,
        WechatError::MiniProgram {
            code: MpErrorCode::BadTemplateData | MpErrorCode::InvalidAppid,
            ..
        } => subscribe::DEAD,
        _ if attempts >= MAX_ATTEMPTS => subscribe::DEAD,
        _ => subscribe::PENDING,
    }
}

/// Sends leased rows (bounded concurrency) and records every outcome.
async fn deliver(
    db: &Db,
    wechat: &WechatClient,
    results: &IntCounterVec,
    rows: Vec<MessageRow>,
) -> Result<(), crate::storage::StorageError> {
    let outcomes: Vec<(MessageRow, Result<(), WechatError>)> = futures_util::stream::iter(rows)
        .map(|row| {
            // A payment message's reference is its order number.
            let trace = Trace::background("notify").user(&row.user_id);
            let trace = if row.kind == KIND_PAYMENT {
                trace.order(&row.reference)
            } else {
                trace
            };
            trace.run(async move {
                let sent = match serde_json::from_str::<SubscribeMessage>(&row.payload) {
                    Ok(message) => wechat.send_subscribe_message(&message).await,
                    Err(e) => Err(WechatError::InvalidRequest(format!("stored payload: {e}"))),
                };
                (row, sent)
            })
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let now = Utc::now().naive_utc();
    let mut sent = Vec::new();
    for (row, result) in outcomes {
        match result {
            Ok(()) => {
                results.with_label_values(&[&row.kind, "sent"]).inc();
                sent.push(row.id);
            }
            Err(e) => {
                let status = outcome_of(&e, row.attempts);
                // 2 s, 4 s, 8 s, 16 s, then the dead letter.
                let backoff = 2_i64.pow(row.attempts.clamp(1, 10) as u32);
                let next = now + chrono::Duration::seconds(backoff);
                let result = if status == subscribe::PENDING {
                    "retry"
                } else {
                    status
                };
                results.with_label_values(&[&row.kind, result]).inc();
                tracing::warn!(category = "business", user_id = %row.user_id, kind = %row.kind, reference = %row.reference, attempts = row.attempts, outcome = status, error = %e, "subscribe message not sent");
                subscribe::mark_failed(db, &row.id, status, next, &e.to_string(), now).await?;
            }
        }
    }
    subscribe::mark_sent(db, &sent, now).await
}

impl Actor for Notifier {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(FLUSH_EVERY, |act, ctx| act.flush(ctx));
        ctx.run_interval(RETRY_EVERY, |act, ctx| act.retry(ctx));
    }
}

impl Handler<Notify> for Notifier {
    type Result = ();

    fn handle(&mut self, msg: Notify, _: &mut Context<Self>) {
        if !self.template(&msg.event).is_empty() {
            self.queue.push(msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_formats_fen() {
        assert_eq!(yuan(12_345), "¥123.45");
        assert_eq!(yuan(5), "¥0.05");
    }

    #[test]
    fn refusals_stop_and_busy_retries_until_the_limit() {
        let refused = WechatError::MiniProgram {
            code: MpErrorCode::NotSubscribed,
            message: String::new(),
        };
        let busy = WechatError::MiniProgram {
            code: MpErrorCode::Busy,
            message: String::new(),
        };
        assert_eq!(outcome_of(&refused, 1), subscribe::REFUSED);
        assert_eq!(outcome_of(&busy, 1), subscribe::PENDING);
        assert_eq!(outcome_of(&busy, MAX_ATTEMPTS), subscribe::DEAD);
    }
}
