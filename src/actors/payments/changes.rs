//! Who is waiting for which order to move. A shopper's app asks for its order once and is
//! answered when the order settles (paid with its points booked, or closed) instead of
//! asking again every 100 ms; the payment steps publish here after each commit that moves
//! an order. Only this instance's commits are seen: a waiter also reads the order again on
//! its own at least every second, so a change made by another instance is never missed for
//! long.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// The registry: one `Notify` per order somebody waits for. Cheap to clone.
#[derive(Clone, Default)]
pub struct OrderChanges {
    waiting: Arc<Mutex<HashMap<String, Watched>>>,
}

struct Watched {
    notify: Arc<Notify>,
    watchers: usize,
}

impl OrderChanges {
    /// Starts watching `order_no` until the returned watch is dropped.
    pub fn watch(&self, order_no: &str) -> OrderWatch {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = waiting
            .entry(order_no.to_string())
            .or_insert_with(|| Watched {
                notify: Arc::new(Notify::new()),
                watchers: 0,
            });
        entry.watchers += 1;
        OrderWatch {
            changes: self.clone(),
            order_no: order_no.to_string(),
            notify: entry.notify.clone(),
        }
    }

    /// Wakes everyone waiting for `order_no` (after a commit that moved it).
    pub fn publish(&self, order_no: &str) {
        let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = waiting.get(order_no) {
            w.notify.notify_waiters();
        }
    }

    /// How many orders are being waited for (for tests and metrics).
    pub fn watched(&self) -> usize {
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// One waiter's registration.
pub struct OrderWatch {
    changes: OrderChanges,
    order_no: String,
    notify: Arc<Notify>,
}

impl OrderWatch {
    /// What a waiter awaits: create it *before* reading the order, so a commit between the
    /// read and the wait still wakes it (a `Notified` counts from its creation).
    pub fn next_change(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

impl Drop for OrderWatch {
    fn drop(&mut self) {
        let mut waiting = self
            .changes
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = waiting.get_mut(&self.order_no) {
            w.watchers = w.watchers.saturating_sub(1);
            if w.watchers == 0 {
                waiting.remove(&self.order_no);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_change_published_after_the_read_wakes_the_waiter() {
        let changes = OrderChanges::default();
        let watch = changes.watch("o1");
        let next = watch.next_change();
        // The commit lands between the waiter's read and its wait.
        changes.publish("o1");
        tokio::time::timeout(Duration::from_secs(5), next)
            .await
            .expect("woken");
    }

    #[tokio::test]
    async fn other_orders_do_not_wake_a_waiter_and_watches_clean_up() {
        let changes = OrderChanges::default();
        let a = changes.watch("o1");
        let b = changes.watch("o1");
        let _c = changes.watch("o2");
        assert_eq!(changes.watched(), 2);
        let next = a.next_change();
        changes.publish("o2");
        changes.publish("nobody-waits");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), next)
                .await
                .is_err()
        );
        drop(a);
        assert_eq!(changes.watched(), 2, "b still watches o1");
        drop(b);
        assert_eq!(changes.watched(), 1);
    }
}
