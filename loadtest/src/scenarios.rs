//! The scenarios: (a) `full` shoppers through the whole flow, (b) `hot` many clients on one
//! user, (c) `read` balance and history queries, (d) `notify` signed, encrypted payment
//! notifications posted straight to the server at the highest rate it takes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::RngExt as _;
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::{Api, CallError, Session};

/// Options every scenario reads (from the command line).
#[derive(Clone, Debug, Serialize)]
pub struct Options {
    pub users: usize,
    pub duration: Duration,
    pub ramp_up: Duration,
    pub think: Duration,
    pub merchants: usize,
    /// Probability (0..1) that a full-flow iteration spends points.
    pub spend: f64,
    /// Probability (0..1) that a full-flow iteration gets its order refunded.
    pub refund: f64,
    /// Sandbox delivery options for every payment (`?duplicates=N&delay_ms=M`), from --faults.
    pub pay_query: String,
    pub admin_password: String,
    pub run_id: String,
    /// Hot user: share of operations that are awards (the rest are deductions).
    pub award_ratio: f64,
    /// Notify: orders to pay through self-built notifications, and concurrent senders.
    pub orders: usize,
    pub concurrency: usize,
    pub keys_dir: String,
    /// How long to wait for points to show after a payment.
    pub award_timeout: Duration,
}

/// A merchant set up for the run: its owner's session and one open-amount payment code.
#[derive(Clone, Debug)]
pub struct Merchant {
    pub id: String,
    pub owner: Session,
    pub code: String,
}

/// What the virtual users saw, to compare with the database after the run.
#[derive(Default, Debug, Serialize)]
pub struct Tally {
    /// user id -> points the client expects to be available.
    pub expected_points: HashMap<String, i64>,
    /// Users with a mutation whose outcome is unknown (no answer): not compared.
    pub uncertain_users: std::collections::HashSet<String>,
    /// merchant id -> (paid orders, paid fen, refunded fen) the clients saw.
    pub merchants: HashMap<String, (i64, i64, i64)>,
    pub uncertain_merchants: std::collections::HashSet<String>,
    pub paid_orders: u64,
    pub refunds: u64,
    pub deducts: u64,
    pub deduct_refused_insufficient: u64,
    /// Notify scenario: order numbers whose notification was answered 200/204.
    pub notified: u64,
    /// Hot user: (user id, points the clients deducted with a 200 answer).
    pub hot_user: Option<(String, i64)>,
    /// A deduction of the hot user went unanswered: its total cannot be compared.
    pub hot_user_uncertain: bool,
}

pub type SharedTally = Arc<Mutex<Tally>>;

fn rnd(range: std::ops::RangeInclusive<i64>) -> i64 {
    rand::rng().random_range(range)
}

fn chance(p: f64) -> bool {
    rand::rng().random_range(0.0..1.0) < p
}

/// Points the default rule gives a paid amount (1 per whole yuan, from 1 yuan).
pub fn rule_points(amount_fen: i64) -> i64 {
    if amount_fen < 100 {
        0
    } else {
        amount_fen / 100
    }
}

fn merchant_body(name: &str) -> Value {
    json!({
        "merchant_name": name,
        "contact_name": "Load",
        "contact_phone": "13912345678",
        "business_license": "91110000MA01ABCD2X",
        "address": "1 Loopback Road",
    })
}

