//! The ledger audit after a run, straight from the database through points-app's own `Db`
//! (MySQL/MariaDB or SQLite). Each check has a name, passes or fails with counts, and a
//! failed check fails the run.

use std::collections::{HashMap, HashSet};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::RunQueryDsl;
use points_app::actors::points::read_model;
use points_app::config::Settings;
use points_app::storage::Db;
use points_app::with_conn;
use serde::Serialize;

use crate::scenarios::Tally;

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// What was checked, e.g. "12000 paid orders".
    pub checked: String,
    /// The first problems found (at most 20).
    pub problems: Vec<String>,
    pub problem_count: usize,
}

impl Check {
    fn new(name: &'static str, checked: String, problems: Vec<String>) -> Check {
        let problem_count = problems.len();
        Check {
            name,
            ok: problems.is_empty(),
            checked,
            problems: problems.into_iter().take(20).collect(),
            problem_count,
        }
    }
}

#[derive(QueryableByName, Debug)]
struct OrderRow {
    #[diesel(sql_type = Text)]
    order_no: String,
    #[diesel(sql_type = Text)]
    merchant_id: String,
    #[diesel(sql_type = BigInt)]
    amount_fen: i64,
    #[diesel(sql_type = BigInt)]
    refunded_fen: i64,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Text>)]
    wechat_transaction_id: Option<String>,
}

#[derive(QueryableByName, Debug)]
struct RecordRow {
    #[diesel(sql_type = Text)]
    user_id: String,
    #[diesel(sql_type = BigInt)]
    points_change: i64,
    #[diesel(sql_type = BigInt)]
    balance_after: i64,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    source_type: String,
    #[diesel(sql_type = Text)]
    source_id: String,
    #[diesel(sql_type = BigInt)]
    capped_points: i64,
    #[diesel(sql_type = BigInt)]
    shortfall: i64,
}

#[derive(QueryableByName, Debug)]
struct RefundRow {
    #[diesel(sql_type = Text)]
    out_refund_no: String,
    #[diesel(sql_type = Text)]
    order_no: String,
    #[diesel(sql_type = BigInt)]
    amount_fen: i64,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    points_clawed_back: i64,
    #[diesel(sql_type = BigInt)]
    points_shortfall: i64,
}

#[derive(QueryableByName, Debug)]
struct SummaryRow {
    #[diesel(sql_type = Text)]
    user_id: String,
    #[diesel(sql_type = BigInt)]
    available: i64,
    #[diesel(sql_type = BigInt)]
    total_earned: i64,
    #[diesel(sql_type = BigInt)]
    total_used: i64,
    #[diesel(sql_type = BigInt)]
    total_clawed_back: i64,
}

#[derive(QueryableByName, Debug)]
struct RuleRow {
    #[diesel(sql_type = BigInt)]
    points_per_yuan: i64,
    #[diesel(sql_type = BigInt)]
    min_order_fen: i64,
    #[diesel(sql_type = BigInt)]
    max_order_fen: i64,
}

#[derive(QueryableByName, Debug)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

pub async fn connect(database_url: &str) -> anyhow::Result<Db> {
    let data_dir = std::env::temp_dir().join("loadtest-audit");
    let settings = Settings::load_from(&[
        ("DATABASE_URL".to_string(), database_url.to_string()),
        ("APP_DATA_DIR".to_string(), data_dir.display().to_string()),
        ("APP_DB_POOL_SIZE".to_string(), "4".to_string()),
    ])
    .map_err(|e| anyhow::anyhow!("audit settings: {e}"))?;
    Db::connect(&settings)
        .await
        .map_err(|e| anyhow::anyhow!("audit cannot reach the database {database_url}: {e}"))
}

/// Runs a raw SELECT on either backend into rows of `$t`.
macro_rules! load {
    ($db:expr, $t:ty, $sql:expr) => {{
        let sql: &str = $sql;
        let mut conn = $db.conn().await?;
        let rows: Vec<$t> = with_conn!(&mut conn, |c| diesel::sql_query(sql).load::<$t>(c).await)
            .map_err(|e| anyhow::anyhow!("audit query failed: {e} ({sql})"))?;
        rows
    }};
}

