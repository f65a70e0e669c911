//! `loadtest`: the load generator, ledger audit and report of points-app.
//!
//! `loadtest/run.sh` starts the database, Redis, the sandbox and the servers and then calls
//! `loadtest run`; `loadtest proxy` is the round-robin proxy in front of three instances;
//! `loadtest audit` runs the audit alone. See loadtest/README.md.

mod api;
mod audit;
mod cost;
mod procmon;
mod proxy;
mod report;
mod scenarios;
mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use parking_lot::Mutex;

use crate::api::Api;
use crate::scenarios::{Options, SharedTally, Tally};
use crate::stats::Recorder;

#[derive(Parser)]
#[command(about = "Load test, ledger audit and report for points-app")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Scenario {
    /// (a) shoppers through the whole flow
    Full,
    /// (b) many clients awarding and deducting on one user
    Hot,
    /// (c) balance and history queries
    Read,
    /// (d) signed, encrypted payment notifications at the highest rate
    Notify,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs a scenario against running servers, then waits, audits and writes the report.
    Run(Box<RunArgs>),
    /// Round-robin TCP proxy on loopback.
    Proxy {
        #[arg(long, default_value = "127.0.0.1:18080")]
        listen: String,
        #[arg(long, required = true)]
        upstream: Vec<String>,
    },
    /// The ledger audit alone.
    Audit {
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mul) = if let Some(v) = s.strip_suffix("ms") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('m') {
        (v, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("bad duration {s} (e.g. 60s, 2m, 500ms)"))?;
    if !(0.0..=3600.0 * 6.0).contains(&(v * mul)) {
        return Err(format!("duration {s} out of range"));
    }
    Ok(Duration::from_secs_f64(v * mul))
}

#[derive(Parser, Debug)]
struct RunArgs {
    #[arg(long, value_enum, default_value = "full")]
    scenario: Scenario,
    /// Base URL of the server (or proxy). Only loopback addresses are accepted.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    target: String,
    /// Base URL of the WeChat sandbox.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    sandbox: String,
    /// Virtual users (full, read), concurrent clients (hot), users holding the orders (notify).
    #[arg(long, default_value_t = 1000)]
    users: usize,
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    ramp_up: Duration,
    /// Think time between iterations (jittered +-50%).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    think: Duration,
    /// Hard cap on requests sent by the run (setup included).
    #[arg(long, default_value_t = 2_000_000)]
    max_requests: u64,
    #[arg(long, default_value_t = 10)]
    merchants: usize,
    /// Full flow: share of iterations that spend points, and that get refunded.
    #[arg(long, default_value_t = 0.3)]
    spend: f64,
    #[arg(long, default_value_t = 0.1)]
    refund: f64,
    /// Hot user: share of operations that are awards (payments); the rest deduct.
    #[arg(long, default_value_t = 0.5)]
    award_ratio: f64,
    /// Notify: orders to pay (spread over --users users) and concurrent senders.
    #[arg(long, default_value_t = 20_000)]
    orders: usize,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Sandbox notification faults for every payment: extra copies and a hold-back.
    #[arg(long, default_value_t = 0)]
    duplicates: u32,
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    #[arg(
        long,
        env = "LOADTEST_ADMIN_PASSWORD",
        default_value = "load-test-admin-password"
    )]
    admin_password: String,
    /// The database the servers use, for the audit (and the notify scenario's progress).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Sandbox keys directory (notify scenario signs with its platform key).
    #[arg(long, default_value = "./data/sandbox")]
    keys_dir: String,
    /// Directory of `*.pid` files of the processes to watch (CPU, RSS).
    #[arg(long)]
    pid_dir: Option<PathBuf>,
    /// Each instance's own URL for /metrics before and after.
    #[arg(long)]
    metrics_url: Vec<String>,
    #[arg(long, default_value = "loadtest/reports")]
    report_root: PathBuf,
    /// How the run was started, for the report.
    #[arg(long, default_value = "")]
    command: String,
    /// Free text describing the set-up (instances, database, faults) for the report.
    #[arg(long, default_value = "{}")]
    setup: String,
    /// Keep the `payment_velocity` risk rule (20 payments an hour per user) switched on.
    #[arg(long)]
    keep_risk_rules: bool,
    /// Also write the CPU-per-paid-order lines to this file (run.sh prints them at its end).
    #[arg(long)]
    cost_out: Option<PathBuf>,
    /// Longest wait for points after a payment.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    award_timeout: Duration,
}

