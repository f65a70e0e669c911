//! The money path over real HTTP with the in-process WeChat sandbox: scan -> create -> pay
//! -> notification -> points; duplicates, cancel, refunds with clawback, and tenancy.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Server, TestApp, error_body};
use crate::identity::{
    Session, approved_merchant, get_auth, login, signed, signed_request, spawn_identity_app_with,
};

pub async fn app() -> TestApp {
    spawn_identity_app_with(|s| s.rate_limit_payments_per_min = 1000).await
}

pub fn sandbox(app: &TestApp) -> String {
    app.state.wechat.client.config().pay_base_url.clone()
}

pub async fn payment_code(
    app: &impl Server,
    owner: &Session,
    merchant: &str,
    amount: Option<i64>,
) -> String {
    let mut body = json!({"label": "counter 1"});
    if let Some(a) = amount {
        body["amount_fen"] = json!(a);
    }
    let res = signed(
        app,
        owner,
        "POST",
        &format!("/api/merchants/{merchant}/payment-codes"),
        Some(body),
    )
    .await;
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

pub async fn create(
    app: &TestApp,
    s: &Session,
    code: &str,
    amount: i64,
    key: &str,
) -> reqwest::Response {
    let body = json!({"payment_code_id": code, "amount_fen": amount});
    signed_request(app, s, "POST", "/api/payments", Some(&body))
        .header("Idempotency-Key", key)
        .send()
        .await
        .unwrap()
}

pub async fn created(app: &TestApp, s: &Session, code: &str, amount: i64, key: &str) -> Value {
    let res = create(app, s, code, amount, key).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    res.json().await.unwrap()
}

/// The shopper pays at WeChat: the sandbox marks the order paid and notifies the server.
pub async fn pay(app: &TestApp, order_no: &str, query: &str) {
    let res = app
        .client
        .post(format!(
            "{}/sandbox/orders/{order_no}/pay{query}",
            sandbox(app)
        ))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{:?}", res.text().await);
}

/// Polls the order until `done` holds (notifications and awards are asynchronous).
pub async fn wait_order(
    app: &TestApp,
    s: &Session,
    order_no: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut order = Value::Null;
    for _ in 0..200 {
        order = get_auth(app, &s.access_token, &format!("/api/payments/{order_no}"))
            .await
            .json()
            .await
            .unwrap();
        if done(&order) {
            return order;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("order never reached the expected state: {order}");
}

pub async fn balance(app: &impl Server, s: &Session) -> i64 {
    let b: Value = get_auth(app, &s.access_token, "/api/points/balance")
        .await
        .json()
        .await
        .unwrap();
    b["available"].as_i64().unwrap()
}

pub async fn paid_order(app: &TestApp, shopper: &Session, code: &str, amount: i64) -> String {
    let order = created(
        app,
        shopper,
        code,
        amount,
        &format!("key-{}", uuid::Uuid::now_v7().simple()),
    )
    .await;
    let order_no = order["order_no"].as_str().unwrap().to_string();
    pay(app, &order_no, "").await;
    wait_order(app, shopper, &order_no, |o| {
        o["status"] == "paid" && o["points_awarded"].as_i64() > Some(0)
    })
    .await;
    order_no
}

#[actix_web::test]
async fn scan_pay_and_earn_points() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-scan").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-scan").await;

    // What the shopper sees after scanning.
    let seen: Value = app
        .get(&format!("/api/payment-codes/{code}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["merchant_name"], "m-scan shop");

    let order = created(&app, &shopper, &code, 12_345, "scan-key-0001").await;
    assert_eq!(order["status"], "paying");
    let params = &order["pay_params"];
    assert_eq!(params["signType"], "RSA");
    assert!(
        params["package"]
            .as_str()
            .unwrap()
            .starts_with("prepay_id=")
    );
    let order_no = order["order_no"].as_str().unwrap();

    pay(&app, order_no, "").await;
    let paid = wait_order(&app, &shopper, order_no, |o| {
        o["points_awarded"].as_i64() > Some(0)
    })
    .await;
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["amount_fen"], 12_345);
    assert_eq!(paid["points_awarded"], 123, "1 point per whole yuan");
    assert_eq!(paid["merchant_name"], "m-scan shop");
    assert_eq!(balance(&app, &shopper).await, 123);

    // The shopper's list, and the merchant's takings for today.
    let list: Value = get_auth(&app, &shopper.access_token, "/api/payments")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let stats: Value = get_auth(
        &app,
        &owner.access_token,
        &format!("/api/merchants/{merchant}/stats"),
    )
    .await
    .json()
    .await
    .unwrap();
    let today = stats["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(today["order_count"], 1, "{stats}");
    assert_eq!(today["amount_fen"], 12_345);
    assert_eq!(today["points_awarded"], 123);

    // Another shopper cannot see it; the merchant's order list has it.
    let other = login(&app, "shopper-other").await;
    let res = get_auth(
        &app,
        &other.access_token,
        &format!("/api/payments/{order_no}"),
    )
    .await;
    assert_eq!(res.status(), 404);
    let theirs: Value = get_auth(
        &app,
        &owner.access_token,
        &format!("/api/merchants/{merchant}/orders"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(theirs["items"][0]["order_no"], order_no);
}

#[actix_web::test]
async fn the_same_idempotency_key_returns_the_same_order_and_a_different_body_is_refused() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-idem").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-idem").await;
    let first = created(&app, &shopper, &code, 500, "idem-key-0001").await;
    let again = created(&app, &shopper, &code, 500, "idem-key-0001").await;
    assert_eq!(first["order_no"], again["order_no"]);
    let res = create(&app, &shopper, &code, 600, "idem-key-0001").await;
    assert_eq!(res.status(), 422);
    assert_eq!(error_body(res).await["code"], "IDEMPOTENCY_KEY_REUSED");
    let list: Value = get_auth(&app, &shopper.access_token, "/api/payments")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "no second order"
    );
}

#[actix_web::test]
async fn bad_payment_requests_are_refused_and_change_nothing() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-bad").await;
    let fixed = payment_code(&app, &owner, &merchant, Some(1000)).await;
    let shopper = login(&app, "shopper-bad").await;
    for (code, amount, status, expected) in [
        (fixed.as_str(), 999, 422, "AMOUNT_INVALID"),
        (fixed.as_str(), 0, 422, "AMOUNT_INVALID"),
        (fixed.as_str(), -5, 422, "AMOUNT_INVALID"),
        ("no-such-code", 100, 404, "PAYMENT_CODE_NOT_FOUND"),
    ] {
        let res = create(
            &app,
            &shopper,
            code,
            amount,
            &format!("bad-key-{amount}-{status}"),
        )
        .await;
        assert_eq!(res.status(), status, "{code} {amount}");
        assert_eq!(error_body(res).await["code"], expected);
    }
    // No Idempotency-Key, and an unsigned request.
    let body = json!({"payment_code_id": fixed, "amount_fen": 1000});
    let res = signed_request(&app, &shopper, "POST", "/api/payments", Some(&body))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(error_body(res).await["code"], "IDEMPOTENCY_KEY_REQUIRED");
    let res = app
        .client
        .post(app.url("/api/payments"))
        .bearer_auth(&shopper.access_token)
        .header("Idempotency-Key", "unsigned-key-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let list: Value = get_auth(&app, &shopper.access_token, "/api/payments")
        .await
        .json()
        .await
        .unwrap();
    assert!(list["items"].as_array().unwrap().is_empty());
    // A fixed-amount code takes exactly its amount.
    created(&app, &shopper, &fixed, 1000, "good-key-0001").await;
}

#[actix_web::test]
async fn duplicate_notifications_award_once() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-dup").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-dup").await;
    let order = created(&app, &shopper, &code, 10_000, "dup-key-00001").await;
    let order_no = order["order_no"].as_str().unwrap();
    // The first delivery plus ten racing copies.
    pay(&app, order_no, "?duplicates=10").await;
    wait_order(&app, &shopper, order_no, |o| o["points_awarded"] == 100).await;
    // Let every copy land, then check nothing was counted twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(balance(&app, &shopper).await, 100);
    let history: Value = get_auth(&app, &shopper.access_token, "/api/points/history")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["items"].as_array().unwrap().len(), 1, "{history}");
    let audit = app.state.points.audit(&shopper.user_id).await.unwrap();
    assert!(audit.ok, "{audit:?}");
}

