//! The rest of the payment path over real HTTP: a notification that beats the prepay answer,
//! the supervisor closing an expired order, the risk rules, and the shopper's subscribe
//! messages (sent once, retried, refused without touching the payment).

use std::time::Duration;

use points_app::sandbox::mini_api::UNSUBSCRIBED_TEMPLATE;
use points_app::storage::subscribe;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_body};
use crate::identity::{
    Session, approved_merchant, get_auth, login, signed_request, spawn_identity_app_with,
};
use crate::payments::{
    app, balance, create, created, paid_order, pay, payment_code, refund, refund_succeeds, sandbox,
    wait_order,
};

async fn fault(app: &TestApp, body: Value) {
    let res = app
        .client
        .post(format!("{}/sandbox/faults", sandbox(app)))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204, "{:?}", res.text().await);
}

async fn orders_of(app: &TestApp, s: &Session) -> Vec<Value> {
    let page: Value = get_auth(app, &s.access_token, "/api/payments")
        .await
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().clone()
}

async fn messages(app: &TestApp) -> Vec<Value> {
    app.client
        .get(format!("{}/sandbox/messages", sandbox(app)))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["messages"]
        .as_array()
        .cloned()
        .expect("{messages: [...]}")
}

/// The messages the sandbox accepted whose first field is `order_no`.
async fn messages_about(app: &TestApp, order_no: &str) -> Vec<Value> {
    messages(app)
        .await
        .into_iter()
        .map(|m| m["message"].clone())
        .filter(|m| m["data"]["character_string1"]["value"] == order_no)
        .collect()
}

async fn wait_message_row(
    app: &TestApp,
    kind: &str,
    reference: &str,
    status: &str,
) -> subscribe::MessageRow {
    let mut last = None;
    for _ in 0..200 {
        last = subscribe::find(app.state.app.db(), kind, reference)
            .await
            .unwrap();
        if last.as_ref().is_some_and(|r| r.status == status) {
            return last.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("message {kind}/{reference} never became {status}: {last:?}");
}

#[actix_web::test]
async fn a_notification_that_beats_the_prepay_answer_settles_the_order_once() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-race").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-race").await;
    // WeChat books the order at once but its prepay answer is 1.5 s late.
    fault(&app, json!({"count": 1, "delay_prepay_ms": 1500})).await;
    let pending = {
        let app_client = app.client.clone();
        let req = signed_request(
            &app,
            &shopper,
            "POST",
            "/api/payments",
            Some(&json!({"payment_code_id": code, "amount_fen": 4_200})),
        )
        .header("Idempotency-Key", "race-key-000001")
        .build()
        .unwrap();
        actix_web::rt::spawn(async move { app_client.execute(req).await })
    };
    // The order exists (created) while its prepay call is still out.
    let mut order_no = String::new();
    for _ in 0..100 {
        if let Some(o) = orders_of(&app, &shopper).await.first() {
            order_no = o["order_no"].as_str().unwrap().to_string();
            assert_eq!(o["status"], "created", "{o}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!order_no.is_empty(), "the order was never stored");
    // The shopper pays and the notification arrives before the prepay answer.
    pay(&app, &order_no, "").await;
    wait_order(&app, &shopper, &order_no, |o| o["status"] == "paid").await;

    let answer = pending.await.unwrap().unwrap();
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["order_no"], order_no.as_str());
    assert_eq!(
        answer["status"], "paid",
        "the late prepay answer does not undo paid: {answer}"
    );
    assert!(
        answer["pay_params"].is_null(),
        "nothing left to pay: {answer}"
    );
    let o = wait_order(&app, &shopper, &order_no, |o| o["points_awarded"] == 42).await;
    assert_eq!(o["status"], "paid");
    assert_eq!(balance(&app, &shopper).await, 42);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("order_illegal_transitions_total 0"),
        "no transition was forced: {metrics}"
    );
}

#[actix_web::test]
async fn the_supervisor_closes_an_order_at_its_expiry() {
    let app = spawn_identity_app_with(|s| {
        s.rate_limit_payments_per_min = 1000;
        s.order_ttl_secs = 2;
    })
    .await;
    let (owner, merchant) = approved_merchant(&app, "m-expiry").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-expiry").await;
    let order = created(&app, &shopper, &code, 900, "expiry-key-00001").await;
    let order_no = order["order_no"].as_str().unwrap().to_string();
    assert_eq!(order["status"], "paying");

    let o = wait_order(&app, &shopper, &order_no, |o| o["status"] == "closed").await;
    assert_eq!(o["points_awarded"], 0);
    // Closed at WeChat too: the shopper can no longer pay it there.
    let res = app
        .client
        .post(format!("{}/sandbox/orders/{order_no}/pay", sandbox(&app)))
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_client_error(),
        "paid after close: {:?}",
        res.text().await
    );
    assert_eq!(balance(&app, &shopper).await, 0);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"payments_completed_total{result="closed"} 1"#),
        "{metrics}"
    );
}