fn loopback(url: &str) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host = rest.split(['/', ':']).next().unwrap_or("");
    host.starts_with("127.") || host == "localhost" || rest.starts_with("[::1]")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadtest: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.cmd {
            Cmd::Proxy { listen, upstream } => proxy::run(&listen, upstream).await.map(|_| true),
            Cmd::Audit { database_url } => {
                let db = audit::connect(&database_url).await?;
                let checks = audit::run(&db, None, None).await?;
                Ok(print_checks(&checks))
            }
            Cmd::Run(args) => run(*args).await,
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn print_checks(checks: &[audit::Check]) -> bool {
    println!("audit:");
    for c in checks {
        println!(
            "  {} {:<40} {}{}",
            if c.ok { "pass" } else { "FAIL" },
            c.name,
            c.checked,
            if c.ok {
                String::new()
            } else {
                format!(
                    " -> {} problems: {}",
                    c.problem_count,
                    c.problems.join("; ")
                )
            }
        );
    }
    let ok = checks.iter().all(|c| c.ok);
    println!("audit {}", if ok { "PASSED" } else { "FAILED" });
    ok
}

async fn fetch_metrics(http: &reqwest::Client, urls: &[String]) -> Vec<BTreeMap<String, f64>> {
    let mut out = Vec::new();
    for u in urls {
        let text = match http.get(format!("{u}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        out.push(report::parse_metrics(&text));
    }
    out
}

/// Prints the live line every 2 s until stopped.
fn live(
    rec: Recorder,
    active: Arc<std::sync::atomic::AtomicUsize>,
    total: usize,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        tick.tick().await;
        loop {
            tick.tick().await;
            let (n, e, rate, p99) = rec.live();
            eprintln!(
                "[{:>5.0}s] vus {:>5}/{:<5} requests {:>8} errors {:>6} rate {:>6}/s p99(5s) {:>8.1} ms",
                rec.start.elapsed().as_secs_f64(),
                active.load(std::sync::atomic::Ordering::Relaxed),
                total,
                n,
                e,
                rate,
                p99
            );
        }
    })
}

async fn run(a: RunArgs) -> anyhow::Result<bool> {
    for u in [&a.target, &a.sandbox]
        .into_iter()
        .chain(a.metrics_url.iter())
    {
        if !loopback(u) {
            anyhow::bail!(
                "{u} is not on loopback: the load test only sends traffic to this machine"
            );
        }
    }
    let started_at = chrono::Utc::now();
    let run_id = started_at.format("%H%M%S").to_string();
    let mut pay_query = Vec::new();
    if a.duplicates > 0 {
        pay_query.push(format!("duplicates={}", a.duplicates));
    }
    if a.delay_ms > 0 {
        pay_query.push(format!("delay_ms={}", a.delay_ms));
    }
    let opts = Arc::new(Options {
        users: a.users.max(1),
        duration: a.duration,
        ramp_up: a.ramp_up,
        think: a.think,
        merchants: a.merchants.max(1),
        spend: a.spend,
        refund: a.refund,
        pay_query: if pay_query.is_empty() {
            String::new()
        } else {
            format!("?{}", pay_query.join("&"))
        },
        admin_password: a.admin_password.clone(),
        run_id,
        award_ratio: a.award_ratio,
        orders: a.orders,
        concurrency: a.concurrency.max(1),
        keys_dir: a.keys_dir.clone(),
        award_timeout: a.award_timeout,
    });
    let rec = Recorder::new(a.max_requests);
    let api = Api::new(
        a.target.clone(),
        a.sandbox.clone(),
        rec.clone(),
        Duration::from_secs(30),
    )?;
    let db = audit::connect(&a.database_url).await?;
    if !a.keep_risk_rules {
        // A virtual user pays far faster than a shopper: the velocity rule is switched off
        // through the admin API, as an operator would.
        let admin = api
            .admin_login(&opts.admin_password)
            .await
            .map_err(|e| anyhow::anyhow!("admin login: {e:?}"))?;
        api.disable_risk_rule(&admin, "payment_velocity")
            .await
            .map_err(|e| anyhow::anyhow!("switching the payment_velocity rule off: {e:?}"))?;
    }
    let scenario_name = format!("{:?}", a.scenario).to_lowercase();
    eprintln!(
        "loadtest: {scenario_name} against {} (sandbox {}), {opts:?}",
        a.target, a.sandbox
    );

    let metrics_before = fetch_metrics(&api.http, &a.metrics_url).await;
    let monitor = procmon::Monitor::start(a.pid_dir.clone());
    let tally: SharedTally = Arc::new(Mutex::new(Tally::default()));
    let merchants = Arc::new(scenarios::setup_merchants(&api, &opts, opts.merchants).await?);
    eprintln!(
        "loadtest: {} merchants approved with payment codes",
        merchants.len()
    );

    let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut figures: BTreeMap<String, f64> = BTreeMap::new();
    let live_task = live(rec.clone(), active.clone(), opts.users);
    // Every run is bounded: the scenario's deadline, plus a hard stop a little after it.
    let hard_stop = opts.ramp_up + opts.duration + Duration::from_secs(300);
    let scenario = run_scenario(
        a.scenario,
        &api,
        &opts,
        &merchants,
        &tally,
        &active,
        &db,
        &mut figures,
    );
    // CPU of every process under test, just before the load and just after it.
    let cpu_before = cost::snapshot(a.pid_dir.as_deref());
    let db_before = audit::db_counters(&db, &a.database_url).await;
    let measured_from = Instant::now();
    if tokio::time::timeout(hard_stop, scenario).await.is_err() {
        rec.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        eprintln!("loadtest: hard time limit reached; stopping the scenario");
    }
    let elapsed = measured_from.elapsed();
    let cpu_after = cost::snapshot(a.pid_dir.as_deref());
    let db_after = audit::db_counters(&db, &a.database_url).await;
    live_task.abort();
    rec.stop.store(true, std::sync::atomic::Ordering::Relaxed);

    // Let notifications, awards and clawbacks finish: the outbox empties, the sandbox has
    // nothing pending.
    let settle_from = Instant::now();
    let mut pending = -1;
    while settle_from.elapsed() < Duration::from_secs(120) {
        pending = audit::pending_work(&db).await.unwrap_or(-1);
        let undelivered = sandbox_pending(&api).await;
        if pending == 0 && undelivered == 0 {
            break;
        }
        eprintln!("loadtest: settling: {pending} outbox rows, {undelivered} notifications pending");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    figures.insert("settle_seconds".into(), settle_from.elapsed().as_secs_f64());
    eprintln!(
        "loadtest: settled in {:.1}s (outbox {pending})",
        settle_from.elapsed().as_secs_f64()
    );
    let usage = monitor.finish();
    let metrics_after = fetch_metrics(&api.http, &a.metrics_url).await;
    // Merchant statistics through the merchants' own endpoint (a fresh budget: the run's
    // request cap must not starve the audit).
    let stats_api = Api::new(
        a.target.clone(),
        a.sandbox.clone(),
        Recorder::new(100_000),
        Duration::from_secs(30),
    )?;
    let stats = merchant_stats(&stats_api, &merchants).await;
    let t = std::mem::take(&mut *tally.lock());
    let checks = audit::run(&db, Some(&t), stats.as_ref()).await?;
    let ok = print_checks(&checks);
    figures.insert("client_paid_orders".into(), t.paid_orders as f64);
    figures.insert("client_refunds".into(), t.refunds as f64);
    figures.insert("client_deducts".into(), t.deducts as f64);
    figures.insert(
        "client_deducts_refused_insufficient".into(),
        t.deduct_refused_insufficient as f64,
    );
    let paid_in_db = match audit::paid_orders(&db).await {
        Ok(n) => Some(n),
        Err(e) => {
            eprintln!("loadtest: cannot count the paid orders in the database: {e:#}");
            None
        }
    };
    // The database's work per paid order (MySQL's server-wide counters over the load).
    if let (Some(before), Some(after)) = (&db_before, &db_after)
        && t.paid_orders > 0
    {
        for name in audit::DB_COUNTERS {
            if let (Some(b), Some(e)) = (before.get(name), after.get(name)) {
                figures.insert(
                    format!("db_{}_per_paid_order", name.to_ascii_lowercase()),
                    (e - b) as f64 / t.paid_orders as f64,
                );
            }
        }
    }
    let redis_used = a
        .pid_dir
        .as_ref()
        .is_some_and(|d| d.join("redis.pid").exists());
    let cpu_cost = cost::compute(
        &cpu_before,
        &cpu_after,
        t.paid_orders,
        paid_in_db,
        a.database_url.starts_with("mysql"),
        redis_used,
    );
    let summary = rec.summary(elapsed);
    let report = report::Report {
        scenario: scenario_name.clone(),
        started_at: started_at.to_rfc3339(),
        command: a.command.clone(),
        setup: serde_json::from_str(&a.setup).unwrap_or(serde_json::Value::String(a.setup.clone())),
        summary,
        figures,
        usage,
        cpu_cost,
        audit: checks,
        audit_ok: ok,
        metrics_delta: report::metrics_delta(&metrics_before, &metrics_after),
    };
    let dir = a.report_root.join(format!(
        "{}-{}",
        started_at.format("%Y%m%dT%H%M%SZ"),
        scenario_name
    ));
    report::write(&dir, &report)?;
    for (i, (b, after)) in metrics_before.iter().zip(&metrics_after).enumerate() {
        let dump = |m: &BTreeMap<String, f64>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}\n"))
                .collect::<String>()
        };
        let _ = std::fs::write(dir.join(format!("metrics-before-{i}.txt")), dump(b));
        let _ = std::fs::write(dir.join(format!("metrics-after-{i}.txt")), dump(after));
    }
    let s = &report.summary;
    println!(
        "{scenario_name}: {} requests, {} errors, {:.0} req/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; audit {}",
        s.requests,
        s.errors,
        s.throughput_per_s,
        s.latency_all.p50_ms,
        s.latency_all.p99_ms,
        s.latency_all.max_ms,
        if ok { "passed" } else { "FAILED" }
    );
    for (k, v) in &report.figures {
        println!("  {k}: {v:.1}");
    }
    let cost_text = report.cpu_cost.text();
    print!("{cost_text}");
    if let Some(path) = &a.cost_out
        && let Err(e) = std::fs::write(path, &cost_text)
    {
        eprintln!("loadtest: cannot write {}: {e}", path.display());
    }
    println!("report: {}", dir.join("report.md").display());
    Ok(ok)
}