#[actix_web::test]
async fn a_cancelled_order_cannot_be_paid() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-cancel").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-cancel").await;
    let order = created(&app, &shopper, &code, 800, "cancel-key-001").await;
    let order_no = order["order_no"].as_str().unwrap();
    let other = login(&app, "shopper-not-owner").await;
    let res = signed(
        &app,
        &other,
        "POST",
        &format!("/api/payments/{order_no}/cancel"),
        None,
    )
    .await;
    assert_eq!(res.status(), 404, "another shopper cannot cancel it");
    let res = signed(
        &app,
        &shopper,
        "POST",
        &format!("/api/payments/{order_no}/cancel"),
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "closed");
    // WeChat refuses to take money for a closed order.
    let res = app
        .client
        .post(format!("{}/sandbox/orders/{order_no}/pay", sandbox(&app)))
        .send()
        .await
        .unwrap();
    assert!(!res.status().is_success());
    assert_eq!(balance(&app, &shopper).await, 0);
    // Cancelling again is refused and changes nothing.
    let res = signed(
        &app,
        &shopper,
        "POST",
        &format!("/api/payments/{order_no}/cancel"),
        None,
    )
    .await;
    assert_eq!(res.status(), 409);
}

pub async fn refund(
    app: &TestApp,
    owner: &Session,
    merchant: &str,
    order_no: &str,
    amount: i64,
) -> reqwest::Response {
    signed(
        app,
        owner,
        "POST",
        &format!("/api/merchants/{merchant}/orders/{order_no}/refund"),
        Some(json!({"amount_fen": amount, "reason": "returned goods"})),
    )
    .await
}

