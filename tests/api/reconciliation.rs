//! Trade-bill reconciliation over real HTTP with the in-process sandbox: a day's WeChat bill
//! matched against our orders and refunds; orders whose notification never arrived repaired
//! through the payment path (points once); amount differences reported, never repaired; a
//! bill whose hash does not match fails the run and changes nothing; bad dates are refused.

use std::collections::{HashMap, HashSet};

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_body};
use crate::identity::{
    Session, admin_token, approved_merchant, get_auth, login, spawn_identity_app_with,
};
use crate::payments::{
    balance, created, pay, payment_code, refund, refund_succeeds, sandbox, wait_order,
};

/// A server whose own re-query of paying orders does not step in during the test (the
/// reconciliation must find the dropped notifications, not the supervisor).
async fn app() -> TestApp {
    spawn_identity_app_with(|s| {
        s.rate_limit_payments_per_min = 10_000;
        s.supervisor_query_after_secs = 3600;
    })
    .await
}

fn today_cst() -> String {
    let now = chrono::Utc::now() + chrono::Duration::hours(8);
    now.format("%Y-%m-%d").to_string()
}

async fn start_run(app: &TestApp, admin: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/admin/reconciliation/runs"))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn run_ok(app: &TestApp, admin: &str, date: &str) -> Value {
    let res = start_run(app, admin, json!({"date": date})).await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    res.json().await.unwrap()
}

async fn sandbox_post(app: &TestApp, path: &str, body: Value) {
    let res = app
        .client
        .post(format!("{}{path}", sandbox(app)))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{path}: {:?}", res.text().await);
}

async fn order_status(app: &TestApp, s: &Session, order_no: &str) -> Value {
    get_auth(app, &s.access_token, &format!("/api/payments/{order_no}"))
        .await
        .json()
        .await
        .unwrap()
}

async fn history_len(app: &TestApp, s: &Session) -> usize {
    let h: Value = get_auth(app, &s.access_token, "/api/points/history?limit=100")
        .await
        .json()
        .await
        .unwrap();
    h["items"].as_array().unwrap().len()
}

