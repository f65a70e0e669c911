//! Failure cases of the money path: a notification that does not match its order, and a
//! crash between "paid" and "points awarded" (the outbox row left behind is re-driven).

use chrono::Utc;
use points_app::actors::payments::order_writer::PaidWrite;
use points_app::domain::order::{OrderStatus, RefundStatus};
use points_app::sandbox::SandboxKeys;
use points_app::storage::orders::OutboxRow;
use points_app::storage::outbox;
use points_app::wechat::types::{EncryptedResource, NotificationBody};
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::identity::{approved_merchant, get_auth, login, signed_request};
use crate::payments::{app, balance, payment_code};

/// A notification signed and encrypted with the sandbox's real keys (WeChat's, to the
/// server), carrying whatever transaction the test wants.
async fn deliver(app: &TestApp, transaction: Value) -> reqwest::Response {
    let keys = SandboxKeys::load_or_generate(&app.state.settings.sandbox_keys_dir()).unwrap();
    deliver_signed(
        &app.client,
        &app.url("/api/wechat/pay/notify"),
        &keys,
        &transaction,
    )
    .await
    .unwrap()
}

/// A `TRANSACTION.SUCCESS` notification for `transaction`, signed and encrypted as WeChat
/// would send it now: the body and the `Wechatpay-*` headers.
pub fn signed_notification(
    keys: &SandboxKeys,
    transaction: &Value,
) -> (Vec<u8>, Vec<(String, String)>) {
    let nonce = "abcdefghijkl";
    let plaintext = serde_json::to_vec(transaction).unwrap();
    let ciphertext = keys
        .apiv3_key
        .encrypt(nonce, "transaction", &plaintext)
        .unwrap();
    let body = serde_json::to_vec(&NotificationBody {
        id: uuid::Uuid::now_v7().to_string(),
        create_time: "2026-11-27T10:00:00+08:00".into(),
        event_type: "TRANSACTION.SUCCESS".into(),
        resource_type: "encrypt-resource".into(),
        summary: "支付成功".into(),
        resource: EncryptedResource {
            algorithm: "AEAD_AES_256_GCM".into(),
            ciphertext,
            associated_data: "transaction".into(),
            nonce: nonce.into(),
            original_type: "transaction".into(),
        },
    })
    .unwrap();
    let headers = keys
        .platform()
        .headers(Utc::now().timestamp(), &body)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (body, headers)
}

/// Posts a `TRANSACTION.SUCCESS` notification for `transaction` to `url`, as WeChat would.
pub async fn deliver_signed(
    client: &reqwest::Client,
    url: &str,
    keys: &SandboxKeys,
    transaction: &Value,
) -> reqwest::Result<reqwest::Response> {
    let (body, headers) = signed_notification(keys, transaction);
    let mut req = client.post(url).header("Content-Type", "application/json");
    for (k, v) in headers {
        req = req.header(k, v);
    }
    req.body(body).send().await
}

/// A successful payment of `total` fen for `order_no`, as WeChat reports it.
pub fn success_transaction(appid: &str, mchid: &str, order_no: &str, total: i64) -> Value {
    json!({
        "appid": appid, "mchid": mchid, "out_trade_no": order_no,
        "transaction_id": format!("42000{}", &order_no[..20]), "trade_type": "JSAPI",
        "trade_state": "SUCCESS", "success_time": "2026-11-27T10:00:00+08:00",
        "payer": {"openid": "o"}, "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
    })
}

fn transaction(app: &TestApp, order_no: &str, total: i64) -> Value {
    let cfg = app.state.wechat.client.config();
    success_transaction(&cfg.appid, &cfg.mchid, order_no, total)
}

async fn order_of(app: &TestApp, shopper: &crate::identity::Session, order_no: &str) -> Value {
    get_auth(
        app,
        &shopper.access_token,
        &format!("/api/payments/{order_no}"),
    )
    .await
    .json()
    .await
    .unwrap()
}

