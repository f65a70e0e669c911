//! Payment orders: inserts that carry idempotency, guarded status changes, and the one
//! transaction that makes "paid" and "award points for it" a single fact (the outbox).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;

use super::schema::{outbox, payment_orders};
use super::{Db, StorageError};
use crate::domain::order::OrderStatus;
use crate::with_conn;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = payment_orders)]
pub struct OrderRow {
    pub id: String,
    pub order_no: String,
    pub user_id: String,
    pub merchant_id: String,
    pub payment_code_id: String,
    pub amount_fen: i64,
    pub refunded_fen: i64,
    pub status: String,
    pub idempotency_key: String,
    pub request_hash: String,
    pub description: String,
    pub payer_openid: String,
    pub prepay_id: Option<String>,
    pub wechat_transaction_id: Option<String>,
    pub expires_at: NaiveDateTime,
    pub paid_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl OrderRow {
    /// The typed status; an unknown text (never written by this code) is an error, never a
    /// guess.
    pub fn status(&self) -> Result<OrderStatus, StorageError> {
        parse_status(&self.status)
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: String,
    pub kind: String,
    pub aggregate_id: String,
    pub payload: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
}

pub(crate) fn parse_status(s: &str) -> Result<OrderStatus, StorageError> {
    OrderStatus::parse(s).ok_or_else(|| StorageError::Corrupt(format!("order status {s:?}")))
}

/// The result of inserting an order under an idempotency key.
#[derive(Debug)]
pub enum Inserted {
    New(OrderRow),
    /// The same user already used this key: the earlier order.
    Existing(OrderRow),
}

pub async fn find(db: &Db, order_no: &str) -> Result<Option<OrderRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        payment_orders::table
            .filter(payment_orders::order_no.eq(order_no))
            .select(OrderRow::as_select())
            .first(c)
            .await
            .optional()
    })?)
}

/// What an order's view shows: the order's own fields it needs (and the owner, for the
/// caller's check), the merchant's name and the points awarded for the order.
#[derive(Debug, Clone, Queryable)]
pub struct ViewRow {
    pub order_no: String,
    pub user_id: String,
    pub merchant_id: String,
    pub status: String,
    pub amount_fen: i64,
    pub refunded_fen: i64,
    pub created_at: NaiveDateTime,
    pub paid_at: Option<NaiveDateTime>,
    pub merchant_name: Option<String>,
    pub points_awarded: Option<i64>,
}

/// One order's [`ViewRow`], in one query rather than three, and only the ten columns the
/// view needs: a shopper waiting for a payment reads it twice, so every column not sent
/// is work saved on both sides.
pub async fn find_with_view(db: &Db, order_no: &str) -> Result<Option<ViewRow>, StorageError> {
    use super::schema::{merchants, points_records};
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        payment_orders::table
            .left_join(merchants::table.on(merchants::id.eq(payment_orders::merchant_id)))
            .left_join(
                points_records::table.on(points_records::source_type
                    .eq("order")
                    .and(points_records::source_id.eq(payment_orders::order_no))),
            )
            .filter(payment_orders::order_no.eq(order_no))
            .select((
                payment_orders::order_no,
                payment_orders::user_id,
                payment_orders::merchant_id,
                payment_orders::status,
                payment_orders::amount_fen,
                payment_orders::refunded_fen,
                payment_orders::created_at,
                payment_orders::paid_at,
                merchants::merchant_name.nullable(),
                points_records::points_change.nullable(),
            ))
            .first(c)
            .await
            .optional()
    })?)
}

pub async fn find_by_idempotency(
    db: &Db,
    user_id: &str,
    key: &str,
) -> Result<Option<OrderRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        payment_orders::table
            .filter(payment_orders::user_id.eq(user_id))
            .filter(payment_orders::idempotency_key.eq(key))
            .select(OrderRow::as_select())
            .first(c)
            .await
            .optional()
    })?)
}

