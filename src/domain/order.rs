//! The payment order's state machine. Transitions are a typed enum; anything else is an
//! [`IllegalTransition`], which callers log and count and which changes nothing.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderEvent {
    /// WeChat accepted the prepay request (answered with a prepay id).
    PrepayCreated,
    /// WeChat says the shopper paid (notification or query).
    PaymentSucceeded,
    /// The order expired or the shopper cancelled it: it must be closed (at WeChat first
    /// when WeChat knows it).
    CloseRequested,
    /// WeChat closed the order (its close call answered, or it reports CLOSED, REVOKED or
    /// PAYERROR).
    ClosedAtWechat,
    /// A refund was requested at WeChat.
    RefundRequested,
    /// A refund succeeded; `fully` when the refunded total reaches the paid amount.
    RefundSucceeded { fully: bool },
    /// A refund failed or was closed at WeChat; back to what the refunded total says.
    RefundFailed { any_refunded: bool },
}

impl OrderEvent {
    /// One of each kind (with both values of a flag), for exhaustive tests and docs.
    pub const ALL: [OrderEvent; 9] = [
        OrderEvent::PrepayCreated,
        OrderEvent::PaymentSucceeded,
        OrderEvent::CloseRequested,
        OrderEvent::ClosedAtWechat,
        OrderEvent::RefundRequested,
        OrderEvent::RefundSucceeded { fully: true },
        OrderEvent::RefundSucceeded { fully: false },
        OrderEvent::RefundFailed { any_refunded: true },
        OrderEvent::RefundFailed {
            any_refunded: false,
        },
    ];
}

/// What must happen outside the order row because of a transition, in this order. The
/// payment actors perform them; each is idempotent (the ledger keys awards on the order and
/// clawbacks on the refund, WeChat closes an order once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Close the order at WeChat before closing it here (WeChat may answer that it was paid).
    CloseAtWechat,
    /// Award the order's points (through the outbox row written with the transition).
    AwardPoints,
    /// Claw back the refunded share of the order's points (through the outbox row).
    ClawBackPoints,
    /// Tell the shopper (a subscribe message) what the points effect did.
    NotifyShopper,
}

/// The state machine's answer to an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The status to move to; `None` when the order stays where it is (a repeated event, or
    /// one whose effect must happen first).
    pub next: Option<OrderStatus>,
    pub effects: &'static [Effect],
}

impl Decision {
    const fn to(next: OrderStatus, effects: &'static [Effect]) -> Decision {
        Decision {
            next: Some(next),
            effects,
        }
    }

    const fn stay(effects: &'static [Effect]) -> Decision {
        Decision {
            next: None,
            effects,
        }
    }

