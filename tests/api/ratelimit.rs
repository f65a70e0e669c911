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
