//! Merchant takings per China Standard Time day, computed from the orders, refunds and
//! ledger themselves: no counter row that every payment must lock, and nothing that can
//! drift from the orders.

use chrono::NaiveDateTime;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text, Timestamp};
use diesel_async::RunQueryDsl;
use serde::Serialize;

use super::{Conn, Db, StorageError};

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
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

/// One figure per CST day.
#[derive(QueryableByName)]
struct DayValue {
    #[diesel(sql_type = Text)]
    day: String,
    #[diesel(sql_type = BigInt)]
    v: i64,
}

/// The business per CST day for the admin dashboard.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct OverviewDay {
    pub date: String,
    pub order_count: i64,
    pub amount_fen: i64,
    pub refund_fen: i64,
    pub new_users: i64,
    pub points_awarded: i64,
    pub points_spent: i64,
    pub points_expired: i64,
    /// Orders created that day that were paid, over orders created that day (0..1).
    pub payment_success_rate: f64,
    #[serde(skip)]
    created: i64,
    #[serde(skip)]
    created_paid: i64,
}

/// The SQL expression of the CST (UTC+8) day, `YYYY-MM-DD`, of the UTC timestamp column
/// `time_col`, in the dialect of `kind`.
pub(crate) fn cst_day_sql(kind: crate::config::DatabaseKind, time_col: &str) -> String {
    match kind {
        crate::config::DatabaseKind::Mysql => {
            format!("DATE_FORMAT(DATE_ADD({time_col}, INTERVAL 8 HOUR), '%Y-%m-%d')")
        }
        crate::config::DatabaseKind::Sqlite => {
            format!("strftime('%Y-%m-%d', {time_col}, '+8 hours')")
        }
    }
}

/// `(table/column expression, filter)` -> per-day sums, written once per dialect.
async fn per_day(
    conn: &mut Conn,
    kind: crate::config::DatabaseKind,
    (value, table, time_col, filter): (&str, &str, &str, &str),
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<DayValue>, StorageError> {
    let day = cst_day_sql(kind, time_col);
    let value = match kind {
        crate::config::DatabaseKind::Mysql => format!("CAST({value} AS SIGNED)"),
        crate::config::DatabaseKind::Sqlite => value.to_string(),
    };
    let sql = format!(
        "SELECT {day} AS day, {value} AS v FROM {table} \
         WHERE {time_col} >= ? AND {time_col} < ? {filter} GROUP BY day"
    );
    Ok(crate::with_conn!(conn, |c| {
        diesel::sql_query(&sql)
            .bind::<Timestamp, _>(from)
            .bind::<Timestamp, _>(to)
            .load(c)
            .await
    })?)
}

/// Per CST day in `[from, to)`: paid orders and amount, refunds, new users, points by kind,
/// and the payment success rate. Computed from the rows themselves.
pub async fn overview(
    db: &Db,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<OverviewDay>, StorageError> {
    let kind = db.kind();
    let mut conn: Conn = db.conn().await?;
    let paid = "AND status IN ('paid','refunding','partially_refunded','refunded')";
    let queries: [(&str, &str, &str, &str); 9] = [
        ("COUNT(*)", "payment_orders", "paid_at", ""),
        (
            "COALESCE(SUM(amount_fen), 0)",
            "payment_orders",
            "paid_at",
            "",
        ),
        (
            "COALESCE(SUM(amount_fen), 0)",
            "refunds",
            "success_at",
            "AND status = 'success'",
        ),
        ("COUNT(*)", "users", "created_at", ""),
        (
            "COALESCE(SUM(points_change), 0)",
            "points_records",
            "created_at",
            "AND kind = 'award'",
        ),
        (
            "COALESCE(SUM(-points_change), 0)",
            "points_records",
            "created_at",
            "AND kind = 'deduct'",
        ),
        (
            "COALESCE(SUM(-points_change), 0)",
            "points_records",
            "created_at",
            "AND kind = 'expire'",
        ),
        ("COUNT(*)", "payment_orders", "created_at", ""),
        ("COUNT(*)", "payment_orders", "created_at", paid),
    ];
    let mut days: std::collections::BTreeMap<String, OverviewDay> = Default::default();
    for (i, q) in queries.iter().enumerate() {
        for row in per_day(&mut conn, kind, *q, from, to).await? {
            let d = days.entry(row.day.clone()).or_default();
            d.date = row.day;
            match i {
                0 => d.order_count = row.v,
                1 => d.amount_fen = row.v,
                2 => d.refund_fen = row.v,
                3 => d.new_users = row.v,
                4 => d.points_awarded = row.v,
                5 => d.points_spent = row.v,
                6 => d.points_expired = row.v,
                7 => d.created = row.v,
                _ => d.created_paid = row.v,
            }
        }
    }
    Ok(days
        .into_values()
        .map(|mut d| {
            d.payment_success_rate = if d.created > 0 {
                d.created_paid as f64 / d.created as f64
            } else {
                0.0
            };
            d
        })
        .collect())
}

/// One line of the orders report.
#[derive(QueryableByName, Debug)]
pub struct ReportRow {
    #[diesel(sql_type = Text)]
    pub order_no: String,
    #[diesel(sql_type = Timestamp)]
    pub created_at: NaiveDateTime,
    #[diesel(sql_type = diesel::sql_types::Nullable<Timestamp>)]
    pub paid_at: Option<NaiveDateTime>,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Text)]
    pub merchant_id: String,
    #[diesel(sql_type = Text)]
    pub merchant_name: String,
    #[diesel(sql_type = Text)]
    pub user_id: String,
    #[diesel(sql_type = BigInt)]
    pub amount_fen: i64,
    #[diesel(sql_type = BigInt)]
    pub refunded_fen: i64,
}

