//! Findings from probing the running server as an attacker would: each test here failed
//! before its fix.

use serde_json::Value;

use crate::cache::scrape;
use crate::helpers::error_body;
use crate::identity::{admin_token, approved_merchant, get_auth, spawn_identity_app};

fn gauge(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// Dates at the ends of what chrono parses made these routes panic: an empty reply, a
/// backtrace in the log and one more request "in flight" each time.
#[actix_web::test]
async fn date_ranges_far_outside_the_calendar_are_refused_on_every_route() {
    let app = spawn_identity_app().await;
    let (owner, merchant) = approved_merchant(&app, "range-owner").await;
    let admin = admin_token(&app).await;
    let routes = [
        (
            format!("/api/merchants/{merchant}/stats"),
            &owner.access_token,
        ),
        (
            format!("/api/merchants/{merchant}/settlements"),
            &owner.access_token,
        ),
        (
            format!("/api/merchants/{merchant}/settlements.csv"),
            &owner.access_token,
        ),
        ("/api/admin/stats/overview".to_string(), &admin),
        ("/api/admin/orders".to_string(), &admin),
        ("/api/admin/reports/orders.csv".to_string(), &admin),
    ];
    let ranges = [
        "to=-262143-01-03",
        "from=+262142-12-25",
        "from=-262143-01-01&to=-262143-01-03",
        "from=+262142-12-25&to=+262142-12-31",
        "from=9999-12-31&to=9999-12-31",
        "from=0001-01-01&to=0001-01-02",
    ];
    for (route, token) in &routes {
        for range in ranges {
            let res = get_auth(&app, token, &format!("{route}?{range}")).await;
            assert_eq!(res.status(), 400, "{route}?{range}");
            let body = error_body(res).await;
            assert_eq!(body["code"], "INVALID_QUERY", "{route}?{range}: {body}");
        }
        // The edges of the accepted range answer.
        let res = get_auth(
            &app,
            token,
            &format!("{route}?from=9999-12-28&to=9999-12-30"),
        )
        .await;
        assert_eq!(res.status(), 200, "{route}: {:?}", res.text().await);
        let res = get_auth(
            &app,
            token,
            &format!("{route}?from=1970-01-01&to=1970-01-01"),
        )
        .await;
        assert_eq!(res.status(), 200, "{route}: {:?}", res.text().await);
    }
    // Only the scrape itself is in flight.
    assert_eq!(gauge(&scrape(&app).await, "http_requests_in_flight "), 1.0);
    let res = get_auth(
        &app,
        &owner.access_token,
        &format!("/api/merchants/{merchant}/stats"),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(body["items"].is_array(), "{body}");
}

/// Anyone can post to the notification routes. Refusals used to store up to 60,000
/// characters each, unthrottled: now a sample of 2 KiB, at most a burst of 20 then one a
/// second per instance, kept 7 days; the rest are counted.
#[actix_web::test]
async fn refused_notifications_are_stored_bounded() {
    use points_app::storage::outbox;

    let app = spawn_identity_app().await;
    let db = app.state.payments.core().db.clone();
    const SENT: usize = 100;
    let junk = "x".repeat(10_000);
    let started = std::time::Instant::now();
    let sends = (0..SENT).map(|i| {
        let path = if i % 2 == 0 {
            "/api/wechat/pay/notify"
        } else {
            "/api/wechat/refund/notify"
        };
        app.client
            .post(app.url(path))
            .header("Wechatpay-Serial", "forged")
            .header(
                "Wechatpay-Timestamp",
                chrono::Utc::now().timestamp().to_string(),
            )
            .header("Wechatpay-Nonce", format!("n{i}"))
            .header("Wechatpay-Signature", "AAAA")
            .header("Content-Type", "application/json")
            .body(format!("{{\"id\":\"{i}\",\"junk\":\"{junk}\"}}"))
            .send()
    });
    for res in futures_util::future::join_all(sends).await {
        let res = res.unwrap();
        assert!(res.status().is_client_error(), "{}", res.status());
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "FAIL", "{body}");
    }
    let seconds = started.elapsed().as_secs();

    // Log writes are group-committed: wait until the count settles.
    let mut rows = Vec::new();
    for _ in 0..50 {
        rows = outbox::recent_notifications(&db, 1_000).await.unwrap();
        if rows.len() >= 20 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let stored = rows.len();
    assert!(rows.iter().all(|r| r.result == "rejected"));
    assert!(rows.iter().all(|r| r.raw_body.chars().count() <= 2_048));
    let most = 20 + seconds as usize + 1;
    assert!(
        (20..=most).contains(&stored),
        "stored {stored} of {SENT} in {seconds} s"
    );
    let metrics = scrape(&app).await;
    let unlogged = gauge(&metrics, "wechat_notifications_unlogged_total ");
    assert_eq!(
        unlogged as usize,
        SENT - stored,
        "every refusal is stored or counted"
    );
    let rejected: f64 = ["pay", "refund"]
        .iter()
        .map(|k| {
            gauge(
                &metrics,
                &format!("wechat_notifications_total{{kind=\"{k}\",result=\"rejected\"}} "),
            )
        })
        .sum();
    assert_eq!(rejected as usize, SENT);

    // Retention: refused rows older than 7 days go, and nothing else does.
    let old = chrono::Utc::now().naive_utc() - chrono::Duration::days(8);
    let row = |result: &str| outbox::NotificationLogRow {
        id: uuid::Uuid::now_v7().to_string(),
        notification_id: String::new(),
        event_type: String::new(),
        out_trade_no: None,
        out_refund_no: None,
        serial: String::new(),
        raw_body: "{}".into(),
        result: result.into(),
        error: None,
        received_at: old,
        kind: "pay".into(),
        headers: None,
    };
    let (old_ok, old_refused) = (row("ok"), row("rejected"));
    outbox::log_notification(&db, &old_ok).await.unwrap();
    outbox::log_notification(&db, &old_refused).await.unwrap();
    let before = chrono::Utc::now().naive_utc() - chrono::Duration::days(7);
    let deleted = outbox::prune_refused_notifications(&db, before)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let left = outbox::recent_notifications(&db, 1_000).await.unwrap();
    assert_eq!(left.len(), stored + 1);
    assert!(left.iter().any(|r| r.id == old_ok.id));
    assert!(!left.iter().any(|r| r.id == old_refused.id));
}

async fn post_bearer(app: &crate::helpers::TestApp, token: &str, path: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn refresh(app: &crate::helpers::TestApp, token: &str) -> reqwest::Response {
    crate::identity::post_json(
        app,
        "/api/auth/refresh",
        serde_json::json!({"refresh_token": token}),
    )
    .await
}

fn no_store(res: &reqwest::Response) -> bool {
    res.headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        == Some("no-store")
}

#[actix_web::test]
async fn logout_ends_the_session_and_only_that_session() {
    use crate::identity::login;

    let app = spawn_identity_app().await;
    let kept = login(&app, "leaver").await;
    let gone = login(&app, "leaver").await;
    assert_eq!(
        get_auth(&app, &gone.access_token, "/api/users/me")
            .await
            .status(),
        200
    );

    // Twice: signing out of an ended session answers the same.
    for _ in 0..2 {
        let res = post_bearer(&app, &gone.access_token, "/api/auth/logout").await;
        assert_eq!(res.status(), 204);
    }
    let res = get_auth(&app, &gone.access_token, "/api/users/me").await;
    assert_eq!(res.status(), 401);
    assert_eq!(error_body(res).await["code"], "SESSION_REVOKED");
    let res = refresh(&app, &gone.refresh_token).await;
    assert_eq!(res.status(), 401);
    assert_eq!(error_body(res).await["code"], "SESSION_REVOKED");

    // The same user's other session is untouched, and rotates with no-store answers.
    assert_eq!(
        get_auth(&app, &kept.access_token, "/api/users/me")
            .await
            .status(),
        200
    );
    let res = refresh(&app, &kept.refresh_token).await;
    assert_eq!(res.status(), 200);
    assert!(no_store(&res));

    // Without a valid token there is nothing to sign out of.
    let res = app
        .client
        .post(app.url("/api/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    error_body(res).await;
    let res = post_bearer(&app, "not-a-token", "/api/auth/logout").await;
    assert_eq!(res.status(), 401);
    error_body(res).await;

    // Admins too.
    let admin = admin_token(&app).await;
    assert_eq!(
        get_auth(&app, &admin, "/api/admin/users").await.status(),
        200
    );
    assert_eq!(
        post_bearer(&app, &admin, "/api/auth/logout").await.status(),
        204
    );
    let res = get_auth(&app, &admin, "/api/admin/users").await;
    assert_eq!(res.status(), 401);
    assert_eq!(error_body(res).await["code"], "SESSION_REVOKED");
}

#[actix_web::test]
async fn token_answers_are_never_cached() {
    use crate::identity::{ADMIN_PASSWORD, code_for, post_json};

    let app = spawn_identity_app().await;
    let res = post_json(
        &app,
        "/api/auth/wechat-login",
        serde_json::json!({"code": code_for("cachy")}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(no_store(&res));
    let body: Value = res.json().await.unwrap();
    let res = refresh(&app, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200);
    assert!(no_store(&res));
    let res = post_json(
        &app,
        "/api/admin/login",
        serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(no_store(&res));
}

#[actix_web::test]
async fn enabling_a_disabled_user_again_does_not_revive_old_sessions() {
    use crate::identity::login;

    let app = spawn_identity_app().await;
    let old = login(&app, "comeback").await;
    let admin = admin_token(&app).await;
    let path = format!("/api/admin/users/{}/status", old.user_id);
    let set = |status: &'static str| {
        app.client
            .put(app.url(&path))
            .bearer_auth(&admin)
            .json(&serde_json::json!({ "status": status }))
            .send()
    };
    assert_eq!(set("disabled").await.unwrap().status(), 200);
    let res = get_auth(&app, &old.access_token, "/api/users/me").await;
    assert_eq!(res.status(), 403);
    assert_eq!(set("active").await.unwrap().status(), 200);

    let res = get_auth(&app, &old.access_token, "/api/users/me").await;
    assert_eq!(res.status(), 401);
    assert_eq!(error_body(res).await["code"], "SESSION_REVOKED");
    let res = refresh(&app, &old.refresh_token).await;
    assert_eq!(res.status(), 401);
    assert_eq!(error_body(res).await["code"], "SESSION_REVOKED");

    // Signing in again works, as the same user.
    let new = login(&app, "comeback").await;
    assert_eq!(new.user_id, old.user_id);
    assert_eq!(
        get_auth(&app, &new.access_token, "/api/users/me")
            .await
            .status(),
        200
    );
}

async fn admin_login(
    app: &impl crate::helpers::Server,
    username: &str,
    password: &str,
) -> reqwest::Response {
    app.client()
        .post(app.url("/api/admin/login"))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn admin_sign_in_locks_per_account_after_five_failures_on_every_instance() {
    use crate::identity::{ADMIN_PASSWORD, spawn_other_instance};
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use points_app::storage::schema::admin_users;

    let app = spawn_identity_app().await;
    let other = spawn_other_instance(&app, |_| {}).await;
    for attempt in 1..=4 {
        let res = admin_login(&app, "admin", "wrong password").await;
        assert_eq!(res.status(), 401, "attempt {attempt}");
        assert_eq!(error_body(res).await["code"], "INVALID_CREDENTIALS");
    }
    // An unknown name never locks (nor does it lock the real account).
    for _ in 0..6 {
        let res = admin_login(&app, "no-such-admin", "wrong password").await;
        assert_eq!(res.status(), 401);
    }
    let res = admin_login(&app, "admin", "wrong password").await;
    assert_eq!(res.status(), 429, "the fifth failure locks");
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert_eq!(error_body(res).await["code"], "ACCOUNT_LOCKED");
    // Locked: the right password is refused too, here and on the other instance.
    let res = admin_login(&app, "admin", ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 429);
    let res = app
        .client
        .post(other.url("/api/admin/login"))
        .json(&serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(error_body(res).await["code"], "ACCOUNT_LOCKED");

    // The lock runs out (moved into the past rather than waited for).
    let db = app.state.app.db().clone();
    let mut conn = db.write_conn().await.unwrap();
    let past = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1);
    points_app::with_conn!(&mut conn, |c| {
        diesel::update(admin_users::table)
            .set(admin_users::locked_until.eq(Some(past)))
            .execute(c)
            .await
    })
    .unwrap();
    drop(conn);
    // Still five failures behind it: one more wrong password locks again, for longer.
    let res = admin_login(&app, "admin", "wrong again").await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((31..=60).contains(&retry), "{retry}");

    let mut conn = db.write_conn().await.unwrap();
    points_app::with_conn!(&mut conn, |c| {
        diesel::update(admin_users::table)
            .set(admin_users::locked_until.eq(Some(past)))
            .execute(c)
            .await
    })
    .unwrap();
    drop(conn);
    // A success clears the count: the next failure is a plain 401 again.
    assert_eq!(
        admin_login(&app, "admin", ADMIN_PASSWORD).await.status(),
        200
    );
    assert_eq!(admin_login(&app, "admin", "wrong").await.status(), 401);
}

#[actix_web::test]
async fn every_answer_says_nosniff() {
    let app = spawn_identity_app().await;
    let answers = [
        app.get("/healthz").await,
        app.get("/api/nope").await,
        app.get("/api/users/me").await,
        app.client.delete(app.url("/healthz")).send().await.unwrap(),
        app.get("/metrics").await,
    ];
    for res in answers {
        assert_eq!(
            res.headers()
                .get("x-content-type-options")
                .map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{} {}",
            res.url(),
            res.status()
        );
    }
}

/// Bidirectional controls in a name make it display as something else (a merchant called
/// "Shop\u{202E}gnp.exe" reads "Shopexe.png"): refused wherever people type display text.
#[actix_web::test]
async fn display_texts_refuse_bidirectional_controls_and_change_nothing() {
    use crate::identity::{login, merchant_body, signed};

    let app = spawn_identity_app().await;
    let s = login(&app, "bidi").await;
    let admin = admin_token(&app).await;
    for c in ['\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}'] {
        let mut body = merchant_body("ignored");
        body["merchant_name"] = Value::from(format!("Shop{c}gnp.exe"));
        let res = signed(&app, &s, "POST", "/api/merchants", Some(body)).await;
        assert_eq!(res.status(), 422, "U+{:04X}", c as u32);
        assert_eq!(error_body(res).await["code"], "VALIDATION_FAILED");

        let res = signed(
            &app,
            &s,
            "PATCH",
            "/api/users/me",
            Some(serde_json::json!({ "nickname": format!("a{c}b") })),
        )
        .await;
        assert_eq!(res.status(), 422);
        error_body(res).await;
    }
    let me: Value = get_auth(&app, &s.access_token, "/api/users/me")
        .await
        .json()
        .await
        .unwrap();
    assert!(me["nickname"].is_null(), "{me}");
    let pending: Value = get_auth(&app, &admin, "/api/admin/merchants?status=pending")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        pending["items"].as_array().map(Vec::len),
        Some(0),
        "{pending}"
    );

    // The same names without the controls are fine, Chinese included.
    let mut body = merchant_body("ignored");
    body["merchant_name"] = Value::from("验收咖啡 Shop");
    let res = signed(&app, &s, "POST", "/api/merchants", Some(body)).await;
    assert_eq!(res.status(), 201);
}

/// Sends raw bytes and reads the answer until the server closes or `limit` passes.
async fn raw_exchange(port: u16, head_and_part: &str, limit: std::time::Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.write_all(head_and_part.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                    break;
                }
            }
            Ok(Err(_)) => break,
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// A client that sends the head and then stalls the body used to hold its request open
/// for as long as it liked.
#[actix_web::test]
async fn a_stalled_body_is_answered_408_json() {
    let app = crate::identity::spawn_identity_app_with(|s| s.body_timeout_secs = 1).await;
    for path in ["/api/auth/refresh", "/api/wechat/pay/notify"] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: 100\r\n\r\n{{\"refresh_token\":"
        );
        let answer = raw_exchange(app.port, &head, std::time::Duration::from_secs(20)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(
            answer.contains("\"code\":\"REQUEST_TIMEOUT\""),
            "{path}: {answer}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("x-request-id:"),
            "{answer}"
        );
    }
    // A body that does arrive in time is served as ever.
    let res = crate::identity::post_json(
        &app,
        "/api/auth/refresh",
        serde_json::json!({"refresh_token": "x"}),
    )
    .await;
    assert_eq!(res.status(), 401);
    // Nothing is left in flight but the scrape.
    assert_eq!(gauge(&scrape(&app).await, "http_requests_in_flight "), 1.0);
}

#[actix_web::test]
async fn an_oversized_notification_is_a_json_413() {
    let app = spawn_identity_app().await;
    let res = app
        .client
        .post(app.url("/api/wechat/pay/notify"))
        .header("Content-Type", "application/json")
        .body(vec![b'x'; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(error_body(res).await["code"], "PAYLOAD_TOO_LARGE");
    let rows = points_app::storage::outbox::recent_notifications(&app.state.payments.core().db, 10)
        .await
        .unwrap();
    assert!(rows.is_empty(), "nothing stored for a body never read");
}

async fn login_via(
    app: &crate::helpers::TestApp,
    forwarded_for: &str,
    name: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/api/auth/wechat-login"))
        .header("X-Forwarded-For", forwarded_for)
        .json(&serde_json::json!({"code": crate::identity::code_for(name)}))
        .send()
        .await
        .unwrap()
}

/// Behind a trusted proxy the client is the right-most forwarded address the proxies did not
/// add themselves; from anyone else `X-Forwarded-For` is ignored, so it cannot be used to
/// dodge the per-IP limit or to write someone else's address into the audit log.
#[actix_web::test]
async fn the_client_address_comes_from_trusted_proxies_only() {
    use crate::identity::spawn_identity_app_with;

    // Here the test client is "the proxy": loopback is trusted.
    let app = spawn_identity_app_with(|s| {
        s.trusted_proxies = "127.0.0.1, ::1".into();
        s.rate_limit_login_per_min_per_ip = 2;
    })
    .await;
    // A forged left part does not matter: 198.51.100.7 is the client.
    for i in 0..2 {
        let res = login_via(&app, "6.6.6.6, 198.51.100.7", &format!("behind-{i}")).await;
        assert_eq!(res.status(), 200);
    }
    let res = login_via(&app, "1.2.3.4, 198.51.100.7", "behind-x").await;
    assert_eq!(res.status(), 429);
    assert_eq!(error_body(res).await["code"], "RATE_LIMITED");
    // Another client behind the same proxy has its own count.
    assert_eq!(
        login_via(&app, "198.51.100.8", "behind-y").await.status(),
        200
    );

    // The audit log records the client, not the proxy.
    let s = crate::identity::login(&app, "audited").await;
    let admin = admin_token(&app).await;
    let res = app
        .client
        .put(app.url(&format!("/api/admin/users/{}/status", s.user_id)))
        .bearer_auth(&admin)
        .header("X-Forwarded-For", "203.0.113.5")
        .json(&serde_json::json!({"status": "disabled"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let log: Value = get_auth(&app, &admin, "/api/admin/audit-log")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(log["items"][0]["action"], "user.set_status", "{log}");
    assert_eq!(log["items"][0]["ip"], "203.0.113.5", "{log}");

    // Without trusted proxies the header changes nothing: everyone here is 127.0.0.1.
    let plain = spawn_identity_app_with(|s| s.rate_limit_login_per_min_per_ip = 2).await;
    for (i, xff) in ["198.51.100.7", "198.51.100.8"].iter().enumerate() {
        assert_eq!(
            login_via(&plain, xff, &format!("plain-{i}")).await.status(),
            200
        );
    }
    let res = login_via(&plain, "198.51.100.9", "plain-x").await;
    assert_eq!(
        res.status(),
        429,
        "a forged X-Forwarded-For does not buy a new count"
    );
}

#[actix_web::test]
async fn a_bad_trusted_proxy_list_stops_the_start_with_its_name() {
    let db = crate::helpers::TestDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(&db, dir.path());
    settings.trusted_proxies = "10.0.0.0/8, proxy.internal".into();
    let err = points_app::startup::Application::build(settings)
        .await
        .err()
        .expect("refused");
    let text = format!("{err:#}");
    assert!(
        text.contains("APP_TRUSTED_PROXIES") && text.contains("proxy.internal"),
        "{text}"
    );
}

fn allow_origin(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_string())
}

async fn preflight(app: &crate::helpers::TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/api/payments"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type, x-signature",
        )
        .send()
        .await
        .unwrap()
}

/// CORS is closed unless origins are named; a named origin may call with the clients'
/// headers; any other origin is served without CORS headers (a browser keeps the answer
/// from that page) but never refused, so the console served from here keeps working.
#[actix_web::test]
async fn cors_is_closed_unless_origins_are_named() {
    use crate::identity::spawn_identity_app_with;

    let closed = spawn_identity_app().await;
    let res = preflight(&closed, "https://console.example.com").await;
    assert_eq!(allow_origin(&res), None);
    let res = closed
        .client
        .get(closed.url("/healthz"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!((res.status().as_u16(), allow_origin(&res)), (200, None));

    let open = spawn_identity_app_with(|s| {
        s.cors_origins = "https://console.example.com, http://localhost:5173".into();
    })
    .await;
    let res = preflight(&open, "https://console.example.com").await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(
        allow_origin(&res).as_deref(),
        Some("https://console.example.com")
    );
    let allowed = res.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("x-signature") && allowed.contains("authorization"),
        "{allowed}"
    );
    let res = preflight(&open, "https://evil.example").await;
    assert_eq!(allow_origin(&res), None);
    // A request from another origin is answered as ever, without CORS headers.
    let res = open
        .client
        .post(open.url("/api/auth/refresh"))
        .header("Origin", "https://evil.example")
        .json(&serde_json::json!({"refresh_token": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(allow_origin(&res), None);
    error_body(res).await;
    let res = open
        .client
        .get(open.url("/healthz"))
        .header("Origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(allow_origin(&res).as_deref(), Some("http://localhost:5173"));
    assert!(
        res.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("x-request-id")
    );

    // A list that is not origins stops the start.
    let db = crate::helpers::TestDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(&db, dir.path());
    settings.cors_origins = "https://console.example.com/admin/".into();
    let err = points_app::startup::Application::build(settings)
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("APP_CORS_ORIGINS"), "{err:#}");
}

/// A body that fails to parse on an admin route, while the admin's status was being read
/// (its 2 s cache had expired), dropped that SQLite read mid-flight: a panic and a 500
/// instead of the 4xx. Found by the API fuzz run (`.ci/fuzz.sh`) on
/// `PUT /api/admin/points-rules`; every admin route with a JSON body had it.
#[actix_web::test]
async fn a_bad_admin_body_while_the_admin_is_looked_up_is_a_4xx() {
    let app = spawn_identity_app().await;
    let admin = admin_token(&app).await;
    let admin_id = app.state.security.tokens.verify(&admin).unwrap().sub;
    // A first call leaves the session's state cached; the admin's status is then read again.
    let res = get_auth(&app, &admin, "/api/admin/points-rules").await;
    assert_eq!(res.status(), 200);
    // A body refused on sight (its media type) fails while the admin's read is running.
    let bodies = [
        ("text/plain", r#"{"points_per_yuan": 2}"#, 415),
        (
            "application/json",
            r#"{"effective_from": "", "points_per_yuan": null}"#,
            422,
        ),
        ("application/json", r#"{"points_per_yuan": "#, 400),
    ];
    for round in 0..4 {
        for (media_type, body, expected) in bodies {
            app.state.security.admin_status.invalidate_here(&admin_id);
            let res = app
                .client
                .put(app.url("/api/admin/points-rules"))
                .bearer_auth(&admin)
                .header("Content-Type", media_type)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let err = error_body(res).await;
            assert_eq!(status, expected, "{round} {media_type} {body}: {err}");
        }
    }
    assert_eq!(gauge(&scrape(&app).await, "http_requests_in_flight "), 1.0);
}