#[actix_web::test]
async fn a_day_of_200_orders_with_5_lost_notifications_is_repaired_once() {
    let app = app().await;
    let admin = admin_token(&app).await;
    let (owner, merchant) = approved_merchant(&app, "m-recon").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    // 20 shoppers with 10 orders each: under the velocity rule's 20 an hour.
    let mut shoppers = Vec::new();
    for i in 0..20 {
        shoppers.push(login(&app, &format!("shopper-recon-{i}")).await);
    }
    let mut orders: Vec<(usize, String)> = Vec::new();
    for round in 0..10 {
        let made = join_all(shoppers.iter().enumerate().map(|(i, s)| {
            let key = format!("recon-{round}-{i}-{}", uuid::Uuid::now_v7().simple());
            let (app, code) = (&app, &code);
            async move { (i, created(app, s, code, 1_000, &key).await) }
        }))
        .await;
        for (i, order) in made {
            orders.push((i, order["order_no"].as_str().unwrap().to_string()));
        }
    }
    assert_eq!(orders.len(), 200);
    // WeChat takes every payment; five notifications never reach the server.
    let lost: HashSet<String> = [3, 41, 97, 150, 199]
        .iter()
        .map(|&i| orders[i].1.clone())
        .collect();
    for chunk in orders.chunks(25) {
        join_all(chunk.iter().map(|(_, no)| {
            let query = if lost.contains(no) { "?drop=true" } else { "" };
            pay(&app, no, query)
        }))
        .await;
    }
    for (i, no) in &orders {
        if !lost.contains(no) {
            wait_order(&app, &shoppers[*i], no, |o| o["points_awarded"] == 10).await;
        }
    }
    for (i, no) in orders.iter().filter(|(_, no)| lost.contains(no)) {
        assert_eq!(
            order_status(&app, &shoppers[*i], no).await["status"],
            "paying"
        );
    }

    let date = today_cst();
    let run = run_ok(&app, &admin, &date).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["bill_date"], date.as_str());
    assert_eq!(run["trigger"], "admin");
    assert_eq!(run["bill_rows"], 200, "{run}");
    assert_eq!(run["matched"], 195, "{run}");
    assert_eq!(run["missing_here"], 5, "{run}");
    assert_eq!(run["repaired"], 5, "{run}");
    assert_eq!(run["missing_at_wechat"], 0, "{run}");
    assert_eq!(run["amount_mismatches"], 0, "{run}");
    assert_eq!(run["status_mismatches"], 0, "{run}");
    let found = run["discrepancies"].as_array().unwrap();
    let found_nos: HashSet<String> = found
        .iter()
        .map(|d| d["order_no"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(found_nos, lost);
    for d in found {
        assert_eq!(d["kind"], "missing_here", "{d}");
        assert_eq!(d["our_amount_fen"], 1_000);
        assert_eq!(d["wechat_amount_fen"], 1_000);
        assert!(d["repaired_at"].is_string(), "{d}");
    }
    // The repaired orders are paid with their points, once, through the ordinary path.
    for (i, no) in orders.iter().filter(|(_, no)| lost.contains(no)) {
        let o = wait_order(&app, &shoppers[*i], no, |o| o["points_awarded"] == 10).await;
        assert_eq!(o["status"], "paid");
    }

    // A second run of the day finds nothing and repairs nothing.
    let again = run_ok(&app, &admin, &date).await;
    assert_ne!(again["id"], run["id"]);
    assert_eq!(again["status"], "succeeded");
    assert_eq!(again["matched"], 200, "{again}");
    assert_eq!(again["missing_here"], 0, "{again}");
    assert_eq!(again["repaired"], 0, "{again}");
    assert!(again["discrepancies"].as_array().unwrap().is_empty());

    // The ledger: one award per order, balances exact.
    let mut per_shopper: HashMap<usize, usize> = HashMap::new();
    for (i, _) in &orders {
        *per_shopper.entry(*i).or_default() += 1;
    }
    for (i, s) in shoppers.iter().enumerate() {
        let n = per_shopper[&i];
        assert_eq!(history_len(&app, s).await, n, "shopper {i}");
        assert_eq!(balance(&app, s).await, 10 * n as i64, "shopper {i}");
        let audit = app.state.points.audit(&s.user_id).await.unwrap();
        assert!(audit.ok, "{audit:?}");
    }

    // Both runs are listed; the first keeps its differences; each repair is audited.
    let runs: Value = get_auth(&app, &admin, "/api/admin/reconciliation/runs")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [again["id"].as_str().unwrap(), run["id"].as_str().unwrap()]
    );
    let detail: Value = get_auth(
        &app,
        &admin,
        &format!(
            "/api/admin/reconciliation/runs/{}",
            run["id"].as_str().unwrap()
        ),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(detail["discrepancies"].as_array().unwrap().len(), 5);
    let audit: Value = get_auth(&app, &admin, "/api/admin/audit-log?limit=100")
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "reconciliation.repair")
            .count(),
        5
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "reconciliation.run")
            .count(),
        2
    );
}

