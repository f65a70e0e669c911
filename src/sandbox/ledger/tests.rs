//! The sandbox's rules, without HTTP.

use super::*;
use crate::wechat::types::{Payer, PrepayAmount, RefundAmountRequest};

fn body(no: &str, total: i64) -> JsapiPrepayBody {
    JsapiPrepayBody {
        appid: "wxapp".into(),
        mchid: "1900".into(),
        description: "coffee".into(),
        out_trade_no: no.into(),
        time_expire: None,
        attach: None,
        notify_url: "https://example.test/notify".into(),
        amount: PrepayAmount {
            total,
            currency: "CNY".into(),
        },
        payer: Payer {
            openid: "o1".into(),
        },
    }
}

fn refund(no: &str, out_refund_no: &str, amount: i64, total: i64) -> RefundBody {
    RefundBody {
        transaction_id: None,
        out_trade_no: Some(no.into()),
        out_refund_no: out_refund_no.into(),
        reason: None,
        notify_url: None,
        amount: RefundAmountRequest {
            refund: amount,
            total,
            currency: "CNY".into(),
        },
    }
}

#[test]
fn same_order_same_prepay_id_and_changed_order_refused() {
    let mut l = Ledger::new("wxapp", "1900");
    let now = Utc::now();
    let a = l.prepay(body("order-1", 100), now).unwrap();
    assert_eq!(l.prepay(body("order-1", 100), now).unwrap(), a);
    assert_eq!(
        l.prepay(body("order-1", 101), now).unwrap_err().code,
        "OUT_TRADE_NO_USED"
    );
}

#[test]
fn amount_and_number_limits() {
    let mut l = Ledger::new("wxapp", "1900");
    let now = Utc::now();
    assert_eq!(
        l.prepay(body("order-1", 0), now).unwrap_err().code,
        "PARAM_ERROR"
    );
    assert_eq!(
        l.prepay(body("order-2", MAX_TOTAL_FEN + 1), now)
            .unwrap_err()
            .code,
        "PARAM_ERROR"
    );
    assert_eq!(
        l.prepay(body("short", 1), now).unwrap_err().code,
        "PARAM_ERROR"
    );
    assert_eq!(
        l.prepay(body("has space!", 1), now).unwrap_err().code,
        "PARAM_ERROR"
    );
}

#[test]
fn refunds_never_exceed_the_payment_and_repeat_by_number() {
    let mut l = Ledger::new("wxapp", "1900");
    let now = Utc::now();
    l.prepay(body("order-1", 100), now).unwrap();
    assert_eq!(
        l.refund(refund("order-1", "r1", 10, 100), now)
            .unwrap_err()
            .code,
        "INVALID_REQUEST"
    );
    l.pay("order-1", now).unwrap();
    let r1 = l.refund(refund("order-1", "r1", 60, 100), now).unwrap();
    assert_eq!(l.refund(refund("order-1", "r1", 60, 100), now).unwrap(), r1);
    assert_eq!(
        l.refund(refund("order-1", "r2", 41, 100), now)
            .unwrap_err()
            .code,
        "NOT_ENOUGH"
    );
    l.refund(refund("order-1", "r2", 40, 100), now).unwrap();
    assert_eq!(
        l.query("order-1", now).unwrap().trade_state,
        TradeState::Refund
    );
    assert_eq!(
        l.close("order-1", "1900", now).unwrap_err().code,
        "ORDERPAID"
    );
}

#[test]
fn unpaid_orders_close_at_time_expire() {
    let mut l = Ledger::new("wxapp", "1900");
    let now = Utc::now();
    let mut b = body("order-1", 100);
    b.time_expire = Some(rfc3339_cn(now + chrono::Duration::seconds(60)));
    l.prepay(b, now).unwrap();
    assert_eq!(
        l.query("order-1", now).unwrap().trade_state,
        TradeState::Notpay
    );
    let later = now + chrono::Duration::seconds(61);
    assert_eq!(
        l.query("order-1", later).unwrap().trade_state,
        TradeState::Closed
    );
    assert_eq!(l.pay("order-1", later).unwrap_err().code, "ORDER_CLOSED");
}

