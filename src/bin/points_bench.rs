//! Points engine benchmark (run in release):
//!
//!   cargo run --release --bin points_bench                      # SQLite (temp file)
//!   DATABASE_URL=mysql://root@127.0.0.1:3306/test cargo run --release --bin points_bench
//!
//! With MySQL the URL names a server; the benchmark makes its own database there and drops
//! it afterwards. Sizes: BENCH_HOT (awards to one user), BENCH_USERS (users with one award
//! each), BENCH_BASELINE (awards per baseline run), BENCH_IDLE (idle actors for memory).
//!
//! Prints awards/second and awards per commit for the actor path (per-user actors + group
//! commit) and for a row-lock baseline (one transaction per award: `SELECT … FOR UPDATE`
//! on MySQL, a plain write transaction on SQLite), and resident memory per idle actor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::StreamExt;
use points_app::actors::points::{AwardPoints, PointsConfig, PointsService};
use points_app::config::Settings;
use points_app::domain::{Fen, Points, PointsRule, SystemClock};
use points_app::storage::Db;
use points_app::storage::schema::points_records;
use points_app::telemetry::Metrics;
use points_app::with_conn;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// (sum, count) of the commit batch-size histogram.
fn commit_stats(metrics: &Metrics) -> (f64, f64) {
    let text = metrics.render();
    let find = |name: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
            .unwrap_or(0.0)
    };
    (
        find("ledger_commit_batch_size_sum "),
        find("ledger_commit_batch_size_count "),
    )
}

struct Run {
    awards: usize,
    secs: f64,
    per_commit: f64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.awards as f64 / self.secs
    }
}

fn award(order: String) -> AwardPoints {
    AwardPoints {
        order_no: order,
        amount: Fen::parse(100).unwrap_or_default(),
        description: "bench".into(),
        outbox_id: None,
    }
}

async fn actor_run(
    svc: &PointsService,
    metrics: &Metrics,
    calls: Vec<(String, String)>,
) -> anyhow::Result<Run> {
    let (s0, c0) = commit_stats(metrics);
    let start = Instant::now();
    let n = calls.len();
    let failures = futures_util::stream::iter(calls)
        .map(|(user, order)| async move { svc.award(&user, award(order)).await })
        .buffer_unordered(4096)
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await;
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(failures == 0, "{failures} awards failed");
    let (s1, c1) = commit_stats(metrics);
    Ok(Run {
        awards: n,
        secs,
        per_commit: (s1 - s0) / (c1 - c0).max(1.0),
    })
}

#[derive(diesel::QueryableByName)]
struct Locked {
    #[diesel(sql_type = BigInt)]
    available: i64,
    #[diesel(sql_type = BigInt)]
    version: i64,
}

/// One award the conventional way: its own transaction, the summary row locked.
async fn baseline_award(db: &Db, user: &str, order: &str, mysql: bool) -> anyhow::Result<()> {
    let rule = PointsRule::default();
    let points = rule
        .award_for(Fen::parse(100)?, Points::ZERO, Points::ZERO)
        .points
        .value();
    let lock = if mysql {
        "SELECT available, version FROM user_points WHERE user_id = ? FOR UPDATE"
    } else {
        "SELECT available, version FROM user_points WHERE user_id = ?"
    };
    let now = chrono::Utc::now().naive_utc();
    let mut conn = db.write_conn().await?;
    let (user, order) = (user.to_string(), order.to_string());
    with_conn!(&mut conn, |c| {
        c.transaction::<_, diesel::result::Error, _>(async |c| {
            if !mysql {
                // Take SQLite's write lock up front (as the engine's writer does).
                diesel::sql_query("UPDATE user_points SET version = version WHERE 1 = 0")
                    .execute(c)
                    .await?;
            }
            let row: Locked = diesel::sql_query(lock)
                .bind::<Text, _>(&user)
                .get_result(c)
                .await?;
            let balance = row.available + points;
            diesel::insert_into(points_records::table)
                .values((
                    points_records::id.eq(uuid::Uuid::now_v7().to_string()),
                    points_records::user_id.eq(&user),
                    points_records::points_change.eq(points),
                    points_records::balance_after.eq(balance),
                    points_records::kind.eq("award"),
                    points_records::source_type.eq("bench"),
                    points_records::source_id.eq(&order),
                    points_records::description.eq("bench"),
                    points_records::remaining.eq(Some(points)),
                    points_records::expires_at.eq(Some(now + chrono::Duration::days(365))),
                    points_records::capped_points.eq(0i64),
                    points_records::shortfall.eq(0i64),
                    points_records::created_at.eq(now),
                ))
                .execute(c)
                .await?;
            diesel::sql_query(
                "UPDATE user_points SET available = ?, total_earned = total_earned + ?, \
                 version = version + 1 WHERE user_id = ? AND version = ?",
            )
            .bind::<BigInt, _>(balance)
            .bind::<BigInt, _>(points)
            .bind::<Text, _>(&user)
            .bind::<BigInt, _>(row.version)
            .execute(c)
            .await?;
            Ok(())
        })
        .await
    })?;
    Ok(())
}

