//! One user's points as plain state: the summary, today's (CST) and lifetime awards, and the
//! lots (awards and positive adjustments with `remaining` and `expires_at`). Every change is
//! decided here and returned as a ledger record plus the lots it touched; the caller persists
//! them. Invariant after every method: `available == sum(lot.remaining) >= 0`.

use std::collections::VecDeque;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::money::{Fen, Points};
use super::rule::PointsRule;
use super::time::cst_day;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PointsKind {
    Award,
    Deduct,
    Expire,
    Clawback,
    Adjust,
}

impl PointsKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PointsKind::Award => "award",
            PointsKind::Deduct => "deduct",
            PointsKind::Expire => "expire",
            PointsKind::Clawback => "clawback",
            PointsKind::Adjust => "adjust",
        }
    }

    pub fn parse(s: &str) -> Option<PointsKind> {
        Some(match s {
            "award" => PointsKind::Award,
            "deduct" => PointsKind::Deduct,
            "expire" => PointsKind::Expire,
            "clawback" => PointsKind::Clawback,
            "adjust" => PointsKind::Adjust,
            _ => return None,
        })
    }

    /// The `source_type` under which this kind's idempotency key is unique.
    pub fn source_type(self) -> &'static str {
        match self {
            PointsKind::Award => "order",
            PointsKind::Deduct => "deduct",
            PointsKind::Expire => "expire",
            PointsKind::Clawback => "refund",
            PointsKind::Adjust => "admin",
        }
    }
}

/// Points still spendable from one award (or positive adjustment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lot {
    pub id: Uuid,
    pub remaining: i64,
    pub expires_at: DateTime<Utc>,
}

/// The `user_points` summary. `available = earned - used - expired - clawed_back`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub available: i64,
    pub total_earned: i64,
    pub total_used: i64,
    pub total_expired: i64,
    pub total_clawed_back: i64,
}

/// A ledger row to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    pub id: Uuid,
    pub kind: PointsKind,
    pub change: i64,
    pub balance_after: i64,
    pub source_id: String,
    pub description: String,
    pub remaining: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub capped: i64,
    pub shortfall: i64,
    pub created_at: DateTime<Utc>,
}

/// One decided change: its record and the new `remaining` of every lot it consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub record: NewRecord,
    pub lot_updates: Vec<(Uuid, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("insufficient points: {available} available, {requested} requested")]
    Insufficient { available: i64, requested: i64 },
}

#[derive(Debug, Clone)]
pub struct UserPoints {
    totals: Totals,
    version: i64,
    persisted: bool,
    earned_lifetime: i64,
    earned_today: i64,
    today: NaiveDate,
    /// Sorted by `(expires_at, id)`: first to expire first. Only lots with `remaining > 0`.
    lots: VecDeque<Lot>,
}

impl UserPoints {
    /// A user without any points row yet.
    pub fn empty(now: DateTime<Utc>) -> UserPoints {
        UserPoints {
            totals: Totals::default(),
            version: 0,
            persisted: false,
            earned_lifetime: 0,
            earned_today: 0,
            today: cst_day(now),
            lots: VecDeque::new(),
        }
    }

    /// State as loaded from the database. `earned_today` is the awards since the CST day of
    /// `now` began.
    pub fn restore(
        now: DateTime<Utc>,
        totals: Totals,
        version: i64,
        earned_lifetime: i64,
        earned_today: i64,
        mut lots: Vec<Lot>,
    ) -> UserPoints {
        lots.retain(|l| l.remaining > 0);
        lots.sort_by_key(|l| (l.expires_at, l.id));
        UserPoints {
            totals,
            version,
            persisted: true,
            earned_lifetime,
            earned_today,
            today: cst_day(now),
            lots: lots.into(),
        }
    }

    pub fn totals(&self) -> Totals {
        self.totals
    }
    pub fn version(&self) -> i64 {
        self.version
    }
    /// True once the `user_points` row exists.
    pub fn persisted(&self) -> bool {
        self.persisted
    }
    pub fn lots(&self) -> impl Iterator<Item = &Lot> {
        self.lots.iter()
    }
    pub fn earned_lifetime(&self) -> i64 {
        self.earned_lifetime
    }
    pub fn earned_today(&self, now: DateTime<Utc>) -> i64 {
        if cst_day(now) == self.today {
            self.earned_today
        } else {
            0
        }
    }

    /// The decided changes were committed: the summary row now has the next version.
    pub fn committed(&mut self) {
        self.version += 1;
        self.persisted = true;
    }

    /// Frees the lot buffer beyond what is held, for long-idle actors.
    pub fn shrink(&mut self) {
        self.lots.shrink_to_fit();
    }

    fn roll_day(&mut self, now: DateTime<Utc>) {
        let day = cst_day(now);
        if day != self.today {
            self.today = day;
            self.earned_today = 0;
        }
    }

    fn record(
        &self,
        now: DateTime<Utc>,
        kind: PointsKind,
        change: i64,
        source_id: String,
        description: String,
    ) -> NewRecord {
        NewRecord {
            id: Uuid::now_v7(),
            kind,
            change,
            balance_after: self.totals.available,
            source_id,
            description,
            remaining: None,
            expires_at: None,
            capped: 0,
            shortfall: 0,
            created_at: now,
        }
    }

