//! Rate limits: the login guard per IP over HTTP, and the shared limiter across instances.

use serde_json::json;

use crate::helpers::error_body;
use crate::identity::*;

#[actix_web::test]
async fn login_is_limited_per_ip_with_retry_after() {
    let app = spawn_identity_app_with(|s| s.rate_limit_login_per_min_per_ip = 3).await;
    // The series exist from the start, at zero, for dashboards and alerts.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for series in [
        r#"rate_limited_total{limit="payments"} 0"#,
        r#"rate_limited_total{limit="points_queries"} 0"#,
        r#"security_events_total{event="expired_token"} 0"#,
        r#"security_events_total{event="bad_signature"} 0"#,
        "user_registrations_total 0",
    ] {
        assert!(metrics.contains(series), "{series} missing: {metrics}");
    }
    for i in 0..3 {
        let res = post_json(
            &app,
            "/api/auth/wechat-login",
            json!({"code": code_for(&format!("x{i}"))}),
        )
        .await;
        assert_eq!(res.status(), 200);
    }
    let res = post_json(
        &app,
        "/api/auth/wechat-login",
        json!({"code": code_for("x9")}),
    )
    .await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(error_body(res).await["code"], "RATE_LIMITED");
    // Admin login shares the guard: password guessing is limited too.
    let res = post_json(
        &app,
        "/api/admin/login",
        json!({"username": "admin", "password": "guess"}),
    )
    .await;
    assert_eq!(res.status(), 429);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"rate_limited_total{limit="login_ip"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"security_events_total{event="rate_limited"} 2"#),
        "{metrics}"
    );
}

#[actix_web::test]
async fn per_user_limits_hold_across_instances_with_redis() {
    let app = spawn_identity_app_with(|s| s.rate_limit_points_queries_per_min = 4).await;
    let Some(_) = app.state.redis else {
        return;
    };
    let other = spawn_other_instance(&app, |s| s.rate_limit_points_queries_per_min = 4).await;
    let (here, there) = (
        &app.state.security.limits.points_queries,
        &other.state.security.limits.points_queries,
    );
    for limiter in [here, there, here, there] {
        assert!(limiter.check("user-1").await.is_ok());
    }
    // Each instance's own governor still has room; the shared counter does not.
    let refused = there.check("user-1").await.unwrap_err();
    assert_eq!(refused.limit, "points_queries");
    assert!(here.check("user-2").await.is_ok());
}

/// The limits as shipped, over HTTP: 60 sign-ins a minute per IP, 5 payments and 100 points
/// queries a minute per user; with Redis, the payment limit holds across two instances.
#[actix_web::test]
async fn the_limits_hold_at_their_default_values() {
    use crate::payments::{create, payment_code};

    let logins = spawn_identity_app().await;
    let s = &logins.state.settings;
    assert_eq!(
        (
            s.rate_limit_login_per_min_per_ip,
            s.rate_limit_payments_per_min,
            s.rate_limit_points_queries_per_min
        ),
        (60, 5, 100),
        "the defaults"
    );
    // A burst of 60, then one more a second.
    let refused = allowed_until_refused(60, 60, |i| {
        post_json(
            &logins,
            "/api/auth/wechat-login",
            json!({"code": code_for(&format!("ip-{i}"))}),
        )
    })
    .await;
    assert_eq!(refused.status(), 429);
    assert_eq!(error_body(refused).await["code"], "RATE_LIMITED");

    let app = spawn_identity_app().await;
    let (owner, merchant) = approved_merchant(&app, "m-default-limits").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-default-limits").await;
    let other = match app.state.redis {
        Some(_) => Some(spawn_other_instance(&app, |_| {}).await),
        None => None,
    };
    for i in 0..5 {
        let res = match (&other, i % 2) {
            // Alternating instances: the count is shared through Redis.
            (Some(o), 1) => {
                create_on(&app.client, &o.url("/api/payments"), &shopper, &code, i).await
            }
            _ => create(&app, &shopper, &code, 100 + i, &format!("limit-key-{i:04}")).await,
        };
        assert_eq!(res.status(), 200, "payment {i}: {:?}", res.text().await);
    }
    let res = create(&app, &shopper, &code, 200, "limit-key-0005").await;
    assert_eq!(res.status(), 429);
    assert_eq!(error_body(res).await["code"], "RATE_LIMITED");
    if let Some(o) = &other {
        let res = create_on(&app.client, &o.url("/api/payments"), &shopper, &code, 6).await;
        assert_eq!(res.status(), 429, "the other instance counts the same five");
    }
    let refused = allowed_until_refused(100, 100, |_| {
        get_auth(&app, &shopper.access_token, "/api/points/balance")
    })
    .await;
    assert_eq!(refused.status(), 429);
    assert_eq!(error_body(refused).await["code"], "RATE_LIMITED");
}

/// Sends `call(i)` until one is refused and returns that answer, after checking how many got
/// through: the burst, plus what the limit earns back while they were sent (`per_min` a
/// minute). On a slow machine a burst takes seconds, so the bound counts the time taken;
/// a limit that never refuses, or lets through more than that, fails.
async fn allowed_until_refused<F, Fut>(burst: u64, per_min: u64, mut call: F) -> reqwest::Response
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    let started = std::time::Instant::now();
    let mut allowed = 0;
    loop {
        let res = call(allowed).await;
        if res.status() != 200 {
            let earned = (started.elapsed().as_secs_f64() * per_min as f64 / 60.0).ceil() as u64;
            assert!(
                (burst..=burst + earned).contains(&allowed),
                "{allowed} allowed in {:?}: the burst is {burst}, then {per_min} a minute",
                started.elapsed()
            );
            return res;
        }
        allowed += 1;
        assert!(allowed <= 3 * burst, "{allowed} calls and none refused");
    }
}

/// A payment sent to another instance (its own URL), signed for its path.
async fn create_on(
    client: &reqwest::Client,
    url: &str,
    s: &crate::identity::Session,
    code: &str,
    i: i64,
) -> reqwest::Response {
    let body = serde_json::json!({"payment_code_id": code, "amount_fen": 100 + i});
    let bytes = serde_json::to_vec(&body).unwrap();
    let now = chrono::Utc::now().timestamp();
    let mut req = client
        .post(url)
        .bearer_auth(&s.access_token)
        .header("Idempotency-Key", format!("limit-key-{i:04}"))
        .header("Content-Type", "application/json");
    for (k, v) in crate::identity::signature_headers(
        &s.sign_key,
        "POST",
        "/api/payments",
        &bytes,
        now,
        &crate::identity::nonce(),
    ) {
        req = req.header(k, v);
    }
    req.body(bytes).send().await.unwrap()
}
