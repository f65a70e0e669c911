//! The payment path's steps, each idempotent: create (under an Idempotency-Key), settle a
//! payment WeChat reports (notification or query), close an unpaid order, and hand the award
//! to the points engine through the outbox.

use std::sync::Arc;

use actix::Addr;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::PaymentError;
use super::changes::OrderChanges;
use super::metrics::PaymentMetrics;
use super::order_writer::{OrderWriter, PaidWrite, PrepaidWrite};
use crate::actors::notifier::{Notifier, Notify, ShopperEvent};
use crate::actors::points::{AwardPoints, PointsService};
use crate::domain::Fen;
use crate::domain::order::{Decision, Effect, OrderEvent, OrderStatus, decide};
use crate::domain::risk::{RiskAction, RiskContext, RiskRule, evaluate, velocity_windows};
use crate::storage::orders::{self, Inserted, OrderRow, OutboxRow};
use crate::storage::{Db, outbox, shop};
use crate::wechat::types::TradeState;
use crate::wechat::{PayParams, PrepayRequest, Transaction, WechatClient};

/// Largest single payment (WeChat's JSAPI limit is higher; ours is a risk bound).
pub const MAX_AMOUNT_FEN: i64 = 50_000_000;
/// The outbox row waits this long before recovery re-drives it: the direct award normally
/// finishes well within it.
pub const OUTBOX_GRACE_SECS: i64 = 10;

pub const PAY_NOTIFY_PATH: &str = "/api/wechat/pay/notify";
pub const REFUND_NOTIFY_PATH: &str = "/api/wechat/refund/notify";

/// Everything a payment step needs. Cheap to clone.
#[derive(Clone)]
pub struct PaymentCore {
    pub db: Db,
    pub wechat: WechatClient,
    pub points: PointsService,
    pub metrics: Arc<PaymentMetrics>,
    /// How long an unpaid order lives before it is closed (`APP_ORDER_TTL_SECS`).
    pub order_ttl: Duration,
    /// Crash tests only (`APP_FAULT_KILL_AT=after_paid_commit`): SIGKILL this process right
    /// after a paid + outbox commit, before the award.
    pub kill_after_paid: bool,
    /// Group commit for "paid + outbox" and notification logs.
    pub order_writer: OrderWriter,
    /// Tells shoppers about payments and refunds (subscribe messages); never fails a step.
    pub notifier: Option<Addr<Notifier>>,
    /// The risk rules as last read (every create needs them; they change rarely).
    pub risk_rules: RiskRuleCache,
    /// Shoppers waiting for their order to settle; told after each commit that moves one.
    pub changes: OrderChanges,
}

/// How long the risk rules read from the database are used before they are read again: a
/// change in `risk_rules` takes effect within this.
pub const RISK_RULES_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Rules and when they were read.
type ReadRules = (std::time::Instant, Arc<Vec<RiskRule>>);

/// The risk rules, re-read at most every [`RISK_RULES_TTL`] (shared by the shards).
#[derive(Clone, Default)]
pub struct RiskRuleCache {
    inner: Arc<parking_lot::Mutex<Option<ReadRules>>>,
}

impl RiskRuleCache {
    fn fresh(&self) -> Option<Arc<Vec<RiskRule>>> {
        let guard = self.inner.lock();
        guard
            .as_ref()
            .filter(|(at, _)| at.elapsed() < RISK_RULES_TTL)
            .map(|(_, rules)| rules.clone())
    }

    fn store(&self, rules: Arc<Vec<RiskRule>>) {
        *self.inner.lock() = Some((std::time::Instant::now(), rules));
    }

    /// Forgets the rules read, so the next payment reads them again (an admin changed one).
    pub fn forget(&self) {
        *self.inner.lock() = None;
    }
}