#[actix_web::test]
async fn the_twenty_first_payment_in_an_hour_is_blocked_and_changes_nothing() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-velocity").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-velocity").await;
    for i in 0..20 {
        created(
            &app,
            &shopper,
            &code,
            100 + i,
            &format!("velocity-key-{i:04}"),
        )
        .await;
    }
    let res = create(&app, &shopper, &code, 500, "velocity-key-0020").await;
    assert_eq!(res.status(), 403);
    let body = error_body(res).await;
    assert_eq!(body["code"], "RISK_BLOCKED", "{body}");
    assert_eq!(
        orders_of(&app, &shopper).await.len(),
        20,
        "no order for the blocked request"
    );
    // A retry of an earlier request is not a new payment.
    let res = create(&app, &shopper, &code, 100, "velocity-key-0000").await;
    assert_eq!(res.status(), 200);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"risk_blocks_total{rule="payment_velocity"} 1"#),
        "{metrics}"
    );
}

/// The rule's threshold and window are its data: set to 3 payments an hour, it fires at the
/// default payment rate limit (5 a minute), before the limit does.
#[actix_web::test]
async fn a_velocity_rule_fires_under_the_default_rate_limit() {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use points_app::storage::schema::risk_rules;

    let app = crate::identity::spawn_identity_app().await;
    assert_eq!(app.state.settings.rate_limit_payments_per_min, 5);
    let mut conn = app.state.app.db().write_conn().await.unwrap();
    points_app::with_conn!(&mut conn, |c| {
        diesel::update(risk_rules::table.filter(risk_rules::name.eq("payment_velocity")))
            .set(
                risk_rules::condition_json
                    .eq(r#"{"type":"payments_in_window","max":3,"window_secs":3600}"#),
            )
            .execute(c)
            .await
    })
    .unwrap();
    drop(conn);
    let (owner, merchant) = approved_merchant(&app, "m-velocity-3").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-velocity-3").await;
    for i in 0..3 {
        created(&app, &shopper, &code, 100 + i, &format!("v3-key-{i:04}")).await;
    }
    let res = create(&app, &shopper, &code, 500, "v3-key-0003").await;
    assert_eq!(res.status(), 403);
    assert_eq!(error_body(res).await["code"], "RISK_BLOCKED");
    assert_eq!(orders_of(&app, &shopper).await.len(), 3);
}

#[actix_web::test]
async fn a_payment_from_an_ip_never_used_to_sign_in_asks_for_a_fresh_sign_in() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-newip").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-newip").await;
    // Loopback has the whole 127/8: a client bound to 127.0.0.2 is a new address.
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let body = json!({"payment_code_id": code, "amount_fen": 800});
    let send = |client: &reqwest::Client, s: &Session, key: &str| {
        let req = signed_request(&app, s, "POST", "/api/payments", Some(&body))
            .header("Idempotency-Key", key)
            .build()
            .unwrap();
        client.execute(req)
    };
    let res = send(&elsewhere, &shopper, "newip-key-000001")
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(error_body(res).await["code"], "RISK_VERIFICATION_REQUIRED");
    assert!(
        orders_of(&app, &shopper).await.is_empty(),
        "nothing created"
    );

    // Signing in from there makes the address known.
    let res = elsewhere
        .post(app.url("/api/auth/wechat-login"))
        .json(&json!({"code": crate::identity::code_for("shopper-newip")}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = send(&elsewhere, &shopper, "newip-key-000002")
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"risk_blocks_total{rule="unknown_login_ip"} 1"#),
        "{metrics}"
    );
}