#[actix_web::test]
async fn a_notification_in_another_currency_is_refused_and_changes_nothing() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-currency").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-currency").await;
    let body = json!({"payment_code_id": code, "amount_fen": 5_000});
    let order: Value = signed_request(&app, &shopper, "POST", "/api/payments", Some(&body))
        .header("Idempotency-Key", "currency-key-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let order_no = order["order_no"].as_str().unwrap();
    let mut usd = transaction(&app, order_no, 5_000);
    usd["amount"]["currency"] = json!("USD");
    let res = deliver(&app, usd).await;
    assert_eq!(res.status(), 400, "5,000 cents are not 5,000 fen");
    let o = order_of(&app, &shopper, order_no).await;
    assert_eq!(o["status"], "paying", "nothing changed: {o}");
    assert_eq!(balance(&app, &shopper).await, 0);
    // The same payment in CNY settles it.
    let res = deliver(&app, transaction(&app, order_no, 5_000)).await;
    assert_eq!(res.status(), 204);
}

#[actix_web::test]
async fn verified_notifications_that_cannot_apply_are_acknowledged_recorded_and_change_nothing() {
    let app = app().await;
    // An order this system never made: acknowledged (WeChat sending it again cannot help).
    let res = deliver(
        &app,
        transaction(&app, "0000000000000000000000000unknown", 100),
    )
    .await;
    assert_eq!(res.status(), 204);

    // CLOSED for an order that is paid: acknowledged, and the order stays paid.
    let (owner, merchant) = approved_merchant(&app, "m-closed-late").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-closed-late").await;
    let order_no = crate::payments::paid_order(&app, &shopper, &code, 10_000).await;
    let mut closed = transaction(&app, &order_no, 10_000);
    closed["trade_state"] = json!("CLOSED");
    closed.as_object_mut().unwrap().remove("transaction_id");
    let res = deliver(&app, closed).await;
    assert_eq!(res.status(), 204);
    let o = order_of(&app, &shopper, &order_no).await;
    assert_eq!(o["status"], "paid", "{o}");

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"wechat_notifications_total{kind="pay",result="ignored"} 2"#),
        "{metrics}"
    );
}

#[actix_web::test]
async fn a_notification_whose_amount_differs_is_refused_and_changes_nothing() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-mismatch").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-mismatch").await;
    let body = json!({"payment_code_id": code, "amount_fen": 5_000});
    let order: Value = signed_request(&app, &shopper, "POST", "/api/payments", Some(&body))
        .header("Idempotency-Key", "mismatch-key-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let order_no = order["order_no"].as_str().unwrap();

    let res = deliver(&app, transaction(&app, order_no, 1)).await;
    assert_eq!(
        res.status(),
        400,
        "a 1-fen payment must not settle a 50-yuan order"
    );
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "FAIL");
    let mut other_app = transaction(&app, order_no, 5_000);
    other_app["appid"] = json!("wx-someone-else");
    let res = deliver(&app, other_app).await;
    assert!(res.status().is_client_error());

    let o: Value = get_auth(
        &app,
        &shopper.access_token,
        &format!("/api/payments/{order_no}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(o["status"], "paying", "nothing changed: {o}");
    assert_eq!(balance(&app, &shopper).await, 0);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"wechat_notifications_total{kind="pay",result="rejected"} 2"#),
        "{metrics}"
    );

    // The genuine notification still settles it.
    let res = deliver(&app, transaction(&app, order_no, 5_000)).await;
    assert_eq!(res.status(), 204);
    let res = deliver(&app, transaction(&app, order_no, 5_000)).await;
    assert_eq!(res.status(), 204, "a repeat is answered success");
    for _ in 0..100 {
        if balance(&app, &shopper).await == 50 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(balance(&app, &shopper).await, 50);
}

/// The shard that created an order settles its notification from the row it wrote, not a
/// fresh read. When the order was closed meanwhile by someone else (another instance's
/// expiry close, here written straight to the database as that instance would), the
/// compare-and-set on the remembered status misses, the order is read again, and a payment
/// for a closed order changes nothing: no `paid`, no points, and the alert it always raises.
#[actix_web::test]
async fn a_notification_for_an_order_closed_elsewhere_is_not_paid_from_the_remembered_row() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-stale-row").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-stale-row").await;
    let order = crate::payments::created(&app, &shopper, &code, 5_000, "stale-row-key-01").await;
    let order_no = order["order_no"].as_str().unwrap();
    assert_eq!(order["status"], "paying", "{order}");
    let closed = points_app::storage::orders::change_status(
        app.state.app.db(),
        order_no,
        OrderStatus::Paying,
        OrderStatus::Closed,
        Utc::now().naive_utc(),
    )
    .await
    .unwrap();
    assert!(closed, "closed behind the shard's back");

    // Money for a closed order: refused with 500 (WeChat sends it again while an operator
    // looks), exactly as when the order is read first.
    let res = deliver(&app, transaction(&app, order_no, 5_000)).await;
    assert_eq!(res.status(), 500);
    let o = order_of(&app, &shopper, order_no).await;
    assert_eq!(o["status"], "closed", "not paid: {o}");
    assert_eq!(o["points_awarded"], 0, "{o}");
    assert_eq!(balance(&app, &shopper).await, 0);

    // The same notification for an order the shard remembers and nobody moved still pays.
    let order = crate::payments::created(&app, &shopper, &code, 5_000, "stale-row-key-02").await;
    let order_no = order["order_no"].as_str().unwrap();
    let res = deliver(&app, transaction(&app, order_no, 5_000)).await;
    assert_eq!(res.status(), 204);
    let o =
        crate::payments::wait_order(&app, &shopper, order_no, |o| o["points_awarded"] == 50).await;
    assert_eq!(o["status"], "paid", "{o}");
}

