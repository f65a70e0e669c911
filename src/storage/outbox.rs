//! The outbox: facts committed with a state change that still have an effect to perform
//! (award points for a paid order, claw back for a refund). A recovery loop re-drives rows
//! whose effect did not finish; the effect deletes its row in its own transaction.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::{notification_log, outbox};
use super::{Db, StorageError};
use crate::with_conn;

pub const AWARD_POINTS: &str = "award_points";
pub const CLAWBACK_POINTS: &str = "clawback_points";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct PendingEffect {
    pub id: String,
    pub kind: String,
    pub aggregate_id: String,
    pub payload: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

/// Rows due for (re)driving, oldest first.
pub async fn due(
    db: &Db,
    now: NaiveDateTime,
    limit: i64,
) -> Result<Vec<PendingEffect>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        outbox::table
            .filter(outbox::next_attempt_at.le(now))
            .order(outbox::next_attempt_at.asc())
            .limit(limit)
            .select(PendingEffect::as_select())
            .load(c)
            .await
    })?)
}

/// Pushes a row's next attempt out (exponential backoff, capped) and records why it failed.
pub async fn reschedule(
    db: &Db,
    id: &str,
    attempts: i32,
    next_attempt_at: NaiveDateTime,
    error: &str,
) -> Result<(), StorageError> {
    let error: String = error.chars().take(500).collect();
    let mut conn = db.write_conn().await?;
    with_conn!(&mut conn, |c| {
        diesel::update(outbox::table.filter(outbox::id.eq(id)))
            .set((
                outbox::attempts.eq(attempts),
                outbox::next_attempt_at.eq(next_attempt_at),
                outbox::last_error.eq(Some(&error)),
            ))
            .execute(c)
            .await
    })?;
    Ok(())
}

/// How many rows wait, and the age of the oldest (for metrics and alerts).
pub async fn backlog(db: &Db) -> Result<(i64, Option<NaiveDateTime>), StorageError> {
    let mut conn = db.conn().await?;
    let (count, oldest) = with_conn!(&mut conn, |c| {
        outbox::table
            .select((
                diesel::dsl::count_star(),
                diesel::dsl::min(outbox::created_at),
            ))
            .first::<(i64, Option<NaiveDateTime>)>(c)
            .await
    })?;
    Ok((count, oldest))
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = notification_log)]
pub struct NotificationLogRow {
    pub id: String,
    pub notification_id: String,
    pub event_type: String,
    pub out_trade_no: Option<String>,
    pub out_refund_no: Option<String>,
    pub serial: String,
    pub raw_body: String,
    pub result: String,
    pub error: Option<String>,
    pub received_at: NaiveDateTime,
}

/// Every notification received, verified or not, with what became of it.
pub async fn log_notification(db: &Db, row: &NotificationLogRow) -> Result<(), StorageError> {
    let mut conn = db.write_conn().await?;
    with_conn!(&mut conn, |c| {
        diesel::insert_into(notification_log::table)
            .values(row)
            .execute(c)
            .await
    })?;
    Ok(())
}
