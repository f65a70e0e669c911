//! Merchant takings per China Standard Time day, computed from the orders, refunds and
//! ledger themselves: no counter row that every payment must lock, and nothing that can
//! drift from the orders.

use chrono::NaiveDateTime;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text, Timestamp};
use diesel_async::RunQueryDsl;
use serde::Serialize;

use super::{Conn, Db, StorageError};

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DayStats {
    pub date: String,
    pub order_count: i64,
    pub amount_fen: i64,
    pub refund_fen: i64,
    pub points_awarded: i64,
}

#[derive(QueryableByName)]
struct PaidRow {
    #[diesel(sql_type = Text)]
    day: String,
    #[diesel(sql_type = BigInt)]
    order_count: i64,
    #[diesel(sql_type = BigInt)]
    amount_fen: i64,
    #[diesel(sql_type = BigInt)]
    points: i64,
}

#[derive(QueryableByName)]
struct RefundRow {
    #[diesel(sql_type = Text)]
    day: String,
    #[diesel(sql_type = BigInt)]
    refund_fen: i64,
}

/// Per CST day in `[from, to)` (UTC bounds of the CST days): paid orders, paid amount,
/// refunds that succeeded that day, and points awarded for the day's orders.
pub async fn merchant_days(
    db: &Db,
    merchant_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<DayStats>, StorageError> {
    // Orders are paid within their 15-minute life, so a created_at bound an hour wider lets
    // the (merchant_id, created_at) index do the work.
    let created_from = from - chrono::Duration::hours(1);
    let (paid_sql, refund_sql) = match db.kind() {
        crate::config::DatabaseKind::Mysql => (
            "SELECT DATE_FORMAT(DATE_ADD(po.paid_at, INTERVAL 8 HOUR), '%Y-%m-%d') AS day, \
             CAST(COUNT(*) AS SIGNED) AS order_count, CAST(SUM(po.amount_fen) AS SIGNED) AS amount_fen, \
             CAST(COALESCE(SUM(pr.points_change), 0) AS SIGNED) AS points \
             FROM payment_orders po LEFT JOIN points_records pr \
               ON pr.source_type = 'order' AND pr.source_id = po.order_no \
             WHERE po.merchant_id = ? AND po.created_at >= ? AND po.paid_at >= ? AND po.paid_at < ? \
             GROUP BY day",
            "SELECT DATE_FORMAT(DATE_ADD(success_at, INTERVAL 8 HOUR), '%Y-%m-%d') AS day, \
             CAST(SUM(amount_fen) AS SIGNED) AS refund_fen FROM refunds \
             WHERE merchant_id = ? AND status = 'success' AND success_at >= ? AND success_at < ? \
             GROUP BY day",
        ),
        crate::config::DatabaseKind::Sqlite => (
            "SELECT strftime('%Y-%m-%d', po.paid_at, '+8 hours') AS day, \
             COUNT(*) AS order_count, SUM(po.amount_fen) AS amount_fen, \
             COALESCE(SUM(pr.points_change), 0) AS points \
             FROM payment_orders po LEFT JOIN points_records pr \
               ON pr.source_type = 'order' AND pr.source_id = po.order_no \
             WHERE po.merchant_id = ? AND po.created_at >= ? AND po.paid_at >= ? AND po.paid_at < ? \
             GROUP BY day",
            "SELECT strftime('%Y-%m-%d', success_at, '+8 hours') AS day, \
             SUM(amount_fen) AS refund_fen FROM refunds \
             WHERE merchant_id = ? AND status = 'success' AND success_at >= ? AND success_at < ? \
             GROUP BY day",
        ),
    };
    let mut conn: Conn = db.conn().await?;
    let paid: Vec<PaidRow> = crate::with_conn!(&mut conn, |c| {
        diesel::sql_query(paid_sql)
            .bind::<Text, _>(merchant_id)
            .bind::<Timestamp, _>(created_from)
            .bind::<Timestamp, _>(from)
            .bind::<Timestamp, _>(to)
            .load(c)
            .await
    })?;
    let refunded: Vec<RefundRow> = crate::with_conn!(&mut conn, |c| {
        diesel::sql_query(refund_sql)
            .bind::<Text, _>(merchant_id)
            .bind::<Timestamp, _>(from)
            .bind::<Timestamp, _>(to)
            .load(c)
            .await
    })?;
    let mut days: std::collections::BTreeMap<String, DayStats> = Default::default();
    for p in paid {
        let d = days.entry(p.day.clone()).or_default();
        d.date = p.day;
        d.order_count = p.order_count;
        d.amount_fen = p.amount_fen;
        d.points_awarded = p.points;
    }
    for r in refunded {
        let d = days.entry(r.day.clone()).or_default();
        d.date = r.day;
        d.refund_fen = r.refund_fen;
    }
    Ok(days.into_values().collect())
}