#[actix_web::test]
async fn an_award_left_in_the_outbox_is_made_once_after_a_restart() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-crash").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-crash").await;
    let body = json!({"payment_code_id": code, "amount_fen": 7_700});
    let order: Value = signed_request(&app, &shopper, "POST", "/api/payments", Some(&body))
        .header("Idempotency-Key", "crash-key-0001")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let order_no = order["order_no"].as_str().unwrap().to_string();

    // The process "dies" right after the paid + outbox commit: write exactly that commit,
    // with the outbox row already due, and never make the award.
    let now = Utc::now().naive_utc();
    let row = OutboxRow {
        id: uuid::Uuid::now_v7().to_string(),
        kind: outbox::AWARD_POINTS.into(),
        aggregate_id: order_no.clone(),
        payload: json!({"user_id": shopper.user_id, "order_no": order_no, "amount_fen": 7_700,
                        "paid_at": Utc::now().to_rfc3339()})
        .to_string(),
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        created_at: now,
    };
    let outcome = app
        .state
        .payments
        .writer()
        .mark_paid(PaidWrite {
            order_no: order_no.clone(),
            from: OrderStatus::Paying,
            transaction_id: "4200crash".into(),
            paid_at: now,
            now,
            award: row,
        })
        .await
        .unwrap();
    assert!(outcome, "paid from paying");
    assert_eq!(balance(&app, &shopper).await, 0);

    // A second instance on the same database (a restart) re-drives the row; the first one
    // may too: the award is keyed by the order, so it lands once.
    let restarted = spawn_on_same_db(&app).await;
    for _ in 0..200 {
        if outbox::backlog(app.state.app.db()).await.unwrap().0 == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        outbox::backlog(app.state.app.db()).await.unwrap().0,
        0,
        "the outbox row is gone"
    );
    assert_eq!(balance(&app, &shopper).await, 77);
    let history: Value = get_auth(&app, &shopper.access_token, "/api/points/history")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        history["items"].as_array().unwrap().len(),
        1,
        "awarded exactly once"
    );
    drop(restarted);
}

async fn spawn_on_same_db(app: &TestApp) -> crate::identity::OtherInstance {
    crate::identity::spawn_other_instance(app, |_| {}).await
}

