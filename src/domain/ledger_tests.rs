use std::collections::HashMap;

use chrono::{Duration, TimeZone};
use proptest::prelude::*;

use super::*;
use crate::domain::rule::PointsRuleSpec;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 2, 0, 0).unwrap()
}
fn rule(expiry_days: i64) -> PointsRule {
    PointsRule::try_from(PointsRuleSpec {
        expiry_days,
        ..PointsRuleSpec::default()
    })
    .unwrap()
}
fn fen(v: i64) -> Fen {
    Fen::parse(v).unwrap()
}
fn pts(v: i64) -> Points {
    Points::parse(v).unwrap()
}
fn check(u: &UserPoints) {
    let t = u.totals();
    assert!(t.available >= 0);
    assert_eq!(t.available, u.lots().map(|l| l.remaining).sum::<i64>());
    assert_eq!(
        t.available,
        t.total_earned - t.total_used - t.total_expired - t.total_clawed_back
    );
}

#[test]
fn deduct_takes_first_to_expire_first() {
    let mut u = UserPoints::empty(t0());
    let a = u.award(t0(), &rule(10), fen(1000), "o1".into(), String::new());
    let b = u.award(t0(), &rule(5), fen(500), "o2".into(), String::new());
    // b expires first although awarded later.
    let d = u.deduct(t0(), pts(7), "d1".into(), String::new()).unwrap();
    assert_eq!(d.lot_updates, vec![(b.record.id, 0), (a.record.id, 8)]);
    assert_eq!(d.record.balance_after, 8);
    assert_eq!(d.record.change, -7);
    check(&u);
    let err = u
        .deduct(t0(), pts(9), "d2".into(), String::new())
        .unwrap_err();
    assert_eq!(
        err,
        LedgerError::Insufficient {
            available: 8,
            requested: 9
        }
    );
}

#[test]
fn expiry_turns_remainders_into_records() {
    let mut u = UserPoints::empty(t0());
    let a = u.award(t0(), &rule(1), fen(1000), "o1".into(), String::new());
    u.award(
        t0() + Duration::hours(1),
        &rule(1),
        fen(300),
        "o2".into(),
        String::new(),
    );
    u.deduct(t0(), pts(4), "d".into(), String::new()).unwrap();
    assert!(u.expire_due(t0() + Duration::hours(23)).is_empty());
    let out = u.expire_due(t0() + Duration::days(1));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].record.change, -6);
    assert_eq!(out[0].record.source_id, a.record.id.to_string());
    assert_eq!(out[0].record.balance_after, 3);
    assert_eq!(u.totals().total_expired, 6);
    check(&u);
}

#[test]
fn clawback_never_below_zero_records_shortfall() {
    let mut u = UserPoints::empty(t0());
    u.award(t0(), &rule(30), fen(500), "o1".into(), String::new());
    let c = u.clawback(t0(), pts(8), "r1".into(), String::new());
    assert_eq!(
        (c.record.change, c.record.shortfall, c.record.balance_after),
        (-5, 3, 0)
    );
    check(&u);
}

#[test]
fn daily_cap_resets_at_cst_midnight() {
    let spec = PointsRuleSpec {
        daily_cap: 100,
        ..PointsRuleSpec::default()
    };
    let r = PointsRule::try_from(spec).unwrap();
    // 15:30 UTC is 23:30 CST; 16:30 UTC is 00:30 CST next day.
    let late = Utc.with_ymd_and_hms(2026, 3, 1, 15, 30, 0).unwrap();
    let mut u = UserPoints::empty(late);
    let a = u.award(late, &r, fen(15_000), "o1".into(), String::new());
    assert_eq!((a.record.change, a.record.capped), (100, 50));
    let b = u.award(late, &r, fen(1_000), "o2".into(), String::new());
    assert_eq!((b.record.change, b.record.capped), (0, 10));
    let next = late + Duration::hours(1);
    let c = u.award(next, &r, fen(15_000), "o3".into(), String::new());
    assert_eq!((c.record.change, c.record.capped), (100, 50));
    check(&u);
}

#[test]
fn adjust_negative_refused_below_zero() {
    let mut u = UserPoints::empty(t0());
    u.adjust(t0(), &rule(30), 5, "a1".into(), "gift".into())
        .unwrap();
    assert!(
        u.adjust(t0(), &rule(30), -6, "a2".into(), "fix".into())
            .is_err()
    );
    let a = u
        .adjust(t0(), &rule(30), -5, "a3".into(), "fix".into())
        .unwrap();
    assert_eq!(a.record.balance_after, 0);
    check(&u);
}

#[derive(Debug, Clone)]
enum Op {
    Award(i64, i64),
    Deduct(i64),
    Clawback(i64),
    Adjust(i64),
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0i64..50_000, 1i64..5).prop_map(|(a, d)| Op::Award(a, d)),
        (0i64..300).prop_map(Op::Deduct),
        (0i64..300).prop_map(Op::Clawback),
        (-200i64..200).prop_map(Op::Adjust),
        (0i64..60).prop_map(Op::Advance),
    ]
}

proptest! {
    #[test]
    fn invariants_hold_for_any_sequence(ops in proptest::collection::vec(op(), 1..80)) {
        let mut now = t0();
        let mut u = UserPoints::empty(now);
        let mut original: HashMap<Uuid, i64> = HashMap::new();
        let mut ledger_sum = 0i64;
        for (i, op) in ops.into_iter().enumerate() {
            let src = format!("s{i}");
            let mut applied = u.expire_due(now);
            let before: Vec<Uuid> = u.lots().map(|l| l.id).collect();
            let consumed = match op {
                Op::Award(a, d) => { applied.push(u.award(now, &rule(d), fen(a), src, String::new())); None }
                Op::Deduct(p) => u.deduct(now, pts(p), src, String::new()).ok(),
                Op::Clawback(p) => Some(u.clawback(now, pts(p), src, String::new())),
                Op::Adjust(d) => u.adjust(now, &rule(2), d, src, "r".into()).ok(),
                Op::Advance(h) => { now += Duration::hours(h); None }
            };
            if let Some(c) = consumed {
                // FIFO: the consumed lots are the first ones in expiry order, all but the
                // last emptied.
                let ids: Vec<Uuid> = c.lot_updates.iter().map(|x| x.0).collect();
                prop_assert_eq!(&ids[..], &before[..ids.len()]);
                for (k, (_, rem)) in c.lot_updates.iter().enumerate() {
                    if k + 1 < ids.len() { prop_assert_eq!(*rem, 0); }
                }
                for l in u.lots() { prop_assert!(l.expires_at > now); }
                applied.push(c);
            }
            for a in &applied {
                ledger_sum += a.record.change;
                if let Some(r) = a.record.remaining {
                    original.insert(a.record.id, r);
                }
            }
            check(&u);
            prop_assert_eq!(ledger_sum, u.totals().available);
        }
    }
}
