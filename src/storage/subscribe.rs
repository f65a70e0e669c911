//! Subscribe messages to shoppers (WeChat's one-off notifications). Every message is a row,
//! unique per (kind, reference): a payment's message is queued once however often its award
//! is re-driven. A failed send waits in `pending` for its retry; one that cannot succeed ends
//! in `refused` (the shopper did not accept the template) or `dead` (the dead letters).

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl};

use super::schema::{subscribe_messages, users};
use super::{Conn, Db, SqliteConn, StorageError};
use crate::with_conn;

pub const PENDING: &str = "pending";
pub const SENT: &str = "sent";
pub const REFUSED: &str = "refused";
pub const DEAD: &str = "dead";

#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
#[diesel(table_name = subscribe_messages)]
pub struct MessageRow {
    pub id: String,
    pub user_id: String,
    pub openid: String,
    pub template_id: String,
    pub kind: String,
    pub reference: String,
    /// The whole `subscribe/send` body, as JSON.
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Queues messages; a (kind, reference) already queued keeps its first row. Returns the ids
/// of the rows this call inserted: only those are this caller's to send.
pub async fn enqueue(db: &Db, rows: &[MessageRow]) -> Result<Vec<String>, StorageError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let rows = rows.to_vec();
    let mut conn = db.write_conn().await?;
    let inserted = match &mut conn {
        Conn::Mysql(pooled) => {
            let c: &mut AsyncMysqlConnection = &mut *pooled;
            c.transaction::<_, diesel::result::Error, _>(async |c| {
                diesel::insert_or_ignore_into(subscribe_messages::table)
                    .values(&rows)
                    .execute(c)
                    .await?;
                subscribe_messages::table
                    .filter(subscribe_messages::id.eq_any(&ids))
                    .select(subscribe_messages::id)
                    .load(c)
                    .await
            })
            .await
        }
        // diesel-async has no batch insert for SQLite: diesel's own, on the wrapped
        // connection, in one transaction.
        Conn::Sqlite(pooled) => {
            let c: &mut SqliteConn = &mut *pooled;
            c.spawn_blocking(move |c| {
                use diesel::Connection;
                c.transaction(|c| {
                    diesel::RunQueryDsl::execute(
                        diesel::insert_or_ignore_into(subscribe_messages::table).values(&rows),
                        c,
                    )?;
                    diesel::RunQueryDsl::load(
                        subscribe_messages::table
                            .filter(subscribe_messages::id.eq_any(&ids))
                            .select(subscribe_messages::id),
                        c,
                    )
                })
            })
            .await
        }
    }?;
    Ok(inserted)
}

/// Rows whose retry is due, oldest first.
pub async fn due(db: &Db, now: NaiveDateTime, limit: i64) -> Result<Vec<MessageRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        subscribe_messages::table
            .filter(subscribe_messages::status.eq(PENDING))
            .filter(subscribe_messages::next_attempt_at.le(now))
            .order(subscribe_messages::next_attempt_at.asc())
            .limit(limit)
            .select(MessageRow::as_select())
            .load(c)
            .await
    })?)
}

/// Takes a due row for one more attempt, leasing it until `lease_until` so no other pass or
/// instance sends it meanwhile. False when someone else took it first.
pub async fn claim(
    db: &Db,
    row: &MessageRow,
    lease_until: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<bool, StorageError> {
    let mut conn = db.write_conn().await?;
    let n = with_conn!(&mut conn, |c| {
        diesel::update(
            subscribe_messages::table
                .filter(subscribe_messages::id.eq(&row.id))
                .filter(subscribe_messages::status.eq(PENDING))
                .filter(subscribe_messages::next_attempt_at.eq(row.next_attempt_at)),
        )
        .set((
            subscribe_messages::next_attempt_at.eq(lease_until),
            subscribe_messages::attempts.eq(subscribe_messages::attempts + 1),
            subscribe_messages::updated_at.eq(now),
        ))
        .execute(c)
        .await
    })?;
    Ok(n == 1)
}

/// Marks sent messages, in one statement.
pub async fn mark_sent(db: &Db, ids: &[String], now: NaiveDateTime) -> Result<(), StorageError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut conn = db.write_conn().await?;
    with_conn!(&mut conn, |c| {
        diesel::update(subscribe_messages::table.filter(subscribe_messages::id.eq_any(ids)))
            .set((
                subscribe_messages::status.eq(SENT),
                subscribe_messages::last_error.eq(None::<String>),
                subscribe_messages::updated_at.eq(now),
            ))
            .execute(c)
            .await
    })?;
    Ok(())
}

/// Records a failed attempt: `pending` again (retry at `next_attempt_at`), `refused` or `dead`.
pub async fn mark_failed(
    db: &Db,
    id: &str,
    status: &str,
    next_attempt_at: NaiveDateTime,
    error: &str,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    let error: String = error.chars().take(500).collect();
    let mut conn = db.write_conn().await?;
    with_conn!(&mut conn, |c| {
        diesel::update(subscribe_messages::table.filter(subscribe_messages::id.eq(id)))
            .set((
                subscribe_messages::status.eq(status),
                subscribe_messages::next_attempt_at.eq(next_attempt_at),
                subscribe_messages::last_error.eq(Some(error)),
                subscribe_messages::updated_at.eq(now),
            ))
            .execute(c)
            .await
    })?;
    Ok(())
}

/// The message queued for (kind, reference), if any.
pub async fn find(
    db: &Db,
    kind: &str,
    reference: &str,
) -> Result<Option<MessageRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        subscribe_messages::table
            .filter(subscribe_messages::kind.eq(kind))
            .filter(subscribe_messages::reference.eq(reference))
            .select(MessageRow::as_select())
            .first(c)
            .await
            .optional()
    })?)
}

/// The openids of active users, for addressing messages.
pub async fn openids(db: &Db, user_ids: &[&str]) -> Result<HashMap<String, String>, StorageError> {
    let mut conn = db.conn().await?;
    let rows: Vec<(String, String)> = with_conn!(&mut conn, |c| {
        users::table
            .filter(users::id.eq_any(user_ids))
            .filter(users::status.eq("active"))
            .select((users::id, users::openid))
            .load(c)
            .await
    })?;
    Ok(rows.into_iter().collect())
}
