//! A real crash on the money path: the server binary, run as a child process, is SIGKILLed
//! between the "paid + outbox" commit and the points award (`APP_FAULT_KILL_AT`). After a
//! restart on the same database the points are awarded exactly once, and WeChat's retry of
//! the unanswered notification changes nothing.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use points_app::domain::order::OrderStatus;
use points_app::sandbox::SandboxKeys;
use points_app::storage::{Db, orders, outbox};
use serde_json::{Value, json};

use crate::helpers::{Server, TestDatabase, test_settings};
use crate::identity::{ADMIN_PASSWORD, approved_merchant, get_auth, login, signed_request};
use crate::payments::{balance, payment_code};
use crate::payments_faults::{deliver_signed, success_transaction};

/// The server binary running as a child process; killed when dropped.
pub(crate) struct ChildServer {
    pub(crate) child: Child,
    address: String,
    client: reqwest::Client,
}

impl Server for ChildServer {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on `db` with its data (and sandbox keys) in `data_dir`.
pub(crate) fn start(
    db: &TestDatabase,
    data_dir: &Path,
    redis_prefix: &str,
    extra: &[(&str, &str)],
) -> ChildServer {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_points-app"));
    cmd.env("APP_ENV", "test")
        .env("APP_PORT", "0")
        .env("APP_SANDBOX_PORT", "0")
        .env("APP_SANDBOX_TIME_SCALE", "0.001")
        .env("APP_DATA_DIR", data_dir)
        .env("APP_LOG_FORMAT", "json")
        .env("APP_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("APP_RATE_LIMIT_PAYMENTS_PER_MIN", "1000")
        .env("APP_REDIS_PREFIX", redis_prefix)
        .env("DATABASE_URL", &db.url)
        .env_remove("REDIS_URL");
    if let Ok(url) = std::env::var("REDIS_URL")
        && !url.is_empty()
    {
        cmd.env("REDIS_URL", url);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let address = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "server exited before listening"
        );
        if let Some(rest) = line.split("points-app listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep draining stdout (the logs) so the child never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    ChildServer {
        child,
        address,
        client: reqwest::Client::new(),
    }
}

#[actix_web::test]
async fn sigkill_between_paid_and_award_then_restart_awards_exactly_once() {
    let db = TestDatabase::create();
    let data_dir = tempfile::tempdir().unwrap();
    let prefix = format!("t{}", uuid::Uuid::now_v7().simple());
    let mut first = start(
        &db,
        data_dir.path(),
        &prefix,
        &[("APP_FAULT_KILL_AT", "after_paid_commit")],
    );

    let (owner, merchant) = approved_merchant(&first, "m-sigkill").await;
    let code = payment_code(&first, &owner, &merchant, None).await;
    let shopper = login(&first, "shopper-sigkill").await;
    let body = json!({"payment_code_id": code, "amount_fen": 12_345});
    let res = signed_request(&first, &shopper, "POST", "/api/payments", Some(&body))
        .header("Idempotency-Key", "sigkill-key-0001")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let order_no = res.json::<Value>().await.unwrap()["order_no"]
        .as_str()
        .unwrap()
        .to_string();

    // WeChat's notification arrives; the process dies right after the paid commit, so
    // WeChat never gets an answer.
    let keys = SandboxKeys::load_or_generate(&data_dir.path().join("sandbox")).unwrap();
    let txn = success_transaction(&keys.appid, &keys.mchid, &order_no, 12_345);
    let notify = first.url("/api/wechat/pay/notify");
    let answer = deliver_signed(&first.client, &notify, &keys, &txn).await;
    assert!(
        answer.is_err(),
        "no answer from a killed process: {answer:?}"
    );
    let status = first.child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");

    // What the crash left: the order paid, its award in the outbox, no points.
    let check_dir = tempfile::tempdir().unwrap();
    let store = Db::connect(&test_settings(&db, check_dir.path()))
        .await
        .unwrap();
    let order = orders::find(&store, &order_no).await.unwrap().unwrap();
    assert_eq!(order.status().unwrap(), OrderStatus::Paid);
    assert_eq!(outbox::backlog(&store).await.unwrap().0, 1, "award pending");
    drop(first);

    // Restart on the same database and keys. WeChat retries the notification.
    let second = start(&db, data_dir.path(), &prefix, &[]);
    assert_eq!(balance(&second, &shopper).await, 0, "not awarded yet");
    let retry = deliver_signed(
        &second.client,
        &second.url("/api/wechat/pay/notify"),
        &keys,
        &txn,
    )
    .await
    .unwrap();
    assert_eq!(
        retry.status(),
        204,
        "a retry of a settled payment is answered success"
    );

    // Recovery re-drives the outbox row (after its grace period): 123 points, once.
    let mut awarded = 0;
    for _ in 0..300 {
        awarded = balance(&second, &shopper).await;
        if awarded != 0 && outbox::backlog(&store).await.unwrap().0 == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(awarded, 123);
    assert_eq!(
        outbox::backlog(&store).await.unwrap().0,
        0,
        "outbox drained"
    );
    // Another recovery pass and another retry change nothing.
    let again = deliver_signed(
        &second.client,
        &second.url("/api/wechat/pay/notify"),
        &keys,
        &txn,
    )
    .await
    .unwrap();
    assert_eq!(again.status(), 204);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(balance(&second, &shopper).await, 123);
    let history: Value = get_auth(&second, &shopper.access_token, "/api/points/history")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        history["items"].as_array().unwrap().len(),
        1,
        "one ledger row: {history}"
    );
    let o: Value = get_auth(
        &second,
        &shopper.access_token,
        &format!("/api/payments/{order_no}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(o["status"], "paid");
    assert_eq!(o["points_awarded"], 123, "{o}");
}
