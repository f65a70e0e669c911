//! The payment order's state machine. Transitions are a typed enum; anything else is an
//! [`IllegalTransition`], which callers log and count and which changes nothing.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Created,
    Paying,
    Paid,
    Refunding,
    PartiallyRefunded,
    Refunded,
    Closed,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::Created,
        OrderStatus::Paying,
        OrderStatus::Paid,
        OrderStatus::Refunding,
        OrderStatus::PartiallyRefunded,
        OrderStatus::Refunded,
        OrderStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "created",
            OrderStatus::Paying => "paying",
            OrderStatus::Paid => "paid",
            OrderStatus::Refunding => "refunding",
            OrderStatus::PartiallyRefunded => "partially_refunded",
            OrderStatus::Refunded => "refunded",
            OrderStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The payment supervisor watches these: something will happen without a new request
    /// (a notification, an expiry, a refund result).
    pub fn needs_supervision(self) -> bool {
        matches!(
            self,
            OrderStatus::Created | OrderStatus::Paying | OrderStatus::Refunding
        )
    }

    /// The shopper's money has arrived (whatever happened after).
    pub fn was_paid(self) -> bool {
        matches!(
            self,
            OrderStatus::Paid
                | OrderStatus::Refunding
                | OrderStatus::PartiallyRefunded
                | OrderStatus::Refunded
        )
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What can happen to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderEvent {
    /// WeChat accepted the prepay request.
    PrepayCreated,
    /// WeChat says the shopper paid (notification or query).
    PaymentSucceeded,
    /// Expired, cancelled by the shopper, or closed at WeChat.
    Closed,
    /// A refund was requested at WeChat.
    RefundRequested,
    /// A refund succeeded; `fully` when the refunded total reaches the paid amount.
    RefundSucceeded { fully: bool },
    /// A refund failed or was closed at WeChat; back to what the refunded total says.
    RefundFailed { any_refunded: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal order transition: {from} on {event:?}")]
pub struct IllegalTransition {
    pub from: OrderStatus,
    pub event: OrderEvent,
}

/// The next status, or an error for a transition the machine does not allow.
pub fn transition(from: OrderStatus, event: OrderEvent) -> Result<OrderStatus, IllegalTransition> {
    use OrderEvent as E;
    use OrderStatus as S;
    let next = match (from, event) {
        (S::Created, E::PrepayCreated) => S::Paying,
        // A notification can beat the prepay answer home: created -> paid is legal.
        (S::Created | S::Paying, E::PaymentSucceeded) => S::Paid,
        (S::Created | S::Paying, E::Closed) => S::Closed,
        (S::Paid | S::PartiallyRefunded | S::Refunding, E::RefundRequested) => S::Refunding,
        (S::Refunding | S::Paid | S::PartiallyRefunded, E::RefundSucceeded { fully: true }) => {
            S::Refunded
        }
        (S::Refunding | S::Paid | S::PartiallyRefunded, E::RefundSucceeded { fully: false }) => {
            S::PartiallyRefunded
        }
        (S::Refunding, E::RefundFailed { any_refunded: true }) => S::PartiallyRefunded,
        (
            S::Refunding,
            E::RefundFailed {
                any_refunded: false,
            },
        ) => S::Paid,
        (from, event) => return Err(IllegalTransition { from, event }),
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderEvent as E;
    use OrderStatus as S;

    #[test]
    fn the_happy_path() {
        let s = transition(S::Created, E::PrepayCreated).unwrap();
        let s = transition(s, E::PaymentSucceeded).unwrap();
        assert_eq!(s, S::Paid);
        let s = transition(s, E::RefundRequested).unwrap();
        let s = transition(s, E::RefundSucceeded { fully: false }).unwrap();
        assert_eq!(s, S::PartiallyRefunded);
        let s = transition(s, E::RefundRequested).unwrap();
        assert_eq!(
            transition(s, E::RefundSucceeded { fully: true }).unwrap(),
            S::Refunded
        );
    }

    #[test]
    fn paid_and_closed_orders_cannot_change_their_payment() {
        for from in [S::Paid, S::Refunded, S::PartiallyRefunded, S::Closed] {
            assert!(transition(from, E::Closed).is_err(), "{from} closed");
            assert!(transition(from, E::PrepayCreated).is_err(), "{from} prepay");
        }
        assert!(transition(S::Closed, E::PaymentSucceeded).is_err());
        assert!(transition(S::Refunded, E::RefundRequested).is_err());
        assert!(transition(S::Created, E::RefundRequested).is_err());
    }

    #[test]
    fn a_failed_refund_returns_to_what_was_refunded() {
        assert_eq!(
            transition(
                S::Refunding,
                E::RefundFailed {
                    any_refunded: false
                }
            )
            .unwrap(),
            S::Paid
        );
        assert_eq!(
            transition(S::Refunding, E::RefundFailed { any_refunded: true }).unwrap(),
            S::PartiallyRefunded
        );
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
        }
        assert_eq!(S::parse("PAID"), None);
    }
}