/// A crash after the ledger took the clawback but before the refund row got its figures:
/// the outbox row is still there, recovery repeats the clawback (the ledger answers the
/// first result, nothing is taken twice) and books the figures.
#[actix_web::test]
async fn a_clawback_whose_figures_were_not_booked_is_finished_by_recovery() {
    use points_app::actors::points::ClawbackPoints;
    use points_app::domain::Points;
    use points_app::storage::refunds;

    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-clawcrash").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-clawcrash").await;
    let order_no = crate::payments::paid_order(&app, &shopper, &code, 10_000).await;
    let res = crate::payments::refund(&app, &owner, &merchant, &order_no, 4_000).await;
    assert_eq!(res.status(), 200);
    let out_refund_no = res.json::<Value>().await.unwrap()["out_refund_no"]
        .as_str()
        .unwrap()
        .to_string();

    // What the crashed process committed: the refund's success with its clawback row (due
    // now), and the ledger's clawback; not the refund row's figures.
    let now = Utc::now().naive_utc();
    let row = OutboxRow {
        id: uuid::Uuid::now_v7().to_string(),
        kind: outbox::CLAWBACK_POINTS.into(),
        aggregate_id: out_refund_no.clone(),
        payload: json!({"out_refund_no": out_refund_no}).to_string(),
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        created_at: now,
    };
    refunds::finish(
        app.state.app.db(),
        &out_refund_no,
        RefundStatus::Success,
        Some("5030crash"),
        now,
        &row,
    )
    .await
    .unwrap();
    app.state
        .points
        .clawback(
            &shopper.user_id,
            ClawbackPoints {
                refund_no: out_refund_no.clone(),
                points: Points::parse(40).unwrap(),
                description: format!("refund of order {order_no}"),
                outbox_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(balance(&app, &shopper).await, 60);

    let mut booked = None;
    for _ in 0..200 {
        let r = refunds::find(app.state.app.db(), &out_refund_no)
            .await
            .unwrap()
            .unwrap();
        if r.points_clawed_back != 0 {
            booked = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let booked = booked.expect("recovery booked the figures");
    assert_eq!(booked.points_clawed_back, 40);
    assert_eq!(
        outbox::backlog(app.state.app.db()).await.unwrap().0,
        0,
        "row removed"
    );
    assert_eq!(balance(&app, &shopper).await, 60, "taken once");
}

async fn admin_post(app: &TestApp, admin: &str, path: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
}

/// Every notification is stored as received (body, WeChat's signature headers, route,
/// outcome, order) and listed for admins; a replay runs the verified path again: an applied
/// one changes nothing, and one that failed for a transient reason is applied, once.
#[actix_web::test]
async fn notifications_are_logged_listed_and_replayed_once() {
    let app = app().await;
    let admin = crate::identity::admin_token(&app).await;
    let (owner, merchant) = approved_merchant(&app, "m-replay").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-replay").await;

    // Accepted: the sandbox delivers it.
    let paid = crate::payments::paid_order(&app, &shopper, &code, 3_000).await;
    let list: Value = get_auth(
        &app,
        &admin,
        &format!("/api/admin/notifications?order_no={paid}"),
    )
    .await
    .json()
    .await
    .unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let accepted = &items[0];
    assert_eq!(
        (
            &accepted["result"],
            &accepted["kind"],
            &accepted["event_type"]
        ),
        (&json!("ok"), &json!("pay"), &json!("TRANSACTION.SUCCESS")),
        "{accepted}"
    );
    let id = accepted["id"].as_str().unwrap().to_string();
    let detail: Value = get_auth(&app, &admin, &format!("/api/admin/notifications/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        detail["headers"]["Wechatpay-Signature"].is_string(),
        "{detail}"
    );
    assert!(
        detail["raw_body"].as_str().unwrap().contains("ciphertext"),
        "{detail}"
    );
    // Refused: stored too.
    let res = app
        .client
        .post(app.url("/api/wechat/refund/notify"))
        .header("Wechatpay-Serial", "forged")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let refused: Value = get_auth(&app, &admin, "/api/admin/notifications?result=rejected")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refused["items"][0]["kind"], "refund", "{refused}");

    // Replaying the applied one changes nothing.
    let points = balance(&app, &shopper).await;
    assert_eq!(points, 30);
    let res = admin_post(
        &app,
        &admin,
        &format!("/api/admin/notifications/{id}/replay"),
    )
    .await;
    assert_eq!(res.status(), 200);
    let replayed: Value = res.json().await.unwrap();
    assert_eq!(replayed["result"], "duplicate", "{replayed}");
    assert_eq!(balance(&app, &shopper).await, points);

    // One that failed for a transient reason (as if the database had been away): the
    // shopper paid, the notification is in the log as an error, the order still paying.
    let body = json!({"payment_code_id": code, "amount_fen": 7_000});
    let order: Value = signed_request(&app, &shopper, "POST", "/api/payments", Some(&body))
        .header("Idempotency-Key", "replay-key-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let order_no = order["order_no"].as_str().unwrap().to_string();
    let keys = SandboxKeys::load_or_generate(&app.state.settings.sandbox_keys_dir()).unwrap();
    let (raw, headers) =
        crate::payments_faults::signed_notification(&keys, &transaction(&app, &order_no, 7_000));
    let failed = outbox::NotificationLogRow {
        id: uuid::Uuid::now_v7().to_string(),
        notification_id: "n-failed".into(),
        event_type: "TRANSACTION.SUCCESS".into(),
        out_trade_no: Some(order_no.clone()),
        out_refund_no: None,
        serial: String::new(),
        raw_body: String::from_utf8(raw).unwrap(),
        result: "error".into(),
        error: Some("database unavailable".into()),
        received_at: Utc::now().naive_utc(),
        kind: "pay".into(),
        headers: Some(
            serde_json::to_string(
                &headers
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            )
            .unwrap(),
        ),
    };
    outbox::log_notification(&app.state.payments.core().db, &failed)
        .await
        .unwrap();
    assert_eq!(
        order_of(&app, &shopper, &order_no).await["status"],
        "paying"
    );
    let path = format!("/api/admin/notifications/{}/replay", failed.id);
    let first: Value = admin_post(&app, &admin, &path).await.json().await.unwrap();
    assert_eq!(first["result"], "ok", "{first}");
    let settled = crate::payments::wait_order(&app, &shopper, &order_no, |o| {
        o["points_awarded"].as_i64().unwrap_or(0) > 0
    })
    .await;
    assert_eq!(settled["status"], "paid");
    assert_eq!(balance(&app, &shopper).await, points + 70);
    let again: Value = admin_post(&app, &admin, &path).await.json().await.unwrap();
    assert_eq!(again["result"], "duplicate", "{again}");
    assert_eq!(balance(&app, &shopper).await, points + 70, "applied once");

    // Replays are audited; the list pages; bad requests change nothing.
    let log: Value = get_auth(&app, &admin, "/api/admin/audit-log")
        .await
        .json()
        .await
        .unwrap();
    let replays = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "notification.replay")
        .count();
    assert_eq!(replays, 3, "{log}");
    let page: Value = get_auth(&app, &admin, "/api/admin/notifications?limit=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().expect("more pages");
    let next: Value = get_auth(
        &app,
        &admin,
        &format!("/api/admin/notifications?limit=2&cursor={cursor}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_ne!(next["items"][0]["id"], page["items"][0]["id"]);
    let res = get_auth(&app, &admin, "/api/admin/notifications?result=maybe").await;
    assert_eq!(res.status(), 400);
    crate::helpers::error_body(res).await;
    let res = admin_post(&app, &admin, "/api/admin/notifications/nope/replay").await;
    assert_eq!(res.status(), 404);
    crate::helpers::error_body(res).await;
    let res = get_auth(&app, &shopper.access_token, "/api/admin/notifications").await;
    assert!(res.status() == 401 || res.status() == 403);
    let res = app
        .client
        .post(app.url(&path))
        .bearer_auth(&shopper.access_token)
        .send()
        .await
        .unwrap();
    assert!(res.status() == 401 || res.status() == 403);
    assert_eq!(balance(&app, &shopper).await, points + 70);
}
