//! What operations endpoints read: database reachability, pool usage, the outbox backlog.

use super::error::AppError;
use crate::storage::Db;

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

    /// Outbox rows not yet applied, and when the oldest was due.
    pub async fn outbox_backlog(&self) -> Result<(i64, Option<chrono::NaiveDateTime>), AppError> {
        Ok(crate::storage::outbox::backlog(&self.db).await?)
    }
}
