//! WeChat's own fee for each order and refund a trade bill lists, as reconciliation matched
//! them: `bill_order_fees` by order number (the fee charged) and `bill_refund_fees` by refund
//! number (the fee returned, as a positive amount). Written only by a reconciliation run, as
//! upserts, so running a day again leaves the rows as they were; settlement reads them
//! (`storage::settlement`) and estimates the fee of everything else.

use chrono::NaiveDateTime;
use diesel::sql_types::{BigInt, Text, Timestamp};
use diesel_async::{AsyncConnection as _, RunQueryDsl};

use super::{Db, StorageError};
use crate::config::DatabaseKind;
use crate::with_conn;

/// Rows per upsert statement (4 or 5 binds each).
const CHUNK: usize = 200;

/// The fee WeChat charged on one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFee {
    pub order_no: String,
    pub fee_fen: i64,
}

/// The fee WeChat returned with one refund (positive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundFee {
    pub out_refund_no: String,
    pub order_no: String,
    pub fee_returned_fen: i64,
}

/// `INSERT … VALUES (…), (…) <upsert>`: an existing row takes the bill's values (the same
/// ones, on a second run of a day) and keeps the time it was first recorded.
fn upsert_sql(
    kind: DatabaseKind,
    table: &str,
    key: &str,
    columns: &[&str],
    value: &str,
    rows: usize,
) -> String {
    let values = vec![format!("({})", vec!["?"; columns.len()].join(", ")); rows].join(", ");
    let head = format!(
        "INSERT INTO {table} ({}) VALUES {values}",
        columns.join(", ")
    );
    match kind {
        DatabaseKind::Mysql => format!(
            "{head} ON DUPLICATE KEY UPDATE {value} = VALUES({value}), bill_date = VALUES(bill_date)"
        ),
        DatabaseKind::Sqlite => format!(
            "{head} ON CONFLICT ({key}) DO UPDATE SET {value} = excluded.{value}, \
             bill_date = excluded.bill_date \
             WHERE {table}.{value} <> excluded.{value} OR {table}.bill_date <> excluded.bill_date"
        ),
    }
}

/// Records the fees of a day's bill (`bill_date` `YYYY-MM-DD`) in one transaction.
pub async fn record(
    db: &Db,
    bill_date: &str,
    orders: &[OrderFee],
    refunds: &[RefundFee],
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    if orders.is_empty() && refunds.is_empty() {
        return Ok(());
    }
    let kind = db.kind();
    let mut conn = db.write_conn().await?;
    // A macro, not a closure: the boxed query's backend differs per connection.
    macro_rules! upsert_all {
        ($c:expr) => {{
            for chunk in orders.chunks(CHUNK) {
                let sql = upsert_sql(
                    kind,
                    "bill_order_fees",
                    "order_no",
                    &["order_no", "bill_date", "fee_fen", "recorded_at"],
                    "fee_fen",
                    chunk.len(),
                );
                let mut q = diesel::sql_query(sql).into_boxed();
                for f in chunk {
                    q = q
                        .bind::<Text, _>(f.order_no.as_str())
                        .bind::<Text, _>(bill_date)
                        .bind::<BigInt, _>(f.fee_fen)
                        .bind::<Timestamp, _>(now);
                }
                q.execute($c).await?;
            }
            for chunk in refunds.chunks(CHUNK) {
                let sql = upsert_sql(
                    kind,
                    "bill_refund_fees",
                    "out_refund_no",
                    &[
                        "out_refund_no",
                        "order_no",
                        "bill_date",
                        "fee_returned_fen",
                        "recorded_at",
                    ],
                    "fee_returned_fen",
                    chunk.len(),
                );
                let mut q = diesel::sql_query(sql).into_boxed();
                for f in chunk {
                    q = q
                        .bind::<Text, _>(f.out_refund_no.as_str())
                        .bind::<Text, _>(f.order_no.as_str())
                        .bind::<Text, _>(bill_date)
                        .bind::<BigInt, _>(f.fee_returned_fen)
                        .bind::<Timestamp, _>(now);
                }
                q.execute($c).await?;
            }
            Ok::<(), diesel::result::Error>(())
        }};
    }
    with_conn!(&mut conn, |c| {
        c.transaction::<_, diesel::result::Error, _>(async |c| upsert_all!(c))
            .await
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upsert_names_every_row_and_keeps_the_first_record_time() {
        let lite = upsert_sql(
            DatabaseKind::Sqlite,
            "bill_order_fees",
            "order_no",
            &["order_no", "bill_date", "fee_fen", "recorded_at"],
            "fee_fen",
            2,
        );
        assert!(lite.contains("VALUES (?, ?, ?, ?), (?, ?, ?, ?) ON CONFLICT (order_no)"));
        assert!(!lite.contains("recorded_at = "));
        let my = upsert_sql(
            DatabaseKind::Mysql,
            "bill_order_fees",
            "order_no",
            &["order_no", "bill_date", "fee_fen", "recorded_at"],
            "fee_fen",
            1,
        );
        assert!(my.ends_with(
            "ON DUPLICATE KEY UPDATE fee_fen = VALUES(fee_fen), bill_date = VALUES(bill_date)"
        ));
    }
}