use diesel::ExpressionMethods;

async fn seed_summaries(db: &Db, users: &[String]) -> anyhow::Result<()> {
    use points_app::storage::schema::user_points;
    let now = chrono::Utc::now().naive_utc();
    let mut conn = db.write_conn().await?;
    for u in users {
        with_conn!(&mut conn, |c| {
            diesel::insert_or_ignore_into(user_points::table)
                .values((user_points::user_id.eq(u), user_points::updated_at.eq(now)))
                .execute(c)
                .await
        })?;
    }
    Ok(())
}

async fn baseline_run(db: &Db, mysql: bool, calls: Vec<(String, String)>) -> anyhow::Result<Run> {
    let mut users: Vec<String> = calls.iter().map(|(u, _)| u.clone()).collect();
    users.sort();
    users.dedup();
    seed_summaries(db, &users).await?;
    let start = Instant::now();
    let n = calls.len();
    let failures = futures_util::stream::iter(calls)
        .map(|(user, order)| async move { baseline_award(db, &user, &order, mysql).await })
        .buffer_unordered(64)
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await;
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(failures == 0, "{failures} baseline awards failed");
    Ok(Run {
        awards: n,
        secs,
        per_commit: 1.0,
    })
}

fn report(name: &str, actor: &Run, base: &Run) {
    println!(
        "{name:<22} actor: {:>8.0} awards/s ({:>6} in {:>6.2}s, {:>7.1} awards/commit) | row-lock: {:>7.0} awards/s ({:>5} in {:>6.2}s) | ratio {:>5.1}x",
        actor.rate(),
        actor.awards,
        actor.secs,
        actor.per_commit,
        base.rate(),
        base.awards,
        base.secs,
        actor.rate() / base.rate()
    );
}

async fn run() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL").unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("points_bench_{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let (db_url, mysql_db) = if url.starts_with("mysql://") {
        let name = format!("points_bench_{}", uuid::Uuid::now_v7().simple());
        let mut admin = diesel_async::AsyncMysqlConnection::establish(&url).await?;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let base = url
            .rsplit_once('/')
            .map_or(url.as_str(), |(b, _)| b)
            .to_string();
        (format!("{base}/{name}"), Some((admin, name)))
    } else {
        (
            format!("sqlite://{}", dir.join("bench.sqlite").display()),
            None,
        )
    };
    let result = bench(&db_url, &dir, mysql_db.is_some()).await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Some((mut admin, name)) = mysql_db {
        diesel::sql_query(format!("DROP DATABASE {name}"))
            .execute(&mut admin)
            .await?;
    }
    result
}