/// Applies a decided transition with a compare-and-set on the previous status: the order
/// moves from exactly `from` to `to`, setting `closed_at` when it closes. False when the
/// order was no longer in `from` (someone else moved it first; read it and decide again).
pub async fn change_status(
    db: &Db,
    order_no: &str,
    from: OrderStatus,
    to: OrderStatus,
    now: NaiveDateTime,
) -> Result<bool, StorageError> {
    let closed_at = (to == OrderStatus::Closed).then_some(now);
    let mut conn = db.write_conn().await?;
    let n = with_conn!(&mut conn, |c| {
        diesel::update(
            payment_orders::table
                .filter(payment_orders::order_no.eq(order_no))
                .filter(payment_orders::status.eq(from.as_str())),
        )
        .set((
            payment_orders::status.eq(to.as_str()),
            payment_orders::updated_at.eq(now),
            payment_orders::version.eq(payment_orders::version + 1),
            closed_at.map(|t| payment_orders::closed_at.eq(t)),
        ))
        .execute(c)
        .await
    })?;
    Ok(n == 1)
}

/// Orders the payment supervisor must watch (reloaded at start-up).
pub async fn supervised(db: &Db) -> Result<Vec<OrderRow>, StorageError> {
    let watch: Vec<&str> = OrderStatus::ALL
        .into_iter()
        .filter(|s| s.needs_supervision())
        .map(|s| s.as_str())
        .collect();
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        payment_orders::table
            .filter(payment_orders::status.eq_any(&watch))
            .order(payment_orders::expires_at.asc())
            .select(OrderRow::as_select())
            .load(c)
            .await
    })?)
}

/// Open orders due for a supervision step at `now`, oldest expiry first (at most `limit`):
/// `created`/`paying` past their expiry, and `paying` ones created before `paying_before`
/// (no notification yet: WeChat is asked). What a rescan hands to the shards, so orders of
/// an instance that died are still closed or re-queried.
pub async fn due_for_supervision(
    db: &Db,
    now: NaiveDateTime,
    paying_before: NaiveDateTime,
    limit: i64,
) -> Result<Vec<OrderRow>, StorageError> {
    let open = [OrderStatus::Created.as_str(), OrderStatus::Paying.as_str()];
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        payment_orders::table
            .filter(payment_orders::status.eq_any(open))
            .filter(
                payment_orders::expires_at.le(now).or(payment_orders::status
                    .eq(OrderStatus::Paying.as_str())
                    .and(payment_orders::created_at.le(paying_before))),
            )
            .order(payment_orders::expires_at.asc())
            .limit(limit)
            .select(OrderRow::as_select())
            .load(c)
            .await
    })?)
}

/// Which orders a listing wants.
#[derive(Debug, Default, Clone)]
pub struct ListFilter<'a> {
    pub user_id: Option<&'a str>,
    pub merchant_id: Option<&'a str>,
    pub status: Option<&'a str>,
    pub created_from: Option<NaiveDateTime>,
    pub created_to: Option<NaiveDateTime>,
}

/// Orders newest first, cursor-paged by order id (UUID v7).
pub async fn list(
    db: &Db,
    filter: &ListFilter<'_>,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<OrderRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        let mut q = payment_orders::table
            .select(OrderRow::as_select())
            .order(payment_orders::id.desc())
            .limit(limit)
            .into_boxed();
        if let Some(u) = filter.user_id {
            q = q.filter(payment_orders::user_id.eq(u));
        }
        if let Some(m) = filter.merchant_id {
            q = q.filter(payment_orders::merchant_id.eq(m));
        }
        if let Some(st) = filter.status {
            q = q.filter(payment_orders::status.eq(st));
        }
        if let Some(f) = filter.created_from {
            q = q.filter(payment_orders::created_at.ge(f));
        }
        if let Some(t) = filter.created_to {
            q = q.filter(payment_orders::created_at.lt(t));
        }
        if let Some(b) = before_id {
            q = q.filter(payment_orders::id.lt(b));
        }
        q.load(c).await
    })?)
}