/// Registers `n` merchants, approves them as admin and gives each an open-amount code.
pub async fn setup_merchants(api: &Api, opts: &Options, n: usize) -> anyhow::Result<Vec<Merchant>> {
    let admin = api.admin_login(&opts.admin_password).await.map_err(|e| {
        anyhow::anyhow!(
            "admin login failed ({e:?}): is APP_ADMIN_PASSWORD the one given to the server?"
        )
    })?;
    let mut out = Vec::new();
    for i in 0..n {
        let owner = api
            .login(&format!("lt{}-owner{i}", opts.run_id))
            .await
            .map_err(|e| anyhow::anyhow!("merchant owner login failed: {e:?}"))?;
        let m = api
            .send(
                "setup_merchant",
                api.signed(
                    &owner,
                    Method::POST,
                    "/api/merchants",
                    &merchant_body(&format!("load shop {i}")),
                ),
                &[],
            )
            .await
            .map_err(|e| anyhow::anyhow!("merchant registration failed: {e:?}"))?;
        let id = m["id"].as_str().unwrap_or_default().to_string();
        api.send(
            "setup_merchant",
            api.http
                .post(api.url(&format!("/api/admin/merchants/{id}/approve")))
                .bearer_auth(&admin),
            &[],
        )
        .await
        .map_err(|e| anyhow::anyhow!("merchant approval failed: {e:?}"))?;
        let path = format!("/api/merchants/{id}/payment-codes");
        let code = api
            .send(
                "setup_merchant",
                api.signed(
                    &owner,
                    Method::POST,
                    &path,
                    &json!({"label": "load counter"}),
                ),
                &[],
            )
            .await
            .map_err(|e| anyhow::anyhow!("payment code creation failed: {e:?}"))?;
        out.push(Merchant {
            id,
            owner,
            code: code["id"].as_str().unwrap_or_default().to_string(),
        });
    }
    Ok(out)
}