    /// A repeat of something already applied: nothing to write, nothing to do.
    pub fn is_noop(&self) -> bool {
        self.next.is_none() && self.effects.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal order transition: {from} on {event:?}")]
pub struct IllegalTransition {
    pub from: OrderStatus,
    pub event: OrderEvent,
}

/// Every order transition, in one place. Storage applies the answer with a compare-and-set
/// on `from`; an illegal pair changes nothing and is logged and counted by the caller.
pub fn decide(from: OrderStatus, event: OrderEvent) -> Result<Decision, IllegalTransition> {
    use Effect as F;
    use OrderEvent as E;
    use OrderStatus as S;
    const PAID_EFFECTS: &[Effect] = &[F::AwardPoints, F::NotifyShopper];
    const REFUND_EFFECTS: &[Effect] = &[F::ClawBackPoints, F::NotifyShopper];
    let paid_or_after = matches!(
        from,
        S::Paid | S::Refunding | S::PartiallyRefunded | S::Refunded
    );
    let decision = match (from, event) {
        (S::Created, E::PrepayCreated) => Decision::to(S::Paying, &[]),
        // A repeated prepay answer, or one that comes home after the notification.
        (S::Paying, E::PrepayCreated) => Decision::stay(&[]),
        (_, E::PrepayCreated) if paid_or_after => Decision::stay(&[]),
        // Closed here while WeChat was still creating it: close it there too.
        (S::Closed, E::PrepayCreated) => Decision::stay(&[F::CloseAtWechat]),

        // A notification can beat the prepay answer home: created -> paid is legal.
        (S::Created | S::Paying, E::PaymentSucceeded) => Decision::to(S::Paid, PAID_EFFECTS),
        (_, E::PaymentSucceeded) if paid_or_after => Decision::stay(&[]),
        // Money for an order closed here: an operator must refund it. Nothing changes.
        (S::Closed, E::PaymentSucceeded) => return Err(IllegalTransition { from, event }),

        // No prepay id: WeChat has no order to close.
        (S::Created, E::CloseRequested) => Decision::to(S::Closed, &[]),
        (S::Paying, E::CloseRequested) => Decision::stay(&[F::CloseAtWechat]),
        (S::Closed, E::CloseRequested) => Decision::stay(&[]),
        // Paid before the close came round: nothing to close (the caller says so).
        (_, E::CloseRequested) if paid_or_after => Decision::stay(&[]),

        (S::Created | S::Paying, E::ClosedAtWechat) => Decision::to(S::Closed, &[]),
        (S::Closed, E::ClosedAtWechat) => Decision::stay(&[]),

        (S::Paid | S::PartiallyRefunded, E::RefundRequested) => Decision::to(S::Refunding, &[]),
        (S::Refunding | S::Paid | S::PartiallyRefunded, E::RefundSucceeded { fully }) => {
            let next = if fully {
                S::Refunded
            } else {
                S::PartiallyRefunded
            };
            Decision::to(next, REFUND_EFFECTS)
        }
        (S::Refunding, E::RefundFailed { any_refunded }) => {
            let next = if any_refunded {
                S::PartiallyRefunded
            } else {
                S::Paid
            };
            Decision::to(next, &[])
        }
        (from, event) => return Err(IllegalTransition { from, event }),
    };
    Ok(decision)
}

/// A refund's status at WeChat, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Processing,
    Success,
    Closed,
    Abnormal,
}

impl RefundStatus {
    pub const ALL: [RefundStatus; 4] = [
        RefundStatus::Processing,
        RefundStatus::Success,
        RefundStatus::Closed,
        RefundStatus::Abnormal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Processing => "processing",
            RefundStatus::Success => "success",
            RefundStatus::Closed => "closed",
            RefundStatus::Abnormal => "abnormal",
        }
    }

