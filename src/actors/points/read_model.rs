//! Read models straight from the database (the source of truth): balance, history,
//! statistics, and the ledger audit used by the tests and the load test.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use super::store::{RecordRow, utc};
use crate::domain::{cst_day, cst_month};
use crate::storage::schema::{points_records, user_points};
use crate::storage::{Db, StorageError};
use crate::with_conn;

/// Lots expiring within this window are listed in `expiring_soon`.
const EXPIRING_SOON_DAYS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExpiringSoon {
    pub points: i64,
    pub expires_at: DateTime<Utc>,
}

/// `GET /api/points/balance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Balance {
    pub available: i64,
    pub total_earned: i64,
    pub used: i64,
    pub expired: i64,
    pub clawed_back: i64,
    pub expiring_soon: Vec<ExpiringSoon>,
}

/// One item of `GET /api/points/history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HistoryItem {
    pub id: String,
    pub change: i64,
    pub balance_after: i64,
    pub kind: String,
    pub source: String,
    pub source_id: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub capped: i64,
    pub shortfall: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PeriodStats {
    pub earned: i64,
    pub spent: i64,
    pub expired: i64,
    pub clawed_back: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MonthStats {
    /// `YYYY-MM`, China Standard Time.
    pub month: String,
    #[serde(flatten)]
    pub stats: PeriodStats,
}

/// `GET /api/points/statistics`: the last twelve CST months (newest first) and lifetime totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Statistics {
    pub months: Vec<MonthStats>,
    pub totals: PeriodStats,
    pub available: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub user_id: String,
    pub ok: bool,
    pub available: i64,
    pub ledger_sum: i64,
    pub lots_remaining: i64,
    pub records: usize,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditSummary {
    pub ok: bool,
    pub users: usize,
    pub records: i64,
    pub points_available: i64,
    pub problems: Vec<String>,
}

type SummaryRow = (String, i64, i64, i64, i64, i64, i64);

async fn summary(db: &Db, user: &str) -> Result<Option<SummaryRow>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        user_points::table
            .find(user)
            .select((
                user_points::user_id,
                user_points::available,
                user_points::total_earned,
                user_points::total_used,
                user_points::total_expired,
                user_points::total_clawed_back,
                user_points::version,
            ))
            .first(c)
            .await
            .optional()
    })?)
}

/// The balance and the lots expiring soon, in one query: the user's summary row joined with
/// its lots that still hold points and expire within [`EXPIRING_SOON_DAYS`] (the summary
/// repeats on every lot row; a user without such lots gives one row with no lot).
pub async fn balance(db: &Db, user: &str, now: DateTime<Utc>) -> Result<Balance, StorageError> {
    type BalanceRow = (i64, i64, i64, i64, i64, Option<i64>, Option<NaiveDateTime>);
    let horizon = (now + Duration::days(EXPIRING_SOON_DAYS)).naive_utc();
    let mut conn = db.conn().await?;
    let rows: Vec<BalanceRow> = with_conn!(&mut conn, |c| {
        user_points::table
            .left_join(
                points_records::table.on(points_records::user_id
                    .eq(user_points::user_id)
                    .and(points_records::remaining.gt(0))
                    .and(points_records::expires_at.le(horizon))),
            )
            .filter(user_points::user_id.eq(user))
            .order(points_records::expires_at.asc())
            .select((
                user_points::available,
                user_points::total_earned,
                user_points::total_used,
                user_points::total_expired,
                user_points::total_clawed_back,
                points_records::remaining.nullable(),
                points_records::expires_at.nullable(),
            ))
            .limit(1000)
            .load(c)
            .await
    })?;
    let Some(&(available, earned, used, expired, clawed, ..)) = rows.as_slice().first() else {
        return Ok(Balance {
            available: 0,
            total_earned: 0,
            used: 0,
            expired: 0,
            clawed_back: 0,
            expiring_soon: Vec::new(),
        });
    };
    let lots = rows.into_iter().map(|(.., remaining, at)| (remaining, at));
    // One entry per CST day, dated by the first expiry of that day.
    let mut days: BTreeMap<chrono::NaiveDate, ExpiringSoon> = BTreeMap::new();
    for (remaining, expires_at) in lots {
        let (Some(points), Some(at)) = (remaining, expires_at) else {
            continue;
        };
        let at = utc(at);
        days.entry(cst_day(at))
            .and_modify(|e| e.points += points)
            .or_insert(ExpiringSoon {
                points,
                expires_at: at,
            });
    }
    Ok(Balance {
        available,
        total_earned: earned,
        used,
        expired,
        clawed_back: clawed,
        expiring_soon: days.into_values().collect(),
    })
}

