//! Refunds: request (merchant or admin), settle what WeChat reports, and claw back the
//! refunded share of the order's points (never below zero; the shortfall is recorded).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::PaymentError;
use super::service::{PaymentCore, REFUND_NOTIFY_PATH, Settled};
use crate::actors::points::ClawbackPoints;
use crate::domain::Points;
use crate::domain::order::RefundStatus as Stored;
use crate::storage::orders;
use crate::storage::refunds::{self, Begin, Finish, RefundRow};
use crate::storage::{outbox, shop};
use crate::wechat::types::RefundStatus;
use crate::wechat::{RefundRequest, RefundTarget};

/// Who asks for a refund, and within which merchant (a merchant sees only its own orders).
#[derive(Debug, Clone)]
pub struct RequestRefund {
    pub order_no: String,
    pub amount_fen: i64,
    pub reason: String,
    /// `user:{id}` (the merchant's owner or manager who asked) or `admin:{id}`, stored with
    /// the refund and in the audit log.
    pub requested_by: String,
    /// Set for a merchant's request: the order must belong to it.
    pub merchant_id: Option<String>,
    /// An optional client key: the same key for the same order is the same refund.
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RefundView {
    pub out_refund_no: String,
    pub order_no: String,
    pub amount_fen: i64,
    pub status: String,
    pub points_clawed_back: i64,
}

impl From<RefundRow> for RefundView {
    fn from(r: RefundRow) -> Self {
        RefundView {
            out_refund_no: r.out_refund_no,
            order_no: r.order_no,
            amount_fen: r.amount_fen,
            status: r.status,
            points_clawed_back: r.points_clawed_back,
        }
    }
}

fn out_refund_no(order_no: &str, key: Option<&str>) -> String {
    match key {
        Some(k) => {
            let digest = hex::encode(Sha256::digest(format!("{order_no}\n{k}").as_bytes()));
            format!("R{}", &digest[..31])
        }
        None => format!("R{}", &uuid::Uuid::now_v7().simple().to_string()[..31]),
    }
}

impl PaymentCore {
    pub async fn request_refund(
        &self,
        req: RequestRefund,
        now: DateTime<Utc>,
    ) -> Result<RefundView, PaymentError> {
        if req.amount_fen <= 0 {
            return Err(PaymentError::AmountInvalid(
                "amount_fen must be positive".into(),
            ));
        }
        let reason: String = req.reason.trim().chars().take(80).collect();
        if reason.is_empty() {
            return Err(PaymentError::AmountInvalid("a reason is required".into()));
        }
        let order = orders::find(&self.db, &req.order_no)
            .await?
            .filter(|o| req.merchant_id.as_ref().is_none_or(|m| *m == o.merchant_id))
            .ok_or(PaymentError::OrderNotFound)?;
        let naive = now.naive_utc();
        let row = RefundRow {
            id: uuid::Uuid::now_v7().to_string(),
            out_refund_no: out_refund_no(&order.order_no, req.idempotency_key.as_deref()),
            order_no: order.order_no.clone(),
            user_id: order.user_id.clone(),
            merchant_id: order.merchant_id.clone(),
            amount_fen: req.amount_fen,
            reason: reason.clone(),
            status: refunds::PROCESSING.into(),
            wechat_refund_id: None,
            requested_by: req.requested_by.chars().take(64).collect(),
            points_clawed_back: 0,
            points_shortfall: 0,
            success_at: None,
            created_at: naive,
            updated_at: naive,
        };
        let mut begun = refunds::begin(&self.db, &row).await?;
        for _ in 0..3 {
            if begun != Begin::Raced {
                break;
            }
            begun = refunds::begin(&self.db, &row).await?;
        }
        match begun {
            Begin::Started => {}
            Begin::Raced => return Err(PaymentError::Raced),
            Begin::Exists => {
                let existing = refunds::find(&self.db, &row.out_refund_no)
                    .await?
                    .ok_or(PaymentError::OrderNotFound)?;
                return Ok(existing.into());
            }
            Begin::NotRefundable(status) => return Err(PaymentError::NotRefundable(status)),
            Begin::Exceeds { refundable } => {
                return Err(PaymentError::RefundExceedsPaid { refundable });
            }
            Begin::NotFound => return Err(PaymentError::OrderNotFound),
        }
        let target = match &order.wechat_transaction_id {
            Some(t) if !t.is_empty() => RefundTarget::TransactionId(t.clone()),
            _ => RefundTarget::OutTradeNo(order.order_no.clone()),
        };
        let answer = self
            .wechat
            .refund(&RefundRequest {
                target,
                out_refund_no: row.out_refund_no.clone(),
                reason: Some(reason),
                refund_fen: row.amount_fen,
                total_fen: order.amount_fen,
                notify_path: Some(REFUND_NOTIFY_PATH.into()),
            })
            .await;
        match answer {
            Ok(refund) => {
                self.settle_refund(
                    &row.out_refund_no,
                    refund.status,
                    Some(&refund.refund_id),
                    now,
                )
                .await?;
            }
            Err(e) if e.is_transient() => {
                // Unknown outcome: the refund stays processing and the supervisor asks WeChat.
                tracing::warn!(category = "business", out_refund_no = %row.out_refund_no, error = %e, "refund outcome unknown; will query");
            }
            Err(e) => {
                // WeChat refused it outright: book it closed so the order is refundable again.
                self.settle_refund(&row.out_refund_no, RefundStatus::Closed, None, now)
                    .await?;
                return Err(PaymentError::Wechat(e));
            }
        }
        let current = refunds::find(&self.db, &row.out_refund_no)
            .await?
            .ok_or(PaymentError::OrderNotFound)?;
        Ok(current.into())
    }