/// Deliveries the sandbox still has to make (0 when it cannot be asked).
async fn sandbox_pending(api: &Api) -> usize {
    let Ok(res) = api
        .http
        .get(format!("{}/sandbox/notifications", api.sandbox))
        .send()
        .await
    else {
        return 0;
    };
    let Ok(v) = res.json::<serde_json::Value>().await else {
        return 0;
    };
    let list = v
        .as_array()
        .or_else(|| v["items"].as_array())
        .or_else(|| v["deliveries"].as_array());
    list.map_or(0, |l| l.iter().filter(|d| d["status"] == "pending").count())
}

async fn merchant_stats(
    api: &Api,
    merchants: &[scenarios::Merchant],
) -> Option<audit::MerchantStats> {
    let today = chrono::Utc::now()
        .with_timezone(&points_app::domain::time::cst())
        .date_naive();
    let from = today - chrono::Duration::days(1);
    let to = today + chrono::Duration::days(1);
    let mut out = audit::MerchantStats::new();
    for m in merchants {
        let path = format!("/api/merchants/{}/stats?from={from}&to={to}", m.id);
        let body = api
            .send("merchant_stats", api.get(&m.owner, &path), &[])
            .await
            .ok()?;
        let mut sum = (0, 0, 0, 0);
        for d in body["items"].as_array().into_iter().flatten() {
            sum.0 += d["order_count"].as_i64().unwrap_or(0);
            sum.1 += d["amount_fen"].as_i64().unwrap_or(0);
            sum.2 += d["refund_fen"].as_i64().unwrap_or(0);
            sum.3 += d["points_awarded"].as_i64().unwrap_or(0);
        }
        out.insert(m.id.clone(), sum);
    }
    Some(out)
}

