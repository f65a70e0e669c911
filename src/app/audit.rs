//! The audit log: who changed what, before and after. Every admin change writes one row, and
//! so does every change to a merchant's staff (invites, joining, role changes, removals),
//! made by a user.

use serde::Serialize;
use utoipa::ToSchema;

use super::error::AppError;
use super::page::{PageRequest, Paged};
use crate::storage::Db;
use crate::storage::admins::{self, AuditRow};
use crate::storage::users::now;
use crate::telemetry::current_trace_id;

/// Who makes a change (an admin, or a user acting on a merchant), as the audit log records
/// them.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `admin` or `user`: the audit row's `actor_type`.
    pub kind: &'static str,
    pub id: String,
    pub ip: String,
}

impl Actor {
    pub fn admin(id: &str, ip: String) -> Actor {
        Actor {
            kind: "admin",
            id: id.to_string(),
            ip,
        }
    }

    pub fn user(id: &str, ip: String) -> Actor {
        Actor {
            kind: "user",
            id: id.to_string(),
            ip,
        }
    }
}

/// One audit record as admins read it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub actor_type: String,
    pub actor_id: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub trace_id: String,
    pub ip: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Clone)]
pub struct Audit {
    db: Db,
}

impl Audit {
    pub fn new(db: Db) -> Audit {
        Audit { db }
    }

    /// The row for `action` on `target` by `actor`; before/after are filled by the caller.
    /// Changes that must commit with their record write this row in their own transaction.
    pub(crate) fn row(actor: &Actor, action: &str, target: (&str, &str)) -> AuditRow {
        AuditRow {
            id: uuid::Uuid::now_v7().to_string(),
            actor_type: actor.kind.into(),
            actor_id: actor.id.clone(),
            action: action.into(),
            target_type: target.0.into(),
            target_id: target.1.into(),
            before_json: None,
            after_json: None,
            trace_id: current_trace_id(),
            ip: Some(actor.ip.clone()),
            created_at: now(),
        }
    }

    /// Records one admin action on its own (points rules, refunds and adjustments, whose
    /// change is made by an actor, not in a transaction of ours).
    pub async fn record(
        &self,
        actor: &Actor,
        action: &str,
        target: (&str, &str),
        before: serde_json::Value,
        after: serde_json::Value,
    ) -> Result<(), AppError> {
        let mut row = Self::row(actor, action, target);
        row.before_json = Some(before.to_string());
        row.after_json = Some(after.to_string());
        admins::insert_audit(&self.db, &row).await?;
        logged(actor, action, target);
        Ok(())
    }

    /// The log, newest first.
    pub async fn list(&self, page: &PageRequest) -> Result<Paged<AuditEntry>, AppError> {
        let rows = admins::list_audit(&self.db, page.cursor(), page.fetch()).await?;
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        Ok(
            Paged::from_rows(rows, page, |a| a.id.clone()).map(|a| AuditEntry {
                id: a.id,
                actor_type: a.actor_type,
                actor_id: a.actor_id,
                action: a.action,
                target_type: a.target_type,
                target_id: a.target_id,
                before: parse(a.before_json),
                after: parse(a.after_json),
                trace_id: a.trace_id,
                ip: a.ip,
                created_at: a.created_at.and_utc(),
            }),
        )
    }
}

/// The audit line in the log (category `audit`), once the record is committed.
pub(crate) fn logged(actor: &Actor, action: &str, target: (&str, &str)) {
    tracing::info!(category = "audit", actor_type = actor.kind, actor_id = %actor.id, action, target_type = target.0, target_id = target.1, "audited change");
}
