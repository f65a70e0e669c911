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
