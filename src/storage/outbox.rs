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

/// The payload format written today. Rows without a version are version 1 (the same fields).
pub const PAYLOAD_VERSION: u32 = 1;

/// An effect the outbox guarantees. Every outbox row is built from one of these
/// ([`Effect::row`]) and read back into one ([`Effect::from_row`]): one format, one place.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Effect {
    /// Award a paid order's points (the ledger keys the award on the order).
    AwardPoints {
        user_id: String,
        order_no: String,
        amount_fen: i64,
        paid_at: chrono::DateTime<chrono::Utc>,
    },
    /// Claw back a successful refund's share of the points (keyed on the refund).
    ClawBackPoints { out_refund_no: String },
}

/// The stored payload: the effect's fields and the format's version.
#[derive(serde::Serialize, serde::Deserialize)]
struct Payload<T> {
    #[serde(default = "version_one")]
    v: u32,
    #[serde(flatten)]
    effect: T,
}

fn version_one() -> u32 {
    1
}

#[derive(Debug, thiserror::Error)]
pub enum EffectError {
    #[error("unknown outbox kind {0}")]
    UnknownKind(String),
    #[error("outbox payload version {0} is newer than this code")]
    Version(u32),
    #[error("bad outbox payload: {0}")]
    Payload(#[from] serde_json::Error),
}

impl Effect {
    /// The `kind` column (recovery and the award-pending check select on it).
    pub fn kind(&self) -> &'static str {
        match self {
            Effect::AwardPoints { .. } => AWARD_POINTS,
            Effect::ClawBackPoints { .. } => CLAWBACK_POINTS,
        }
    }

    /// What the effect is about: the order or the refund.
    pub fn aggregate_id(&self) -> &str {
        match self {
            Effect::AwardPoints { order_no, .. } => order_no,
            Effect::ClawBackPoints { out_refund_no } => out_refund_no,
        }
    }

    /// The row to insert with the state change, first due at `due`.
    pub fn row(&self, now: NaiveDateTime, due: NaiveDateTime) -> super::orders::OutboxRow {
        // Plain strings, numbers and a timestamp: serialising cannot fail.
        let payload = serde_json::to_string(&Payload {
            v: PAYLOAD_VERSION,
            effect: self,
        })
        .unwrap_or_default();
        super::orders::OutboxRow {
            id: uuid::Uuid::now_v7().to_string(),
            kind: self.kind().into(),
            aggregate_id: self.aggregate_id().to_string(),
            payload,
            attempts: 0,
            next_attempt_at: due,
            last_error: None,
            created_at: now,
        }
    }

    /// Reads a stored row back. The kind decides the shape, so one payload can never be
    /// mistaken for another effect.
    pub fn from_row(kind: &str, payload: &str) -> Result<Effect, EffectError> {
        #[derive(serde::Deserialize)]
        struct Award {
            user_id: String,
            order_no: String,
            amount_fen: i64,
            paid_at: chrono::DateTime<chrono::Utc>,
        }
        #[derive(serde::Deserialize)]
        struct Clawback {
            out_refund_no: String,
        }
        fn read<T: serde::de::DeserializeOwned>(payload: &str) -> Result<T, EffectError> {
            let p: Payload<T> = serde_json::from_str(payload)?;
            if p.v > PAYLOAD_VERSION {
                return Err(EffectError::Version(p.v));
            }
            Ok(p.effect)
        }
        match kind {
            AWARD_POINTS => {
                let a: Award = read(payload)?;
                Ok(Effect::AwardPoints {
                    user_id: a.user_id,
                    order_no: a.order_no,
                    amount_fen: a.amount_fen,
                    paid_at: a.paid_at,
                })
            }
            CLAWBACK_POINTS => {
                let c: Clawback = read(payload)?;
                Ok(Effect::ClawBackPoints {
                    out_refund_no: c.out_refund_no,
                })
            }
            other => Err(EffectError::UnknownKind(other.to_string())),
        }
    }
}

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

#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
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
    /// The route it came in on: `pay` or `refund`.
    pub kind: String,
    /// WeChat's `Wechatpay-*` headers as received (a JSON object), for a replay.
    pub headers: Option<String>,
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

/// True while a paid order's points award is still to be done (its outbox row is there:
/// the award deletes it in the same commit as the ledger row).
pub async fn award_pending(db: &Db, order_no: &str) -> Result<bool, StorageError> {
    let mut conn = db.conn().await?;
    let n: i64 = with_conn!(&mut conn, |c| {
        outbox::table
            .filter(outbox::kind.eq(AWARD_POINTS))
            .filter(outbox::aggregate_id.eq(order_no))
            .count()
            .get_result(c)
            .await
    })?;
    Ok(n > 0)
}

