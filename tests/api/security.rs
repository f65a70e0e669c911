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