#[allow(clippy::too_many_arguments)]
async fn run_scenario(
    scenario: Scenario,
    api: &Api,
    opts: &Arc<Options>,
    merchants: &Arc<Vec<scenarios::Merchant>>,
    tally: &SharedTally,
    active: &Arc<std::sync::atomic::AtomicUsize>,
    db: &points_app::storage::Db,
    figures: &mut BTreeMap<String, f64>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let n = opts.users;
    match scenario {
        Scenario::Full => {
            let deadline = Instant::now() + opts.ramp_up + opts.duration;
            let mut tasks = Vec::new();
            for vu in 0..n {
                let (api, opts2, m, t, act) = (
                    api.clone(),
                    opts.clone(),
                    merchants.clone(),
                    tally.clone(),
                    active.clone(),
                );
                let delay = opts.ramp_up.mul_f64(vu as f64 / n as f64);
                tasks.push(tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    act.fetch_add(1, Relaxed);
                    scenarios::full_vu(api, opts2, m, t, vu, deadline).await;
                    act.fetch_sub(1, Relaxed);
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        }
        Scenario::Hot => {
            let Ok(user) = api.login(&format!("lt{}-hot", opts.run_id)).await else {
                eprintln!("loadtest: hot user login failed");
                return;
            };
            let deadline = Instant::now() + opts.ramp_up + opts.duration;
            let mut tasks = Vec::new();
            for c in 0..n {
                let (api, opts2, m, t, act, u) = (
                    api.clone(),
                    opts.clone(),
                    merchants.clone(),
                    tally.clone(),
                    active.clone(),
                    user.clone(),
                );
                let delay = opts.ramp_up.mul_f64(c as f64 / n as f64);
                tasks.push(tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    act.fetch_add(1, Relaxed);
                    scenarios::hot_client(api, opts2, u, m, t, c, deadline).await;
                    act.fetch_sub(1, Relaxed);
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
            // The client knows what it deducted but not the order in which awards and
            // deductions met the balance: compare the user's used total with the deductions
            // it saw (audit), not the balance.
            let mut t = tally.lock();
            t.expected_points.remove(&user.user_id);
            t.hot_user_uncertain = t.uncertain_users.contains(&user.user_id);
            t.uncertain_users.insert(user.user_id.clone());
        }
        Scenario::Read => {
            let setup_from = Instant::now();
            let sem = Arc::new(tokio::sync::Semaphore::new(50));
            let mut tasks = Vec::new();
            for i in 0..n {
                let (api, opts2, m, t, sem) = (
                    api.clone(),
                    opts.clone(),
                    merchants.clone(),
                    tally.clone(),
                    sem.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let _permit = sem.acquire().await.ok()?;
                    scenarios::setup_reader(&api, &opts2, &m, &t, i).await
                }));
            }
            let mut sessions = Vec::new();
            for t in tasks {
                if let Ok(Some(s)) = t.await {
                    sessions.push(s);
                }
            }
            figures.insert("setup_seconds".into(), setup_from.elapsed().as_secs_f64());
            eprintln!(
                "loadtest: {} readers ready in {:.1}s",
                sessions.len(),
                setup_from.elapsed().as_secs_f64()
            );
            let deadline = Instant::now() + opts.ramp_up + opts.duration;
            let count = sessions.len().max(1);
            let mut tasks = Vec::new();
            for (i, s) in sessions.into_iter().enumerate() {
                let (api, opts2, act) = (api.clone(), opts.clone(), active.clone());
                let delay = opts.ramp_up.mul_f64(i as f64 / count as f64);
                tasks.push(tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    act.fetch_add(1, Relaxed);
                    scenarios::reader(api, opts2, s, deadline).await;
                    act.fetch_sub(1, Relaxed);
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        }
        Scenario::Notify => notify(api, opts, merchants, tally, db, figures).await,
    }
}

/// (d) Pre-create orders over many users, build their notifications (signed and encrypted
/// as the sandbox does), post them at the highest rate `--concurrency` senders reach, and
/// time how long until every award is in the ledger.
async fn notify(
    api: &Api,
    opts: &Arc<Options>,
    merchants: &Arc<Vec<scenarios::Merchant>>,
    tally: &SharedTally,
    db: &points_app::storage::Db,
    figures: &mut BTreeMap<String, f64>,
) {
    let keys = match points_app::sandbox::SandboxKeys::load_or_generate(std::path::Path::new(
        &opts.keys_dir,
    )) {
        Ok(k) => Arc::new(k),
        Err(e) => {
            eprintln!(
                "loadtest: cannot read the sandbox keys in {}: {e}",
                opts.keys_dir
            );
            return;
        }
    };
    let setup_from = Instant::now();
    let users = opts.users.max(1);
    let per_user = opts.orders.div_ceil(users);
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for u in 0..users {
        let (api, opts2, m, sem, keys) = (
            api.clone(),
            opts.clone(),
            merchants.clone(),
            sem.clone(),
            keys.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.ok()?;
            let name = format!("lt{}-n{u}", opts2.run_id);
            let code = format!("test-{name}.{}", uuid::Uuid::now_v7().simple());
            let body = api
                .send(
                    "login",
                    api.http
                        .post(api.url("/api/auth/wechat-login"))
                        .json(&serde_json::json!({"code": code})),
                    &[],
                )
                .await
                .ok()?;
            let s = api::session_of(&body)?;
            let openid = points_app::sandbox::mini_api::openid_for(&keys.appid, &name);
            let mut orders = Vec::new();
            for k in 0..per_user {
                let m = &m[(u + k) % m.len()];
                let amount = 100 + ((u * 7919 + k * 104_729) % 49_900) as i64;
                let body = serde_json::json!({"payment_code_id": m.code, "amount_fen": amount});
                let req = api
                    .signed(&s, reqwest::Method::POST, "/api/payments", &body)
                    .header(
                        "Idempotency-Key",
                        format!("lt-{}", uuid::Uuid::now_v7().simple()),
                    );
                if let Ok(o) = api.send("create_payment", req, &[]).await
                    && let Some(no) = o["order_no"].as_str()
                {
                    orders.push((
                        no.to_string(),
                        amount,
                        openid.clone(),
                        m.id.clone(),
                        s.user_id.clone(),
                    ));
                }
            }
            Some(orders)
        }));
    }
    let mut orders = Vec::new();
    for t in tasks {
        if let Ok(Some(list)) = t.await {
            orders.extend(list);
        }
    }
    orders.truncate(opts.orders);
    let created_in = setup_from.elapsed().as_secs_f64();
    eprintln!(
        "loadtest: {} orders created in {created_in:.1}s; signing notifications",
        orders.len()
    );
    figures.insert("orders_created".into(), orders.len() as f64);
    figures.insert("order_creation_seconds".into(), created_in);
    // Sign on every core, before the clock starts.
    let sign_from = Instant::now();
    let chunks: Vec<Vec<(usize, String, i64, String)>> = {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut chunks = vec![Vec::new(); cores];
        for (i, (no, amount, openid, _, _)) in orders.iter().enumerate() {
            chunks[i % cores].push((i, no.clone(), *amount, openid.clone()));
        }
        chunks
    };
    let mut handles = Vec::new();
    for chunk in chunks {
        let keys = keys.clone();
        handles.push(tokio::task::spawn_blocking(move || {
            chunk
                .into_iter()
                .filter_map(|(i, no, amount, openid)| {
                    scenarios::build_notice(&keys, &no, amount, &openid, i as u64)
                        .ok()
                        .map(|n| (i, n))
                })
                .collect::<Vec<_>>()
        }));
    }
    let mut prepared = Vec::new();
    for h in handles {
        if let Ok(list) = h.await {
            prepared.extend(list);
        }
    }
    prepared.sort_by_key(|(i, _)| *i);
    eprintln!(
        "loadtest: {} notifications signed in {:.1}s; sending with {} senders",
        prepared.len(),
        sign_from.elapsed().as_secs_f64(),
        opts.concurrency
    );
    let awarded_before = audit::awarded_orders(db).await.unwrap_or(0);
    let queue = Arc::new(Mutex::new(
        prepared
            .into_iter()
            .map(|(_, n)| n)
            .collect::<std::collections::VecDeque<_>>(),
    ));
    let total = queue.lock().len();
    let blast_from = Instant::now();
    let ok_count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut senders = Vec::new();
    for _ in 0..opts.concurrency {
        let (api, queue, ok_count) = (api.clone(), queue.clone(), ok_count.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let Some(n) = queue.lock().pop_front() else {
                    break;
                };
                let mut req = api
                    .http
                    .post(api.url("/api/wechat/pay/notify"))
                    .header("Content-Type", "application/json")
                    .body(n.body);
                for (k, v) in n.headers {
                    req = req.header(k, v);
                }
                match api.send("notify", req, &[]).await {
                    Ok(_) => {
                        ok_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(api::CallError::Stopped) => break,
                    Err(_) => {}
                }
            }
        }));
    }
    for s in senders {
        let _ = s.await;
    }
    let blast = blast_from.elapsed().as_secs_f64();
    let accepted = ok_count.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "loadtest: {accepted}/{total} notifications accepted in {blast:.2}s ({:.0}/s)",
        accepted as f64 / blast.max(0.001)
    );
    // Until every award is in the ledger.
    let want = awarded_before + i64::try_from(accepted).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut visible = awarded_before;
    while Instant::now() < deadline {
        visible = audit::awarded_orders(db).await.unwrap_or(visible);
        if visible >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_visible = blast_from.elapsed().as_secs_f64();
    figures.insert("notifications_sent".into(), total as f64);
    figures.insert("notifications_accepted".into(), accepted as f64);
    figures.insert("notify_blast_seconds".into(), blast);
    figures.insert(
        "notifications_per_second".into(),
        accepted as f64 / blast.max(0.001),
    );
    figures.insert("seconds_until_all_points_visible".into(), all_visible);
    figures.insert(
        "awards_per_second_end_to_end".into(),
        (visible - awarded_before) as f64 / all_visible.max(0.001),
    );
    figures.insert("awards_visible".into(), (visible - awarded_before) as f64);
    // Tally for the audit's client comparison.
    let mut t = tally.lock();
    for (_, amount, _, merchant, user) in &orders {
        let p = scenarios::rule_points(*amount);
        *t.expected_points.entry(user.clone()).or_insert(0) += p;
        let e = t.merchants.entry(merchant.clone()).or_default();
        e.0 += 1;
        e.1 += amount;
    }
    t.paid_orders = accepted;
    t.notified = accepted;
    if accepted as usize != orders.len() {
        // Some answers missing: compare nothing per user.
        let users: Vec<String> = t.expected_points.keys().cloned().collect();
        t.uncertain_users.extend(users);
        let ms: Vec<String> = t.merchants.keys().cloned().collect();
        t.uncertain_merchants.extend(ms);
    }
}
