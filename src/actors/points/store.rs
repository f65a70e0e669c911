//! Rows and queries of the points tables, written once for both backends via `with_conn!`.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::domain::{
    Lot, NewRecord, PointsKind, PointsRule, PointsRuleSpec, Totals, UserPoints, cst_day_start,
};
use crate::storage::schema::{points_records, points_rules, user_points};
use crate::storage::{Db, StorageError};
use crate::with_conn;

/// A `points_records` row as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = points_records)]
pub struct RecordRow {
    pub id: String,
    pub user_id: String,
    pub points_change: i64,
    pub balance_after: i64,
    pub kind: String,
    pub source_type: String,
    pub source_id: String,
    pub description: String,
    pub remaining: Option<i64>,
    pub expires_at: Option<NaiveDateTime>,
    pub capped_points: i64,
    pub shortfall: i64,
    pub created_at: NaiveDateTime,
}

/// A `points_records` row to insert. Every column is explicit (no DEFAULT), which is what
/// lets SQLite take a multi-row `VALUES` list.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = points_records, treat_none_as_default_value = false)]
pub struct RecordInsert {
    pub id: String,
    pub user_id: String,
    pub points_change: i64,
    pub balance_after: i64,
    pub kind: String,
    pub source_type: String,
    pub source_id: String,
    pub description: String,
    pub remaining: Option<i64>,
    pub expires_at: Option<NaiveDateTime>,
    pub capped_points: i64,
    pub shortfall: i64,
    pub created_at: NaiveDateTime,
}

