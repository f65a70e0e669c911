//! Deciding one actor batch: commands in, ledger rows + summary out. Plain code over
//! `UserPoints` (no actix, no I/O): duplicates inside the batch share one answer, sources
//! already in the database (found after a conflict) are answered from the stored row.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::error::PointsError;
use super::messages::{
    AdjustPoints, AwardPoints, BalanceView, ClawbackPoints, DeductPoints, ExpireSummary,
    PointsChange,
};
use super::store::{RecordInsert, RecordRow, utc};
use super::writer::UserWrite;
use crate::domain::{Applied, LedgerError, NewRecord, PointsKind, PointsRule, UserPoints};

#[derive(Debug, Clone)]
pub enum Command {
    Award(AwardPoints),
    Deduct(DeductPoints),
    Clawback(ClawbackPoints),
    Adjust(AdjustPoints),
    Expire,
    Balance,
}

#[derive(Debug, Clone)]
pub enum Reply {
    Change(PointsChange),
    Expired(ExpireSummary),
    Balance(BalanceView),
}

pub type Answer = Result<Reply, PointsError>;

impl Command {
    /// The outbox row to delete with this change, if any.
    pub fn outbox_id(&self) -> Option<String> {
        match self {
            Command::Award(a) => a.outbox_id.clone(),
            Command::Clawback(c) => c.outbox_id.clone(),
            Command::Deduct(_) | Command::Adjust(_) | Command::Expire | Command::Balance => None,
        }
    }

    /// The idempotency key `(source_type, source_id)` of a change, if it has one.
    pub fn source(&self, user: &str) -> Option<(&'static str, String)> {
        match self {
            Command::Award(a) => Some((PointsKind::Award.source_type(), a.order_no.clone())),
            Command::Deduct(d) => Some((
                PointsKind::Deduct.source_type(),
                format!("{user}:{}", d.idempotency_key),
            )),
            Command::Clawback(c) => Some((PointsKind::Clawback.source_type(), c.refund_no.clone())),
            Command::Adjust(a) => Some((PointsKind::Adjust.source_type(), a.request_id.clone())),
            Command::Expire | Command::Balance => None,
        }
    }
}

/// What a batch decided: one answer per command (balance answers are filled after commit)
/// and the write that makes it true (`None` when nothing changes).
pub struct Decided {
    pub answers: Vec<Option<Answer>>,
    pub write: Option<UserWrite>,
}

pub fn change_of(user: &str, r: &NewRecord, duplicate: bool) -> PointsChange {
    PointsChange {
        id: r.id.to_string(),
        user_id: user.to_string(),
        kind: r.kind,
        change: r.change,
        balance_after: r.balance_after,
        capped: r.capped,
        shortfall: r.shortfall,
        expires_at: r.expires_at,
        duplicate,
    }
}

pub fn change_of_row(r: &RecordRow) -> Option<PointsChange> {
    Some(PointsChange {
        id: r.id.clone(),
        user_id: r.user_id.clone(),
        kind: PointsKind::parse(&r.kind)?,
        change: r.points_change,
        balance_after: r.balance_after,
        capped: r.capped_points,
        shortfall: r.shortfall,
        expires_at: r.expires_at.map(utc),
        duplicate: true,
    })
}

pub fn balance_view(st: &UserPoints, now: DateTime<Utc>) -> BalanceView {
    let t = st.totals();
    BalanceView {
        available: t.available,
        total_earned: t.total_earned,
        used: t.total_used,
        expired: t.total_expired,
        clawed_back: t.total_clawed_back,
        version: st.version(),
        earned_today: st.earned_today(now),
        lots: st.lots().count(),
    }
}

/// Whether two commands with the same key ask for the same thing. A spend names its points
/// and reason; the other keys (an order, a refund, an admin's request id) are the request.
fn same_request(a: &Command, b: &Command) -> bool {
    match (a, b) {
        (Command::Deduct(x), Command::Deduct(y)) => x.points == y.points && x.reason == y.reason,
        _ => true,
    }
}

fn key_reused(cmd: &Command) -> PointsError {
    PointsError::KeyReused(match cmd {
        Command::Deduct(d) => d.idempotency_key.clone(),
        _ => String::new(),
    })
}

/// Whether a stored record is what `cmd` asks for (its key found it).
fn matches_row(cmd: &Command, row: &RecordRow) -> bool {
    match cmd {
        Command::Deduct(d) => {
            row.points_change.checked_neg() == Some(d.points.value()) && row.description == d.reason
        }
        _ => true,
    }
}

fn insufficient(e: LedgerError) -> PointsError {
    match e {
        LedgerError::Insufficient {
            available,
            requested,
        } => PointsError::Insufficient {
            available,
            requested,
        },
    }
}