/// Logs in, retrying a few times when there is no answer (an instance being restarted).
async fn login_retry(api: &Api, name: &str) -> Option<Session> {
    for _ in 0..5 {
        match api.login(name).await {
            Ok(s) => return Some(s),
            Err(CallError::Stopped) => return None,
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    None
}

/// Creates an order for `amount` at `m`'s code; answers the order number.
async fn create_order(
    api: &Api,
    s: &Session,
    m: &Merchant,
    amount: i64,
) -> Result<String, CallError> {
    let body = json!({"payment_code_id": m.code, "amount_fen": amount});
    let req = api.signed(s, Method::POST, "/api/payments", &body).header(
        "Idempotency-Key",
        format!("lt-{}", uuid::Uuid::now_v7().simple()),
    );
    let order = api.send("create_payment", req, &[]).await?;
    order["order_no"]
        .as_str()
        .map(str::to_string)
        .ok_or(CallError::Transport)
}

/// Waits for the order until `done` holds or `timeout` passes, as the mini-program does:
/// `GET /api/payments/{order_no}?wait_ms=…` answers when the order settles, so one request
/// usually does; an answer that came back at once without `done` is followed by a 100 ms
/// pause before the next.
async fn wait_order(
    api: &Api,
    s: &Session,
    order_no: &str,
    timeout: Duration,
    step: &str,
    done: impl Fn(&Value) -> bool,
) -> Option<Value> {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        let wait_ms = until
            .saturating_duration_since(Instant::now())
            .as_millis()
            .min(8_000);
        let path = format!("/api/payments/{order_no}?wait_ms={wait_ms}");
        let asked = Instant::now();
        match api.send(step, api.get(s, &path), &[]).await {
            Ok(o) if done(&o) => return Some(o),
            Err(CallError::Stopped) => return None,
            _ => {}
        }
        if asked.elapsed() < Duration::from_millis(50) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    None
}

fn uncertain(t: &SharedTally, user: &str, merchant: Option<&str>) {
    let mut t = t.lock();
    t.uncertain_users.insert(user.to_string());
    if let Some(m) = merchant {
        t.uncertain_merchants.insert(m.to_string());
    }
}

fn is_unknown(e: &CallError) -> bool {
    match e {
        CallError::Transport => true,
        CallError::Status(s, _) => s.is_server_error(),
        CallError::Stopped => false,
    }
}

/// (a) One shopper: log in, then scan, pay, wait for points, check the balance, sometimes
/// spend, sometimes get refunded; think; again until the deadline.
pub async fn full_vu(
    api: Api,
    opts: Arc<Options>,
    merchants: Arc<Vec<Merchant>>,
    tally: SharedTally,
    vu: usize,
    deadline: Instant,
) {
    let Some(s) = login_retry(&api, &format!("lt{}-u{vu}", opts.run_id)).await else {
        return;
    };
    tally
        .lock()
        .expected_points
        .entry(s.user_id.clone())
        .or_insert(0);
    let mut iteration = 0u64;
    while Instant::now() < deadline && !api.rec.stopped() {
        iteration += 1;
        let m = &merchants[(vu + iteration as usize) % merchants.len()];
        if api
            .send(
                "scan",
                api.http
                    .get(api.url(&format!("/api/payment-codes/{}", m.code))),
                &[],
            )
            .await
            .is_err()
        {
            think(&opts).await;
            continue;
        }
        let amount = rnd(100..=50_000);
        let order_no = match create_order(&api, &s, m, amount).await {
            Ok(o) => o,
            Err(e) => {
                if is_unknown(&e) {
                    uncertain(&tally, &s.user_id, Some(&m.id));
                }
                think(&opts).await;
                continue;
            }
        };
        if let Err(e) = api.sandbox_pay(&order_no, &opts.pay_query).await {
            if is_unknown(&e) {
                uncertain(&tally, &s.user_id, Some(&m.id));
            }
            think(&opts).await;
            continue;
        }
        let paid_at = Instant::now();
        let want = rule_points(amount);
        let seen = wait_order(
            &api,
            &s,
            &order_no,
            opts.award_timeout,
            "order_settle_wait",
            |o| o["status"] == "paid" && o["points_awarded"].as_i64().unwrap_or(0) > 0,
        )
        .await;
        let Some(order) = seen else {
            if !api.rec.stopped() {
                api.rec.error(
                    "award_wait",
                    "points not visible in time",
                    &format!("order {order_no}"),
                    paid_at.elapsed(),
                );
            }
            // Paid at WeChat: it will be counted; we no longer know the user's figures.
            uncertain(&tally, &s.user_id, Some(&m.id));
            return;
        };
        api.rec
            .delay("award_delay (paid -> points visible)", paid_at.elapsed());
        let got = order["points_awarded"].as_i64().unwrap_or(0);
        if got != want {
            api.rec.error(
                "award_check",
                "points differ from the rule",
                &format!("order {order_no}: {amount} fen earned {got}, rule says {want}"),
                Duration::ZERO,
            );
        }
        {
            let mut t = tally.lock();
            *t.expected_points.entry(s.user_id.clone()).or_insert(0) += got;
            let e = t.merchants.entry(m.id.clone()).or_default();
            e.0 += 1;
            e.1 += amount;
            t.paid_orders += 1;
        }
        let balance = match api
            .send("balance", api.get(&s, "/api/points/balance"), &[])
            .await
        {
            Ok(b) => b["available"].as_i64().unwrap_or(0),
            Err(_) => 0,
        };
        if balance > 0 && chance(opts.spend) {
            let points = rnd(1..=balance.min(50));
            let req = api
                .signed(
                    &s,
                    Method::POST,
                    "/api/points/deduct",
                    &json!({"points": points, "reason": "load test spend"}),
                )
                .header(
                    "Idempotency-Key",
                    format!("lt-{}", uuid::Uuid::now_v7().simple()),
                );
            // The balance read may not show a clawback still in flight: a refusal for
            // insufficient points is then the right answer, counted apart.
            match api.send("deduct", req, &[409]).await {
                Ok(_) => {
                    let mut t = tally.lock();
                    *t.expected_points.entry(s.user_id.clone()).or_insert(0) -= points;
                    t.deducts += 1;
                }
                Err(CallError::Status(_, code)) if code == "POINTS_INSUFFICIENT" => {
                    tally.lock().deduct_refused_insufficient += 1;
                }
                Err(CallError::Status(st, code)) if st.as_u16() == 409 => {
                    api.rec
                        .error("deduct", &format!("http 409 {code}"), "", Duration::ZERO);
                }
                Err(e) if is_unknown(&e) => uncertain(&tally, &s.user_id, None),
                Err(_) => {}
            }
        }
        if chance(opts.refund) {
            refund_flow(&api, &opts, &s, m, &order_no, amount, got, &tally).await;
        }
        think(&opts).await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn refund_flow(
    api: &Api,
    opts: &Options,
    s: &Session,
    m: &Merchant,
    order_no: &str,
    amount: i64,
    awarded: i64,
    tally: &SharedTally,
) {
    let refund_fen = if chance(0.5) { amount } else { rnd(1..=amount) };
    let path = format!("/api/merchants/{}/orders/{order_no}/refund", m.id);
    let r = match api
        .send(
            "refund",
            api.signed(
                &m.owner,
                Method::POST,
                &path,
                &json!({"amount_fen": refund_fen, "reason": "load test return"}),
            ),
            &[],
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            if is_unknown(&e) {
                uncertain(tally, &s.user_id, Some(&m.id));
            }
            return;
        }
    };
    let Some(no) = r["out_refund_no"].as_str() else {
        uncertain(tally, &s.user_id, Some(&m.id));
        return;
    };
    if api
        .sandbox_refund_succeeds(no, &opts.pay_query)
        .await
        .is_err()
    {
        uncertain(tally, &s.user_id, Some(&m.id));
        return;
    }
    let done = wait_order(api, s, order_no, opts.award_timeout, "refund_status", |o| {
        o["refunded_fen"].as_i64().unwrap_or(0) >= refund_fen
    })
    .await;
    if done.is_none() {
        if !api.rec.stopped() {
            api.rec.error(
                "refund_wait",
                "refund not visible in time",
                order_no,
                Duration::ZERO,
            );
        }
        uncertain(tally, &s.user_id, Some(&m.id));
        return;
    }
    // The clawback is the refunded share of the award, rounded down (all of it when full).
    let clawed = if refund_fen >= amount {
        awarded
    } else {
        i64::try_from(i128::from(awarded) * i128::from(refund_fen) / i128::from(amount))
            .unwrap_or(awarded)
    };
    let mut t = tally.lock();
    *t.expected_points.entry(s.user_id.clone()).or_insert(0) -= clawed;
    t.merchants.entry(m.id.clone()).or_default().2 += refund_fen;
    t.refunds += 1;
}

async fn think(opts: &Options) {
    if opts.think.is_zero() {
        return;
    }
    // +-50% jitter so virtual users do not march in step.
    let ms = opts.think.as_millis() as i64;
    let jittered = rnd((ms / 2)..=(ms + ms / 2).max(1));
    tokio::time::sleep(Duration::from_millis(jittered.max(0) as u64)).await;
}

/// (b) Many clients on one user: awards (pay an order) and deductions, as fast as they go.
pub async fn hot_client(
    api: Api,
    opts: Arc<Options>,
    user: Session,
    merchants: Arc<Vec<Merchant>>,
    tally: SharedTally,
    client: usize,
    deadline: Instant,
) {
    let mut i = 0usize;
    while Instant::now() < deadline && !api.rec.stopped() {
        i += 1;
        if chance(opts.award_ratio) {
            let m = &merchants[(client + i) % merchants.len()];
            let amount = rnd(100..=2_000);
            match create_order(&api, &user, m, amount).await {
                Ok(no) => match api.sandbox_pay(&no, &opts.pay_query).await {
                    Ok(_) => {
                        let mut t = tally.lock();
                        t.paid_orders += 1;
                        let e = t.merchants.entry(m.id.clone()).or_default();
                        e.0 += 1;
                        e.1 += amount;
                    }
                    Err(e) if is_unknown(&e) => uncertain(&tally, &user.user_id, Some(&m.id)),
                    Err(_) => {}
                },
                Err(e) if is_unknown(&e) => uncertain(&tally, &user.user_id, Some(&m.id)),
                Err(_) => {}
            }
        } else {
            let points = rnd(1..=20);
            let req = api
                .signed(
                    &user,
                    Method::POST,
                    "/api/points/deduct",
                    &json!({"points": points, "reason": "hot user spend"}),
                )
                .header(
                    "Idempotency-Key",
                    format!("lt-{}", uuid::Uuid::now_v7().simple()),
                );
            // Short of points is an answer, not an error (409 POINTS_INSUFFICIENT).
            match api.send("deduct", req, &[409]).await {
                Ok(_) => {
                    let mut t = tally.lock();
                    *t.expected_points.entry(user.user_id.clone()).or_insert(0) -= points;
                    t.deducts += 1;
                    let hot = t.hot_user.get_or_insert_with(|| (user.user_id.clone(), 0));
                    hot.1 += points;
                }
                Err(CallError::Status(_, code)) if code == "POINTS_INSUFFICIENT" => {
                    tally.lock().deduct_refused_insufficient += 1;
                }
                Err(CallError::Status(s, code)) if s.as_u16() == 409 => {
                    api.rec
                        .error("deduct", &format!("http 409 {code}"), "", Duration::ZERO);
                }
                Err(e) if is_unknown(&e) => uncertain(&tally, &user.user_id, None),
                Err(_) => {}
            }
        }
        think(&opts).await;
    }
}

/// (c) Setup for the read-heavy scenario: users with one paid order each.
pub async fn setup_reader(
    api: &Api,
    opts: &Options,
    merchants: &[Merchant],
    tally: &SharedTally,
    i: usize,
) -> Option<Session> {
    let s = login_retry(api, &format!("lt{}-r{i}", opts.run_id)).await?;
    let m = &merchants[i % merchants.len()];
    let amount = rnd(100..=50_000);
    let no = create_order(api, &s, m, amount).await.ok()?;
    api.sandbox_pay(&no, "").await.ok()?;
    let o = wait_order(api, &s, &no, opts.award_timeout, "order_settle_wait", |o| {
        o["points_awarded"].as_i64().unwrap_or(0) > 0
    })
    .await?;
    let mut t = tally.lock();
    *t.expected_points.entry(s.user_id.clone()).or_insert(0) +=
        o["points_awarded"].as_i64().unwrap_or(0);
    let e = t.merchants.entry(m.id.clone()).or_default();
    e.0 += 1;
    e.1 += amount;
    t.paid_orders += 1;
    Some(s)
}

/// (c) Balance, history, statistics and the order list, with think time.
pub async fn reader(api: Api, opts: Arc<Options>, s: Session, deadline: Instant) {
    while Instant::now() < deadline && !api.rec.stopped() {
        let r = rnd(0..=99);
        let (step, path) = if r < 50 {
            ("balance", "/api/points/balance")
        } else if r < 80 {
            ("history", "/api/points/history?limit=20")
        } else if r < 90 {
            ("statistics", "/api/points/statistics")
        } else {
            ("my_orders", "/api/payments?limit=20")
        };
        let _ = api.send(step, api.get(&s, path), &[]).await;
        think(&opts).await;
    }
}

/// (d) A notification ready to post: headers and body, signed with the sandbox's platform key.
pub struct PreparedNotice {
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Builds a `TRANSACTION.SUCCESS` notification for an order exactly as the sandbox would:
/// the resource encrypted with the APIv3 key, the body signed by the platform key.
pub fn build_notice(
    keys: &points_app::sandbox::SandboxKeys,
    order_no: &str,
    amount: i64,
    openid: &str,
    seq: u64,
) -> anyhow::Result<PreparedNotice> {
    use points_app::wechat::types::{EncryptedResource, NotificationBody};
    let now = chrono::Utc::now();
    let resource = json!({
        "appid": keys.appid,
        "mchid": keys.mchid,
        "out_trade_no": order_no,
        "transaction_id": format!("4200{}{:012}", now.format("%Y%m%d"), 900_000_000_000u64 + seq),
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "trade_state_desc": "SUCCESS",
        "success_time": points_app::sandbox::ledger::rfc3339_cn(now),
        "payer": {"openid": openid},
        "amount": {"total": amount, "payer_total": amount, "currency": "CNY", "payer_currency": "CNY"},
    });
    let plaintext = serde_json::to_vec(&resource)?;
    let nonce: String = uuid::Uuid::now_v7()
        .simple()
        .to_string()
        .chars()
        .rev()
        .take(12)
        .collect();
    let ciphertext = keys
        .apiv3_key
        .encrypt(&nonce, "transaction", &plaintext)
        .map_err(|e| anyhow::anyhow!("encrypting the resource: {e}"))?;
    let body = NotificationBody {
        id: uuid::Uuid::now_v7().to_string(),
        create_time: points_app::sandbox::ledger::rfc3339_cn(now),
        event_type: "TRANSACTION.SUCCESS".into(),
        resource_type: "encrypt-resource".into(),
        summary: "支付成功".into(),
        resource: EncryptedResource {
            algorithm: "AEAD_AES_256_GCM".into(),
            ciphertext,
            associated_data: "transaction".into(),
            nonce,
            original_type: "transaction".into(),
        },
    };
    let body = serde_json::to_vec(&body)?;
    let headers = keys.platform().headers(now.timestamp(), &body)?;
    Ok(PreparedNotice { headers, body })
}
