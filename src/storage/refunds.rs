//! Refunds: one in flight per order (the order's `refunding` status is the guard), never more
//! than was paid, `out_refund_no` unique, and the clawback recorded in the outbox in the same
//! transaction that books the refund.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Serialize;

use super::orders::OutboxRow;
use super::schema::{outbox, payment_orders, refunds};
use super::{Db, StorageError};
use crate::domain::order::{
    Decision, Effect, IllegalTransition, OrderEvent, OrderStatus, RefundStatus, decide,
    decide_refund, refund_event,
};
use crate::with_conn;

pub const PROCESSING: &str = "processing";

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = refunds)]
pub struct RefundRow {
    pub id: String,
    pub out_refund_no: String,
    pub order_no: String,
    pub user_id: String,
    pub merchant_id: String,
    pub amount_fen: i64,
    pub reason: String,
    pub status: String,
    pub wechat_refund_id: Option<String>,
    pub requested_by: String,
    pub points_clawed_back: i64,
    pub points_shortfall: i64,
    pub success_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Begin {
    Started,
    /// This `out_refund_no` exists already (a retried request): the earlier refund.
    Exists,
    /// Another refund is in flight, or the order is not refundable now.
    NotRefundable(OrderStatus),
    /// The order moved between the read and the write (a concurrent refund): retry.
    Raced,
    /// More than what is left to refund.
    Exceeds {
        refundable: i64,
    },
    NotFound,
}

/// Reserves the refund: the order moves to `refunding` (only from paid or partially refunded,
/// only if the amount fits) and the refund row is written, in one transaction.
pub async fn begin(db: &Db, refund: &RefundRow) -> Result<Begin, StorageError> {
    let mut conn = db.write_conn().await?;
    with_conn!(&mut conn, |c| {
        c.transaction::<_, diesel::result::Error, _>(async |c| {
            let exists: i64 = refunds::table
                .filter(refunds::out_refund_no.eq(&refund.out_refund_no))
                .count()
                .get_result(c)
                .await?;
            if exists > 0 {
                return Ok(Ok(Begin::Exists));
            }
            let order: Option<(String, i64, i64)> = payment_orders::table
                .filter(payment_orders::order_no.eq(&refund.order_no))
                .select((
                    payment_orders::status,
                    payment_orders::amount_fen,
                    payment_orders::refunded_fen,
                ))
                .first(c)
                .await
                .optional()?;
            let Some((status, amount, refunded)) = order else {
                return Ok(Ok(Begin::NotFound));
            };
            let from = match super::orders::parse_status(&status) {
                Ok(s) => s,
                Err(e) => return Ok(Err(e)),
            };
            let refundable = amount - refunded;
            if refund.amount_fen > refundable {
                return Ok(Ok(Begin::Exceeds { refundable }));
            }
            let Ok(Decision {
                next: Some(next), ..
            }) = decide(from, OrderEvent::RefundRequested)
            else {
                return Ok(Ok(Begin::NotRefundable(from)));
            };
            let n = diesel::update(
                payment_orders::table
                    .filter(payment_orders::order_no.eq(&refund.order_no))
                    .filter(payment_orders::status.eq(from.as_str()))
                    .filter(payment_orders::refunded_fen.eq(refunded)),
            )
            .set((
                payment_orders::status.eq(next.as_str()),
                payment_orders::updated_at.eq(refund.created_at),
                payment_orders::version.eq(payment_orders::version + 1),
            ))
            .execute(c)
            .await?;
            if n != 1 {
                return Ok(Ok(Begin::Raced));
            }
            diesel::insert_into(refunds::table)
                .values(refund)
                .execute(c)
                .await?;
            Ok(Ok(Begin::Started))
        })
        .await
    })?
}

pub async fn find(db: &Db, out_refund_no: &str) -> Result<Option<RefundRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        refunds::table
            .filter(refunds::out_refund_no.eq(out_refund_no))
            .select(RefundRow::as_select())
            .first(c)
            .await
            .optional()
    })?)
}

/// Refunds still processing (the supervisor asks WeChat about them).
pub async fn processing(
    db: &Db,
    older_than: NaiveDateTime,
) -> Result<Vec<RefundRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        refunds::table
            .filter(refunds::status.eq(PROCESSING))
            .filter(refunds::created_at.le(older_than))
            .order(refunds::created_at.asc())
            .limit(100)
            .select(RefundRow::as_select())
            .load(c)
            .await
    })?)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Finish {
    /// Booked now with this outcome; for a success, the clawback's outbox row was written too.
    Booked(RefundStatus),
    /// Already final: a duplicate or late report.
    AlreadyFinal,
    NotFound,
    /// The order cannot take this outcome (say it is not refunding): nothing changed.
    Illegal(IllegalTransition),
}

