use chrono::TimeZone;

use super::*;
use crate::domain::{Fen, Points};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 3, 0, 0).unwrap()
}
fn award(order: &str, fen: i64) -> Command {
    Command::Award(AwardPoints {
        order_no: order.into(),
        amount: Fen::parse(fen).unwrap(),
        description: String::new(),
        outbox_id: Some(format!("ob-{order}")),
    })
}
fn deduct(key: &str, p: i64) -> Command {
    Command::Deduct(DeductPoints {
        points: Points::parse(p).unwrap(),
        idempotency_key: key.into(),
        reason: String::new(),
    })
}
fn change(a: &Option<Answer>) -> PointsChange {
    match a {
        Some(Ok(Reply::Change(c))) => c.clone(),
        other => panic!("not a change: {other:?}"),
    }
}

#[test]
fn one_batch_one_write_with_duplicates_answered_alike() {
    let user: Arc<str> = Arc::from("u");
    let mut st = UserPoints::empty(now());
    let cmds = vec![
        award("o1", 500),
        award("o1", 500),
        award("o2", 300),
        deduct("k", 6),
        deduct("k", 6),
    ];
    let d = decide(
        &user,
        &mut st,
        &PointsRule::default(),
        now(),
        &cmds,
        &HashMap::new(),
    );
    let w = d.write.expect("a write");
    assert_eq!(w.records.len(), 3);
    assert_eq!((w.expected_version, w.persisted), (0, false));
    assert_eq!(w.totals.available, 2);
    assert_eq!(
        w.outbox_deletes,
        vec!["ob-o1".to_string(), "ob-o2".to_string()]
    );
    let (a, b) = (change(&d.answers[0]), change(&d.answers[1]));
    assert_eq!((a.id.clone(), a.duplicate), (b.id.clone(), !b.duplicate));
    assert_eq!(change(&d.answers[4]).id, change(&d.answers[3]).id);
    // Lots born in this batch carry their final remaining; no separate update.
    assert!(w.lot_updates.is_empty());
    let remaining: Vec<Option<i64>> = w.records.iter().map(|r| r.remaining).collect();
    assert_eq!(remaining, vec![Some(0), Some(2), None]);
}

#[test]
fn stored_sources_are_answered_from_the_database_row() {
    let user: Arc<str> = Arc::from("u");
    let mut st = UserPoints::empty(now());
    let row = |owner: &str| RecordRow {
        id: "r1".into(),
        user_id: owner.into(),
        points_change: 5,
        balance_after: 5,
        kind: "award".into(),
        source_type: "order".into(),
        source_id: "o1".into(),
        description: String::new(),
        remaining: Some(5),
        expires_at: None,
        capped_points: 0,
        shortfall: 0,
        created_at: now().naive_utc(),
    };
    let key = ("order".to_string(), "o1".to_string());
    let known = HashMap::from([(key.clone(), row("u"))]);
    let d = decide(
        &user,
        &mut st,
        &PointsRule::default(),
        now(),
        &[award("o1", 500)],
        &known,
    );
    let c = change(&d.answers[0]);
    assert!(c.duplicate && c.id == "r1");
    // Only the outbox row is still to delete.
    let w = d.write.expect("outbox delete");
    assert!(w.records.is_empty());
    let known = HashMap::from([(key, row("someone-else"))]);
    let d = decide(
        &user,
        &mut st,
        &PointsRule::default(),
        now(),
        &[award("o1", 500)],
        &known,
    );
    assert!(matches!(
        d.answers[0],
        Some(Err(PointsError::SourceConflict(_)))
    ));
}

#[test]
fn refused_deduct_writes_nothing() {
    let user: Arc<str> = Arc::from("u");
    let mut st = UserPoints::empty(now());
    let d = decide(
        &user,
        &mut st,
        &PointsRule::default(),
        now(),
        &[deduct("k", 1)],
        &HashMap::new(),
    );
    assert!(d.write.is_none());
    assert!(matches!(
        d.answers[0],
        Some(Err(PointsError::Insufficient { .. }))
    ));
}

fn deduct_for(key: &str, p: i64, reason: &str) -> Command {
    Command::Deduct(DeductPoints {
        points: Points::parse(p).unwrap(),
        idempotency_key: key.into(),
        reason: reason.into(),
    })
}

#[test]
fn a_spend_key_reused_with_another_body_is_refused_in_a_batch_and_from_the_database() {
    let user: Arc<str> = Arc::from("u");
    let mut st = UserPoints::empty(now());
    let cmds = vec![
        award("o1", 1_000),
        deduct_for("k", 3, "coffee"),
        deduct_for("k", 4, "coffee"),
        deduct_for("k", 3, "tea"),
        deduct_for("k", 3, "coffee"),
    ];
    let d = decide(
        &user,
        &mut st,
        &PointsRule::default(),
        now(),
        &cmds,
        &HashMap::new(),
    );
    let first = change(&d.answers[1]);
    for i in [2, 3] {
        assert!(
            matches!(&d.answers[i], Some(Err(PointsError::KeyReused(k))) if k == "k"),
            "{:?}",
            d.answers[i]
        );
    }
    let again = change(&d.answers[4]);
    assert_eq!((again.id, again.duplicate), (first.id.clone(), true));
    let w = d.write.expect("a write");
    assert_eq!(w.records.len(), 2, "the award and one spend");
    assert_eq!(w.totals.available, 7);

    // The spend is stored: a later batch compares with its row.
    let stored = w.records.iter().find(|r| r.points_change == -3).unwrap();
    let row = RecordRow {
        id: first.id.clone(),
        user_id: "u".into(),
        points_change: -3,
        balance_after: 7,
        kind: stored.kind.clone(),
        source_type: stored.source_type.clone(),
        source_id: stored.source_id.clone(),
        description: "coffee".into(),
        remaining: None,
        expires_at: None,
        capped_points: 0,
        shortfall: 0,
        created_at: now().naive_utc(),
    };
    let known = HashMap::from([((row.source_type.clone(), row.source_id.clone()), row)]);
    let cmds = vec![deduct_for("k", 3, "coffee"), deduct_for("k", 2, "coffee")];
    let mut st = UserPoints::empty(now());
    let d = decide(&user, &mut st, &PointsRule::default(), now(), &cmds, &known);
    let c = change(&d.answers[0]);
    assert_eq!((c.id, c.duplicate), (first.id, true));
    assert!(matches!(
        &d.answers[1],
        Some(Err(PointsError::KeyReused(_)))
    ));
    let cmds = vec![deduct_for("k", 3, "tea")];
    let d = decide(&user, &mut st, &PointsRule::default(), now(), &cmds, &known);
    assert!(matches!(
        &d.answers[0],
        Some(Err(PointsError::KeyReused(_)))
    ));
    assert!(d.write.is_none());
}