/// One page of the orders created in `[from, to)`, in (created_at, order_no) order, after
/// the row `after` (keyset paging: each page is one indexed range read, however deep).
pub async fn orders_report_page(
    db: &Db,
    from: NaiveDateTime,
    to: NaiveDateTime,
    after: Option<&(NaiveDateTime, String)>,
    limit: i64,
) -> Result<Vec<ReportRow>, StorageError> {
    const SELECT: &str = "SELECT po.order_no, po.created_at, po.paid_at, po.status, po.merchant_id, \
               COALESCE(m.merchant_name, '') AS merchant_name, po.user_id, po.amount_fen, po.refunded_fen \
               FROM payment_orders po LEFT JOIN merchants m ON m.id = po.merchant_id \
               WHERE po.created_at >= ? AND po.created_at < ?";
    const ORDER: &str = " ORDER BY po.created_at, po.order_no LIMIT ?";
    let mut conn: Conn = db.conn().await?;
    Ok(match after {
        None => {
            let sql = format!("{SELECT}{ORDER}");
            crate::with_conn!(&mut conn, |c| {
                diesel::sql_query(&sql)
                    .bind::<Timestamp, _>(from)
                    .bind::<Timestamp, _>(to)
                    .bind::<BigInt, _>(limit)
                    .load(c)
                    .await
            })?
        }
        Some((at, order_no)) => {
            let sql = format!(
                "{SELECT} AND (po.created_at > ? OR (po.created_at = ? AND po.order_no > ?)){ORDER}"
            );
            crate::with_conn!(&mut conn, |c| {
                diesel::sql_query(&sql)
                    .bind::<Timestamp, _>(from)
                    .bind::<Timestamp, _>(to)
                    .bind::<Timestamp, _>(*at)
                    .bind::<Timestamp, _>(*at)
                    .bind::<diesel::sql_types::Text, _>(order_no)
                    .bind::<BigInt, _>(limit)
                    .load(c)
                    .await
            })?
        }
    })
}

/// Who uses the product, database-wide: shoppers with an order in the last 5 minutes and
/// 24 hours, and the 7-day retention cohort (users who signed up 14 to 7 days ago) with how
/// many of them ordered again in the last 7 days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    pub active_5m: i64,
    pub active_24h: i64,
    pub cohort_7d: i64,
    pub retained_7d: i64,
}

pub async fn activity(db: &Db, now: NaiveDateTime) -> Result<Activity, StorageError> {
    let day = chrono::Duration::days(1);
    let (from, to) = (now - day * 14, now - day * 7);
    let mut conn: Conn = db.conn().await?;
    let active = "SELECT COUNT(DISTINCT user_id) AS v FROM payment_orders WHERE created_at >= ?";
    let active_5m = count(&mut conn, active, &[now - chrono::Duration::minutes(5)]).await?;
    let active_24h = count(&mut conn, active, &[now - day]).await?;
    let cohort = "SELECT COUNT(*) AS v FROM users u WHERE u.created_at >= ? AND u.created_at < ?";
    let cohort_7d = count(&mut conn, cohort, &[from, to]).await?;
    let retained = format!(
        "{cohort} AND EXISTS (SELECT 1 FROM payment_orders o \
         WHERE o.user_id = u.id AND o.created_at >= ?)"
    );
    let retained_7d = count(&mut conn, &retained, &[from, to, to]).await?;
    Ok(Activity {
        active_5m,
        active_24h,
        cohort_7d,
        retained_7d,
    })
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    v: i64,
}

/// One `... AS v` count, with its timestamps bound in order.
async fn count(conn: &mut Conn, sql: &str, times: &[NaiveDateTime]) -> Result<i64, StorageError> {
    let rows: Vec<Count> = crate::with_conn!(conn, |c| {
        let mut q = diesel::sql_query(sql).into_boxed();
        for t in times {
            q = q.bind::<Timestamp, _>(*t);
        }
        q.load(c).await
    })?;
    Ok(rows.into_iter().next().map_or(0, |r| r.v))
}
