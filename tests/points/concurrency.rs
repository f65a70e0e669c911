use std::collections::HashSet;

use futures_util::future::join_all;

use crate::helpers::*;

#[actix_web::test]
async fn ten_thousand_concurrent_awards_to_one_user_are_exact() {
    let tdb = TestDatabase::create();
    let e = engine(&tdb).await;
    let results =
        join_all((0..10_000).map(|i| e.svc.award("hot", award(&format!("o{i}"), 100)))).await;
    assert!(
        results.iter().all(|r| r.is_ok()),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    let balance = e.svc.balance("hot").await.expect("balance");
    assert_eq!(balance.available, 10_000);
    assert_eq!(balance.total_earned, 10_000);
    assert_eq!(ledger_rows(&e.db, "hot").await, 10_000);
    assert_audit(&e.svc, "hot").await;
    let ids: HashSet<String> = results.into_iter().map(|r| ok(r).id).collect();
    assert_eq!(ids.len(), 10_000);
    let text = e.metrics.render();
    for name in [
        "points_actors_active 1",
        "points_actor_mailbox_depth 0",
        "ledger_commit_batch_size_count",
        "ledger_commits_total{result=\"ok\"}",
        "points_changes_total{kind=\"award\"} 10000",
        "points_total{kind=\"award\"} 10000",
    ] {
        assert!(text.contains(name), "{name} missing from metrics");
    }
}

#[actix_web::test]
async fn concurrent_awards_and_deducts_never_go_negative() {
    let tdb = TestDatabase::create();
    let e = engine(&tdb).await;
    let users: Vec<String> = (0..20).map(|u| format!("u{u}")).collect();
    let mut calls = Vec::new();
    for u in &users {
        for i in 0..60 {
            // Awards of 5 points and deducts of 3 interleaved: some deducts must be refused.
            calls.push((u.clone(), i, i % 3 != 0));
        }
    }
    let svc = &e.svc;
    let results = join_all(calls.iter().map(|(u, i, is_award)| async move {
        if *is_award {
            svc.award(u, award(&format!("{u}-o{i}"), 500)).await
        } else {
            svc.deduct(u, deduct(&format!("k{i}"), 12)).await
        }
    }))
    .await;
    for r in &results {
        match r {
            Ok(c) => assert!(c.balance_after >= 0),
            Err(points_app::actors::points::PointsError::Insufficient { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let spent: i64 = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|c| c.change)
        .sum();
    let summary = e.svc.audit_all().await.expect("audit");
    assert!(summary.ok, "{summary:#?}");
    assert_eq!(summary.points_available, spent);
    for u in &users {
        assert_audit(&e.svc, u).await;
    }
}

#[actix_web::test]
async fn the_same_award_sent_100_times_writes_one_row() {
    let tdb = TestDatabase::create();
    let e = engine(&tdb).await;
    let results: Vec<_> = join_all((0..100).map(|_| e.svc.award("u1", award("order-1", 1234))))
        .await
        .into_iter()
        .map(ok)
        .collect();
    let ids: HashSet<&str> = results.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(results.iter().filter(|c| !c.duplicate).count(), 1);
    assert!(
        results
            .iter()
            .all(|c| c.change == 12 && c.balance_after == 12)
    );
    // Later, from the database: the original answer again.
    e.svc
        .award("u1", award("order-2", 100))
        .await
        .expect("award");
    let again = ok(e.svc.award("u1", award("order-1", 1234)).await);
    assert!(again.duplicate);
    assert_eq!(Some(again.id.as_str()), ids.into_iter().next());
    assert_eq!(again.balance_after, 12);
    assert_eq!(ledger_rows(&e.db, "u1").await, 2);
    assert_eq!(e.svc.balance("u1").await.expect("balance").available, 13);
    assert_audit(&e.svc, "u1").await;
}

#[actix_web::test]
async fn two_instances_writing_the_same_users_lose_no_update() {
    let tdb = TestDatabase::create();
    let a = engine(&tdb).await;
    let b = engine(&tdb).await;
    let users: Vec<String> = (0..8).map(|u| format!("shared{u}")).collect();
    let mut calls = Vec::new();
    for u in &users {
        for i in 0..100 {
            calls.push((u.clone(), i));
        }
    }
    let results = join_all(calls.iter().map(|(u, i)| {
        let svc = if i % 2 == 0 { &a.svc } else { &b.svc };
        svc.award(u, award(&format!("{u}-{i}"), 200))
    }))
    .await;
    assert!(
        results.iter().all(|r| r.is_ok()),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    // The same order through both instances at once: one row.
    let dup = join_all([
        a.svc.award("shared0", award("both", 1000)),
        b.svc.award("shared0", award("both", 1000)),
    ])
    .await;
    let dup: Vec<_> = dup.into_iter().map(ok).collect();
    assert_eq!(dup[0].id, dup[1].id);
    for u in &users {
        let expected = if u == "shared0" { 210 } else { 200 };
        assert_eq!(
            a.svc.balance(u).await.expect("balance").available,
            expected,
            "{u}"
        );
        assert_audit(&a.svc, u).await;
    }
    let summary = b.svc.audit_all().await.expect("audit");
    assert!(summary.ok, "{summary:#?}");
    assert_eq!(summary.records, 801);
}
