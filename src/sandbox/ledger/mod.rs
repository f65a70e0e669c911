//! The sandbox's books: orders and refunds with WeChat's states and rules, as a plain struct
//! (no HTTP, no clock of its own) so the rules are tested directly.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
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
    /// Amounts the trade bill shows instead of the real one, by `out_trade_no` (control call:
    /// a bill that disagrees with the order, for reconciliation tests).
    bill_amounts: HashMap<String, i64>,
    /// The fee rate the trade bill charges, in basis points (WeChat's usual 0.6% unless a
    /// control call sets another, so a bill can differ from the server's estimate).
    fee_rate_bp: i64,
    seq: u64,
}

/// The fee rate the sandbox's bill charges by default, in basis points.
pub const DEFAULT_FEE_RATE_BP: i64 = 60;
/// The highest fee rate the sandbox takes, in basis points (100%).
pub const MAX_FEE_RATE_BP: i64 = 10_000;

impl Ledger {
    pub fn new(appid: impl Into<String>, mchid: impl Into<String>) -> Self {
        Self {
            appid: appid.into(),
            mchid: mchid.into(),
            orders: HashMap::new(),
            by_transaction_id: HashMap::new(),
            refunds: HashMap::new(),
            bill_amounts: HashMap::new(),
            fee_rate_bp: DEFAULT_FEE_RATE_BP,
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

    /// The refund ends (control call): PROCESSING becomes SUCCESS, ABNORMAL or CLOSED. A
    /// closed refund gives its amount back to what can still be refunded. Settling again with
    /// the same outcome repeats the answer.
    pub fn settle_refund(
        &mut self,
        out_refund_no: &str,
        outcome: RefundStatus,
        now: DateTime<Utc>,
    ) -> Result<(RefundResource, Option<String>), Fail> {
        let mchid = self.mchid.clone();
        let record = self
            .refunds
            .get_mut(out_refund_no)
            .ok_or_else(|| fail(404, "RESOURCE_NOT_EXISTS", "退款单不存在"))?;
        let current = record.refund.status;
        match (current, outcome) {
            (RefundStatus::Processing, RefundStatus::Processing) => {
                return Err(param("outcome must be SUCCESS, ABNORMAL or CLOSED"));
            }
            (RefundStatus::Processing, _) => {
                record.refund.status = outcome;
                if outcome == RefundStatus::Success {
                    record.refund.success_time = Some(rfc3339_cn(now));
                }
            }
            (RefundStatus::Success, RefundStatus::Success)
            | (RefundStatus::Closed, RefundStatus::Closed)
            | (RefundStatus::Abnormal, RefundStatus::Abnormal) => {}
            (RefundStatus::Success | RefundStatus::Closed | RefundStatus::Abnormal, _) => {
                return Err(fail(400, "INVALID_REQUEST", "退款单状态不允许此操作"));
            }
        }
        let r = record.refund.clone();
        let notify_url = record.notify_url.clone();
        if current == RefundStatus::Processing
            && outcome == RefundStatus::Closed
            && let Some(order) = self.orders.get_mut(&r.out_trade_no)
        {
            order.refunded -= r.amount.refund;
        }
        let resource = RefundResource {
            mchid,
            out_trade_no: r.out_trade_no,
            transaction_id: r.transaction_id,
            out_refund_no: r.out_refund_no,
            refund_id: r.refund_id,
            refund_status: r.status,
            success_time: r.success_time,
            amount: r.amount,
        };
        Ok((resource, notify_url))
    }

    /// Makes the trade bill show `amount_fen` for a paid order instead of what was paid.
    pub fn alter_bill_amount(&mut self, out_trade_no: &str, amount_fen: i64) -> Result<(), Fail> {
        let order = self
            .orders
            .get(out_trade_no)
            .ok_or_else(|| fail(404, "ORDER_NOT_EXIST", "订单不存在"))?;
        if order.transaction_id.is_none() {
            return Err(fail(400, "INVALID_REQUEST", "订单未支付"));
        }
        if !(0..=MAX_TOTAL_FEN).contains(&amount_fen) {
            return Err(param("amount_fen out of range"));
        }
        self.bill_amounts
            .insert(out_trade_no.to_string(), amount_fen);
        Ok(())
    }

    /// Sets the fee rate the trade bill charges from now on, in basis points.
    pub fn set_fee_rate_bp(&mut self, rate_bp: i64) -> Result<(), Fail> {
        if !(0..=MAX_FEE_RATE_BP).contains(&rate_bp) {
            return Err(param("rate_bp must be 0-10000"));
        }
        self.fee_rate_bp = rate_bp;
        Ok(())
    }

    /// WeChat's fee on `fen` at the bill's rate, rounded half up to the fen per row, as WeChat
    /// charges it: on a payment, the fee charged; on a refund, the fee returned (the same rule
    /// on the amount refunded).
    pub fn bill_fee(&self, fen: i64) -> i64 {
        (fen * self.fee_rate_bp + 5_000) / 10_000
    }

    /// The ALL / SUCCESS / REFUND trade bill of one China Standard Time day, in WeChat's CSV:
    /// every payment that succeeded that day (a SUCCESS row, kept when it was refunded
    /// later) and every refund that succeeded that day (a REFUND row), then the summary.
    pub fn trade_bill(&self, day: NaiveDate, bill_type: &str) -> String {
        use crate::wechat::bill::{TRADE_BILL_HEADER, TRADE_BILL_SUMMARY_HEADER, fen_to_yuan};
        let on_day = |t: &Option<String>| {
            t.as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .filter(|t| t.date_naive() == day)
        };
        let bill_time = |t: DateTime<FixedOffset>| t.format("%Y-%m-%d %H:%M:%S").to_string();
        // The fee per row, rounded half up to the fen; written with five decimals, negative
        // on a refund row (the fee returned).
        let fee = |fen: i64| self.bill_fee(fen);
        let fee_text = |fen: i64| format!("{}000", fen_to_yuan(fen));
        let rate_text = format!("{}.{:02}%", self.fee_rate_bp / 100, self.fee_rate_bp % 100);
        let mut rows: Vec<(String, String, Vec<String>)> = Vec::new();
        let (mut settled, mut refunded, mut fees, mut ordered, mut asked) = (0, 0, 0, 0, 0);
        if bill_type != "REFUND" {
            for o in self.orders.values() {
                let Some(at) = on_day(&o.success_time) else {
                    continue;
                };
                let r = &o.request;
                let amount = self
                    .bill_amounts
                    .get(&r.out_trade_no)
                    .copied()
                    .unwrap_or(r.amount.total);
                settled += amount;
                ordered += amount;
                fees += fee(amount);
                rows.push((
                    bill_time(at),
                    r.out_trade_no.clone(),
                    vec![
                        bill_time(at),
                        r.appid.clone(),
                        r.mchid.clone(),
                        "0".into(),
                        String::new(),
                        o.transaction_id.clone().unwrap_or_default(),
                        r.out_trade_no.clone(),
                        r.payer.openid.clone(),
                        "JSAPI".into(),
                        "SUCCESS".into(),
                        "OTHERS".into(),
                        "CNY".into(),
                        fen_to_yuan(amount),
                        "0.00".into(),
                        "0".into(),
                        "0".into(),
                        "0.00".into(),
                        "0.00".into(),
                        String::new(),
                        String::new(),
                        r.description.clone(),
                        r.attach.clone().unwrap_or_default(),
                        fee_text(fee(amount)),
                        rate_text.clone(),
                        fen_to_yuan(amount),
                        "0.00".into(),
                        String::new(),
                    ],
                ));
            }
        }
        if bill_type != "SUCCESS" {
            for rec in self.refunds.values() {
                let rf = &rec.refund;
                if rf.status != RefundStatus::Success {
                    continue;
                }
                let Some(at) = on_day(&rf.success_time) else {
                    continue;
                };
                let Some(o) = self.orders.get(&rf.out_trade_no) else {
                    continue;
                };
                let r = &o.request;
                let amount = rf.amount.refund;
                refunded += amount;
                asked += amount;
                fees -= fee(amount);
                rows.push((
                    bill_time(at),
                    rf.out_refund_no.clone(),
                    vec![
                        bill_time(at),
                        r.appid.clone(),
                        r.mchid.clone(),
                        "0".into(),
                        String::new(),
                        rf.transaction_id.clone(),
                        rf.out_trade_no.clone(),
                        r.payer.openid.clone(),
                        "JSAPI".into(),
                        "REFUND".into(),
                        "OTHERS".into(),
                        "CNY".into(),
                        "0.00".into(),
                        "0.00".into(),
                        rf.refund_id.clone(),
                        rf.out_refund_no.clone(),
                        fen_to_yuan(amount),
                        "0.00".into(),
                        "ORIGINAL".into(),
                        "SUCCESS".into(),
                        r.description.clone(),
                        r.attach.clone().unwrap_or_default(),
                        fee_text(-fee(amount)),
                        rate_text.clone(),
                        "0.00".into(),
                        fen_to_yuan(amount),
                        String::new(),
                    ],
                ));
            }
        }
        rows.sort();
        let mut out = TRADE_BILL_HEADER.join(",");
        out.push_str("\r\n");
        for (_, _, fields) in &rows {
            let ticked: Vec<String> = fields.iter().map(|f| format!("`{f}")).collect();
            out.push_str(&ticked.join(","));
            out.push_str("\r\n");
        }
        out.push_str(&TRADE_BILL_SUMMARY_HEADER.join(","));
        out.push_str("\r\n");
        let summary = [
            rows.len().to_string(),
            fen_to_yuan(settled),
            fen_to_yuan(refunded),
            "0.00".into(),
            fee_text(fees),
            fen_to_yuan(ordered),
            fen_to_yuan(asked),
        ];
        let ticked: Vec<String> = summary.iter().map(|f| format!("`{f}")).collect();
        out.push_str(&ticked.join(","));
        out.push_str("\r\n");
        out
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
mod tests;