#[actix_web::test]
async fn an_amount_the_bill_disagrees_on_is_reported_and_not_repaired() {
    let app = app().await;
    let admin = admin_token(&app).await;
    let (owner, merchant) = approved_merchant(&app, "m-recon-amt").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-recon-amt").await;
    let mut nos = Vec::new();
    for i in 0..3 {
        let o = created(&app, &shopper, &code, 1_000, &format!("recon-amt-{i}")).await;
        let no = o["order_no"].as_str().unwrap().to_string();
        pay(&app, &no, "").await;
        wait_order(&app, &shopper, &no, |o| o["points_awarded"] == 10).await;
        nos.push(no);
    }
    // A refund that succeeded today: a REFUND row in the bill, matched by its number.
    let res = refund(&app, &owner, &merchant, &nos[2], 300).await;
    assert!(res.status().is_success(), "{:?}", res.text().await);
    let out_refund_no = res.json::<Value>().await.unwrap()["out_refund_no"]
        .as_str()
        .unwrap()
        .to_string();
    refund_succeeds(&app, &out_refund_no).await;
    wait_order(&app, &shopper, &nos[2], |o| {
        o["status"] == "partially_refunded"
    })
    .await;
    // WeChat's bill says 9.99 yuan for the first order.
    sandbox_post(
        &app,
        &format!("/sandbox/orders/{}/bill-amount", nos[0]),
        json!({"amount_fen": 999}),
    )
    .await;
    // The refund's clawback (3 of the order's 10 points) is booked after the refund: wait
    // for it, so the balance read below is final.
    let mut before = 0;
    for _ in 0..200 {
        before = balance(&app, &shopper).await;
        if before == 27 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(before, 27);

    let run = run_ok(&app, &admin, &today_cst()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["bill_rows"], 4, "{run}");
    assert_eq!(run["matched"], 3, "{run}");
    assert_eq!(run["amount_mismatches"], 1, "{run}");
    assert_eq!(run["missing_here"], 0, "{run}");
    assert_eq!(run["missing_at_wechat"], 0, "{run}");
    assert_eq!(run["repaired"], 0, "{run}");
    let d = &run["discrepancies"][0];
    assert_eq!(d["kind"], "amount_mismatch");
    assert_eq!(d["order_no"], nos[0].as_str());
    assert_eq!(d["our_amount_fen"], 1_000);
    assert_eq!(d["wechat_amount_fen"], 999);
    assert!(d["repaired_at"].is_null(), "{d}");
    // Nothing changed: the order, the points.
    let o = order_status(&app, &shopper, &nos[0]).await;
    assert_eq!(o["status"], "paid");
    assert_eq!(o["amount_fen"], 1_000);
    assert_eq!(balance(&app, &shopper).await, before);
    // Reported again by the next run: a person decides.
    let again = run_ok(&app, &admin, &today_cst()).await;
    assert_eq!(again["amount_mismatches"], 1, "{again}");
    // Settlement takes WeChat's fee only for the rows that matched: the order the bill
    // disagrees on keeps the estimate (the day is mixed); the refund's is the bill's.
    let day = today_cst();
    let s: Value = get_auth(
        &app,
        &owner.access_token,
        &format!("/api/merchants/{merchant}/settlements?from={day}&to={day}"),
    )
    .await
    .json()
    .await
    .unwrap();
    let d = &s["items"][0];
    assert_eq!(d["order_count"], 3, "{s}");
    assert_eq!(d["fee_from_bill_orders"], 2, "{s}");
    assert_eq!(d["fee_from_bill_refunds"], 1, "{s}");
    assert_eq!(d["fee_source"], "mixed", "{s}");
}

#[actix_web::test]
async fn a_bill_whose_hash_does_not_match_fails_the_run_and_changes_nothing() {
    let app = app().await;
    let admin = admin_token(&app).await;
    let (owner, merchant) = approved_merchant(&app, "m-recon-hash").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-recon-hash").await;
    let o = created(&app, &shopper, &code, 1_000, "recon-hash-1").await;
    let no = o["order_no"].as_str().unwrap().to_string();
    pay(&app, &no, "?drop=true").await;
    sandbox_post(
        &app,
        "/sandbox/faults",
        json!({"count": 1, "bill_hash_mismatch": true}),
    )
    .await;

    let run = run_ok(&app, &admin, &today_cst()).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["error"].as_str().unwrap().contains("hash"), "{run}");
    assert_eq!(run["bill_rows"], 0);
    assert_eq!(run["repaired"], 0);
    assert!(run["discrepancies"].as_array().unwrap().is_empty());
    // The order WeChat has as paid was not touched by the failed run.
    assert_eq!(order_status(&app, &shopper, &no).await["status"], "paying");
    assert_eq!(balance(&app, &shopper).await, 0);

    // With a good bill the same day is reconciled and the order repaired.
    let run = run_ok(&app, &admin, &today_cst()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["repaired"], 1, "{run}");
    wait_order(&app, &shopper, &no, |o| o["points_awarded"] == 10).await;
    assert_eq!(balance(&app, &shopper).await, 10);
}