#[actix_web::test]
async fn the_shopper_gets_one_message_per_payment_and_per_refund() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-messages").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-messages").await;
    let order = created(&app, &shopper, &code, 2_500, "messages-key-0001").await;
    let order_no = order["order_no"].as_str().unwrap().to_string();
    // Five copies of the notification race each other: one award, one message.
    pay(&app, &order_no, "?duplicates=4").await;
    wait_order(&app, &shopper, &order_no, |o| o["points_awarded"] == 25).await;
    let row = wait_message_row(&app, "payment", &order_no, subscribe::SENT).await;
    assert_eq!(row.user_id, shopper.user_id);
    let sent = messages_about(&app, &order_no).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let m = &sent[0];
    assert_eq!(m["touser"], row.openid.as_str());
    assert_eq!(m["template_id"], "tmpl-payment-success");
    assert_eq!(m["data"]["amount2"]["value"], "¥25.00");
    assert_eq!(m["data"]["number3"]["value"], "25");
    assert_eq!(
        m["page"],
        format!("payment/pages/result/index?order_no={order_no}")
    );

    let res = refund(&app, &owner, &merchant, &order_no, 1_000).await;
    assert_eq!(res.status(), 200);
    let r: Value = res.json().await.unwrap();
    let out_refund_no = r["out_refund_no"].as_str().unwrap().to_string();
    refund_succeeds(&app, &out_refund_no).await;
    wait_message_row(&app, "refund", &out_refund_no, subscribe::SENT).await;
    let sent = messages_about(&app, &order_no).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    let refund_message = sent
        .iter()
        .find(|m| m["template_id"] == "tmpl-refund-success")
        .unwrap();
    assert_eq!(refund_message["data"]["amount2"]["value"], "¥10.00");
    assert_eq!(refund_message["data"]["number3"]["value"], "10");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"subscribe_messages_total{kind="payment",result="sent"} 1"#),
        "{metrics}"
    );
}

#[actix_web::test]
async fn a_failing_message_is_retried_and_never_touches_the_payment() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-msgretry").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-msgretry").await;
    // WeChat is busy for the first two sends.
    fault(&app, json!({"count": 2, "subscribe_errcode": -1})).await;
    let order_no = paid_order(&app, &shopper, &code, 1_800).await;
    assert_eq!(
        balance(&app, &shopper).await,
        18,
        "the payment went through"
    );
    let row = {
        let mut row = None;
        // Retries come after 2 s, then 4 s (from a pass every 2 s).
        for _ in 0..600 {
            let r = subscribe::find(app.state.app.db(), "payment", &order_no)
                .await
                .unwrap();
            if let Some(r) = r.filter(|r| r.status == subscribe::SENT) {
                row = Some(r);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        row.expect("sent after the retries")
    };
    assert_eq!(row.attempts, 3, "two failures, then sent: {row:?}");
    assert_eq!(messages_about(&app, &order_no).await.len(), 1);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"subscribe_messages_total{kind="payment",result="retry"} 2"#),
        "{metrics}"
    );
}

