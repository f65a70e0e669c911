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