pub async fn history(
    db: &Db,
    user: &str,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Page<HistoryItem>, StorageError> {
    let limit = limit.clamp(1, 100);
    let fetch = i64::try_from(limit + 1).unwrap_or(101);
    let mut conn = db.conn().await?;
    let rows: Vec<RecordRow> = with_conn!(&mut conn, |c| {
        let mut q = points_records::table
            .filter(points_records::user_id.eq(user))
            .select(RecordRow::as_select())
            .order(points_records::id.desc())
            .limit(fetch)
            .into_boxed();
        if let Some(cursor) = cursor {
            q = q.filter(points_records::id.lt(cursor));
        }
        q.load(c).await
    })?;
    let more = rows.len() > limit;
    let items: Vec<HistoryItem> = rows
        .into_iter()
        .take(limit)
        .map(|r| HistoryItem {
            id: r.id,
            change: r.points_change,
            balance_after: r.balance_after,
            kind: r.kind,
            source: r.source_type,
            source_id: r.source_id,
            description: r.description,
            created_at: utc(r.created_at),
            expires_at: r.expires_at.map(utc),
            capped: r.capped_points,
            shortfall: r.shortfall,
        })
        .collect();
    let next_cursor = if more {
        items.last().map(|i| i.id.clone())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

fn add(stats: &mut PeriodStats, kind: &str, change: i64) {
    match kind {
        "award" => stats.earned += change,
        "adjust" if change >= 0 => stats.earned += change,
        "deduct" | "adjust" => stats.spent -= change,
        "expire" => stats.expired -= change,
        "clawback" => stats.clawed_back -= change,
        _ => {}
    }
}

pub async fn statistics(
    db: &Db,
    user: &str,
    now: DateTime<Utc>,
) -> Result<Statistics, StorageError> {
    let since = (now - Duration::days(366)).naive_utc();
    let mut conn = db.conn().await?;
    let rows: Vec<(String, i64, NaiveDateTime)> = with_conn!(&mut conn, |c| {
        points_records::table
            .filter(points_records::user_id.eq(user))
            .filter(points_records::created_at.ge(since))
            .select((
                points_records::kind,
                points_records::points_change,
                points_records::created_at,
            ))
            .load(c)
            .await
    })?;
    let mut months: BTreeMap<String, PeriodStats> = BTreeMap::new();
    for (kind, change, at) in rows {
        add(months.entry(cst_month(utc(at))).or_default(), &kind, change);
    }
    let months = months
        .into_iter()
        .rev()
        .take(12)
        .map(|(month, stats)| MonthStats { month, stats })
        .collect();
    let (totals, available) = match summary(db, user).await? {
        Some((_, available, earned, used, expired, clawed, _)) => (
            PeriodStats {
                earned,
                spent: used,
                expired,
                clawed_back: clawed,
            },
            available,
        ),
        None => (PeriodStats::default(), 0),
    };
    Ok(Statistics {
        months,
        totals,
        available,
    })
}

/// Users holding lots that expired by `now` (for the expiry sweep).
pub async fn users_with_expired(
    db: &Db,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<String>, StorageError> {
    let now = now.naive_utc();
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        points_records::table
            .filter(points_records::remaining.gt(0))
            .filter(points_records::expires_at.le(now))
            .select(points_records::user_id)
            .distinct()
            .limit(limit)
            .load(c)
            .await
    })?)
}

/// The ledger audit of one user: the summary equals the sum of the ledger and the sum of
/// the lots' remainders, nothing is negative, and every `balance_after` follows from the
/// rows before it.
pub async fn audit(db: &Db, user: &str) -> Result<AuditReport, StorageError> {
    let mut conn = db.conn().await?;
    let rows: Vec<(i64, i64, String, Option<i64>)> = with_conn!(&mut conn, |c| {
        points_records::table
            .filter(points_records::user_id.eq(user))
            .order(points_records::id.asc())
            .select((
                points_records::points_change,
                points_records::balance_after,
                points_records::kind,
                points_records::remaining,
            ))
            .load(c)
            .await
    })?;
    let mut problems = Vec::new();
    let (mut running, mut lots) = (0i64, 0i64);
    for (i, (change, after, kind, remaining)) in rows.iter().enumerate() {
        running += change;
        if running != *after {
            problems.push(format!(
                "row {i} ({kind}): balance_after {after} but running sum {running}"
            ));
        }
        if running < 0 {
            problems.push(format!("row {i}: negative running balance {running}"));
        }
        if let Some(r) = remaining {
            if *r < 0 || *r > (*change).max(0) {
                problems.push(format!("row {i}: remaining {r} outside 0..={change}"));
            }
            lots += r;
        }
    }
    let (available, identity) = match summary(db, user).await? {
        Some((_, available, earned, used, expired, clawed, _)) => {
            (available, earned - used - expired - clawed)
        }
        None => (0, 0),
    };
    if available != running {
        problems.push(format!(
            "user_points.available {available} != sum(points_change) {running}"
        ));
    }
    if available != lots {
        problems.push(format!("available {available} != sum(remaining) {lots}"));
    }
    if available != identity {
        problems.push(format!(
            "available {available} != earned-used-expired-clawed {identity}"
        ));
    }
    if available < 0 {
        problems.push(format!("negative available {available}"));
    }
    Ok(AuditReport {
        user_id: user.to_string(),
        ok: problems.is_empty(),
        available,
        ledger_sum: running,
        lots_remaining: lots,
        records: rows.len(),
        problems,
    })
}

#[derive(QueryableByName)]
struct UserSums {
    #[diesel(sql_type = Text)]
    user_id: String,
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = BigInt)]
    lots: i64,
    #[diesel(sql_type = BigInt)]
    records: i64,
    #[diesel(sql_type = BigInt)]
    min_remaining: i64,
}

