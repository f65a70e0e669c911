//! The points routes over HTTP: balance, history, statistics, spending with an
//! Idempotency-Key, and the admin's adjustments and earning rules.

use serde_json::{Value, json};

use crate::helpers::error_body;
use crate::identity::{admin_token, approved_merchant, get_auth, login, signed_request};
use crate::payments::{app, balance, paid_order, payment_code};

async fn deduct(
    app: &crate::helpers::TestApp,
    s: &crate::identity::Session,
    points: i64,
    key: Option<&str>,
) -> reqwest::Response {
    let body = json!({"points": points, "reason": "coffee"});
    let mut req = signed_request(app, s, "POST", "/api/points/deduct", Some(&body));
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    req.send().await.unwrap()
}

#[actix_web::test]
async fn shoppers_see_and_spend_their_points_once_per_key() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-points").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-points").await;
    paid_order(&app, &shopper, &code, 5_000).await;
    assert_eq!(balance(&app, &shopper).await, 50);

    let first = deduct(&app, &shopper, 20, Some("spend-key-0001")).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let again: Value = deduct(&app, &shopper, 20, Some("spend-key-0001"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["id"], again["id"], "the same key spends once");
    assert_eq!(balance(&app, &shopper).await, 30);
    // The same key with another body is a client bug: refused, as payments refuse it.
    let res = deduct(&app, &shopper, 21, Some("spend-key-0001")).await;
    assert_eq!(res.status(), 422);
    assert_eq!(error_body(res).await["code"], "IDEMPOTENCY_KEY_REUSED");
    let body = json!({"points": 20, "reason": "tea"});
    let res = signed_request(&app, &shopper, "POST", "/api/points/deduct", Some(&body))
        .header("Idempotency-Key", "spend-key-0001")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(error_body(res).await["code"], "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(balance(&app, &shopper).await, 30);

    let res = deduct(&app, &shopper, 31, Some("spend-key-0002")).await;
    assert_eq!(res.status(), 409);
    assert_eq!(error_body(res).await["code"], "POINTS_INSUFFICIENT");
    let res = deduct(&app, &shopper, 5, None).await;
    assert_eq!(res.status(), 400);
    assert_eq!(error_body(res).await["code"], "IDEMPOTENCY_KEY_REQUIRED");
    let res = deduct(&app, &shopper, 0, Some("spend-key-0003")).await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        balance(&app, &shopper).await,
        30,
        "refusals changed nothing"
    );

    let b: Value = get_auth(&app, &shopper.access_token, "/api/points/balance")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(b["total_earned"], 50);
    assert_eq!(b["used"], 20);
    let h: Value = get_auth(&app, &shopper.access_token, "/api/points/history?limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(h["items"][0]["kind"], "deduct");
    assert!(h["next_cursor"].is_string(), "{h}");
    let s: Value = get_auth(&app, &shopper.access_token, "/api/points/statistics")
        .await
        .json()
        .await
        .unwrap();
    assert!(s.to_string().contains("\"earned\":50"), "{s}");
    let res = get_auth(
        &app,
        &shopper.access_token,
        "/api/points/history?limit=1000",
    )
    .await;
    assert_eq!(res.status(), 400);
    let res = app.get("/api/points/balance").await;
    assert_eq!(res.status(), 401);
}

#[actix_web::test]
async fn admins_adjust_points_and_change_the_rule_for_the_next_payment() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-rules").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-rules").await;
    let admin = admin_token(&app).await;

    let adjust = |points: i64, reason: &str| {
        app.client
            .post(app.url(&format!("/api/admin/points/{}/adjust", shopper.user_id)))
            .bearer_auth(&admin)
            .json(&json!({"points": points, "reason": reason}))
            .send()
    };
    let res = adjust(25, "goodwill").await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(balance(&app, &shopper).await, 25);
    let res = adjust(10, "  ").await.unwrap();
    assert_eq!(res.status(), 422, "a reason is required");
    // A shopper is not an admin.
    let res = app
        .client
        .post(app.url(&format!("/api/admin/points/{}/adjust", shopper.user_id)))
        .bearer_auth(&shopper.access_token)
        .json(&json!({"points": 1000, "reason": "me"}))
        .send()
        .await
        .unwrap();
    assert!(res.status() == 401 || res.status() == 403);
    assert_eq!(balance(&app, &shopper).await, 25);

    let rule: Value = get_auth(&app, &admin, "/api/admin/points-rules")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rule["points_per_yuan"], 1);
    let new_rule = json!({
        "points_per_yuan": 2,
        "min_order_fen": rule["min_order_fen"], "max_order_fen": rule["max_order_fen"],
        "per_order_max_points": rule["per_order_max_points"], "daily_cap": rule["daily_cap"],
        "lifetime_cap": rule["lifetime_cap"], "expiry_days": rule["expiry_days"],
    });
    let res = app
        .client
        .put(app.url("/api/admin/points-rules"))
        .bearer_auth(&admin)
        .json(&new_rule)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let mut bad = new_rule.clone();
    bad["points_per_yuan"] = json!(-1);
    let res = app
        .client
        .put(app.url("/api/admin/points-rules"))
        .bearer_auth(&admin)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());

    paid_order(&app, &shopper, &code, 1_000).await;
    assert_eq!(
        balance(&app, &shopper).await,
        25 + 20,
        "the new rule applies to the next payment"
    );
    let audit: Value = get_auth(&app, &admin, "/api/admin/audit-log")
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"points.adjust") && actions.contains(&"points_rules.update"),
        "{actions:?}"
    );
}