async fn bench(db_url: &str, dir: &std::path::Path, mysql: bool) -> anyhow::Result<()> {
    let vars = vec![
        ("DATABASE_URL".to_string(), db_url.to_string()),
        ("APP_DATA_DIR".to_string(), dir.display().to_string()),
        ("APP_DB_POOL_SIZE".to_string(), "16".to_string()),
        ("APP_POINTS_EXPIRY_SWEEP_SECS".to_string(), "0".to_string()),
        ("APP_ACTOR_IDLE_SECS".to_string(), "3600".to_string()),
    ];
    let settings = Settings::load_from(&vars)?;
    let db = Db::connect(&settings).await.context("database")?;
    let metrics = Metrics::new()?;
    let config = PointsConfig::from_settings(&settings);
    let svc = PointsService::start(db.clone(), config, &metrics, Arc::new(SystemClock))?;
    println!(
        "points_bench: backend={} cpus={} (release={})",
        if mysql { "mysql" } else { "sqlite" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        !cfg!(debug_assertions)
    );

    let hot = env_usize("BENCH_HOT", 30_000);
    let users = env_usize("BENCH_USERS", 10_000);
    let base_n = env_usize("BENCH_BASELINE", 3_000);

    // Warm-up: connections, statement caches, the rule cache.
    actor_run(
        &svc,
        &metrics,
        (0..200)
            .map(|i| (format!("warm{}", i % 20), format!("w{i}")))
            .collect(),
    )
    .await?;

    let a_hot = actor_run(
        &svc,
        &metrics,
        (0..hot)
            .map(|i| ("hot".to_string(), format!("h{i}")))
            .collect(),
    )
    .await?;
    let a_many = actor_run(
        &svc,
        &metrics,
        (0..users)
            .map(|i| (format!("user{i}"), format!("m{i}")))
            .collect(),
    )
    .await?;
    let b_hot = baseline_run(
        &db,
        mysql,
        (0..base_n)
            .map(|i| ("bhot".to_string(), format!("bh{i}")))
            .collect(),
    )
    .await?;
    let b_many = baseline_run(
        &db,
        mysql,
        (0..base_n)
            .map(|i| (format!("buser{i}"), format!("bm{i}")))
            .collect(),
    )
    .await?;
    report("(a) one hot user", &a_hot, &b_hot);
    report("(b) 10,000 users", &a_many, &b_many);

    let audit = svc.audit("hot").await?;
    anyhow::ensure!(
        audit.ok && audit.available == i64::try_from(hot)?,
        "hot user audit failed: {audit:?}"
    );
    let all = svc.audit_all().await?;
    anyhow::ensure!(all.ok, "ledger audit failed: {:?}", all.problems);
    println!(
        "audit: ok ({} users, {} ledger rows, hot user exact at {})",
        all.users, all.records, audit.available
    );
    svc.shutdown().await;

    // Memory: idle actors, each with its state loaded (a balance query loads it).
    let idle = env_usize("BENCH_IDLE", 100_000);
    let mut config = PointsConfig::from_settings(&settings);
    config.idle = Duration::from_secs(3600);
    let metrics2 = Metrics::new()?;
    // A fresh pool: SQLite connections run their blocking work on the runtime they were
    // made on, and the first engine's actor threads (runtimes) are gone.
    let db = Db::connect(&settings).await.context("database")?;
    let svc = PointsService::start(db, config, &metrics2, Arc::new(SystemClock))?;
    // One actor first, so one-time allocations (arbiters, pools) are not counted.
    svc.actor_balance("idle-warm").await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = resident_bytes();
    let start = Instant::now();
    let failures = futures_util::stream::iter(0..idle)
        .map(|i| {
            let svc = svc.clone();
            async move { svc.actor_balance(&format!("idle{i}")).await }
        })
        .buffer_unordered(512)
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await;
    anyhow::ensure!(failures == 0, "{failures} idle actors failed to start");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = resident_bytes();
    let delta = after.saturating_sub(before);
    println!(
        "idle actors: {} alive after {:.1}s; resident {:.1} MiB -> {:.1} MiB: +{:.1} MiB, {:.0} bytes per idle actor",
        svc.active_actors(),
        start.elapsed().as_secs_f64(),
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        delta as f64 / 1048576.0,
        delta as f64 / idle.max(1) as f64
    );
    svc.shutdown().await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    actix_rt::System::new().block_on(run())
}
