//! Messages of the points actors (one actor per user: the user is the address, not a
//! field) and the answers they carry.

use actix::Message;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::error::PointsError;
use crate::domain::{Fen, Points, PointsKind};

/// Credit the points a paid order earns. Idempotent on `order_no`. `outbox_id`, when given,
/// is deleted in the same transaction that writes the award.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<PointsChange, PointsError>")]
pub struct AwardPoints {
    pub order_no: String,
    pub amount: Fen,
    pub description: String,
    pub outbox_id: Option<String>,
}

/// Spend points, first to expire first. Idempotent on the client's `Idempotency-Key`
/// (stored as source id `{user_id}:{key}`); refused with `Insufficient` when short.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<PointsChange, PointsError>")]
pub struct DeductPoints {
    pub points: Points,
    pub idempotency_key: String,
    pub reason: String,
}

/// Take back points for a refund. The caller decides the share (`points`); the actor takes
/// what is there and records the rest as shortfall. Idempotent on `refund_no`.
/// `outbox_id`, when given, is deleted in the same transaction as the clawback.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<PointsChange, PointsError>")]
pub struct ClawbackPoints {
    pub refund_no: String,
    pub points: Points,
    pub description: String,
    pub outbox_id: Option<String>,
}

/// An admin's correction (may be negative, never below zero). Idempotent on `request_id`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<PointsChange, PointsError>")]
pub struct AdjustPoints {
    pub delta: i64,
    pub reason: String,
    pub admin_id: String,
    pub request_id: String,
}

/// Turn expired remainders into `expire` records.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<ExpireSummary, PointsError>")]
pub struct ExpirePoints;

/// The actor's view of the balance (after everything queued before it).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<BalanceView, PointsError>")]
pub struct GetBalance;

/// Internal: write what is queued.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(super) struct Flush;

/// Internal: write what is queued, then stop (service shutdown).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(super) struct StopActor;

/// The answer to a change: the ledger row written (or found, when `duplicate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PointsChange {
    pub id: String,
    pub user_id: String,
    pub kind: PointsKind,
    pub change: i64,
    pub balance_after: i64,
    /// Points an award did not credit because of a cap.
    pub capped: i64,
    /// Points a clawback could not take (balance too low).
    pub shortfall: i64,
    pub expires_at: Option<DateTime<Utc>>,
    /// True when the source had already been applied: this is the original result.
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpireSummary {
    pub expired: i64,
    pub lots: usize,
    pub balance_after: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BalanceView {
    pub available: i64,
    pub total_earned: i64,
    pub used: i64,
    pub expired: i64,
    pub clawed_back: i64,
    pub version: i64,
    pub earned_today: i64,
    pub lots: usize,
}