#[actix_web::test]
async fn bad_dates_are_refused_and_change_nothing() {
    let app = app().await;
    let admin = admin_token(&app).await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::hours(8 + 24))
        .format("%Y-%m-%d")
        .to_string();
    let long_ago = (chrono::Utc::now() - chrono::Duration::days(200))
        .format("%Y-%m-%d")
        .to_string();
    for date in [
        tomorrow.as_str(),
        long_ago.as_str(),
        "2026-13-01",
        "2026-02-30",
        "yesterday",
        "2026-1-5",
        "",
    ] {
        let res = start_run(&app, &admin, json!({"date": date})).await;
        assert_eq!(res.status(), 422, "{date}");
        assert_eq!(error_body(res).await["code"], "VALIDATION_FAILED", "{date}");
    }
    // A body of the wrong shape: 422 as every JSON body here; not JSON at all: 400.
    for body in [
        json!({}),
        json!({"date": 20261206}),
        json!({"date": "2026-12-06", "x": 1}),
    ] {
        let res = start_run(&app, &admin, body.clone()).await;
        assert_eq!(res.status(), 422, "{body}");
        assert_eq!(error_body(res).await["code"], "VALIDATION_FAILED", "{body}");
    }
    let res = app
        .client
        .post(app.url("/api/admin/reconciliation/runs"))
        .bearer_auth(&admin)
        .header("Content-Type", "application/json")
        .body("{\"date\":")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    error_body(res).await;
    // Not an admin.
    let res = app
        .client
        .post(app.url("/api/admin/reconciliation/runs"))
        .json(&json!({"date": today_cst()}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let runs: Value = get_auth(&app, &admin, "/api/admin/reconciliation/runs")
        .await
        .json()
        .await
        .unwrap();
    assert!(runs["items"].as_array().unwrap().is_empty(), "{runs}");
    let res = get_auth(&app, &admin, "/api/admin/reconciliation/runs/nope").await;
    assert_eq!(res.status(), 404);
    error_body(res).await;
}

#[actix_web::test]
async fn the_daily_job_reconciles_a_day_once_on_one_instance() {
    use points_app::actors::payments::reconcile::scheduled_day;
    let app = app().await;
    let admin = admin_token(&app).await;
    let now = chrono::Utc::now();
    let yesterday = (now + chrono::Duration::hours(8) - chrono::Duration::days(1)).date_naive();
    let payments = &app.state.payments;
    // Another live instance holds the day's lease: this one leaves the day to it.
    let db = app.state.app.db();
    let until = (now + chrono::Duration::minutes(30)).naive_utc();
    let key = format!("recon-{}", yesterday.format("%Y-%m-%d"));
    assert!(
        points_app::storage::leases::claim(db, &key, "other", now.naive_utc(), until)
            .await
            .unwrap()
    );
    assert_eq!(
        scheduled_day(payments, yesterday, "me", now).await.unwrap(),
        None
    );
    points_app::storage::leases::release(db, &key, "other")
        .await
        .unwrap();
    // Free: it runs, once; the next step (this or another instance) finds the day done.
    assert_eq!(
        scheduled_day(payments, yesterday, "me", now)
            .await
            .unwrap()
            .as_deref(),
        Some("succeeded")
    );
    assert_eq!(
        scheduled_day(payments, yesterday, "me", now).await.unwrap(),
        None
    );
    assert_eq!(
        scheduled_day(payments, yesterday, "other", now)
            .await
            .unwrap(),
        None
    );
    let runs: Value = get_auth(&app, &admin, "/api/admin/reconciliation/runs")
        .await
        .json()
        .await
        .unwrap();
    let items = runs["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{runs}");
    assert_eq!(items[0]["trigger"], "schedule");
    assert_eq!(
        items[0]["bill_date"],
        yesterday.format("%Y-%m-%d").to_string()
    );
    assert!(items[0]["requested_by"].is_null());
}
