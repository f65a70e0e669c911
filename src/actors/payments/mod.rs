//! Payments: the supervisor actor that owns every non-final order's state machine, the
//! idempotent steps it drives, and the outbox recovery that makes "paid" always end in
//! "points awarded".

pub mod changes;
pub mod inbox;
pub mod metrics;
pub mod order_writer;
pub mod reconcile;
pub mod refunds;
pub mod service;
pub mod supervisor;

use crate::actors::points::PointsError;
use crate::domain::order::{IllegalTransition, OrderStatus};
use crate::storage::StorageError;
use crate::wechat::WechatError;

pub use changes::{OrderChanges, OrderWatch};
pub use inbox::{NotifyAnswer, NotifyKind, Replayed};
pub use refunds::{RefundView, RequestRefund};
pub use service::{CreatePayment, CreatedPayment, PaymentCore, Settled};
pub use supervisor::{PaymentShard, Payments, Supervision};

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("invalid amount: {0}")]
    AmountInvalid(String),
    #[error("payment code not found")]
    CodeNotFound,
    #[error("payment code disabled")]
    CodeDisabled,
    #[error("merchant not active")]
    MerchantNotActive,
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    #[error("order not found")]
    OrderNotFound,
    #[error("not allowed")]
    Forbidden,
    #[error("order cannot be paid in status {0}")]
    NotPayable(OrderStatus),
    #[error("notification does not match the order: {0}")]
    Mismatch(&'static str),
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error("wechat: {0}")]
    Wechat(WechatError),
    #[error("points: {0}")]
    Points(PointsError),
    #[error(transparent)]
    Database(#[from] StorageError),
    #[error("refused by risk rule {0}")]
    RiskBlocked(String),
    #[error("the risk rules ask for a fresh sign-in")]
    VerificationRequired,
    #[error("the order cannot be refunded in status {0}")]
    NotRefundable(OrderStatus),
    #[error("refund exceeds what is left to refund ({refundable} fen)")]
    RefundExceedsPaid { refundable: i64 },
    #[error("the order's award has not been made yet")]
    AwardPending,
    /// The order kept moving under the step (read, decide, compare-and-set failed each
    /// time): nothing changed; the caller retries.
    #[error("the order changed while being settled; retry")]
    Raced,
    /// The payment actors did not take the message (stopping, or the mailbox is gone).
    #[error("payments are unavailable: {0}")]
    Unavailable(String),
}