const USER_SUMS: &str = "SELECT user_id, CAST(SUM(points_change) AS SIGNED) AS total, \
     CAST(SUM(CASE WHEN remaining > 0 THEN remaining ELSE 0 END) AS SIGNED) AS lots, \
     CAST(COUNT(*) AS SIGNED) AS records, \
     CAST(MIN(COALESCE(remaining, 0)) AS SIGNED) AS min_remaining \
     FROM points_records GROUP BY user_id";

/// The audit over every user, in two grouped queries (for load tests).
pub async fn audit_all(db: &Db) -> Result<AuditSummary, StorageError> {
    let mut conn = db.conn().await?;
    let (sums, summaries): (Vec<UserSums>, Vec<SummaryRow>) = with_conn!(&mut conn, |c| {
        let sums = diesel::sql_query(USER_SUMS).load(c).await?;
        let summaries = user_points::table
            .select((
                user_points::user_id,
                user_points::available,
                user_points::total_earned,
                user_points::total_used,
                user_points::total_expired,
                user_points::total_clawed_back,
                user_points::version,
            ))
            .load(c)
            .await?;
        Ok::<_, diesel::result::Error>((sums, summaries))
    })?;
    let mut problems = Vec::new();
    let by_user: HashMap<&str, &UserSums> = sums.iter().map(|s| (s.user_id.as_str(), s)).collect();
    let mut points_available = 0;
    for (user, available, earned, used, expired, clawed, _) in &summaries {
        points_available += available;
        let (total, lots) = by_user
            .get(user.as_str())
            .map_or((0, 0), |s| (s.total, s.lots));
        if *available < 0
            || *available != total
            || *available != lots
            || *available != earned - used - expired - clawed
        {
            problems.push(format!(
                "{user}: available {available}, ledger {total}, lots {lots}, earned-used-expired-clawed {}",
                earned - used - expired - clawed
            ));
        }
    }
    let summarized: std::collections::HashSet<&str> =
        summaries.iter().map(|r| r.0.as_str()).collect();
    for s in &sums {
        if s.min_remaining < 0 {
            problems.push(format!("{}: negative remaining", s.user_id));
        }
        if s.total != 0 && !summarized.contains(s.user_id.as_str()) {
            problems.push(format!("{}: ledger rows without a summary", s.user_id));
        }
    }
    problems.truncate(100);
    Ok(AuditSummary {
        ok: problems.is_empty(),
        users: summaries.len(),
        records: sums.iter().map(|s| s.records).sum(),
        points_available,
        problems,
    })
}