/// Applies `commands` to `st` at `now` under `rule`. `known` holds stored rows for sources
/// that already exist (keyed by `(source_type, source_id)`).
pub fn decide(
    user: &Arc<str>,
    st: &mut UserPoints,
    rule: &PointsRule,
    now: DateTime<Utc>,
    commands: &[Command],
    known: &HashMap<(String, String), RecordRow>,
) -> Decided {
    let expected_version = st.version();
    let persisted = st.persisted();
    let mut applied: Vec<Applied> = st.expire_due(now);
    let expired_total: i64 = applied.iter().map(|a| -a.record.change).sum();
    let expired_lots = applied.len();
    let mut answers: Vec<Option<Answer>> = Vec::with_capacity(commands.len());
    let mut seen: HashMap<(&'static str, String), usize> = HashMap::new();
    let mut outbox_deletes = Vec::new();
    for cmd in commands {
        let source = cmd.source(user);
        if let Some(key) = &source {
            if let Some(&first) = seen.get(key) {
                if commands.get(first).is_some_and(|f| !same_request(f, cmd)) {
                    answers.push(Some(Err(key_reused(cmd))));
                    continue;
                }
                let again = answers.get(first).cloned().flatten().map(|a| match a {
                    Ok(Reply::Change(mut c)) => {
                        c.duplicate = true;
                        Ok(Reply::Change(c))
                    }
                    other => other,
                });
                answers.push(again);
                continue;
            }
            seen.insert(key.clone(), answers.len());
            if let Some(row) = known.get(&(key.0.to_string(), key.1.clone())) {
                outbox_deletes.extend(cmd.outbox_id());
                let answer = if row.user_id != **user {
                    Err(PointsError::SourceConflict(key.1.clone()))
                } else if !matches_row(cmd, row) {
                    Err(key_reused(cmd))
                } else {
                    change_of_row(row)
                        .map(Reply::Change)
                        .ok_or_else(|| PointsError::Storage(format!("bad kind {}", row.kind)))
                };
                answers.push(Some(answer));
                continue;
            }
        }
        let sid = source.map(|s| s.1).unwrap_or_default();
        let result: Result<Applied, PointsError> = match cmd {
            Command::Award(a) => {
                outbox_deletes.extend(cmd.outbox_id());
                Ok(st.award(now, rule, a.amount, sid, a.description.clone()))
            }
            Command::Deduct(d) => st
                .deduct(now, d.points, sid, d.reason.clone())
                .map_err(insufficient),
            Command::Clawback(c) => {
                outbox_deletes.extend(cmd.outbox_id());
                Ok(st.clawback(now, c.points, sid, c.description.clone()))
            }
            Command::Adjust(a) => st
                .adjust(now, rule, a.delta, sid, a.reason.clone())
                .map_err(insufficient),
            Command::Expire => {
                answers.push(Some(Ok(Reply::Expired(ExpireSummary {
                    expired: expired_total,
                    lots: expired_lots,
                    balance_after: st.totals().available,
                }))));
                continue;
            }
            Command::Balance => {
                answers.push(None);
                continue;
            }
        };
        match result {
            Ok(a) => {
                answers.push(Some(Ok(Reply::Change(change_of(user, &a.record, false)))));
                applied.push(a);
            }
            Err(e) => answers.push(Some(Err(e))),
        }
    }
    let write = (!applied.is_empty() || !outbox_deletes.is_empty()).then(|| {
        to_write(
            user,
            st,
            expected_version,
            persisted,
            applied,
            outbox_deletes,
            now,
        )
    });
    Decided { answers, write }
}

fn to_write(
    user: &Arc<str>,
    st: &UserPoints,
    expected_version: i64,
    persisted: bool,
    applied: Vec<Applied>,
    outbox_deletes: Vec<String>,
    now: DateTime<Utc>,
) -> UserWrite {
    // Lots consumed in this batch: the last value wins; lots born in this batch get their
    // final `remaining` in the inserted row instead of a separate update.
    let mut lot_final: HashMap<Uuid, i64> = HashMap::new();
    let mut order: Vec<Uuid> = Vec::new();
    for a in &applied {
        for (id, rem) in &a.lot_updates {
            if lot_final.insert(*id, *rem).is_none() {
                order.push(*id);
            }
        }
    }
    let mut records = Vec::with_capacity(applied.len());
    for a in &applied {
        let mut row = RecordInsert::new(user, &a.record);
        if let Some(rem) = lot_final.remove(&a.record.id) {
            row.remaining = Some(rem);
        }
        records.push(row);
    }
    let lot_updates = order
        .into_iter()
        .filter_map(|id| lot_final.get(&id).map(|rem| (id.to_string(), *rem)))
        .collect();
    UserWrite {
        user_id: user.clone(),
        expected_version,
        persisted,
        totals: st.totals(),
        records,
        lot_updates,
        outbox_deletes,
        now: now.naive_utc(),
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