    pub fn parse(s: &str) -> Option<RefundStatus> {
        RefundStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refund's next status when WeChat reports `reported`: only a processing refund moves;
/// a final one stays (a duplicate or late report), and reporting "processing" changes nothing.
pub fn decide_refund(from: RefundStatus, reported: RefundStatus) -> Option<RefundStatus> {
    match (from, reported) {
        (RefundStatus::Processing, RefundStatus::Processing) => None,
        (RefundStatus::Processing, to) => Some(to),
        _ => None,
    }
}

/// The order event a refund's final status is, given the order's figures after it.
pub fn refund_event(outcome: RefundStatus, refunded_after: i64, amount: i64) -> OrderEvent {
    match outcome {
        RefundStatus::Success => OrderEvent::RefundSucceeded {
            fully: refunded_after >= amount,
        },
        _ => OrderEvent::RefundFailed {
            any_refunded: refunded_after > 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Effect as F;
    use OrderEvent as E;
    use OrderStatus as S;

    fn next(from: S, event: E) -> S {
        let d = decide(from, event).unwrap();
        d.next.unwrap_or(from)
    }

    #[test]
    fn the_happy_path() {
        let s = next(S::Created, E::PrepayCreated);
        assert_eq!(s, S::Paying);
        let d = decide(s, E::PaymentSucceeded).unwrap();
        assert_eq!(d.next, Some(S::Paid));
        assert_eq!(d.effects, &[F::AwardPoints, F::NotifyShopper]);
        let s = next(S::Paid, E::RefundRequested);
        assert_eq!(s, S::Refunding);
        let d = decide(s, E::RefundSucceeded { fully: false }).unwrap();
        assert_eq!(d.next, Some(S::PartiallyRefunded));
        assert_eq!(d.effects, &[F::ClawBackPoints, F::NotifyShopper]);
        let s = next(S::PartiallyRefunded, E::RefundRequested);
        assert_eq!(next(s, E::RefundSucceeded { fully: true }), S::Refunded);
    }

    /// Every (state, event) pair, legal and illegal, against the table the design gives.
    #[test]
    fn every_pair_of_state_and_event() {
        use std::collections::HashMap;
        type Want = Result<(Option<S>, &'static [Effect]), ()>;
        let paid: &[Effect] = &[F::AwardPoints, F::NotifyShopper];
        let refund: &[Effect] = &[F::ClawBackPoints, F::NotifyShopper];
        let close: &[Effect] = &[F::CloseAtWechat];
        let mut want: HashMap<(S, E), Want> = HashMap::new();
        for s in S::ALL {
            for e in E::ALL {
                want.insert((s, e), Err(()));
            }
        }
        let mut set = |s: S, e: E, w: Want| {
            want.insert((s, e), w);
        };
        set(S::Created, E::PrepayCreated, Ok((Some(S::Paying), &[])));
        set(S::Created, E::PaymentSucceeded, Ok((Some(S::Paid), paid)));
        set(S::Created, E::CloseRequested, Ok((Some(S::Closed), &[])));
        set(S::Created, E::ClosedAtWechat, Ok((Some(S::Closed), &[])));
        set(S::Paying, E::PrepayCreated, Ok((None, &[])));
        set(S::Paying, E::PaymentSucceeded, Ok((Some(S::Paid), paid)));
        set(S::Paying, E::CloseRequested, Ok((None, close)));
        set(S::Paying, E::ClosedAtWechat, Ok((Some(S::Closed), &[])));
        for s in [S::Paid, S::Refunding, S::PartiallyRefunded, S::Refunded] {
            set(s, E::PrepayCreated, Ok((None, &[])));
            set(s, E::PaymentSucceeded, Ok((None, &[])));
            set(s, E::CloseRequested, Ok((None, &[])));
        }
        for s in [S::Paid, S::PartiallyRefunded] {
            set(s, E::RefundRequested, Ok((Some(S::Refunding), &[])));
        }
        for s in [S::Paid, S::Refunding, S::PartiallyRefunded] {
            set(
                s,
                E::RefundSucceeded { fully: true },
                Ok((Some(S::Refunded), refund)),
            );
            set(
                s,
                E::RefundSucceeded { fully: false },
                Ok((Some(S::PartiallyRefunded), refund)),
            );
        }
        set(
            S::Refunding,
            E::RefundFailed { any_refunded: true },
            Ok((Some(S::PartiallyRefunded), &[])),
        );
        set(
            S::Refunding,
            E::RefundFailed {
                any_refunded: false,
            },
            Ok((Some(S::Paid), &[])),
        );
        set(S::Closed, E::PrepayCreated, Ok((None, close)));
        set(S::Closed, E::CloseRequested, Ok((None, &[])));
        set(S::Closed, E::ClosedAtWechat, Ok((None, &[])));
        assert_eq!(want.len(), S::ALL.len() * E::ALL.len());
        for ((s, e), w) in want {
            let got = decide(s, e)
                .map(|d| (d.next, d.effects))
                .map_err(|err| assert_eq!(err, IllegalTransition { from: s, event: e }));
            assert_eq!(got, w, "{s} on {e:?}");
        }
    }

    #[test]
    fn money_for_a_closed_order_is_refused() {
        assert_eq!(
            decide(S::Closed, E::PaymentSucceeded),
            Err(IllegalTransition {
                from: S::Closed,
                event: E::PaymentSucceeded
            })
        );
    }

    #[test]
    fn a_refund_moves_once_and_only_from_processing() {
        use RefundStatus as R;
        for from in R::ALL {
            for reported in R::ALL {
                let got = decide_refund(from, reported);
                let want = (from == R::Processing && reported != R::Processing).then_some(reported);
                assert_eq!(got, want, "{from} reported {reported}");
            }
        }
    }

    #[test]
    fn refund_outcomes_become_order_events() {
        use RefundStatus as R;
        assert_eq!(
            refund_event(R::Success, 100, 100),
            E::RefundSucceeded { fully: true }
        );
        assert_eq!(
            refund_event(R::Success, 40, 100),
            E::RefundSucceeded { fully: false }
        );
        assert_eq!(
            refund_event(R::Closed, 0, 100),
            E::RefundFailed {
                any_refunded: false
            }
        );
        assert_eq!(
            refund_event(R::Abnormal, 40, 100),
            E::RefundFailed { any_refunded: true }
        );
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
        }
        for r in RefundStatus::ALL {
            assert_eq!(RefundStatus::parse(r.as_str()), Some(r));
        }
        assert_eq!(S::parse("PAID"), None);
        assert_eq!(RefundStatus::parse("SUCCESS"), None);
    }
}