/// Award, clawback and outbox work not yet finished (the run waits for 0 before auditing).
pub async fn pending_work(db: &Db) -> anyhow::Result<i64> {
    let rows: Vec<CountRow> = load!(
        db,
        CountRow,
        "SELECT CAST(COUNT(*) AS SIGNED) AS n FROM outbox WHERE kind IN ('award_points', 'clawback_points')"
    );
    Ok(rows.into_iter().next().map_or(0, |r| r.n))
}

/// The MySQL/MariaDB server's command counters that show how much work the database was
/// asked for (server-wide: anything else on the server counts too). Empty on SQLite.
pub const DB_COUNTERS: [&str; 7] = [
    "Questions",
    "Com_stmt_prepare",
    "Com_stmt_execute",
    "Com_stmt_close",
    "Com_commit",
    "Com_select",
    "Innodb_os_log_fsyncs",
];

#[derive(QueryableByName, Debug)]
struct StatusRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    value: String,
}

/// The [`DB_COUNTERS`] now (MySQL only; `None` on SQLite or when they cannot be read).
pub async fn db_counters(db: &Db, database_url: &str) -> Option<HashMap<String, i64>> {
    if !database_url.starts_with("mysql") {
        return None;
    }
    let read = async {
        let rows: Vec<StatusRow> = load!(
            db,
            StatusRow,
            "SELECT VARIABLE_NAME AS name, VARIABLE_VALUE AS value FROM information_schema.GLOBAL_STATUS"
        );
        anyhow::Ok(rows)
    };
    let rows = read.await.ok()?;
    Some(
        rows.into_iter()
            .filter_map(|r| {
                let name = DB_COUNTERS
                    .iter()
                    .find(|c| c.eq_ignore_ascii_case(&r.name))?;
                Some((name.to_string(), r.value.parse().ok()?))
            })
            .collect(),
    )
}

/// Orders paid with an award record, for the notify scenario's "all points visible".
pub async fn awarded_orders(db: &Db) -> anyhow::Result<i64> {
    let rows: Vec<CountRow> = load!(
        db,
        CountRow,
        "SELECT CAST(COUNT(*) AS SIGNED) AS n FROM points_records WHERE source_type = 'order'"
    );
    Ok(rows.into_iter().next().map_or(0, |r| r.n))
}

/// Orders paid (or refunded since): the run's database is fresh, so these are the run's.
pub async fn paid_orders(db: &Db) -> anyhow::Result<i64> {
    let rows: Vec<CountRow> = load!(
        db,
        CountRow,
        "SELECT CAST(COUNT(*) AS SIGNED) AS n FROM payment_orders WHERE status IN ('paid', 'refunding', 'partially_refunded', 'refunded')"
    );
    Ok(rows.into_iter().next().map_or(0, |r| r.n))
}

/// Merchant statistics as the merchant's `/stats` endpoint showed them, summed over the days:
/// merchant id -> (orders, amount fen, refund fen, points).
pub type MerchantStats = HashMap<String, (i64, i64, i64, i64)>;

const PAID: [&str; 4] = ["paid", "refunding", "partially_refunded", "refunded"];