pub async fn refund_succeeds(app: &TestApp, out_refund_no: &str) {
    let res = app
        .client
        .post(format!(
            "{}/sandbox/refunds/{out_refund_no}/succeed",
            sandbox(app)
        ))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{:?}", res.text().await);
}

#[actix_web::test]
async fn partial_then_full_refund_claws_points_back() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-refund").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-refund").await;
    let order_no = paid_order(&app, &shopper, &code, 10_000).await;
    assert_eq!(balance(&app, &shopper).await, 100);

    // More than was paid is refused and changes nothing.
    let res = refund(&app, &owner, &merchant, &order_no, 10_001).await;
    assert_eq!(res.status(), 422);
    assert_eq!(error_body(res).await["code"], "REFUND_EXCEEDS_PAID");

    let res = refund(&app, &owner, &merchant, &order_no, 3_000).await;
    assert_eq!(res.status(), 200);
    let r: Value = res.json().await.unwrap();
    // One refund at a time per order.
    let res = refund(&app, &owner, &merchant, &order_no, 1_000).await;
    assert_eq!(res.status(), 409);
    refund_succeeds(&app, r["out_refund_no"].as_str().unwrap()).await;
    let o = wait_order(&app, &shopper, &order_no, |o| {
        o["status"] == "partially_refunded"
    })
    .await;
    assert_eq!(o["refunded_fen"], 3_000);
    for _ in 0..100 {
        if balance(&app, &shopper).await == 70 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        balance(&app, &shopper).await,
        70,
        "30% of 100 points clawed back"
    );

    let res = refund(&app, &owner, &merchant, &order_no, 7_000).await;
    assert_eq!(res.status(), 200);
    let r: Value = res.json().await.unwrap();
    refund_succeeds(&app, r["out_refund_no"].as_str().unwrap()).await;
    wait_order(&app, &shopper, &order_no, |o| o["status"] == "refunded").await;
    for _ in 0..100 {
        if balance(&app, &shopper).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        balance(&app, &shopper).await,
        0,
        "a full refund takes back exactly the award"
    );
    let res = refund(&app, &owner, &merchant, &order_no, 1).await;
    assert_eq!(res.status(), 422, "nothing left to refund");
    assert_eq!(error_body(res).await["code"], "REFUND_EXCEEDS_PAID");
    let audit = app.state.points.audit(&shopper.user_id).await.unwrap();
    assert!(audit.ok, "{audit:?}");
}

#[actix_web::test]
async fn another_merchant_cannot_refund_or_see_the_order() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-owner").await;
    let (rival, rival_merchant) = approved_merchant(&app, "m-rival").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-tenancy").await;
    let order_no = paid_order(&app, &shopper, &code, 2_000).await;
    // The rival, through its own merchant id: the order is not there.
    let res = refund(&app, &rival, &rival_merchant, &order_no, 100).await;
    assert_eq!(res.status(), 404);
    // The rival, through the owner's merchant id: the merchant is not theirs.
    let res = refund(&app, &rival, &merchant, &order_no, 100).await;
    assert_eq!(res.status(), 404);
    let res = get_auth(
        &app,
        &rival.access_token,
        &format!("/api/merchants/{merchant}/orders"),
    )
    .await;
    assert_eq!(res.status(), 404);
    let o = wait_order(&app, &shopper, &order_no, |_| true).await;
    assert_eq!(o["refunded_fen"], 0);
}

