use std::time::Duration;

use diesel_async::RunQueryDsl;
use futures_util::future::join_all;
use points_app::actors::points::{AdjustPoints, PointsError};

use crate::helpers::*;

#[actix_web::test]
async fn a_restarted_service_reloads_state_from_the_database() {
    let tdb = TestDatabase::create();
    let e = engine(&tdb).await;
    join_all((0..50).map(|i| e.svc.award("u", award(&format!("o{i}"), 300)))).await;
    ok(e.svc.deduct("u", deduct("k1", 40)).await);
    let before = e.svc.actor_balance("u").await.expect("balance");
    e.svc.shutdown().await;
    assert!(e.svc.award("u", award("late", 100)).await.is_err());
    drop(e);

    let e = engine(&tdb).await;
    let after = e.svc.actor_balance("u").await.expect("balance");
    assert_eq!(after, before);
    assert_eq!(after.available, 110);
    let c = ok(e.svc.award("u", award("o-after", 1_000)).await);
    assert_eq!(c.balance_after, 120);
    // The idempotency key still answers with the original deduction.
    let d = ok(e.svc.deduct("u", deduct("k1", 40)).await);
    assert!(d.duplicate);
    assert_audit(&e.svc, "u").await;
}

#[actix_web::test]
async fn deduct_is_refused_when_short_and_idempotent_on_its_key() {
    let tdb = TestDatabase::create();
    let e = engine(&tdb).await;
    ok(e.svc.award("u", award("o1", 1_000)).await);
    let err = e.svc.deduct("u", deduct("k1", 11)).await.unwrap_err();
    assert_eq!(err.code(), "POINTS_INSUFFICIENT");
    let results = join_all((0..10).map(|_| e.svc.deduct("u", deduct("k2", 4)))).await;
    let results: Vec<_> = results.into_iter().map(ok).collect();
    assert!(
        results
            .iter()
            .all(|r| r.id == results[0].id && r.balance_after == 6)
    );
    // The same key for another user is another deduction.
    ok(e.svc.award("v", award("o2", 1_000)).await);
    assert!(!ok(e.svc.deduct("v", deduct("k2", 4)).await).duplicate);
    assert_eq!(ledger_rows(&e.db, "u").await, 2);
    assert!(matches!(
        e.svc.deduct("u", deduct("", 1)).await,
        Err(PointsError::Invalid(_))
    ));
}

#[actix_web::test]
async fn admin_adjustments_need_a_reason_and_never_go_below_zero() {
    let tdb = TestDatabase::create();
    let e = engine(&tdb).await;
    let adjust = |delta, reason: &str, id: &str| AdjustPoints {
        delta,
        reason: reason.into(),
        admin_id: "admin".into(),
        request_id: id.into(),
    };
    assert!(e.svc.adjust("u", adjust(5, "", "a0")).await.is_err());
    assert_eq!(
        ok(e.svc.adjust("u", adjust(50, "goodwill", "a1")).await).balance_after,
        50
    );
    let err = e
        .svc
        .adjust("u", adjust(-60, "fix", "a2"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "POINTS_INSUFFICIENT");
    assert_eq!(
        ok(e.svc.adjust("u", adjust(-20, "fix", "a3")).await).balance_after,
        30
    );
    let stats = e.svc.statistics("u").await.expect("stats");
    assert_eq!(
        (stats.totals.earned, stats.totals.spent, stats.available),
        (50, 20, 30)
    );
    assert_eq!(stats.months.len(), 1);
    assert_eq!(
        (stats.months[0].stats.earned, stats.months[0].stats.spent),
        (50, 20)
    );
    assert_audit(&e.svc, "u").await;
}

#[actix_web::test]
async fn history_is_cursor_paged_newest_first() {
    let tdb = TestDatabase::create();
    let e = engine(&tdb).await;
    for i in 0..25 {
        ok(e.svc
            .award("u", award(&format!("o{i}"), 100 * (i + 1)))
            .await);
    }
    let mut cursor = None;
    let mut seen = Vec::new();
    loop {
        let page = e
            .svc
            .history("u", cursor.as_deref(), 10)
            .await
            .expect("page");
        seen.extend(page.items.iter().map(|i| i.change));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, (1..=25).rev().collect::<Vec<i64>>());
}

#[actix_web::test]
async fn idle_actors_stop_and_come_back() {
    let tdb = TestDatabase::create();
    let e = engine_with(
        &tdb,
        std::sync::Arc::new(points_app::domain::SystemClock),
        |c| {
            c.idle = Duration::from_millis(100);
        },
    )
    .await;
    ok(e.svc.award("u", award("o1", 100)).await);
    assert_eq!(e.svc.active_actors(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(e.svc.active_actors(), 0);
    assert_eq!(
        ok(e.svc.award("u", award("o2", 100)).await).balance_after,
        2
    );
}

#[actix_web::test]
async fn an_award_deletes_its_outbox_row_in_the_same_transaction() {
    let tdb = TestDatabase::create();
    let e = engine(&tdb).await;
    let mut conn = e.db.write_conn().await.expect("conn");
    points_app::with_conn!(&mut conn, |c| {
        diesel::sql_query(
            "INSERT INTO outbox (id, kind, aggregate_id, payload, attempts, next_attempt_at, created_at) \
             VALUES ('ob1', 'award_points', 'o1', '{}', 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00'), \
             ('ob2', 'clawback_points', 'r1', '{}', 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
        )
        .execute(c)
        .await
    })
    .expect("outbox row");
    drop(conn);
    let mut msg = award("o1", 500);
    msg.outbox_id = Some("ob1".into());
    ok(e.svc.award("u", msg).await);
    let claw = points_app::actors::points::ClawbackPoints {
        refund_no: "r1".into(),
        points: pts(2),
        description: "refund".into(),
        outbox_id: Some("ob2".into()),
    };
    assert_eq!(ok(e.svc.clawback("u", claw).await).balance_after, 3);
    let mut conn = e.db.conn().await.expect("conn");
    let left: i64 = points_app::with_conn!(&mut conn, |c| {
        use diesel::QueryDsl;
        points_app::storage::schema::outbox::table
            .count()
            .get_result(c)
            .await
    })
    .expect("count");
    assert_eq!(left, 0);
}

#[actix_web::test]
async fn shutdown_commits_what_was_accepted_and_refuses_the_rest() {
    let tdb = TestDatabase::create();
    let e = engine(&tdb).await;
    let handles: Vec<_> = (0..2_000)
        .map(|i| {
            let svc = e.svc.clone();
            actix_web::rt::spawn(async move {
                svc.award(&format!("u{}", i % 50), award(&format!("o{i}"), 100))
                    .await
            })
        })
        .collect();
    // Let some commands reach their actors, then shut down while the rest are arriving.
    tokio::time::sleep(Duration::from_millis(20)).await;
    e.svc.shutdown().await;
    let mut accepted = 0;
    for h in handles {
        match h.await.expect("task") {
            Ok(_) => accepted += 1,
            Err(PointsError::Unavailable(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    // Everyone told "done" is in the ledger, nobody else.
    let summary = e.svc.audit_all().await.expect("audit");
    assert!(summary.ok, "{summary:#?}");
    assert_eq!(summary.records, accepted);
    eprintln!("accepted {accepted} of 2000 before shutdown");
    assert!(accepted > 0);
}
