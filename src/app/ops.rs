//! What operations endpoints read: database reachability, pool usage, the outbox backlog,
//! and the log of WeChat's notifications.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::AppError;
use super::page::{PageRequest, Paged};
use crate::storage::Db;
use crate::storage::outbox::{self, NotificationFilter, NotificationLogRow};

/// One received notification as the admin sees it in a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotificationEntry {
    pub id: String,
    /// `pay` or `refund` (the route); empty for rows older than the column.
    pub kind: String,
    /// WeChat's notification id (empty when it could not be read).
    pub notification_id: String,
    pub event_type: String,
    pub out_trade_no: Option<String>,
    pub out_refund_no: Option<String>,
    pub serial: String,
    /// `ok`, `duplicate`, `ignored`, `rejected` or `error`.
    pub result: String,
    pub error: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// One notification with what arrived: the raw body and WeChat's signature headers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotificationDetail {
    #[serde(flatten)]
    pub entry: NotificationEntry,
    pub raw_body: String,
    #[schema(value_type = Object)]
    pub headers: serde_json::Value,
}

fn entry(r: &NotificationLogRow) -> NotificationEntry {
    NotificationEntry {
        id: r.id.clone(),
        kind: r.kind.clone(),
        notification_id: r.notification_id.clone(),
        event_type: r.event_type.clone(),
        out_trade_no: r.out_trade_no.clone(),
        out_refund_no: r.out_refund_no.clone(),
        serial: r.serial.clone(),
        result: r.result.clone(),
        error: r.error.clone(),
        received_at: r.received_at.and_utc(),
    }
}

/// The results a notification can have, for filtering.
pub const NOTIFICATION_RESULTS: [&str; 5] = ["ok", "duplicate", "ignored", "rejected", "error"];

#[derive(Clone)]
pub struct Ops {
    db: Db,
}

impl Ops {
    pub fn new(db: Db) -> Ops {
        Ops { db }
    }

    /// Readiness: a round trip to the database.
    pub async fn ping(&self) -> Result<(), AppError> {
        Ok(self.db.ping().await?)
    }

    /// Pool usage: (connections, idle connections).
    pub fn pool_state(&self) -> (u32, u32) {
        self.db.pool_state()
    }

    /// Received notifications, newest first.
    pub async fn notifications(
        &self,
        result: Option<&str>,
        order_no: Option<&str>,
        page: &PageRequest,
    ) -> Result<Paged<NotificationEntry>, AppError> {
        if let Some(r) = result
            && !NOTIFICATION_RESULTS.contains(&r)
        {
            return Err(AppError::new(
                super::error::ErrorCode::InvalidQuery,
                format!("result is one of {}", NOTIFICATION_RESULTS.join(", ")),
            ));
        }
        let filter = NotificationFilter { result, order_no };
        let rows =
            outbox::list_notifications(&self.db, &filter, page.cursor(), page.fetch()).await?;
        Ok(Paged::from_rows(rows, page, |r| r.id.clone()).map(|r| entry(&r)))
    }

    /// One notification as stored (the raw row, for a replay), if there is one.
    pub async fn notification_row(&self, id: &str) -> Result<Option<NotificationLogRow>, AppError> {
        Ok(outbox::find_notification(&self.db, id).await?)
    }

    /// One notification with its body and headers.
    pub fn notification_detail(row: &NotificationLogRow) -> NotificationDetail {
        NotificationDetail {
            entry: entry(row),
            raw_body: row.raw_body.clone(),
            headers: row
                .headers
                .as_deref()
                .and_then(|h| serde_json::from_str(h).ok())
                .unwrap_or(serde_json::Value::Null),
        }
    }

    /// Outbox rows not yet applied, and when the oldest was due.
    /// Active shoppers and the 7-day retention cohort, database-wide.
    pub async fn activity(&self) -> Result<crate::storage::stats::Activity, AppError> {
        Ok(crate::storage::stats::activity(&self.db, chrono::Utc::now().naive_utc()).await?)
    }

    pub async fn outbox_backlog(&self) -> Result<(i64, Option<chrono::NaiveDateTime>), AppError> {
        Ok(crate::storage::outbox::backlog(&self.db).await?)
    }
}