#[actix_web::test]
async fn admins_see_the_day_and_export_orders_as_csv() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-report").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-report").await;
    let order_no = paid_order(&app, &shopper, &code, 4_321).await;
    let admin = crate::identity::admin_token(&app).await;

    let overview: Value = get_auth(&app, &admin, "/api/admin/stats/overview")
        .await
        .json()
        .await
        .unwrap();
    let today = overview["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(today["order_count"], 1, "{overview}");
    assert_eq!(today["amount_fen"], 4_321);
    assert_eq!(today["points_awarded"], 43);
    assert_eq!(today["payment_success_rate"], 1.0);
    assert!(today["new_users"].as_i64().unwrap() >= 2);

    // A merchant named like a spreadsheet formula.
    let evil_owner = login(&app, "formula-owner").await;
    let mut body = crate::identity::merchant_body("x");
    body["merchant_name"] = json!("=HYPERLINK(\"http://evil\",\"x\")");
    let res = signed(&app, &evil_owner, "POST", "/api/merchants", Some(body)).await;
    assert_eq!(res.status(), 201);
    let evil: String = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .into();
    let res = app
        .client
        .post(app.url(&format!("/api/admin/merchants/{evil}/approve")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let evil_code = payment_code(&app, &evil_owner, &evil, None).await;
    paid_order(&app, &shopper, &evil_code, 100).await;
    let res = get_auth(&app, &admin, "/api/admin/reports/orders.csv").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let bytes = res.bytes().await.unwrap();
    assert!(
        bytes.starts_with("\u{feff}".as_bytes()),
        "UTF-8 BOM for Excel"
    );
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        text.contains(&order_no) && text.contains("m-report shop"),
        "{text}"
    );
    // The formula is text to a spreadsheet: a leading apostrophe, inside the quoted cell.
    assert!(text.contains("\"'=HYPERLINK(\"\"http://evil"), "{text}");
    assert!(
        !text.contains(",=HYPERLINK") && !text.contains(",\"=HYPERLINK"),
        "{text}"
    );

    let filtered: Value = get_auth(&app, &admin, "/api/admin/orders?status=paid")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["items"].as_array().unwrap().len(), 2);
    let none: Value = get_auth(&app, &admin, "/api/admin/orders?status=closed")
        .await
        .json()
        .await
        .unwrap();
    assert!(none["items"].as_array().unwrap().is_empty());
    let res = get_auth(&app, &admin, "/api/admin/orders?status=nonsense").await;
    assert_eq!(res.status(), 400);
    let res = get_auth(&app, &admin, "/api/admin/stats/overview?from=2026-13-01").await;
    assert_eq!(res.status(), 400);
    let res = get_auth(&app, &shopper.access_token, "/api/admin/reports/orders.csv").await;
    assert!(res.status() == 401 || res.status() == 403);
}

#[actix_web::test]
async fn a_disabled_merchant_cannot_refund() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-disabled-refund").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-disabled-refund").await;
    let order_no = paid_order(&app, &shopper, &code, 10_000).await;
    let admin = crate::identity::admin_token(&app).await;
    let res = app
        .client
        .post(app.url(&format!("/api/admin/merchants/{merchant}/disable")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = refund(&app, &owner, &merchant, &order_no, 1_000).await;
    assert_eq!(res.status(), 403);
    assert_eq!(error_body(res).await["code"], "MERCHANT_NOT_APPROVED");
    let o = wait_order(&app, &shopper, &order_no, |_| true).await;
    assert_eq!(o["status"], "paid", "nothing refunded: {o}");
    assert_eq!(o["refunded_fen"], 0);
}

/// `?wait_ms=` answers when the order settles: one request sees it paid with its points,
/// where polling took several. A settled order is answered as it is, and the wait is bounded.
#[actix_web::test]
async fn one_waiting_request_sees_the_order_paid_with_its_points() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-wait").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-wait").await;
    let order = created(&app, &shopper, &code, 2_500, "wait-key-0001").await;
    let order_no = order["order_no"].as_str().unwrap().to_string();

    let path = format!("/api/payments/{order_no}?wait_ms=10000");
    let waiting = {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&path),
            shopper.access_token.clone(),
        );
        tokio::spawn(async move { client.get(url).bearer_auth(token).send().await.unwrap() })
    };
    // The waiter is registered before the shopper pays.
    for _ in 0..100 {
        if app.state.payments.core().changes.watched() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.state.payments.core().changes.watched(), 1);
    pay(&app, &order_no, "").await;
    let res = waiting.await.unwrap();
    assert_eq!(res.status(), 200);
    let seen: Value = res.json().await.unwrap();
    assert_eq!(seen["status"], "paid", "{seen}");
    assert_eq!(seen["points_awarded"], 25, "{seen}");
    assert_eq!(
        app.state.payments.core().changes.watched(),
        0,
        "the watch is gone"
    );

    // Settled: answered as it is.
    let again: Value = get_auth(&app, &shopper.access_token, &path)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again, seen);
    // Someone else's order is not found, waiting or not.
    let other = login(&app, "someone-else").await;
    let res = get_auth(&app, &other.access_token, &path).await;
    assert_eq!(res.status(), 404);
    error_body(res).await;
    for bad in ["wait_ms=10001", "wait_ms=-1", "wait_ms=soon", "wait=5"] {
        let res = get_auth(
            &app,
            &shopper.access_token,
            &format!("/api/payments/{order_no}?{bad}"),
        )
        .await;
        assert_eq!(res.status(), 400, "{bad}");
        assert_eq!(error_body(res).await["code"], "INVALID_QUERY", "{bad}");
    }
}