/// A validated request to pay.
#[derive(Debug, Clone)]
pub struct CreatePayment {
    pub user_id: String,
    pub payment_code_id: String,
    pub amount_fen: i64,
    pub idempotency_key: String,
    /// Where the request came from, for the login-IP risk rule.
    pub client_ip: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedPayment {
    pub order_no: String,
    pub amount_fen: i64,
    pub status: OrderStatus,
    pub pay_params: Option<PayParams>,
    /// For the supervisor's watch (not part of the answer).
    #[serde(skip)]
    pub created_at: chrono::NaiveDateTime,
    #[serde(skip)]
    pub expires_at: chrono::NaiveDateTime,
    /// The row as written, status included, for the owning shard's watch (not part of the
    /// answer).
    #[serde(skip)]
    pub row: Option<Arc<OrderRow>>,
}

fn request_hash(code: &str, amount: i64) -> String {
    hex::encode(Sha256::digest(format!("{code}\n{amount}").as_bytes()))
}

impl PaymentCore {
    /// Creates the order (or finds the one this key already made) and gets WeChat's prepay.
    /// `id` is the new order's id (UUID v7; its simple form is the order number), chosen by
    /// the supervisor so the request runs on the shard that will own the order.
    pub async fn create(
        &self,
        req: CreatePayment,
        id: uuid::Uuid,
        now: DateTime<Utc>,
    ) -> Result<CreatedPayment, PaymentError> {
        if req.amount_fen <= 0 || req.amount_fen > MAX_AMOUNT_FEN {
            return Err(PaymentError::AmountInvalid(format!(
                "amount_fen must be between 1 and {MAX_AMOUNT_FEN}"
            )));
        }
        let context = shop::payment_context(
            &self.db,
            &req.payment_code_id,
            &req.user_id,
            &req.client_ip,
            &req.idempotency_key,
        )
        .await?
        .ok_or(PaymentError::CodeNotFound)?;
        let code = context.code;
        if !code.code_active {
            return Err(PaymentError::CodeDisabled);
        }
        if !code.merchant_active {
            return Err(PaymentError::MerchantNotActive);
        }
        if let Some(fixed) = code.amount_fen
            && fixed != req.amount_fen
        {
            return Err(PaymentError::AmountInvalid(format!(
                "this code takes exactly {fixed} fen"
            )));
        }
        let openid = context.openid.ok_or(PaymentError::Forbidden)?;
        // A retry of an earlier request is not a new payment: it skips the risk rules.
        if !context.retry {
            self.check_risk(&req, context.ip_known, now).await?;
        }
        let naive = now.naive_utc();
        let request_hash = request_hash(&req.payment_code_id, req.amount_fen);
        let row = OrderRow {
            id: id.to_string(),
            order_no: id.simple().to_string(),
            user_id: req.user_id.clone(),
            merchant_id: code.merchant_id.clone(),
            payment_code_id: req.payment_code_id.clone(),
            amount_fen: req.amount_fen,
            refunded_fen: 0,
            status: OrderStatus::Created.as_str().into(),
            idempotency_key: req.idempotency_key.clone(),
            request_hash: request_hash.clone(),
            description: truncate(&format!("{} {}", code.merchant_name, code.label), 127),
            payer_openid: openid,
            prepay_id: None,
            wechat_transaction_id: None,
            expires_at: naive + self.order_ttl,
            paid_at: None,
            closed_at: None,
            version: 0,
            created_at: naive,
            updated_at: naive,
        };
        let order = match self.order_writer.insert(row).await? {
            Inserted::New(order) => {
                self.metrics.created.inc();
                order
            }
            Inserted::Existing(order) if order.request_hash == request_hash => order,
            Inserted::Existing(_) => return Err(PaymentError::IdempotencyKeyReused),
        };
        self.prepay(order, now).await
    }

    /// The risk rules, from the cache or read again once it is older than its TTL.
    async fn risk_rules(&self) -> Result<Arc<Vec<RiskRule>>, PaymentError> {
        if let Some(rules) = self.risk_rules.fresh() {
            return Ok(rules);
        }
        let rules: Vec<RiskRule> = shop::risk_rules(&self.db)
            .await?
            .into_iter()
            .filter_map(|(name, cond, action, priority)| {
                let rule = RiskRule::from_stored(&name, &cond, &action, priority);
                if rule.is_none() {
                    tracing::warn!(category = "security", rule = %name, "risk rule not understood; skipped");
                }
                rule
            })
            .collect();
        let rules = Arc::new(rules);
        self.risk_rules.store(rules.clone());
        Ok(rules)
    }