#[actix_web::test]
async fn refused_and_broken_messages_end_without_retry() {
    let app = spawn_identity_app_with(|s| {
        s.rate_limit_payments_per_min = 1000;
        s.subscribe_template_payment = UNSUBSCRIBED_TEMPLATE.into();
    })
    .await;
    let (owner, merchant) = approved_merchant(&app, "m-msgrefused").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-msgrefused").await;
    let order_no = paid_order(&app, &shopper, &code, 600).await;
    let row = wait_message_row(&app, "payment", &order_no, subscribe::REFUSED).await;
    assert_eq!(row.attempts, 1);
    assert!(row.last_error.unwrap().contains("43101"));

    // Template data WeChat rejects: dead-lettered at once, the payment unaffected.
    let app = crate::payments::app().await;
    let (owner, merchant) = approved_merchant(&app, "m-msgdead").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-msgdead").await;
    fault(&app, json!({"count": 1, "subscribe_errcode": 47003})).await;
    let order_no = paid_order(&app, &shopper, &code, 700).await;
    let row = wait_message_row(&app, "payment", &order_no, subscribe::DEAD).await;
    assert_eq!(row.attempts, 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let row = subscribe::find(app.state.app.db(), "payment", &order_no)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, subscribe::DEAD, "a dead letter is not retried");
    assert!(messages_about(&app, &order_no).await.is_empty());
    assert_eq!(balance(&app, &shopper).await, 7);
}

/// Risk rules are the admin's to run: listed, tightened, switched off, audited, in force at
/// once; a rule the engine would not run is refused and changes nothing.
#[actix_web::test]
async fn admins_run_the_risk_rules_and_a_change_takes_effect_at_once() {
    let app = app().await;
    let admin = crate::identity::admin_token(&app).await;
    let rules: Value = get_auth(&app, &admin, "/api/admin/risk-rules")
        .await
        .json()
        .await
        .unwrap();
    let items = rules["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{rules}");
    let velocity = items
        .iter()
        .find(|r| r["name"] == "payment_velocity")
        .unwrap();
    assert_eq!(
        velocity["condition"],
        json!({"type": "payments_in_window", "max": 20, "window_secs": 3600})
    );
    let path = format!("/api/admin/risk-rules/{}", velocity["id"].as_str().unwrap());
    let patch = |body: Value| {
        app.client
            .patch(app.url(&path))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };

    // Refused, and nothing changes.
    for bad in [
        json!({"condition": {"type": "moon_phase"}}),
        json!({"condition": {"type": "payments_in_window", "max": 0, "window_secs": 60}}),
        json!({"action": "shrug"}),
        json!({"priority": -5}),
    ] {
        let res = patch(bad.clone()).await.unwrap();
        assert_eq!(res.status(), 422, "{bad}");
        error_body(res).await;
    }
    let res = patch(json!({"colour": "red"})).await.unwrap();
    assert!(res.status().is_client_error());
    let res = app
        .client
        .patch(app.url("/api/admin/risk-rules/nope"))
        .bearer_auth(&admin)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // Tightened to 2 an hour: the third payment is refused at once (no restart, no wait).
    let (owner, merchant) = approved_merchant(&app, "m-rules").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-rules").await;
    created(&app, &shopper, &code, 100, "rules-key-0000").await;
    let res =
        patch(json!({"condition": {"type": "payments_in_window", "max": 2, "window_secs": 3600}}))
            .await
            .unwrap();
    assert_eq!(res.status(), 200);
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["condition"]["max"], 2);
    assert_eq!(changed["enabled"], true);
    created(&app, &shopper, &code, 101, "rules-key-0001").await;
    let res = create(&app, &shopper, &code, 102, "rules-key-0002").await;
    assert_eq!(res.status(), 403);
    assert_eq!(error_body(res).await["code"], "RISK_BLOCKED");
    // Switched off: the same payment goes through.
    let res = patch(json!({"enabled": false})).await.unwrap();
    assert_eq!(res.status(), 200);
    created(&app, &shopper, &code, 102, "rules-key-0002").await;

    let log: Value = get_auth(&app, &admin, "/api/admin/audit-log")
        .await
        .json()
        .await
        .unwrap();
    let changes: Vec<&Value> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "risk_rule.change")
        .collect();
    assert_eq!(changes.len(), 2, "refusals write nothing: {log}");
    assert_eq!(changes[0]["before"]["enabled"], true);
    assert_eq!(changes[0]["after"]["enabled"], false);
    let res = get_auth(&app, &shopper.access_token, "/api/admin/risk-rules").await;
    assert!(res.status() == 401 || res.status() == 403);
}