#[test]
fn the_trade_bill_lists_the_days_payments_and_refunds_in_wechats_format() {
    use crate::wechat::bill::{BillRowKind, parse_trade_bill};
    let mut l = Ledger::new("wxapp", "1900");
    // 2026-12-06 23:30 CST and 2026-12-07 00:30 CST: two bill days.
    let late = DateTime::parse_from_rfc3339("2026-12-06T15:30:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let next = late + chrono::Duration::hours(1);
    l.prepay(body("order-a", 1234), late).unwrap();
    l.prepay(body("order-b", 500), late).unwrap();
    l.prepay(body("order-c", 700), late).unwrap();
    l.pay("order-a", late).unwrap();
    l.pay("order-b", next).unwrap();
    l.refund(refund("order-a", "refund-a", 234, 1234), next)
        .unwrap();
    l.settle_refund("refund-a", RefundStatus::Success, next)
        .unwrap();

    let day = |d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
    let first = parse_trade_bill(&l.trade_bill(day(6), "ALL")).unwrap();
    assert_eq!(
        first.rows.len(),
        1,
        "order-c is unpaid; order-b is paid the next day"
    );
    assert_eq!(first.rows[0].out_trade_no, "order-a");
    assert_eq!(first.rows[0].settlement_fen, 1234);
    assert_eq!(first.rows[0].trade_time, "2026-12-06 23:30:00");

    let second = parse_trade_bill(&l.trade_bill(day(7), "ALL")).unwrap();
    let kinds: Vec<_> = second
        .rows
        .iter()
        .map(|r| (r.kind, r.out_trade_no.as_str()))
        .collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.contains(&(BillRowKind::Payment, "order-b")));
    assert!(kinds.contains(&(BillRowKind::Refund, "order-a")));
    assert_eq!(second.summary.settlement_fen, 500);
    assert_eq!(second.summary.refund_fen, 234);
    assert_eq!(
        parse_trade_bill(&l.trade_bill(day(7), "REFUND"))
            .unwrap()
            .rows
            .len(),
        1
    );
    assert_eq!(
        parse_trade_bill(&l.trade_bill(day(7), "SUCCESS"))
            .unwrap()
            .rows
            .len(),
        1
    );

    // A bill that disagrees: only for paid orders, and only the bill changes.
    assert_eq!(
        l.alter_bill_amount("order-c", 1).unwrap_err().code,
        "INVALID_REQUEST"
    );
    l.alter_bill_amount("order-b", 499).unwrap();
    let altered = parse_trade_bill(&l.trade_bill(day(7), "SUCCESS")).unwrap();
    assert_eq!(altered.rows[0].settlement_fen, 499);
    assert_eq!(l.query("order-b", next).unwrap().amount.total, 500);
}

#[test]
fn the_trade_bill_charges_its_own_fee_rate_per_row_rounded_half_up() {
    use crate::wechat::bill::parse_trade_bill;
    let mut l = Ledger::new("wxapp", "1900");
    let at = DateTime::parse_from_rfc3339("2026-12-07T02:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let day = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
    l.prepay(body("order-a", 12_345), at).unwrap();
    l.pay("order-a", at).unwrap();
    l.refund(refund("order-a", "refund-a", 5_000, 12_345), at)
        .unwrap();
    l.settle_refund("refund-a", RefundStatus::Success, at)
        .unwrap();

    // 0.6% by default: 74.07 -> 74 charged, 30 returned.
    let bill = parse_trade_bill(&l.trade_bill(day, "ALL")).unwrap();
    let fees: Vec<i64> = bill.rows.iter().map(|r| r.fee_fen).collect();
    assert_eq!(fees.iter().sum::<i64>(), 74 - 30);
    assert!(fees.contains(&74) && fees.contains(&-30), "{fees:?}");
    assert_eq!(bill.summary.fee_fen, 44);

    // 0.38%: 46.911 -> 47 charged, 19 returned; the rate column says so.
    l.set_fee_rate_bp(38).unwrap();
    let text = l.trade_bill(day, "ALL");
    assert!(text.contains("`0.38%"), "{text}");
    let bill = parse_trade_bill(&text).unwrap();
    let fees: Vec<i64> = bill.rows.iter().map(|r| r.fee_fen).collect();
    assert!(fees.contains(&47) && fees.contains(&-19), "{fees:?}");
    assert_eq!(bill.summary.fee_fen, 28);

    assert_eq!(l.set_fee_rate_bp(-1).unwrap_err().code, "PARAM_ERROR");
    assert_eq!(l.set_fee_rate_bp(10_001).unwrap_err().code, "PARAM_ERROR");
}
