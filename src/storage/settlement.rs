//! Settlement figures (paid orders, refunds and WeChat's fee) per China Standard Time day or
//! per merchant, computed on read from the orders and refunds themselves: nothing on the
//! payment path is written for them, so nothing can drift from the orders.
//!
//! An order counts on the CST day it was paid, with its fee; a refund counts on the CST day
//! it succeeded, with the share of the fee WeChat returns for it. Both reads are range scans
//! of the indexes of migration `2026-12-07-000020_settlement_indexes`.
//!
//! The fee is WeChat's own where reconciliation recorded it from the trade bill
//! (`bill_order_fees`, `bill_refund_fees`, joined by their primary keys) and the estimate at
//! the configured rate otherwise; the figures count how many of each came from the bill.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text, Timestamp};
use diesel_async::RunQueryDsl;

use super::stats::cst_day_sql;
use super::{Conn, Db, StorageError};
use crate::config::DatabaseKind;

/// The statuses of an order that was paid (whatever was refunded of it since).
const PAID: &str = "('paid','refunding','partially_refunded','refunded')";

/// The sums of one day or one merchant. Every figure is in fen except the counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub order_count: i64,
    pub gross_fen: i64,
    /// WeChat's fee on the orders paid, each rounded half up to the fen.
    pub fee_fen: i64,
    pub refund_count: i64,
    pub refund_fen: i64,
    /// The fee WeChat returns with the refunds (see [`fee_sql`]).
    pub fee_refund_fen: i64,
    /// Orders whose fee is WeChat's from the trade bill (the others' is the estimate).
    pub fee_from_bill_orders: i64,
    /// Refunds whose returned fee is WeChat's from the trade bill.
    pub fee_from_bill_refunds: i64,
}

#[derive(QueryableByName)]
struct OrderSums {
    #[diesel(sql_type = Text)]
    k: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    gross: i64,
    #[diesel(sql_type = BigInt)]
    fee: i64,
    #[diesel(sql_type = BigInt)]
    billed: i64,
}

#[derive(QueryableByName)]
struct RefundSums {
    #[diesel(sql_type = Text)]
    k: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    refund: i64,
    #[diesel(sql_type = BigInt)]
    fee_back: i64,
    #[diesel(sql_type = BigInt)]
    billed: i64,
}

/// WeChat's fee on `amount` fen at `rate_bp` basis points, rounded half up to the fen, as
/// SQL: `(amount * rate + 5000) div 10000` (amounts are never negative, so integer division
/// is the floor). The same rule as [`crate::domain::money::wechat_fee_fen`].
fn fee_sql(kind: DatabaseKind, rate_bp: u32, amount: &str) -> String {
    match kind {
        DatabaseKind::Mysql => format!("((({amount}) * {rate_bp} + 5000) DIV 10000)"),
        DatabaseKind::Sqlite => format!("((({amount}) * {rate_bp} + 5000) / 10000)"),
    }
}

/// A sum as a BIGINT in both dialects (MySQL sums to DECIMAL).
fn sum(kind: DatabaseKind, expr: &str) -> String {
    match kind {
        DatabaseKind::Mysql => format!("CAST(COALESCE(SUM({expr}), 0) AS SIGNED)"),
        DatabaseKind::Sqlite => format!("COALESCE(SUM({expr}), 0)"),
    }
}