impl RecordInsert {
    pub fn new(user_id: &str, r: &NewRecord) -> RecordInsert {
        RecordInsert {
            id: r.id.to_string(),
            user_id: user_id.to_string(),
            points_change: r.change,
            balance_after: r.balance_after,
            kind: r.kind.as_str().to_string(),
            source_type: r.kind.source_type().to_string(),
            source_id: r.source_id.clone(),
            description: truncate(&r.description, 255),
            remaining: r.remaining,
            expires_at: r.expires_at.map(|t| t.naive_utc()),
            capped_points: r.capped,
            shortfall: r.shortfall,
            created_at: r.created_at.naive_utc(),
        }
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

#[derive(QueryableByName)]
struct AwardSums {
    #[diesel(sql_type = BigInt)]
    lifetime: i64,
    #[diesel(sql_type = BigInt)]
    today: i64,
}

const AWARD_SUMS: &str = "SELECT CAST(COALESCE(SUM(points_change), 0) AS SIGNED) AS lifetime, \
     CAST(COALESCE(SUM(CASE WHEN created_at >= ? THEN points_change ELSE 0 END), 0) AS SIGNED) AS today \
     FROM points_records WHERE user_id = ? AND kind = 'award'";

type SummaryCols = (i64, i64, i64, i64, i64, i64);

/// Loads one user's state. The summary (with its version) is read first: whatever is read
/// after it can only be newer, and a newer state has a newer version, which the writer's
/// version check turns into a reload. No summary row means no ledger rows either (the
/// writer creates both in one transaction), so a new user costs one query.
pub async fn load_state(
    db: &Db,
    user: &str,
    now: DateTime<Utc>,
) -> Result<UserPoints, StorageError> {
    let mut conn = db.conn().await?;
    let summary: Option<SummaryCols> = with_conn!(&mut conn, |c| {
        user_points::table
            .find(user)
            .select((
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
    })?;
    let Some((available, earned, used, expired, clawed, version)) = summary else {
        return Ok(UserPoints::empty(now));
    };
    let day_start = cst_day_start(now).naive_utc();
    let (lots, sums) = with_conn!(&mut conn, |c| {
        let lots: Vec<(String, Option<i64>, Option<NaiveDateTime>)> = points_records::table
            .filter(points_records::user_id.eq(user))
            .filter(points_records::remaining.gt(0))
            .select((
                points_records::id,
                points_records::remaining,
                points_records::expires_at,
            ))
            .load(c)
            .await?;
        let sums: AwardSums = diesel::sql_query(AWARD_SUMS)
            .bind::<Timestamp, _>(day_start)
            .bind::<Text, _>(user)
            .get_result(c)
            .await?;
        Ok::<_, diesel::result::Error>((lots, sums))
    })?;
    let lots = lots
        .into_iter()
        .filter_map(|(id, remaining, expires_at)| {
            Some(Lot {
                id: Uuid::parse_str(&id).ok()?,
                remaining: remaining?,
                expires_at: utc(expires_at?),
            })
        })
        .collect();
    let totals = Totals {
        available,
        total_earned: earned,
        total_used: used,
        total_expired: expired,
        total_clawed_back: clawed,
    };
    Ok(UserPoints::restore(
        now,
        totals,
        version,
        sums.lifetime,
        sums.today,
        lots,
    ))
}

/// The stored records for the given `(source_type, source_id)` keys.
pub async fn find_by_sources(
    db: &Db,
    keys: &[(&'static str, String)],
) -> Result<Vec<RecordRow>, StorageError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = keys.iter().map(|(_, id)| id.clone()).collect();
    let mut conn = db.conn().await?;
    let rows: Vec<RecordRow> = with_conn!(&mut conn, |c| {
        points_records::table
            .filter(points_records::source_id.eq_any(&ids))
            .select(RecordRow::as_select())
            .load(c)
            .await
    })?;
    Ok(rows
        .into_iter()
        .filter(|r| {
            keys.iter()
                .any(|(t, id)| *t == r.source_type && *id == r.source_id)
        })
        .collect())
}

pub fn kind_of(row: &RecordRow) -> Option<PointsKind> {
    PointsKind::parse(&row.kind)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = points_rules)]
pub struct RuleRow {
    pub id: String,
    pub points_per_yuan: i32,
    pub min_order_fen: i64,
    pub max_order_fen: i64,
    pub per_order_max_points: i64,
    pub daily_cap: i64,
    pub lifetime_cap: i64,
    pub expiry_days: i32,
    pub effective_from: NaiveDateTime,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

impl RuleRow {
    pub fn spec(&self) -> PointsRuleSpec {
        PointsRuleSpec {
            points_per_yuan: i64::from(self.points_per_yuan),
            min_order_fen: self.min_order_fen,
            max_order_fen: self.max_order_fen,
            per_order_max_points: self.per_order_max_points,
            daily_cap: self.daily_cap,
            lifetime_cap: self.lifetime_cap,
            expiry_days: i64::from(self.expiry_days),
        }
    }
}

/// The rule in force at `now`: the latest with `effective_from <= now`.
pub async fn current_rule_row(
    db: &Db,
    now: DateTime<Utc>,
) -> Result<Option<RuleRow>, StorageError> {
    let mut conn = db.conn().await?;
    let now = now.naive_utc();
    Ok(with_conn!(&mut conn, |c| {
        points_rules::table
            .filter(points_rules::effective_from.le(now))
            .order((points_rules::effective_from.desc(), points_rules::id.desc()))
            .select(RuleRow::as_select())
            .first(c)
            .await
            .optional()
    })?)
}

pub async fn insert_rule(
    db: &Db,
    rule: &PointsRule,
    effective_from: DateTime<Utc>,
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<String, StorageError> {
    let s = rule.spec();
    let id = Uuid::now_v7().to_string();
    let to_i32 = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
    let row = (
        points_rules::id.eq(id.clone()),
        points_rules::points_per_yuan.eq(to_i32(s.points_per_yuan)),
        points_rules::min_order_fen.eq(s.min_order_fen),
        points_rules::max_order_fen.eq(s.max_order_fen),
        points_rules::per_order_max_points.eq(s.per_order_max_points),
        points_rules::daily_cap.eq(s.daily_cap),
        points_rules::lifetime_cap.eq(s.lifetime_cap),
        points_rules::expiry_days.eq(to_i32(s.expiry_days)),
        points_rules::effective_from.eq(effective_from.naive_utc()),
        points_rules::created_by.eq(truncate(created_by, 64)),
        points_rules::created_at.eq(now.naive_utc()),
    );
    let mut conn = db.write_conn().await?;
    with_conn!(&mut conn, |c| {
        diesel::insert_into(points_rules::table)
            .values(row)
            .execute(c)
            .await
    })?;
    Ok(id)
}
