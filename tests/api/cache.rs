//! The cache over real HTTP: a balance read after a change is never stale (on one instance
//! and across two sharing a database and Redis), a rule change reaches the other instance's
//! L1, and a Redis that goes away costs only the cache (reads answer 200 from the database,
//! /readyz names Redis, metrics count the failures).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::identity::{
    Session, approved_merchant, get_auth, login, signed_request, spawn_identity_app_with,
    spawn_other_instance,
};
use crate::payments::{app, balance, paid_order, payment_code};

fn redis_configured() -> bool {
    std::env::var("REDIS_URL").is_ok_and(|u| !u.is_empty())
}

/// The value of one series in a Prometheus text answer (0 when absent).
pub fn series(metrics: &str, name_and_labels: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

pub async fn scrape(app: &TestApp) -> String {
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

async fn deduct(app: &TestApp, s: &Session, points: i64) -> Value {
    let body = json!({"points": points, "reason": "coffee"});
    let res = signed_request(app, s, "POST", "/api/points/deduct", Some(&body))
        .header("Idempotency-Key", uuid::Uuid::now_v7().simple().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    res.json().await.unwrap()
}

const BALANCE_HIT: &str = r#"cache_requests_total{kind="balance",layer="l2",result="hit"}"#;

#[actix_web::test]
async fn a_balance_read_after_award_or_deduct_is_never_stale() {
    let app = app().await;
    let (owner, merchant) = approved_merchant(&app, "m-cache").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-cache").await;

    assert_eq!(balance(&app, &shopper).await, 0);
    paid_order(&app, &shopper, &code, 5_000).await;
    let after_award = balance(&app, &shopper).await;
    assert!(after_award > 0);
    // Read twice more: the second is served by L2 when Redis is there.
    let hits_before = series(&scrape(&app).await, BALANCE_HIT);
    assert_eq!(balance(&app, &shopper).await, after_award);
    assert_eq!(balance(&app, &shopper).await, after_award);
    if redis_configured() {
        assert!(series(&scrape(&app).await, BALANCE_HIT) > hits_before);
    }
    for spend in [1, 2, 3] {
        let before = balance(&app, &shopper).await;
        let answer = deduct(&app, &shopper, spend).await;
        assert_eq!(answer["balance_after"], before - spend, "{answer}");
        assert_eq!(balance(&app, &shopper).await, before - spend);
    }
    // An award after a cached read shows at once too.
    let before = balance(&app, &shopper).await;
    paid_order(&app, &shopper, &code, 1_000).await;
    assert!(balance(&app, &shopper).await > before);
}

#[actix_web::test]
async fn writes_on_one_instance_show_on_another_at_once() {
    let app = app().await;
    let other = spawn_other_instance(&app, |_| {}).await;
    let (owner, merchant) = approved_merchant(&app, "m-cache-2").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-cache-2").await;
    paid_order(&app, &shopper, &code, 5_000).await;
    let cached = balance(&app, &shopper).await;
    assert_eq!(balance(&app, &shopper).await, cached);

    // The other instance's points engine changes the balance (its ledger writer invalidates
    // the shared L2 key after its commit).
    let change = other
        .state
        .points
        .adjust(
            &shopper.user_id,
            points_app::actors::points::AdjustPoints {
                delta: 7,
                reason: "goodwill".into(),
                admin_id: "test".into(),
                request_id: uuid::Uuid::now_v7().simple().to_string(),
            },
        )
        .await
        .expect("adjust on the other instance");
    assert_eq!(change.balance_after, cached + 7);
    assert_eq!(balance(&app, &shopper).await, cached + 7);

    // A rule change on the other instance reaches this instance's L1: through the Redis
    // invalidation channel at once, or within the rule's TTL (5 s) without Redis.
    let admin = crate::identity::admin_token(&app).await;
    let rule: Value = get_auth(&app, &admin, "/api/admin/points-rules")
        .await
        .json()
        .await
        .unwrap();
    let mut spec = app
        .state
        .points
        .current_rule()
        .await
        .expect("current rule")
        .spec;
    spec.points_per_yuan = rule["points_per_yuan"].as_i64().unwrap() + 2;
    other
        .state
        .points
        .set_rule(spec.clone(), None, "test")
        .await
        .expect("rule change on the other instance");
    let limit = if redis_configured() {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(7)
    };
    let started = Instant::now();
    loop {
        let seen: Value = get_auth(&app, &admin, "/api/admin/points-rules")
            .await
            .json()
            .await
            .unwrap();
        if seen["points_per_yuan"] == spec.points_per_yuan {
            break;
        }
        assert!(
            started.elapsed() < limit,
            "the rule change did not reach this instance within {limit:?}: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A private `redis-server` on a free port, killed when dropped.
struct PrivateRedis {
    child: Child,
    port: u16,
}

impl PrivateRedis {
    fn start(port: u16) -> Option<PrivateRedis> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let redis = PrivateRedis { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(redis);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[actix_web::test]
async fn a_redis_outage_costs_only_the_cache() {
    let port = free_port();
    let Some(mut redis) = PrivateRedis::start(port) else {
        eprintln!("redis-server not installed: outage test skipped");
        return;
    };
    let url = redis.url();
    let app = spawn_identity_app_with(move |s| {
        s.rate_limit_payments_per_min = 1000;
        s.redis_url = Some(url.into());
    })
    .await;
    let (owner, merchant) = approved_merchant(&app, "m-outage").await;
    let code = payment_code(&app, &owner, &merchant, None).await;
    let shopper = login(&app, "shopper-outage").await;
    let order_no = paid_order(&app, &shopper, &code, 5_000).await;
    let points = balance(&app, &shopper).await;
    assert_eq!(balance(&app, &shopper).await, points);
    let metrics = scrape(&app).await;
    assert!(series(&metrics, BALANCE_HIT) >= 1.0, "{metrics}");
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);

    redis.kill();

    // Reads the database can answer still answer 200, with the database's values.
    let started = Instant::now();
    assert_eq!(balance(&app, &shopper).await, points);
    let res = get_auth(
        &app,
        &shopper.access_token,
        &format!("/api/payments/{order_no}"),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "paid");
    let res = app.get(&format!("/api/payment-codes/{code}")).await;
    assert_eq!(res.status(), 200);
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let res = get_auth(
        &app,
        &owner.access_token,
        &format!("/api/merchants/{merchant}/stats?from={yesterday}&to={yesterday}"),
    )
    .await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    // A signed write too (nonces fall back to this instance), and the balance after it is
    // the new one.
    let answer = deduct(&app, &shopper, 5).await;
    assert_eq!(answer["balance_after"], points - 5);
    assert_eq!(balance(&app, &shopper).await, points - 5);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "degraded requests took {:?}",
        started.elapsed()
    );

    // Readiness names Redis (and stays 200: the instance serves); metrics show it down and
    // count the failures.
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["redis"], "unreachable", "{body}");
    let metrics = scrape(&app).await;
    assert_eq!(
        series(&metrics, r#"dependency_up{dependency="redis"}"#),
        0.0,
        "{metrics}"
    );
    let failures: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("cache_errors_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(failures >= 1.0, "{metrics}");

    // Redis comes back: the instance uses it again by itself.
    let Some(_redis) = PrivateRedis::start(port) else {
        panic!("redis-server did not restart on port {port}");
    };
    let started = Instant::now();
    loop {
        assert_eq!(balance(&app, &shopper).await, points - 5);
        let ready: Value = app.get("/readyz").await.json().await.unwrap();
        if ready["redis"] == "ok"
            && series(&scrape(&app).await, r#"dependency_up{dependency="redis"}"#) == 1.0
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never recovered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let hits = series(&scrape(&app).await, BALANCE_HIT);
    let started = Instant::now();
    loop {
        assert_eq!(balance(&app, &shopper).await, points - 5);
        if series(&scrape(&app).await, BALANCE_HIT) > hits {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "L2 never used again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[actix_web::test]
async fn disabling_a_user_on_one_instance_refuses_them_on_the_other() {
    let app = crate::identity::spawn_identity_app().await;
    let other = spawn_other_instance(&app, |_| {}).await;
    let user = login(&app, "shopper-disabled").await;
    let admin = crate::identity::admin_token(&app).await;
    // Cached as active on this instance (for 2 s).
    assert_eq!(
        get_auth(&app, &user.access_token, "/api/users/me")
            .await
            .status(),
        200
    );
    let res = app
        .client
        .put(other.url(&format!("/api/admin/users/{}/status", user.user_id)))
        .bearer_auth(&admin)
        .json(&json!({"status": "disabled"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    // Through the invalidation channel at once (well before the entry's TTL ends), or
    // within the session TTL (2 s) without Redis.
    let limit = if redis_configured() {
        Duration::from_millis(700)
    } else {
        Duration::from_secs(4)
    };
    let started = Instant::now();
    loop {
        let res = get_auth(&app, &user.access_token, "/api/users/me").await;
        if res.status() == 403 {
            let body = crate::helpers::error_body(res).await;
            assert_eq!(body["code"], "USER_DISABLED");
            break;
        }
        assert!(
            started.elapsed() < limit,
            "still served {:?} after the user was disabled elsewhere",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