    /// Books what WeChat reports about a refund, once. A success writes the clawback's
    /// outbox row in the same transaction and then performs it.
    pub async fn settle_refund(
        &self,
        out_refund_no: &str,
        status: RefundStatus,
        refund_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Settled, PaymentError> {
        let reported = match status {
            RefundStatus::Processing => return Ok(Settled::Unchanged),
            RefundStatus::Success => Stored::Success,
            RefundStatus::Closed => Stored::Closed,
            RefundStatus::Abnormal => Stored::Abnormal,
        };
        let clawback = outbox::Effect::ClawBackPoints {
            out_refund_no: out_refund_no.to_string(),
        }
        .row(
            now.naive_utc(),
            (now + Duration::seconds(super::service::OUTBOX_GRACE_SECS)).naive_utc(),
        );
        match refunds::finish(
            &self.db,
            out_refund_no,
            reported,
            refund_id,
            now.naive_utc(),
            &clawback,
        )
        .await?
        {
            Finish::Booked(Stored::Success) => {
                self.metrics.refunds.with_label_values(&["success"]).inc();
                if let Err(e) = self.clawback(out_refund_no, Some(&clawback.id)).await {
                    tracing::warn!(category = "business", out_refund_no, error = %e, "clawback deferred to recovery");
                }
                Ok(Settled::Paid)
            }
            Finish::Booked(other) => {
                let result = if other == Stored::Abnormal {
                    "abnormal"
                } else {
                    "closed"
                };
                self.metrics.refunds.with_label_values(&[result]).inc();
                Ok(Settled::Closed)
            }
            Finish::AlreadyFinal => Ok(Settled::Duplicate),
            Finish::NotFound => Err(PaymentError::OrderNotFound),
            Finish::Illegal(e) => {
                self.metrics.illegal_transitions.inc();
                tracing::error!(category = "business", out_refund_no, error = %e, "refund outcome the order cannot take; refused");
                Err(PaymentError::Illegal(e))
            }
        }
    }

    /// Claws back the refunded share of the order's points. The share is cumulative, so
    /// partial refunds add up to exactly the award when the order is fully refunded.
    /// Idempotent on the refund number. Waits (an error, retried) while the award is pending.
    pub async fn clawback(
        &self,
        out_refund_no: &str,
        outbox_id: Option<&str>,
    ) -> Result<(), PaymentError> {
        let refund = refunds::find(&self.db, out_refund_no)
            .await?
            .ok_or(PaymentError::OrderNotFound)?;
        if refunds::award_pending(&self.db, &refund.order_no).await? {
            return Err(PaymentError::AwardPending);
        }
        let order = orders::find(&self.db, &refund.order_no)
            .await?
            .ok_or(PaymentError::OrderNotFound)?;
        let awarded = shop::points_for_orders(&self.db, std::slice::from_ref(&order.order_no))
            .await?
            .get(&order.order_no)
            .copied()
            .unwrap_or(0);
        let done = refunds::succeeded_for_order(&self.db, &order.order_no).await?;
        let before: i64 = done
            .iter()
            .take_while(|r| r.out_refund_no != refund.out_refund_no)
            .map(|r| r.amount_fen)
            .sum();
        let share = |refunded: i64| -> i64 {
            if refunded >= order.amount_fen || order.amount_fen == 0 {
                awarded
            } else {
                i64::try_from(
                    i128::from(awarded) * i128::from(refunded) / i128::from(order.amount_fen),
                )
                .unwrap_or(awarded)
            }
        };
        let points = share(before + refund.amount_fen) - share(before);
        let points =
            Points::parse(points.max(0)).map_err(|e| PaymentError::AmountInvalid(e.to_string()))?;
        let change = self
            .points
            .clawback(
                &refund.user_id,
                ClawbackPoints {
                    refund_no: refund.out_refund_no.clone(),
                    points,
                    description: format!("refund of order {}", order.order_no),
                    // The outbox row goes with the refund row's figures, below.
                    outbox_id: None,
                },
            )
            .await
            .map_err(PaymentError::Points)?;
        // A failure from here on leaves the outbox row: recovery repeats the clawback (the
        // ledger answers the first result) and books the figures then.
        refunds::record_clawback(
            &self.db,
            out_refund_no,
            -change.change,
            change.shortfall,
            outbox_id,
        )
        .await?;
        if !change.duplicate {
            self.notify(
                &refund.user_id,
                crate::actors::notifier::ShopperEvent::Refunded {
                    out_refund_no: refund.out_refund_no.clone(),
                    order_no: order.order_no.clone(),
                    amount_fen: refund.amount_fen,
                    points: -change.change,
                    at: chrono::Utc::now(),
                },
            );
        }
        Ok(())
    }
}
