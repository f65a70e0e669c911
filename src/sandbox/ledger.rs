//! The sandbox's books: orders and refunds with WeChat's states and rules, as a plain struct
//! (no HTTP, no clock of its own) so the rules are tested directly.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset, Utc};
use rand::RngExt as _;

use crate::wechat::types::{
    JsapiPrepayBody, OptionalPayer, Refund, RefundAmount, RefundBody, RefundResource, RefundStatus,
    TradeState, Transaction, TransactionAmount,
};

/// Largest single payment the sandbox takes (fen), as a stand-in for WeChat's per-merchant limit.
pub const MAX_TOTAL_FEN: i64 = 100_000_000;

/// A refusal in WeChat's shape: HTTP status, `code`, `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

fn fail(status: u16, code: &'static str, message: impl Into<String>) -> Fail {
    Fail {
        status,
        code,
        message: message.into(),
    }
}

fn param(message: impl Into<String>) -> Fail {
    fail(400, "PARAM_ERROR", message)
}

#[derive(Debug, Clone)]
pub struct Order {
    pub request: JsapiPrepayBody,
    pub prepay_id: String,
    pub state: TradeState,
    pub transaction_id: Option<String>,
    pub success_time: Option<String>,
    pub expires_at: Option<DateTime<FixedOffset>>,
    /// Sum of refunds that are not closed (fen).
    pub refunded: i64,
}

#[derive(Debug, Clone)]
pub struct RefundRecord {
    pub refund: Refund,
    pub notify_url: Option<String>,
}

/// Orders by `out_trade_no`, refunds by `out_refund_no`.
#[derive(Debug)]
pub struct Ledger {
    appid: String,
    mchid: String,
    orders: HashMap<String, Order>,
    by_transaction_id: HashMap<String, String>,
    refunds: HashMap<String, RefundRecord>,
    seq: u64,
}