/// What the rows are grouped by.
enum Key<'a> {
    /// The CST day, for one merchant or (None) all of them.
    Day(Option<&'a str>),
    /// The merchant, in id order after `after`, at most `limit` of them.
    Merchant { after: Option<&'a str>, limit: i64 },
}

async fn load(
    conn: &mut Conn,
    kind: DatabaseKind,
    rate_bp: u32,
    key: &Key<'_>,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<(Vec<OrderSums>, Vec<RefundSums>), StorageError> {
    let (merchant, after, limit) = match key {
        Key::Day(m) => (*m, None, None),
        Key::Merchant { after, limit } => (None, *after, Some(*limit)),
    };
    let count = match kind {
        DatabaseKind::Mysql => "CAST(COUNT(*) AS SIGNED)",
        DatabaseKind::Sqlite => "COUNT(*)",
    };
    let (order_key, refund_key) = match key {
        Key::Day(_) => (
            cst_day_sql(kind, "po.paid_at"),
            cst_day_sql(kind, "x.success_at"),
        ),
        Key::Merchant { .. } => ("po.merchant_id".to_string(), "x.merchant_id".to_string()),
    };
    let filter = |alias: &str| {
        let mut f = String::new();
        if merchant.is_some() {
            f.push_str(&format!(" AND {alias}.merchant_id = ?"));
        }
        if after.is_some() {
            f.push_str(&format!(" AND {alias}.merchant_id > ?"));
        }
        f
    };
    // Per merchant, the day is the narrow condition: read the day's rows by time and group
    // them, rather than walk every merchant's index entries after the cursor (which a
    // planner may prefer, to skip the sort).
    let hint = |index: &str| match (key, kind) {
        (Key::Day(_), _) => String::new(),
        (Key::Merchant { .. }, DatabaseKind::Mysql) => format!(" FORCE INDEX ({index})"),
        (Key::Merchant { .. }, DatabaseKind::Sqlite) => format!(" INDEXED BY {index}"),
    };
    let tail = if limit.is_some() {
        " ORDER BY k LIMIT ?"
    } else {
        ""
    };
    // WeChat's fee from the bill where reconciliation recorded it, else the estimate.
    let orders_sql = format!(
        "SELECT {order_key} AS k, {count} AS n, {gross} AS gross, {fee} AS fee, \
                {billed} AS billed \
         FROM payment_orders po{orders_hint} \
         LEFT JOIN bill_order_fees bf ON bf.order_no = po.order_no \
         WHERE po.paid_at >= ? AND po.paid_at < ? AND po.status IN {PAID}{filter} \
         GROUP BY k{tail}",
        gross = sum(kind, "po.amount_fen"),
        fee = sum(
            kind,
            &format!(
                "COALESCE(bf.fee_fen, {})",
                fee_sql(kind, rate_bp, "po.amount_fen")
            )
        ),
        billed = sum(kind, "CASE WHEN bf.order_no IS NULL THEN 0 ELSE 1 END"),
        filter = filter("po"),
        orders_hint = hint("idx_orders_paid"),
    );
    // The fee returned with a refund is WeChat's from the bill where recorded. Otherwise it is
    // estimated: the fee on everything refunded of the order so far less the fee on what was
    // refunded before it, so each refund returns its share, and the refunds of one order
    // together never return more than its fee (a full refund returns exactly the fee).
    let fee_back = format!(
        "COALESCE(bf.fee_returned_fen, {} - {})",
        fee_sql(kind, rate_bp, "x.before_fen + x.amount_fen"),
        fee_sql(kind, rate_bp, "x.before_fen"),
    );
    let refunds_sql = format!(
        "SELECT {refund_key} AS k, {count} AS n, {refund} AS refund, {fee_back} AS fee_back, \
                {billed} AS billed \
         FROM (SELECT r.merchant_id, r.success_at, r.amount_fen, r.out_refund_no, \
                 (SELECT COALESCE(SUM(e.amount_fen), 0) FROM refunds e \
                  WHERE e.order_no = r.order_no AND e.status = 'success' \
                    AND (e.success_at < r.success_at \
                         OR (e.success_at = r.success_at AND e.id < r.id))) AS before_fen \
               FROM refunds r{refunds_hint} \
               WHERE r.status = 'success' AND r.success_at >= ? AND r.success_at < ?{filter}) x \
         LEFT JOIN bill_refund_fees bf ON bf.out_refund_no = x.out_refund_no \
         GROUP BY k{tail}",
        refund = sum(kind, "x.amount_fen"),
        fee_back = sum(kind, &fee_back),
        billed = sum(kind, "CASE WHEN bf.out_refund_no IS NULL THEN 0 ELSE 1 END"),
        filter = filter("r"),
        refunds_hint = hint("idx_refunds_success"),
    );
    // A macro, not a closure: the boxed query's backend differs per connection.
    macro_rules! bound {
        ($sql:expr) => {{
            let mut q = diesel::sql_query($sql.as_str())
                .into_boxed()
                .bind::<Timestamp, _>(from)
                .bind::<Timestamp, _>(to);
            if let Some(m) = merchant {
                q = q.bind::<Text, _>(m);
            }
            if let Some(a) = after {
                q = q.bind::<Text, _>(a);
            }
            if let Some(l) = limit {
                q = q.bind::<BigInt, _>(l);
            }
            q
        }};
    }
    let orders: Vec<OrderSums> = crate::with_conn!(conn, |c| bound!(orders_sql).load(c).await)?;
    let refunds: Vec<RefundSums> = crate::with_conn!(conn, |c| bound!(refunds_sql).load(c).await)?;
    Ok((orders, refunds))
}

fn merge(orders: Vec<OrderSums>, refunds: Vec<RefundSums>) -> BTreeMap<String, Figures> {
    let mut out: BTreeMap<String, Figures> = BTreeMap::new();
    for o in orders {
        let f = out.entry(o.k).or_default();
        f.order_count = o.n;
        f.gross_fen = o.gross;
        f.fee_fen = o.fee;
        f.fee_from_bill_orders = o.billed;
    }
    for r in refunds {
        let f = out.entry(r.k).or_default();
        f.refund_count = r.n;
        f.refund_fen = r.refund;
        f.fee_refund_fen = r.fee_back;
        f.fee_from_bill_refunds = r.billed;
    }
    out
}

/// Per CST day (`YYYY-MM-DD`) in `[from, to)` (UTC bounds of CST days), for one merchant or
/// (`None`) for all of them; days without an order or a refund are absent.
pub async fn by_day(
    db: &Db,
    rate_bp: u32,
    merchant_id: Option<&str>,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<BTreeMap<String, Figures>, StorageError> {
    let mut conn = db.conn().await?;
    let (orders, refunds) = load(
        &mut conn,
        db.kind(),
        rate_bp,
        &Key::Day(merchant_id),
        from,
        to,
    )
    .await?;
    Ok(merge(orders, refunds))
}

/// Per merchant with an order paid or a refund made in `[from, to)`, in merchant id order
/// after `after`, at most `limit` merchants (keyset paging).
pub async fn by_merchant(
    db: &Db,
    rate_bp: u32,
    from: NaiveDateTime,
    to: NaiveDateTime,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<(String, Figures)>, StorageError> {
    let mut conn = db.conn().await?;
    let key = Key::Merchant { after, limit };
    let (orders, refunds) = load(&mut conn, db.kind(), rate_bp, &key, from, to).await?;
    // Each list holds its first `limit` merchants, so the first `limit` of the two together
    // are complete in both.
    let n = usize::try_from(limit).unwrap_or(0);
    Ok(merge(orders, refunds).into_iter().take(n).collect())
}