/// Books a refund's outcome once: the refund moves from processing (only), the order takes
/// the transition the state machine decides (refunded, partially refunded, or back to paid),
/// applied with a compare-and-set on its status, and a success writes the clawback's outbox
/// row. All in one transaction, or nothing.
pub async fn finish(
    db: &Db,
    out_refund_no: &str,
    reported: RefundStatus,
    wechat_refund_id: Option<&str>,
    now: NaiveDateTime,
    clawback: &OutboxRow,
) -> Result<Finish, StorageError> {
    let mut conn = db.write_conn().await?;
    with_conn!(&mut conn, |c| {
        c.transaction::<_, diesel::result::Error, _>(async |c| {
            let Some(refund) = refunds::table
                .filter(refunds::out_refund_no.eq(out_refund_no))
                .select(RefundRow::as_select())
                .first(c)
                .await
                .optional()?
            else {
                return Ok(Ok(Finish::NotFound));
            };
            let Some(current) = RefundStatus::parse(&refund.status) else {
                return Ok(Err(StorageError::Corrupt(format!(
                    "refund status {:?}",
                    refund.status
                ))));
            };
            let Some(outcome) = decide_refund(current, reported) else {
                return Ok(Ok(Finish::AlreadyFinal));
            };
            let (status, amount, refunded): (String, i64, i64) = payment_orders::table
                .filter(payment_orders::order_no.eq(&refund.order_no))
                .select((
                    payment_orders::status,
                    payment_orders::amount_fen,
                    payment_orders::refunded_fen,
                ))
                .first(c)
                .await?;
            let from = match super::orders::parse_status(&status) {
                Ok(s) => s,
                Err(e) => return Ok(Err(e)),
            };
            let refunded_after = if outcome == RefundStatus::Success {
                refunded + refund.amount_fen
            } else {
                refunded
            };
            let decision = match decide(from, refund_event(outcome, refunded_after, amount)) {
                Ok(d) => d,
                Err(e) => return Ok(Ok(Finish::Illegal(e))),
            };
            let n = diesel::update(
                refunds::table
                    .filter(refunds::out_refund_no.eq(out_refund_no))
                    .filter(refunds::status.eq(current.as_str())),
            )
            .set((
                refunds::status.eq(outcome.as_str()),
                refunds::wechat_refund_id.eq(wechat_refund_id),
                refunds::success_at.eq((outcome == RefundStatus::Success).then_some(now)),
                refunds::updated_at.eq(now),
            ))
            .execute(c)
            .await?;
            if n != 1 {
                return Ok(Ok(Finish::AlreadyFinal));
            }
            let next = decision.next.unwrap_or(from);
            let n = diesel::update(
                payment_orders::table
                    .filter(payment_orders::order_no.eq(&refund.order_no))
                    .filter(payment_orders::status.eq(from.as_str()))
                    .filter(payment_orders::refunded_fen.eq(refunded)),
            )
            .set((
                payment_orders::refunded_fen.eq(refunded_after),
                payment_orders::status.eq(next.as_str()),
                payment_orders::updated_at.eq(now),
                payment_orders::version.eq(payment_orders::version + 1),
            ))
            .execute(c)
            .await?;
            if n != 1 {
                // Moved since the read, inside this transaction: undo the refund's change.
                return Err(diesel::result::Error::RollbackTransaction);
            }
            if decision.effects.contains(&Effect::ClawBackPoints) {
                diesel::insert_or_ignore_into(outbox::table)
                    .values(clawback)
                    .execute(c)
                    .await?;
            }
            Ok(Ok(Finish::Booked(outcome)))
        })
        .await
    })?
}

/// Records what the clawback took (for display; the ledger is the truth).
/// Books the clawback's figures on the refund row and, in the same transaction, removes the
/// clawback's outbox row: until both are written, recovery re-drives the (idempotent) clawback.
pub async fn record_clawback(
    db: &Db,
    out_refund_no: &str,
    clawed: i64,
    shortfall: i64,
    outbox_id: Option<&str>,
) -> Result<(), StorageError> {
    let mut conn = db.write_conn().await?;
    with_conn!(&mut conn, |c| {
        c.transaction::<_, diesel::result::Error, _>(async |c| {
            diesel::update(refunds::table.filter(refunds::out_refund_no.eq(out_refund_no)))
                .set((
                    refunds::points_clawed_back.eq(clawed),
                    refunds::points_shortfall.eq(shortfall),
                ))
                .execute(c)
                .await?;
            if let Some(id) = outbox_id {
                diesel::delete(outbox::table.find(id)).execute(c).await?;
            }
            Ok(())
        })
        .await
    })?;
    Ok(())
}

/// Whether the order's award is still waiting in the outbox (a clawback must wait for it).
pub async fn award_pending(db: &Db, order_no: &str) -> Result<bool, StorageError> {
    let mut conn = db.conn().await?;
    let n: i64 = with_conn!(&mut conn, |c| {
        outbox::table
            .filter(outbox::kind.eq(super::outbox::AWARD_POINTS))
            .filter(outbox::aggregate_id.eq(order_no))
            .count()
            .get_result(c)
            .await
    })?;
    Ok(n > 0)
}

/// Refunds of one order that succeeded, oldest first.
pub async fn succeeded_for_order(db: &Db, order_no: &str) -> Result<Vec<RefundRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        refunds::table
            .filter(refunds::order_no.eq(order_no))
            .filter(refunds::status.eq(RefundStatus::Success.as_str()))
            .order(refunds::id.asc())
            .select(RefundRow::as_select())
            .load(c)
            .await
    })?)
}