pub async fn run(
    db: &Db,
    tally: Option<&Tally>,
    stats: Option<&MerchantStats>,
) -> anyhow::Result<Vec<Check>> {
    let mut checks = Vec::new();

    // 1. The engine's own audit: balance == sum of the ledger == sum of lots >= 0.
    let summary = read_model::audit_all(db).await?;
    checks.push(Check::new(
        "ledger_balance_equals_sum_of_changes",
        format!(
            "{} users, {} ledger records",
            summary.users, summary.records
        ),
        summary.problems.clone(),
    ));

    let orders: Vec<OrderRow> = load!(
        db,
        OrderRow,
        "SELECT order_no, merchant_id, amount_fen, refunded_fen, status, wechat_transaction_id FROM payment_orders"
    );
    let records: Vec<RecordRow> = load!(
        db,
        RecordRow,
        "SELECT user_id, points_change, balance_after, kind, source_type, source_id, capped_points, shortfall FROM points_records"
    );
    let refunds: Vec<RefundRow> = load!(
        db,
        RefundRow,
        "SELECT out_refund_no, order_no, amount_fen, status, points_clawed_back, points_shortfall FROM refunds"
    );
    let summaries: Vec<SummaryRow> = load!(
        db,
        SummaryRow,
        "SELECT user_id, available, total_earned, total_used, total_clawed_back FROM user_points"
    );
    let rule: Vec<RuleRow> = load!(
        db,
        RuleRow,
        "SELECT CAST(points_per_yuan AS SIGNED) AS points_per_yuan, min_order_fen, max_order_fen FROM points_rules ORDER BY effective_from DESC LIMIT 1"
    );
    let (ratio, min_fen, max_fen) = rule.into_iter().next().map_or((1, 100, 100_000_000), |r| {
        (r.points_per_yuan, r.min_order_fen, r.max_order_fen)
    });
    let base = |amount: i64| -> i64 {
        if amount < min_fen || amount > max_fen {
            0
        } else {
            (amount / 100).saturating_mul(ratio)
        }
    };

    // 2. Never negative, at any point of any user's history.
    let negative: Vec<String> = records
        .iter()
        .filter(|r| r.balance_after < 0)
        .map(|r| {
            format!(
                "{}: balance_after {} ({} {})",
                r.user_id, r.balance_after, r.kind, r.source_id
            )
        })
        .chain(
            summaries
                .iter()
                .filter(|s| s.available < 0)
                .map(|s| format!("{}: available {}", s.user_id, s.available)),
        )
        .collect();
    checks.push(Check::new(
        "never_negative",
        format!("{} records, {} balances", records.len(), summaries.len()),
        negative,
    ));

    let by_order: HashMap<&str, &OrderRow> =
        orders.iter().map(|o| (o.order_no.as_str(), o)).collect();
    let mut awards: HashMap<&str, Vec<&RecordRow>> = HashMap::new();
    for r in records
        .iter()
        .filter(|r| r.kind == "award" && r.source_type == "order")
    {
        awards.entry(r.source_id.as_str()).or_default().push(r);
    }
    let paid: Vec<&OrderRow> = orders
        .iter()
        .filter(|o| PAID.contains(&o.status.as_str()))
        .collect();

    // 3. Each paid order earned exactly what the rule gives its amount (credited + capped).
    let mut problems = Vec::new();
    for o in &paid {
        let Some(list) = awards.get(o.order_no.as_str()) else {
            continue;
        };
        let credited: i64 = list.iter().map(|r| r.points_change).sum();
        let capped: i64 = list.iter().map(|r| r.capped_points).sum();
        if credited + capped != base(o.amount_fen) {
            problems.push(format!(
                "order {}: {} fen -> credited {credited} + capped {capped}, rule says {}",
                o.order_no,
                o.amount_fen,
                base(o.amount_fen)
            ));
        }
        // An order's points are the ledger's (the API derives its `points_awarded` from it);
        // the API's figure is checked by the clients.
    }
    checks.push(Check::new(
        "award_equals_rule_on_paid_amount",
        format!("{} paid orders", paid.len()),
        problems,
    ));

    // 4. No order paid twice: one transaction id per order, one award per order.
    let mut problems = Vec::new();
    let mut txns: HashMap<&str, &str> = HashMap::new();
    for o in &orders {
        if let Some(t) = &o.wechat_transaction_id
            && let Some(other) = txns.insert(t.as_str(), o.order_no.as_str())
        {
            problems.push(format!(
                "transaction {t} on orders {other} and {}",
                o.order_no
            ));
        }
        if o.refunded_fen > o.amount_fen {
            problems.push(format!(
                "order {}: refunded {} > paid {}",
                o.order_no, o.refunded_fen, o.amount_fen
            ));
        }
    }
    for (no, list) in &awards {
        if list.len() > 1 {
            problems.push(format!("order {no}: {} award records", list.len()));
        }
    }
    checks.push(Check::new(
        "no_order_paid_twice",
        format!(
            "{} orders, {} award records",
            orders.len(),
            awards.values().map(Vec::len).sum::<usize>()
        ),
        problems,
    ));

    // 5. None paid without its points (and no award work left in the outbox).
    let mut problems: Vec<String> = paid
        .iter()
        .filter(|o| base(o.amount_fen) > 0 && !awards.contains_key(o.order_no.as_str()))
        .map(|o| {
            format!(
                "order {} ({}) paid {} fen without an award",
                o.order_no, o.status, o.amount_fen
            )
        })
        .collect();
    let pending = pending_work(db).await?;
    if pending > 0 {
        problems.push(format!("{pending} award/clawback rows still in the outbox"));
    }
    checks.push(Check::new(
        "no_paid_order_without_points",
        format!("{} paid orders", paid.len()),
        problems,
    ));

    // 6. None with points and not paid.
    let problems: Vec<String> = awards
        .keys()
        .filter_map(|no| match by_order.get(no) {
            None => Some(format!("award for unknown order {no}")),
            Some(o) if !PAID.contains(&o.status.as_str()) => {
                Some(format!("order {no} has points but is {}", o.status))
            }
            _ => None,
        })
        .collect();
    checks.push(Check::new(
        "no_points_without_payment",
        format!("{} awarded orders", awards.len()),
        problems,
    ));

    // 7. Clawbacks: each successful refund took back its share of the award, rounded down,
    //    all of it for a full refund; refunded_fen equals the successful refunds.
    let mut problems = Vec::new();
    let clawback_records: HashMap<&str, i64> = records
        .iter()
        .filter(|r| r.kind == "clawback")
        .map(|r| (r.source_id.as_str(), -r.points_change))
        .collect();
    let mut by_order_refunds: HashMap<&str, Vec<&RefundRow>> = HashMap::new();
    for r in refunds.iter().filter(|r| r.status == "success") {
        by_order_refunds
            .entry(r.order_no.as_str())
            .or_default()
            .push(r);
        match clawback_records.get(r.out_refund_no.as_str()) {
            Some(taken) if *taken == r.points_clawed_back => {}
            Some(taken) => problems.push(format!(
                "refund {}: ledger took {taken}, refund row says {}",
                r.out_refund_no, r.points_clawed_back
            )),
            None => problems.push(format!(
                "refund {} succeeded without a clawback record",
                r.out_refund_no
            )),
        }
    }
    let successful: HashSet<&str> = refunds
        .iter()
        .filter(|r| r.status == "success")
        .map(|r| r.out_refund_no.as_str())
        .collect();
    for no in clawback_records.keys() {
        if !successful.contains(no) {
            problems.push(format!("clawback {no} without a successful refund"));
        }
    }
    for (no, list) in &by_order_refunds {
        let Some(o) = by_order.get(no) else {
            problems.push(format!("refund of unknown order {no}"));
            continue;
        };
        let refunded: i64 = list.iter().map(|r| r.amount_fen).sum();
        if refunded != o.refunded_fen {
            problems.push(format!(
                "order {no}: refunded_fen {} but refunds sum {refunded}",
                o.refunded_fen
            ));
        }
        let awarded: i64 = awards
            .get(no)
            .map_or(0, |l| l.iter().map(|r| r.points_change).sum());
        let share = if refunded >= o.amount_fen {
            awarded
        } else {
            i64::try_from(
                i128::from(awarded) * i128::from(refunded) / i128::from(o.amount_fen.max(1)),
            )
            .unwrap_or(awarded)
        };
        let taken: i64 = list
            .iter()
            .map(|r| r.points_clawed_back + r.points_shortfall)
            .sum();
        if taken != share {
            problems.push(format!(
                "order {no}: refunded {refunded}/{} fen of {awarded} points; clawed back + shortfall {taken}, expected {share}",
                o.amount_fen
            ));
        }
    }
    checks.push(Check::new(
        "clawbacks_equal_refunded_share",
        format!("{} successful refunds", successful.len()),
        problems,
    ));

    // 8. Each user's totals follow from the ledger.
    let mut sums: HashMap<&str, (i64, i64, i64)> = HashMap::new();
    for r in &records {
        let e = sums.entry(r.user_id.as_str()).or_default();
        match r.kind.as_str() {
            "award" => e.0 += r.points_change,
            "adjust" if r.points_change > 0 => e.0 += r.points_change,
            "deduct" => e.1 -= r.points_change,
            "clawback" => e.2 -= r.points_change,
            _ => {}
        }
    }
    let problems: Vec<String> = summaries
        .iter()
        .filter_map(|s| {
            let (earned, used, clawed) = sums.get(s.user_id.as_str()).copied().unwrap_or_default();
            (earned != s.total_earned || used != s.total_used || clawed != s.total_clawed_back).then(|| {
                format!(
                    "{}: earned {}/{earned}, used {}/{used}, clawed back {}/{clawed} (summary/ledger)",
                    s.user_id, s.total_earned, s.total_used, s.total_clawed_back
                )
            })
        })
        .collect();
    checks.push(Check::new(
        "user_totals_equal_ledger",
        format!("{} users", summaries.len()),
        problems,
    ));

    // 9. Merchant statistics equal the orders (as the merchant's /stats endpoint shows them).
    let mut db_merchants: HashMap<&str, (i64, i64, i64, i64)> = HashMap::new();
    for o in &paid {
        let e = db_merchants.entry(o.merchant_id.as_str()).or_default();
        e.0 += 1;
        e.1 += o.amount_fen;
        e.3 += awards
            .get(o.order_no.as_str())
            .map_or(0, |l| l.iter().map(|r| r.points_change).sum());
    }
    for r in refunds.iter().filter(|r| r.status == "success") {
        if let Some(o) = by_order.get(r.order_no.as_str()) {
            db_merchants.entry(o.merchant_id.as_str()).or_default().2 += r.amount_fen;
        }
    }
    if let Some(stats) = stats {
        let mut problems = Vec::new();
        for (id, shown) in stats {
            let want = db_merchants.get(id.as_str()).copied().unwrap_or_default();
            if *shown != want {
                problems.push(format!(
                    "merchant {id}: stats (orders, fen, refund fen, points) {shown:?}, orders say {want:?}"
                ));
            }
        }
        checks.push(Check::new(
            "merchant_stats_equal_orders",
            format!("{} merchants", stats.len()),
            problems,
        ));
    }

    // 10. What the virtual users saw agrees with the database (users and merchants whose
    //     every call was answered; the others are counted, not compared).
    if let Some(t) = tally {
        let available: HashMap<&str, i64> = summaries
            .iter()
            .map(|s| (s.user_id.as_str(), s.available))
            .collect();
        // A clawback never takes a balance below zero: what it could not take is recorded as
        // shortfall, which the client cannot foresee (it spent those points first).
        let mut shortfall: HashMap<&str, i64> = HashMap::new();
        for r in records.iter().filter(|r| r.kind == "clawback") {
            *shortfall.entry(r.user_id.as_str()).or_default() += r.shortfall;
        }
        let mut problems = Vec::new();
        let mut compared = 0;
        for (user, want) in &t.expected_points {
            if t.uncertain_users.contains(user) {
                continue;
            }
            compared += 1;
            let short = shortfall.get(user.as_str()).copied().unwrap_or(0);
            let got = available.get(user.as_str()).copied().unwrap_or(0);
            if got - short != *want {
                problems.push(format!(
                    "user {user}: client expects {want} points, database has {got} (clawback shortfall {short})"
                ));
            }
        }
        let mut merchants_compared = 0;
        for (id, (n, fen, refund)) in &t.merchants {
            if t.uncertain_merchants.contains(id) {
                continue;
            }
            merchants_compared += 1;
            let got = db_merchants.get(id.as_str()).copied().unwrap_or_default();
            if (got.0, got.1, got.2) != (*n, *fen, *refund) {
                problems.push(format!(
                    "merchant {id}: clients saw (orders, fen, refund fen) {:?}, database {:?}",
                    (n, fen, refund),
                    (got.0, got.1, got.2)
                ));
            }
        }
        if let Some((user, deducted)) = &t.hot_user {
            let used = summaries
                .iter()
                .find(|s| &s.user_id == user)
                .map_or(0, |s| s.total_used);
            let unknown = t.hot_user_uncertain;
            if !unknown && used != *deducted {
                problems.push(format!(
                    "hot user {user}: clients deducted {deducted} points, database used {used}"
                ));
            }
        }
        checks.push(Check::new(
            "clients_agree_with_database",
            format!(
                "{compared} users ({} not compared: a call without answer), {merchants_compared} merchants ({} not compared)",
                t.uncertain_users.len(),
                t.uncertain_merchants.len()
            ),
            problems,
        ));
    }
    Ok(checks)
}