impl Ledger {
    pub fn new(appid: impl Into<String>, mchid: impl Into<String>) -> Self {
        Self {
            appid: appid.into(),
            mchid: mchid.into(),
            orders: HashMap::new(),
            by_transaction_id: HashMap::new(),
            refunds: HashMap::new(),
            seq: 0,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// JSAPI prepay: the same `out_trade_no` with the same parameters answers the same
    /// `prepay_id`; different parameters are refused.
    pub fn prepay(&mut self, body: JsapiPrepayBody, now: DateTime<Utc>) -> Result<String, Fail> {
        validate_prepay(&body, &self.appid, &self.mchid)?;
        let expires_at = match &body.time_expire {
            Some(t) => Some(
                DateTime::parse_from_rfc3339(t)
                    .map_err(|_| param("time_expire is not RFC 3339"))?,
            ),
            None => None,
        };
        if let Some(order) = self.orders.get_mut(&body.out_trade_no) {
            expire(order, now);
            return match order.state {
                TradeState::Notpay if order.request == body => Ok(order.prepay_id.clone()),
                TradeState::Notpay | TradeState::Userpaying | TradeState::Payerror => {
                    Err(fail(400, "OUT_TRADE_NO_USED", "商户订单号重复"))
                }
                TradeState::Success | TradeState::Refund => {
                    Err(fail(400, "ORDERPAID", "该订单已支付"))
                }
                TradeState::Closed | TradeState::Revoked => {
                    Err(fail(400, "ORDER_CLOSED", "订单已关闭"))
                }
            };
        }
        let prepay_id = format!(
            "wx{}{:016x}",
            now.format("%d%H%M%S%3f"),
            rand::rng().random::<u64>()
        );
        self.orders.insert(
            body.out_trade_no.clone(),
            Order {
                request: body,
                prepay_id: prepay_id.clone(),
                state: TradeState::Notpay,
                transaction_id: None,
                success_time: None,
                expires_at,
                refunded: 0,
            },
        );
        Ok(prepay_id)
    }

    pub fn query(&mut self, out_trade_no: &str, now: DateTime<Utc>) -> Result<Transaction, Fail> {
        let order = self.order_mut(out_trade_no, now)?;
        Ok(transaction(order))
    }

    pub fn query_by_transaction_id(
        &mut self,
        transaction_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Transaction, Fail> {
        let out_trade_no = self
            .by_transaction_id
            .get(transaction_id)
            .cloned()
            .ok_or_else(|| fail(404, "ORDER_NOT_EXIST", "订单不存在"))?;
        self.query(&out_trade_no, now)
    }

    /// Closing an unpaid order; closing a closed one again is harmless.
    pub fn close(
        &mut self,
        out_trade_no: &str,
        mchid: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Fail> {
        if mchid != self.mchid {
            return Err(param("mchid does not match"));
        }
        let order = self.order_mut(out_trade_no, now)?;
        match order.state {
            TradeState::Notpay | TradeState::Payerror | TradeState::Userpaying => {
                order.state = TradeState::Closed;
                Ok(())
            }
            TradeState::Closed | TradeState::Revoked => Ok(()),
            TradeState::Success | TradeState::Refund => Err(fail(400, "ORDERPAID", "订单已支付")),
        }
    }

    /// The shopper pays (control call): NOTPAY becomes SUCCESS.
    pub fn pay(&mut self, out_trade_no: &str, now: DateTime<Utc>) -> Result<Transaction, Fail> {
        let seq = self.next_seq();
        let order = self.order_mut(out_trade_no, now)?;
        match order.state {
            TradeState::Notpay | TradeState::Userpaying | TradeState::Payerror => {}
            TradeState::Success | TradeState::Refund => {
                return Err(fail(400, "ORDERPAID", "订单已支付"));
            }
            TradeState::Closed | TradeState::Revoked => {
                return Err(fail(400, "ORDER_CLOSED", "订单已关闭"));
            }
        }
        let transaction_id = format!("4200{}{:012}", now.format("%Y%m%d"), seq);
        order.state = TradeState::Success;
        order.transaction_id = Some(transaction_id.clone());
        order.success_time = Some(rfc3339_cn(now));
        let tx = transaction(order);
        self.by_transaction_id
            .insert(transaction_id, out_trade_no.to_string());
        Ok(tx)
    }

    /// The payment fails (control call): the order stays payable, as after a declined card.
    pub fn fail_payment(
        &mut self,
        out_trade_no: &str,
        now: DateTime<Utc>,
    ) -> Result<Transaction, Fail> {
        let order = self.order_mut(out_trade_no, now)?;
        match order.state {
            TradeState::Notpay | TradeState::Userpaying | TradeState::Payerror => {
                order.state = TradeState::Payerror;
                Ok(transaction(order))
            }
            TradeState::Success | TradeState::Refund => Err(fail(400, "ORDERPAID", "订单已支付")),
            TradeState::Closed | TradeState::Revoked => {
                Err(fail(400, "ORDER_CLOSED", "订单已关闭"))
            }
        }
    }

    /// A refund request: idempotent by `out_refund_no`, never above what is left to refund.
    pub fn refund(&mut self, body: RefundBody, now: DateTime<Utc>) -> Result<Refund, Fail> {
        if let Some(existing) = self.refunds.get(&body.out_refund_no) {
            return Ok(existing.refund.clone());
        }
        if body.amount.refund < 1 || body.amount.total < 1 {
            return Err(param("amount must be positive"));
        }
        if body.amount.currency != "CNY" {
            return Err(param("currency must be CNY"));
        }
        check_out_no("out_refund_no", &body.out_refund_no, 1)?;
        let out_trade_no = match (&body.transaction_id, &body.out_trade_no) {
            (Some(id), _) => self
                .by_transaction_id
                .get(id)
                .cloned()
                .ok_or_else(|| fail(404, "RESOURCE_NOT_EXISTS", "订单不存在"))?,
            (None, Some(no)) => no.clone(),
            (None, None) => return Err(param("transaction_id or out_trade_no is required")),
        };
        let seq = self.next_seq();
        let order = self
            .order_mut(&out_trade_no, now)
            .map_err(|_| fail(404, "RESOURCE_NOT_EXISTS", "订单不存在"))?;
        match order.state {
            TradeState::Success | TradeState::Refund => {}
            TradeState::Notpay
            | TradeState::Closed
            | TradeState::Revoked
            | TradeState::Userpaying
            | TradeState::Payerror => return Err(fail(400, "INVALID_REQUEST", "订单未支付")),
        }
        let total = order.request.amount.total;
        if body.amount.total != total {
            return Err(param("amount.total does not match the order"));
        }
        if order.refunded + body.amount.refund > total {
            return Err(fail(403, "NOT_ENOUGH", "可退金额不足"));
        }
        order.refunded += body.amount.refund;
        order.state = TradeState::Refund;
        let refund = Refund {
            refund_id: format!("50{}{:020}", now.format("%Y%m%d"), seq),
            out_refund_no: body.out_refund_no.clone(),
            transaction_id: order.transaction_id.clone().unwrap_or_default(),
            out_trade_no,
            status: RefundStatus::Processing,
            success_time: None,
            create_time: Some(rfc3339_cn(now)),
            amount: RefundAmount {
                total,
                refund: body.amount.refund,
                payer_total: Some(total),
                payer_refund: Some(body.amount.refund),
                currency: Some("CNY".into()),
            },
        };
        let notify_url = body
            .notify_url
            .clone()
            .or_else(|| Some(order.request.notify_url.clone()));
        self.refunds.insert(
            body.out_refund_no,
            RefundRecord {
                refund: refund.clone(),
                notify_url,
            },
        );
        Ok(refund)
    }

    pub fn query_refund(&self, out_refund_no: &str) -> Result<Refund, Fail> {
        self.refunds
            .get(out_refund_no)
            .map(|r| r.refund.clone())
            .ok_or_else(|| fail(404, "RESOURCE_NOT_EXISTS", "退款单不存在"))
    }

    /// The refund reaches the shopper (control call): PROCESSING becomes SUCCESS.
    pub fn succeed_refund(
        &mut self,
        out_refund_no: &str,
        now: DateTime<Utc>,
    ) -> Result<(RefundResource, Option<String>), Fail> {
        let mchid = self.mchid.clone();
        let record = self
            .refunds
            .get_mut(out_refund_no)
            .ok_or_else(|| fail(404, "RESOURCE_NOT_EXISTS", "退款单不存在"))?;
        match record.refund.status {
            RefundStatus::Processing => {
                record.refund.status = RefundStatus::Success;
                record.refund.success_time = Some(rfc3339_cn(now));
            }
            RefundStatus::Success => {}
            RefundStatus::Closed | RefundStatus::Abnormal => {
                return Err(fail(400, "INVALID_REQUEST", "退款单已关闭"));
            }
        }
        let r = &record.refund;
        let resource = RefundResource {
            mchid,
            out_trade_no: r.out_trade_no.clone(),
            transaction_id: r.transaction_id.clone(),
            out_refund_no: r.out_refund_no.clone(),
            refund_id: r.refund_id.clone(),
            refund_status: r.status,
            success_time: r.success_time.clone(),
            amount: r.amount.clone(),
        };
        Ok((resource, record.notify_url.clone()))
    }

    /// The order's notify URL (for deliveries).
    pub fn notify_url(&self, out_trade_no: &str) -> Option<String> {
        self.orders
            .get(out_trade_no)
            .map(|o| o.request.notify_url.clone())
    }

    fn order_mut(&mut self, out_trade_no: &str, now: DateTime<Utc>) -> Result<&mut Order, Fail> {
        let order = self
            .orders
            .get_mut(out_trade_no)
            .ok_or_else(|| fail(404, "ORDER_NOT_EXIST", "订单不存在"))?;
        expire(order, now);
        Ok(order)
    }
}

/// An unpaid order past its `time_expire` is closed, as WeChat does.
fn expire(order: &mut Order, now: DateTime<Utc>) {
    if let Some(at) = order.expires_at
        && now >= at
        && matches!(
            order.state,
            TradeState::Notpay | TradeState::Userpaying | TradeState::Payerror
        )
    {
        order.state = TradeState::Closed;
    }
}

fn transaction(order: &Order) -> Transaction {
    let paid = order.transaction_id.is_some();
    let r = &order.request;
    Transaction {
        appid: r.appid.clone(),
        mchid: r.mchid.clone(),
        out_trade_no: r.out_trade_no.clone(),
        transaction_id: order.transaction_id.clone(),
        trade_type: paid.then(|| "JSAPI".to_string()),
        trade_state: order.state,
        trade_state_desc: Some(order.state.as_str().to_string()),
        success_time: order.success_time.clone(),
        attach: r.attach.clone(),
        payer: Some(OptionalPayer {
            openid: Some(r.payer.openid.clone()),
        }),
        amount: TransactionAmount {
            total: r.amount.total,
            payer_total: paid.then_some(r.amount.total),
            currency: r.amount.currency.clone(),
            payer_currency: paid.then(|| r.amount.currency.clone()),
        },
    }
}

fn validate_prepay(b: &JsapiPrepayBody, appid: &str, mchid: &str) -> Result<(), Fail> {
    if b.mchid != mchid {
        return Err(fail(400, "MCH_NOT_EXISTS", "商户号不存在"));
    }
    if b.appid != appid {
        return Err(fail(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配"));
    }
    check_out_no("out_trade_no", &b.out_trade_no, 6)?;
    let chars = b.description.chars().count();
    if chars == 0 || chars > 127 {
        return Err(param("description must be 1-127 characters"));
    }
    if b.amount.total < 1 || b.amount.total > MAX_TOTAL_FEN {
        return Err(param(format!(
            "amount.total must be 1..={MAX_TOTAL_FEN} fen"
        )));
    }
    if b.amount.currency != "CNY" {
        return Err(param("currency must be CNY"));
    }
    if b.payer.openid.is_empty() {
        return Err(param("payer.openid is required"));
    }
    // WeChat takes only https; the sandbox also takes http so local servers can listen.
    let url_ok = (b.notify_url.starts_with("https://") || b.notify_url.starts_with("http://"))
        && !b.notify_url.contains('?');
    if !url_ok {
        return Err(param("notify_url must be an absolute URL without a query"));
    }
    Ok(())
}

fn check_out_no(field: &str, value: &str, min: usize) -> Result<(), Fail> {
    let ok = (min..=32).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*'));
    if ok {
        Ok(())
    } else {
        Err(param(format!(
            "{field} must be {min}-32 of [A-Za-z0-9_-|*]"
        )))
    }
}

/// WeChat writes times in China Standard Time: `2026-11-27T15:04:05+08:00`.
pub fn rfc3339_cn(t: DateTime<Utc>) -> String {
    match FixedOffset::east_opt(8 * 3600) {
        Some(cst) => t
            .with_timezone(&cst)
            .format("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
        None => t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
    }
}

#[cfg(test)]
mod tests {
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
}