    fn add_lot(&mut self, lot: Lot) {
        let key = (lot.expires_at, lot.id);
        let at = self
            .lots
            .iter()
            .rposition(|l| (l.expires_at, l.id) <= key)
            .map_or(0, |i| i + 1);
        self.lots.insert(at, lot);
    }

    /// Takes `amount` (at most `available`) from the lots, first to expire first.
    fn consume(&mut self, mut amount: i64) -> Vec<(Uuid, i64)> {
        let mut updates = Vec::new();
        while amount > 0 {
            let Some(lot) = self.lots.front_mut() else {
                break;
            };
            let take = lot.remaining.min(amount);
            lot.remaining -= take;
            amount -= take;
            updates.push((lot.id, lot.remaining));
            if lot.remaining == 0 {
                self.lots.pop_front();
            }
        }
        updates
    }

    /// Turns the remainder of every lot with `expires_at <= now` into an `expire` record
    /// (one per lot; its id is the lot's source, so a lot expires at most once).
    pub fn expire_due(&mut self, now: DateTime<Utc>) -> Vec<Applied> {
        let mut out = Vec::new();
        while let Some(lot) = self.lots.front() {
            if lot.expires_at > now {
                break;
            }
            let (id, points) = (lot.id, lot.remaining);
            self.lots.pop_front();
            self.totals.available -= points;
            self.totals.total_expired += points;
            let record = self.record(
                now,
                PointsKind::Expire,
                -points,
                id.to_string(),
                "points expired".to_string(),
            );
            out.push(Applied {
                record,
                lot_updates: vec![(id, 0)],
            });
        }
        out
    }

    /// Credits the points a paid order earns under `rule`; the capped part is recorded.
    pub fn award(
        &mut self,
        now: DateTime<Utc>,
        rule: &PointsRule,
        amount: Fen,
        source_id: String,
        description: String,
    ) -> Applied {
        self.roll_day(now);
        let award = rule.award_for(
            amount,
            Points::parse(self.earned_today).unwrap_or(Points::ZERO),
            Points::parse(self.earned_lifetime).unwrap_or(Points::ZERO),
        );
        let points = award.points.value();
        self.earned_today += points;
        self.earned_lifetime += points;
        self.credit(
            now,
            rule,
            PointsKind::Award,
            points,
            source_id,
            description,
            award.capped.value(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn credit(
        &mut self,
        now: DateTime<Utc>,
        rule: &PointsRule,
        kind: PointsKind,
        points: i64,
        source_id: String,
        description: String,
        capped: i64,
    ) -> Applied {
        self.totals.available += points;
        self.totals.total_earned += points;
        let mut record = self.record(now, kind, points, source_id, description);
        record.capped = capped;
        if points > 0 {
            let expires_at = now + rule.expiry();
            record.remaining = Some(points);
            record.expires_at = Some(expires_at);
            self.add_lot(Lot {
                id: record.id,
                remaining: points,
                expires_at,
            });
        }
        Applied {
            record,
            lot_updates: Vec::new(),
        }
    }

    /// Spends `points`, first to expire first; refused when the balance is short.
    pub fn deduct(
        &mut self,
        now: DateTime<Utc>,
        points: Points,
        source_id: String,
        description: String,
    ) -> Result<Applied, LedgerError> {
        let p = points.value();
        if p > self.totals.available {
            return Err(LedgerError::Insufficient {
                available: self.totals.available,
                requested: p,
            });
        }
        let lot_updates = self.consume(p);
        self.totals.available -= p;
        self.totals.total_used += p;
        let record = self.record(now, PointsKind::Deduct, -p, source_id, description);
        Ok(Applied {
            record,
            lot_updates,
        })
    }

    /// Takes back `points` for a refund: what is there, never below zero; the rest is
    /// recorded as `shortfall`.
    pub fn clawback(
        &mut self,
        now: DateTime<Utc>,
        points: Points,
        source_id: String,
        description: String,
    ) -> Applied {
        let taken = points.value().min(self.totals.available);
        let lot_updates = self.consume(taken);
        self.totals.available -= taken;
        self.totals.total_clawed_back += taken;
        let mut record = self.record(now, PointsKind::Clawback, -taken, source_id, description);
        record.shortfall = points.value() - taken;
        Applied {
            record,
            lot_updates,
        }
    }

    /// An admin's correction: a positive delta is a new lot (expiring under `rule`), a
    /// negative one is spent first to expire first and refused below zero.
    pub fn adjust(
        &mut self,
        now: DateTime<Utc>,
        rule: &PointsRule,
        delta: i64,
        source_id: String,
        reason: String,
    ) -> Result<Applied, LedgerError> {
        if delta >= 0 {
            return Ok(self.credit(now, rule, PointsKind::Adjust, delta, source_id, reason, 0));
        }
        let p = delta.saturating_neg();
        if p > self.totals.available {
            return Err(LedgerError::Insufficient {
                available: self.totals.available,
                requested: p,
            });
        }
        let lot_updates = self.consume(p);
        self.totals.available -= p;
        self.totals.total_used += p;
        let record = self.record(now, PointsKind::Adjust, -p, source_id, reason);
        Ok(Applied {
            record,
            lot_updates,
        })
    }
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
