//! The points engine: per-user actors that decide changes in memory, a shared ledger writer
//! that commits many users' changes per transaction, FIFO lots with expiry, earning rules,
//! and the `PointsService` handle through which everything else uses it.

pub mod actor;
pub mod batch;
pub mod error;
pub mod messages;
pub mod metrics;
pub mod read_model;
pub mod registry;
pub mod rules;
pub mod service;
pub mod store;
pub mod writer;

pub use error::PointsError;
pub use messages::{
    AdjustPoints, AwardPoints, BalanceView, ClawbackPoints, DeductPoints, ExpirePoints,
    ExpireSummary, GetBalance, PointsChange,
};
pub use read_model::{AuditReport, AuditSummary, Balance, HistoryItem, Page, Statistics};
pub use rules::PointsRuleView;
pub use service::{PointsConfig, PointsService, SweepSummary};
