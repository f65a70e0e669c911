//! Orders orphaned by an instance that died: real server processes on one database, sharing
//! one standalone WeChat sandbox process. An order created on instance A, which is then
//! SIGKILLed, is closed at WeChat at its expiry by another live instance (exactly one of two
//! calls WeChat); and a payment whose notification never arrives is found by another
//! instance's re-query and paid, its points awarded once.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use points_app::domain::order::OrderStatus;
use points_app::storage::{Db, orders};
use serde_json::{Value, json};

use crate::crash::{ChildServer, start};
use crate::helpers::{Server, TestDatabase, test_settings};
use crate::identity::{approved_merchant, get_auth, login, signed_request};
use crate::payments::{balance, payment_code};

/// The standalone sandbox binary as a child process; killed when dropped.
struct SandboxProcess {
    child: Child,
    url: String,
    /// `WECHAT_*` settings that point a server at it (from `sandbox env`).
    env: Vec<(String, String)>,
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sandbox(keys_dir: &Path) -> SandboxProcess {
    let bin = env!("CARGO_BIN_EXE_sandbox");
    let mut child = Command::new(bin)
        .args(["--port", "0", "--time-scale", "0.001", "--keys-dir"])
        .arg(keys_dir)
        .env("APP_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sandbox binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let url = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "sandbox exited before listening"
        );
        if let Some(rest) = line.split("sandbox listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let out = Command::new(bin)
        .args(["env", "--base-url", &url, "--keys-dir"])
        .arg(keys_dir)
        .output()
        .expect("sandbox env runs");
    assert!(out.status.success(), "{out:?}");
    let env = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.strip_prefix("export ")?.split_once('=')?;
            Some((k.to_string(), v.trim_matches('\'').to_string()))
        })
        .collect::<Vec<_>>();
    assert!(env.iter().any(|(k, _)| k == "WECHAT_MCHID"), "{env:?}");
    SandboxProcess { child, url, env }
}

/// An instance of the server binary pointed at the shared sandbox, rescanning every second.
/// Notifications go to a closed port: WeChat's notification never reaches any instance.
fn instance(
    db: &TestDatabase,
    data_dir: &Path,
    prefix: &str,
    sandbox: &SandboxProcess,
    extra: &[(&str, &str)],
) -> ChildServer {
    let mut env: Vec<(&str, &str)> = sandbox
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.extend([
        ("WECHAT_NOTIFY_BASE_URL", "http://127.0.0.1:9"),
        ("APP_SUPERVISOR_RESCAN_SECS", "1"),
        ("APP_SUPERVISOR_QUERY_AFTER_SECS", "1"),
    ]);
    env.extend_from_slice(extra);
    start(db, data_dir, prefix, &env)
}

async fn create_order(app: &ChildServer, shopper: &crate::identity::Session, code: &str) -> String {
    let body = json!({"payment_code_id": code, "amount_fen": 4_321});
    let res = signed_request(app, shopper, "POST", "/api/payments", Some(&body))
        .header("Idempotency-Key", uuid::Uuid::now_v7().simple().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let order: Value = res.json().await.unwrap();
    assert_eq!(order["status"], "paying", "{order}");
    order["order_no"].as_str().unwrap().to_string()
}

fn sigkill(app: &mut ChildServer) {
    app.child.kill().unwrap();
    let status = app.child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status:?}");
}

