use std::sync::Arc;

use chrono::Duration;
use points_app::actors::points::ClawbackPoints;
use points_app::domain::{ManualClock, PointsRuleSpec};

use crate::helpers::*;

#[actix_web::test]
async fn daily_cap_applies_per_cst_day_and_survives_a_restart() {
    let tdb = TestDatabase::create();
    // 15:50 UTC = 23:50 CST.
    let clock = Arc::new(ManualClock::new(at(2026, 3, 1, 15, 50)));
    let e = engine_with(&tdb, clock.clone(), |_| {}).await;
    let spec = PointsRuleSpec {
        daily_cap: 100,
        ..PointsRuleSpec::default()
    };
    e.svc
        .set_rule(spec.clone(), Some(at(2026, 1, 1, 0, 0)), "test")
        .await
        .expect("rule");
    assert_eq!(e.svc.current_rule().await.expect("rule").spec, spec);
    let a = ok(e.svc.award("u", award("o1", 15_000)).await);
    assert_eq!((a.change, a.capped), (100, 50));
    e.svc.shutdown().await;

    // A new instance, same CST day: today's awards are reloaded from the ledger.
    let e = engine_with(&tdb, clock.clone(), |_| {}).await;
    let b = ok(e.svc.award("u", award("o2", 1_000)).await);
    assert_eq!((b.change, b.capped), (0, 10));
    // 16:00 UTC is CST midnight: a new day, a new cap.
    clock.advance(Duration::minutes(10));
    let c = ok(e.svc.award("u", award("o3", 15_000)).await);
    assert_eq!((c.change, c.capped), (100, 50));
    assert_eq!(e.svc.balance("u").await.expect("balance").available, 200);
    assert_audit(&e.svc, "u").await;
}

#[actix_web::test]
async fn deductions_take_first_to_expire_first_and_the_sweep_expires_the_rest() {
    let tdb = TestDatabase::create();
    let t0 = at(2026, 5, 1, 4, 0);
    let clock = Arc::new(ManualClock::new(t0));
    let e = engine_with(&tdb, clock.clone(), |_| {}).await;
    let rule = |days| PointsRuleSpec {
        expiry_days: days,
        ..PointsRuleSpec::default()
    };
    e.svc
        .set_rule(rule(10), Some(t0 - Duration::days(1)), "t")
        .await
        .expect("rule");
    let a = ok(e.svc.award("u", award("A", 1_000)).await); // 10 points, expires t0+10d
    clock.advance(Duration::days(1));
    e.svc.set_rule(rule(2), Some(t0), "t").await.expect("rule");
    let b = ok(e.svc.award("u", award("B", 500)).await); // 5 points, expires t0+3d
    assert_eq!(a.expires_at, Some(t0 + Duration::days(10)));
    assert_eq!(b.expires_at, Some(t0 + Duration::days(3)));

    // 3 points come out of B, the first to expire, although it was awarded later.
    let d = ok(e.svc.deduct("u", deduct("k1", 3)).await);
    assert_eq!(d.balance_after, 12);
    let soon = e.svc.balance("u").await.expect("balance").expiring_soon;
    let soon: Vec<(i64, _)> = soon.into_iter().map(|s| (s.points, s.expires_at)).collect();
    assert_eq!(
        soon,
        vec![(2, t0 + Duration::days(3)), (10, t0 + Duration::days(10))]
    );

    // Past B's expiry the sweep turns its remaining 2 into an expire record.
    clock.set(t0 + Duration::days(4));
    let swept = e.svc.expire_due().await.expect("sweep");
    assert_eq!((swept.users, swept.points), (1, 2));
    assert_eq!(e.svc.expire_due().await.expect("sweep").points, 0);
    let bal = e.svc.balance("u").await.expect("balance");
    assert_eq!((bal.available, bal.expired, bal.used), (10, 2, 3));

    // 7 more from A; then A's rest expires.
    ok(e.svc.deduct("u", deduct("k2", 7)).await);
    clock.set(t0 + Duration::days(10));
    let swept = e.svc.expire_due().await.expect("sweep");
    assert_eq!(swept.points, 3);
    let page = e.svc.history("u", None, 10).await.expect("history");
    let kinds: Vec<&str> = page.items.iter().map(|i| i.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec!["expire", "deduct", "expire", "deduct", "award", "award"]
    );
    assert_eq!(page.items[0].source_id, a.id);
    assert_eq!(e.svc.balance("u").await.expect("balance").available, 0);
    assert_audit(&e.svc, "u").await;
}

#[actix_web::test]
async fn clawback_larger_than_the_balance_takes_what_is_there() {
    let tdb = TestDatabase::create();
    let e = engine(&tdb).await;
    ok(e.svc.award("u", award("o1", 2_000)).await);
    ok(e.svc.deduct("u", deduct("k", 15)).await);
    let claw = ClawbackPoints {
        refund_no: "r1".into(),
        points: pts(20),
        description: "refund of o1".into(),
        outbox_id: None,
    };
    let c = ok(e.svc.clawback("u", claw.clone()).await);
    assert_eq!((c.change, c.shortfall, c.balance_after), (-5, 15, 0));
    let again = ok(e.svc.clawback("u", claw).await);
    assert!(again.duplicate);
    assert_eq!((again.id, again.shortfall), (c.id, 15));
    let bal = e.svc.balance("u").await.expect("balance");
    assert_eq!((bal.available, bal.clawed_back), (0, 5));
    assert_audit(&e.svc, "u").await;
}