/// The newest `limit` logged notifications, newest first.
pub async fn recent_notifications(
    db: &Db,
    limit: i64,
) -> Result<Vec<NotificationLogRow>, StorageError> {
    let mut conn = db.conn().await?;
    let rows = with_conn!(&mut conn, |c| {
        notification_log::table
            .order((
                notification_log::received_at.desc(),
                notification_log::id.desc(),
            ))
            .limit(limit)
            .select(NotificationLogRow::as_select())
            .load(c)
            .await
    })?;
    Ok(rows)
}

/// Which logged notifications a listing shows.
#[derive(Debug, Default)]
pub struct NotificationFilter<'a> {
    pub result: Option<&'a str>,
    pub order_no: Option<&'a str>,
}

/// Logged notifications, newest first (ids are time-ordered), before the cursor `before_id`.
pub async fn list_notifications(
    db: &Db,
    filter: &NotificationFilter<'_>,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<NotificationLogRow>, StorageError> {
    let mut conn = db.conn().await?;
    let rows = with_conn!(&mut conn, |c| {
        let mut q = notification_log::table
            .select(NotificationLogRow::as_select())
            .into_boxed();
        if let Some(r) = filter.result {
            q = q.filter(notification_log::result.eq(r.to_string()));
        }
        if let Some(o) = filter.order_no {
            q = q.filter(notification_log::out_trade_no.eq(o.to_string()));
        }
        if let Some(cur) = before_id {
            q = q.filter(notification_log::id.lt(cur.to_string()));
        }
        q.order(notification_log::id.desc())
            .limit(limit)
            .load(c)
            .await
    })?;
    Ok(rows)
}

pub async fn find_notification(
    db: &Db,
    id: &str,
) -> Result<Option<NotificationLogRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        notification_log::table
            .find(id.to_string())
            .select(NotificationLogRow::as_select())
            .first(c)
            .await
            .optional()
    })?)
}

/// Deletes refused notifications received before `before`; returns how many went.
pub async fn prune_refused_notifications(
    db: &Db,
    before: NaiveDateTime,
) -> Result<usize, StorageError> {
    let mut conn = db.write_conn().await?;
    let deleted = with_conn!(&mut conn, |c| {
        diesel::delete(
            notification_log::table
                .filter(notification_log::result.eq("rejected"))
                .filter(notification_log::received_at.lt(before)),
        )
        .execute(c)
        .await
    })?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_700_000_000, 0)
            .unwrap()
            .naive_utc()
    }

    #[test]
    fn effects_round_trip_through_their_rows() {
        let award = Effect::AwardPoints {
            user_id: "u1".into(),
            order_no: "o1".into(),
            amount_fen: 1234,
            paid_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        };
        let claw = Effect::ClawBackPoints {
            out_refund_no: "R1".into(),
        };
        for e in [award, claw] {
            let row = e.row(at(), at());
            assert_eq!(row.kind, e.kind());
            assert_eq!(row.aggregate_id, e.aggregate_id());
            assert!(row.payload.contains("\"v\":1"), "{}", row.payload);
            assert_eq!(Effect::from_row(&row.kind, &row.payload).unwrap(), e);
        }
    }

    #[test]
    fn rows_written_before_the_version_field_still_read() {
        let legacy = r#"{"user_id":"u1","order_no":"o1","amount_fen":5,"paid_at":"2026-01-01T00:00:00+00:00"}"#;
        assert!(matches!(
            Effect::from_row(AWARD_POINTS, legacy),
            Ok(Effect::AwardPoints { amount_fen: 5, .. })
        ));
        assert!(matches!(
            Effect::from_row(CLAWBACK_POINTS, r#"{"out_refund_no":"R9"}"#),
            Ok(Effect::ClawBackPoints { .. })
        ));
    }

    #[test]
    fn unknown_kinds_newer_versions_and_wrong_shapes_are_refused() {
        assert!(matches!(
            Effect::from_row("teleport", "{}"),
            Err(EffectError::UnknownKind(_))
        ));
        assert!(matches!(
            Effect::from_row(CLAWBACK_POINTS, r#"{"v":2,"out_refund_no":"R9"}"#),
            Err(EffectError::Version(2))
        ));
        assert!(matches!(
            Effect::from_row(AWARD_POINTS, r#"{"out_refund_no":"R9"}"#),
            Err(EffectError::Payload(_))
        ));
    }
}