/// Waits (bounded) until the stored order reaches `want`.
async fn wait_status(store: &Db, order_no: &str, want: OrderStatus) {
    let mut status = None;
    for _ in 0..300 {
        status = orders::find(store, order_no)
            .await
            .unwrap()
            .map(|o| o.status().unwrap());
        if status == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("order {order_no} stayed {status:?}, expected {want}");
}

/// The sum of the series on one instance's `/metrics` whose line starts with `prefix`.
async fn metric_sum(app: &ChildServer, prefix: &str) -> f64 {
    let text = app
        .client()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The sum over outcomes of `wechat_calls_total{call=<call>}` on one instance.
async fn wechat_calls(app: &ChildServer, call: &str) -> f64 {
    metric_sum(app, &format!("wechat_calls_total{{call=\"{call}\"")).await
}

async fn adopted(app: &ChildServer) -> f64 {
    metric_sum(app, "payment_orders_adopted_total ").await
}

#[actix_web::test]
async fn an_order_of_a_killed_instance_is_closed_at_wechat_by_exactly_one_other() {
    let db = TestDatabase::create();
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let prefix = format!("t{}", uuid::Uuid::now_v7().simple());
    let sandbox = start_sandbox(&dirs[3].path().join("keys"));
    // Orders live 4 s. B and C run beside A from the start, so they learn of A's order only
    // through their rescans (a restart would reload it anyway). They do not query it before
    // its expiry: the sandbox expires it too, and a query would then close it without a
    // close call.
    let ttl = [
        ("APP_ORDER_TTL_SECS", "4"),
        ("APP_SUPERVISOR_QUERY_AFTER_SECS", "60"),
    ];
    let mut a = instance(&db, dirs[0].path(), &prefix, &sandbox, &ttl);
    let b = instance(&db, dirs[1].path(), &prefix, &sandbox, &ttl);
    let c = instance(&db, dirs[2].path(), &prefix, &sandbox, &ttl);

    let (owner, merchant) = approved_merchant(&a, "m-orphan-close").await;
    let code = payment_code(&a, &owner, &merchant, None).await;
    let shopper = login(&a, "shopper-orphan-close").await;
    let order_no = create_order(&a, &shopper, &code).await;
    sigkill(&mut a);

    let check = tempfile::tempdir().unwrap();
    let store = Db::connect(&test_settings(&db, check.path()))
        .await
        .unwrap();
    assert_eq!(
        orders::find(&store, &order_no)
            .await
            .unwrap()
            .unwrap()
            .status()
            .unwrap(),
        OrderStatus::Paying,
        "A died with the order open"
    );
    wait_status(&store, &order_no, OrderStatus::Closed).await;

    // Closed at WeChat too: the shopper can no longer pay it there.
    let pay = reqwest::Client::new()
        .post(format!("{}/sandbox/orders/{order_no}/pay", sandbox.url))
        .send()
        .await
        .unwrap();
    assert!(pay.status().is_client_error(), "{:?}", pay.text().await);

    // Exactly one of the two live instances asked WeChat to close it; both may have found
    // it (the one that lost the lease found it held or already closed).
    let closes = wechat_calls(&b, "close").await + wechat_calls(&c, "close").await;
    assert_eq!(closes, 1.0, "one close call at WeChat across B and C");
    assert!(adopted(&b).await + adopted(&c).await >= 1.0);
    // Nothing more happens on later rescans.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = wechat_calls(&b, "close").await + wechat_calls(&c, "close").await;
    assert_eq!(later, 1.0);
}

#[actix_web::test]
async fn a_missed_notification_is_recovered_by_another_instances_query_and_awards_once() {
    let db = TestDatabase::create();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let prefix = format!("t{}", uuid::Uuid::now_v7().simple());
    let sandbox = start_sandbox(&dirs[2].path().join("keys"));
    // A re-queries only after a minute (the default), so it cannot recover the payment
    // itself before it dies; B asks after 1 s.
    let mut a = instance(
        &db,
        dirs[0].path(),
        &prefix,
        &sandbox,
        &[("APP_SUPERVISOR_QUERY_AFTER_SECS", "60")],
    );
    let b = instance(&db, dirs[1].path(), &prefix, &sandbox, &[]);

    let (owner, merchant) = approved_merchant(&a, "m-orphan-paid").await;
    let code = payment_code(&a, &owner, &merchant, None).await;
    let shopper = login(&a, "shopper-orphan-paid").await;
    let order_no = create_order(&a, &shopper, &code).await;

    // The shopper pays at WeChat; its notification goes to a closed port and never lands.
    let pay = reqwest::Client::new()
        .post(format!("{}/sandbox/orders/{order_no}/pay", sandbox.url))
        .send()
        .await
        .unwrap();
    assert!(pay.status().is_success(), "{:?}", pay.text().await);
    sigkill(&mut a);

    let check = tempfile::tempdir().unwrap();
    let store = Db::connect(&test_settings(&db, check.path()))
        .await
        .unwrap();
    wait_status(&store, &order_no, OrderStatus::Paid).await;

    // 4,321 fen earn 43 points, once, however many rescans follow.
    let mut points = 0;
    for _ in 0..100 {
        points = balance(&b, &shopper).await;
        if points != 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(points, 43);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(balance(&b, &shopper).await, 43);
    let history: Value = get_auth(&b, &shopper.access_token, "/api/points/history")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        history["items"].as_array().unwrap().len(),
        1,
        "one ledger row: {history}"
    );
    assert!(wechat_calls(&b, "query").await >= 1.0, "B asked WeChat");
    assert_eq!(adopted(&b).await, 1.0, "B adopted A's order once");
}