    /// Applies the risk rules (data in `risk_rules`); a block is logged and counted.
    async fn check_risk(
        &self,
        req: &CreatePayment,
        ip_known: bool,
        now: DateTime<Utc>,
    ) -> Result<(), PaymentError> {
        let rules = self.risk_rules().await?;
        if rules.is_empty() {
            return Ok(());
        }
        let mut payments = Vec::new();
        for window in velocity_windows(&rules) {
            let since = (now - Duration::seconds(i64::from(window))).naive_utc();
            let recent = shop::payments_since(&self.db, &req.user_id, since).await?;
            payments.push((window, u32::try_from(recent).unwrap_or(u32::MAX)));
        }
        let ctx = RiskContext { payments, ip_known };
        let Some(rule) = evaluate(&rules, &ctx) else {
            return Ok(());
        };
        self.metrics
            .risk_blocks
            .with_label_values(&[rule.name.as_str()])
            .inc();
        tracing::warn!(category = "security", user_id = %req.user_id, rule = %rule.name, action = ?rule.action, "payment refused by risk rule");
        Err(match rule.action {
            RiskAction::Block => PaymentError::RiskBlocked(rule.name.clone()),
            RiskAction::RequireVerification => PaymentError::VerificationRequired,
        })
    }

    /// Gets (or re-gets) the prepay id for an order that has none yet. Repeating it is safe:
    /// WeChat answers the same out_trade_no with the same prepay id.
    async fn prepay(
        &self,
        order: OrderRow,
        now: DateTime<Utc>,
    ) -> Result<CreatedPayment, PaymentError> {
        let status = order.status()?;
        if let Some(prepay_id) = &order.prepay_id {
            return self.answer(&order, status, Some(prepay_id));
        }
        if status != OrderStatus::Created {
            // Paid (the notification won the race) or closed: nothing to pay.
            return self.answer(&order, status, None);
        }
        let expire = chrono::DateTime::<Utc>::from_naive_utc_and_offset(order.expires_at, Utc);
        let prepay = self
            .wechat
            .jsapi_prepay(&PrepayRequest {
                description: order.description.clone(),
                out_trade_no: order.order_no.clone(),
                time_expire: Some(expire.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                attach: None,
                total_fen: order.amount_fen,
                payer_openid: order.payer_openid.clone(),
                notify_path: PAY_NOTIFY_PATH.into(),
            })
            .await
            .map_err(PaymentError::Wechat)?;
        let decision = self.decide(&order.order_no, status, OrderEvent::PrepayCreated)?;
        let moved = self
            .order_writer
            .prepaid(PrepaidWrite {
                order_no: order.order_no.clone(),
                prepay_id: prepay.prepay_id.clone(),
                now: now.naive_utc(),
            })
            .await?;
        let status = if moved {
            decision.next.unwrap_or(status)
        } else {
            // Paid by a notification that beat this answer home, or closed meanwhile.
            let current = self.load(&order.order_no).await?.status()?;
            let late = self.decide(&order.order_no, current, OrderEvent::PrepayCreated)?;
            if late.effects.contains(&Effect::CloseAtWechat) {
                self.close_at_wechat_quietly(&order.order_no).await;
            }
            current
        };
        self.answer(&order, status, Some(&prepay.prepay_id))
    }

    /// Closes an order WeChat still holds open after it was closed here; WeChat closes an
    /// unpaid order at its expiry anyway, so a failure is only logged.
    async fn close_at_wechat_quietly(&self, order_no: &str) {
        if let Err(e) = self.wechat.close(order_no).await {
            tracing::warn!(category = "business", order_no, error = %e, "closing a late prepay at WeChat failed; it expires there");
        }
    }

    async fn load(&self, order_no: &str) -> Result<OrderRow, PaymentError> {
        orders::find(&self.db, order_no)
            .await?
            .ok_or(PaymentError::OrderNotFound)
    }

    fn answer(
        &self,
        order: &OrderRow,
        status: OrderStatus,
        prepay_id: Option<&str>,
    ) -> Result<CreatedPayment, PaymentError> {
        let payable = matches!(status, OrderStatus::Created | OrderStatus::Paying);
        let pay_params = prepay_id
            .filter(|_| payable)
            .map(|p| self.wechat.pay_params(p))
            .transpose()
            .map_err(PaymentError::Wechat)?;
        let row = OrderRow {
            status: status.as_str().into(),
            prepay_id: prepay_id.map(str::to_string),
            ..order.clone()
        };
        Ok(CreatedPayment {
            order_no: order.order_no.clone(),
            amount_fen: order.amount_fen,
            status,
            pay_params,
            created_at: order.created_at,
            expires_at: order.expires_at,
            row: Some(Arc::new(row)),
        })
    }

    /// The state machine's answer; an illegal transition is logged and counted, and the
    /// caller changes nothing.
    fn decide(
        &self,
        order_no: &str,
        from: OrderStatus,
        event: OrderEvent,
    ) -> Result<Decision, PaymentError> {
        decide(from, event).map_err(|e| {
            self.metrics.illegal_transitions.inc();
            tracing::error!(category = "business", order_no, %from, ?event, "illegal order transition refused");
            PaymentError::Illegal(e)
        })
    }

    /// Settles what WeChat reports about a payment (a notification or a query answer).
    /// Amount, merchant and app must match the order; a mismatch changes nothing.
    pub async fn settle(
        &self,
        txn: &Transaction,
        now: DateTime<Utc>,
    ) -> Result<Settled, PaymentError> {
        self.settle_from(txn, None, now).await
    }

    /// [`PaymentCore::settle`] starting from the row the owning shard last wrote, when it
    /// has one, instead of reading it. The fields checked here (amount, user, number) never
    /// change, and the status is only what the compare-and-set is tried on: when another
    /// step or instance has moved the order since, the write changes nothing and the
    /// order is read and decided again, as after any race.
    pub async fn settle_from(
        &self,
        txn: &Transaction,
        known: Option<Arc<OrderRow>>,
        now: DateTime<Utc>,
    ) -> Result<Settled, PaymentError> {
        let mut order = match known {
            Some(row) if row.order_no == txn.out_trade_no => Arc::unwrap_or_clone(row),
            _ => self.load(&txn.out_trade_no).await?,
        };
        let cfg = self.wechat.config();
        if txn.mchid != cfg.mchid || txn.appid != cfg.appid {
            self.metrics.mismatches.inc();
            return Err(PaymentError::Mismatch("mchid/appid"));
        }
        if txn.amount.total != order.amount_fen {
            self.metrics.mismatches.inc();
            return Err(PaymentError::Mismatch("amount"));
        }
        // Orders are priced in fen of CNY: the same number in another currency is not this
        // payment.
        if txn.amount.currency != "CNY" {
            self.metrics.mismatches.inc();
            return Err(PaymentError::Mismatch("currency"));
        }
        match txn.trade_state {
            TradeState::Success => {}
            TradeState::Closed | TradeState::Revoked | TradeState::Payerror => {
                return self.closed_at_wechat(order, now).await;
            }
            TradeState::Notpay | TradeState::Userpaying | TradeState::Refund => {
                return Ok(Settled::Unchanged);
            }
        }
        // A success always carries WeChat's transaction id; it is unique per payment here.
        let Some(txn_id) = txn.transaction_id.clone().filter(|t| !t.is_empty()) else {
            self.metrics.mismatches.inc();
            return Err(PaymentError::Mismatch("transaction_id missing"));
        };
        let paid_at = txn
            .success_time
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(now);
        // Decide on what was read, apply with a compare-and-set; if the order moved between
        // the two (its prepay answer landed), read it and decide again.
        for _ in 0..MAX_RACES {
            let from = order.status()?;
            let decision = match decide(from, OrderEvent::PaymentSucceeded) {
                Ok(d) => d,
                Err(_) => {
                    // Paid at WeChat after we closed it: money arrived for a closed order. It
                    // must be refunded by an operator; alert loudly, change nothing.
                    tracing::error!(category = "business", order_no = %order.order_no, status = %from, "payment for an order that cannot be paid");
                    self.metrics.mismatches.inc();
                    return Err(PaymentError::NotPayable(from));
                }
            };
            if decision.next.is_none() {
                return Ok(Settled::Duplicate);
            }
            let award = award_row(&order, paid_at, now);
            let award_id = award.id.clone();
            let moved = self
                .order_writer
                .mark_paid(PaidWrite {
                    order_no: order.order_no.clone(),
                    from,
                    transaction_id: txn_id.clone(),
                    paid_at: paid_at.naive_utc(),
                    now: now.naive_utc(),
                    award,
                })
                .await?;
            if !moved {
                order = self.load(&order.order_no).await?;
                continue;
            }
            if self.kill_after_paid {
                kill_self(&order.order_no);
            }
            self.metrics.record_paid(&order, now);
            // Waiters are told once the points are booked (`award`): a paid order is
            // still moving until then.
            self.perform(&order, decision.effects, Some(award_id), paid_at);
            return Ok(Settled::Paid);
        }
        Err(PaymentError::Raced)
    }

    /// Performs a paid transition's effects after its commit. The outbox row written with the
    /// transition guarantees the award; this only makes it prompt.
    fn perform(
        &self,
        order: &OrderRow,
        effects: &'static [Effect],
        outbox_id: Option<String>,
        paid_at: DateTime<Utc>,
    ) {
        if !effects.contains(&Effect::AwardPoints) {
            return;
        }
        let notify = effects.contains(&Effect::NotifyShopper);
        let core = self.clone();
        let (user, order_no, amount) = (
            order.user_id.clone(),
            order.order_no.clone(),
            order.amount_fen,
        );
        // The award goes on after the step's answer, in the step's trace.
        actix::spawn(crate::telemetry::Trace::current().run(async move {
            if let Err(e) = core
                .award(&user, &order_no, amount, outbox_id, paid_at, notify)
                .await
            {
                tracing::warn!(category = "business", order_no, error = %e, "award deferred to recovery");
            }
        }));
    }

    /// Awards an order's points (idempotent on the order); deletes the outbox row with it.
    pub async fn award(
        &self,
        user_id: &str,
        order_no: &str,
        amount_fen: i64,
        outbox_id: Option<String>,
        paid_at: DateTime<Utc>,
        notify: bool,
    ) -> Result<(), PaymentError> {
        let amount =
            Fen::parse(amount_fen).map_err(|e| PaymentError::AmountInvalid(e.to_string()))?;
        let result = self
            .points
            .award(
                user_id,
                AwardPoints {
                    order_no: order_no.to_string(),
                    amount,
                    description: "payment".into(),
                    outbox_id,
                },
            )
            .await;
        match result {
            Ok(change) => {
                self.changes.publish(order_no);
                self.metrics.record_award(true, paid_at, change.duplicate);
                if notify && !change.duplicate {
                    self.notify(
                        user_id,
                        ShopperEvent::Paid {
                            order_no: order_no.to_string(),
                            amount_fen,
                            points: change.change,
                            at: paid_at,
                        },
                    );
                }
                Ok(())
            }
            Err(e) => {
                self.metrics.record_award(false, paid_at, false);
                Err(PaymentError::Points(e))
            }
        }
    }

    /// Queues a shopper message; a message can never fail the payment step that caused it.
    pub(super) fn notify(&self, user_id: &str, event: ShopperEvent) {
        if let Some(notifier) = &self.notifier {
            notifier.do_send(Notify {
                user_id: user_id.to_string(),
                event,
            });
        }
    }

    /// Closes an unpaid order (an expiry or the shopper's cancel): at WeChat first when
    /// WeChat holds it, then here. If WeChat says it was paid meanwhile, the payment is
    /// settled instead.
    pub async fn close(
        &self,
        order: &OrderRow,
        now: DateTime<Utc>,
    ) -> Result<Settled, PaymentError> {
        let from = order.status()?;
        let decision = self.decide(&order.order_no, from, OrderEvent::CloseRequested)?;
        if decision.is_noop() {
            return Ok(Settled::Unchanged);
        }
        if decision.effects.contains(&Effect::CloseAtWechat) {
            match self.wechat.close(&order.order_no).await {
                Ok(()) => {}
                Err(e) if e.pay_code().is_some_and(|c| c.as_str() == "ORDERPAID") => {
                    let txn = self
                        .wechat
                        .query_by_out_trade_no(&order.order_no)
                        .await
                        .map_err(PaymentError::Wechat)?;
                    return self.settle(&txn, now).await;
                }
                Err(e) if e.pay_code().is_some_and(|c| c.as_str() == "ORDER_CLOSED") => {}
                Err(e) => return Err(PaymentError::Wechat(e)),
            }
            return self.closed_at_wechat(order.clone(), now).await;
        }
        self.apply_close(order, from, decision, now).await
    }

    /// WeChat closed the order (its close answered, or it reports the order closed).
    async fn closed_at_wechat(
        &self,
        mut order: OrderRow,
        now: DateTime<Utc>,
    ) -> Result<Settled, PaymentError> {
        for _ in 0..MAX_RACES {
            let from = order.status()?;
            let decision = self.decide(&order.order_no, from, OrderEvent::ClosedAtWechat)?;
            match self.apply_close(&order, from, decision, now).await {
                Err(PaymentError::Raced) => order = self.load(&order.order_no).await?,
                other => return other,
            }
        }
        Err(PaymentError::Raced)
    }

    /// Writes a decided close with a compare-and-set on `from`.
    async fn apply_close(
        &self,
        order: &OrderRow,
        from: OrderStatus,
        decision: Decision,
        now: DateTime<Utc>,
    ) -> Result<Settled, PaymentError> {
        let Some(next) = decision.next else {
            return Ok(Settled::Unchanged);
        };
        if !orders::change_status(&self.db, &order.order_no, from, next, now.naive_utc()).await? {
            return Err(PaymentError::Raced);
        }
        self.metrics.completed.with_label_values(&["closed"]).inc();
        self.changes.publish(&order.order_no);
        Ok(Settled::Closed)
    }

    /// Asks WeChat about an order still paying and settles what it says.
    pub async fn reconcile(
        &self,
        order: &OrderRow,
        now: DateTime<Utc>,
    ) -> Result<Settled, PaymentError> {
        let txn = self
            .wechat
            .query_by_out_trade_no(&order.order_no)
            .await
            .map_err(PaymentError::Wechat)?;
        self.settle(&txn, now).await
    }
}

/// What settling found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Paid,
    Duplicate,
    Closed,
    Unchanged,
}

/// How often a step reads and decides again when the order moved under it.
const MAX_RACES: usize = 4;

/// The outbox row that awards a paid order's points; written in the paid transition.
fn award_row(order: &OrderRow, paid_at: DateTime<Utc>, now: DateTime<Utc>) -> OutboxRow {
    outbox::Effect::AwardPoints {
        user_id: order.user_id.clone(),
        order_no: order.order_no.clone(),
        amount_fen: order.amount_fen,
        paid_at,
    }
    .row(
        now.naive_utc(),
        (now + Duration::seconds(OUTBOX_GRACE_SECS)).naive_utc(),
    )
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// Dies the way a crashed or OOM-killed process does: no destructor, no flush, no answer.
fn kill_self(order_no: &str) {
    tracing::error!(
        category = "system",
        order_no,
        "fault injection: SIGKILL after the paid commit"
    );
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_rules_are_reused_within_their_ttl_and_read_again_after() {
        let cache = RiskRuleCache::default();
        assert!(cache.fresh().is_none(), "nothing read yet");
        cache.store(Arc::new(Vec::new()));
        assert!(cache.fresh().is_some(), "just read");
        let old = std::time::Instant::now().checked_sub(RISK_RULES_TTL);
        if let Some(old) = old {
            *cache.inner.lock() = Some((old, Arc::new(Vec::new())));
            assert!(cache.fresh().is_none(), "older than the TTL: read again");
        }
    }
}
