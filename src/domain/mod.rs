//! Plain types and rules: no HTTP, no SQL, no actors. Each module is pure and unit-tested on
//! its own; the actors and the storage layer only wrap it.

pub mod clock;
pub mod ledger;
pub mod money;
pub mod order;
pub mod risk;
pub mod rule;
pub mod staff;
pub mod text;
pub mod time;

pub use clock::{Clock, ManualClock, SystemClock};
pub use ledger::{Applied, LedgerError, Lot, NewRecord, PointsKind, Totals, UserPoints};
pub use money::{DomainError, Fen, Points};
pub use rule::{Award, PointsRule, PointsRuleSpec};
pub use time::{cst, cst_day, cst_day_start, cst_month};
