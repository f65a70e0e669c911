//! Use cases: what the API does, between HTTP (which parses, authorises and maps answers) and
//! storage (which reads and writes rows). Business rules live here, once: refresh-token
//! rotation, the per-user merchant cap, merchant review with its audit record, lazy phone
//! re-encryption, and the read side of orders.
//!
//! Each capability is a facade: a plain struct holding what it needs, cheap to clone. They
//! are collected in [`App`], which handlers reach through `AppState`. The command line's
//! maintenance (`points-app admin …`, `points-app rotate-field-keys`) is here too, as plain
//! functions on the database: `admin_accounts` and `keys`.

pub mod admin_accounts;
pub mod audit;
pub mod error;
pub mod identity;
pub mod keys;
pub mod merchants;
pub mod ops;
pub mod page;
pub mod points;
pub mod reconciliation;
pub mod reports;
pub mod risk;
pub mod settlements;
pub mod staff;
pub mod users;

use std::sync::Arc;

pub use error::{AppError, ErrorCode};
pub use page::{PageRequest, Paged};

use crate::cache::Cache;
use crate::security::SecurityState;
use crate::storage::Db;

/// Every facade, built once at start-up.
#[derive(Clone)]
pub struct App {
    db: Db,
    pub identity: identity::Identity,
    pub users: users::Users,
    pub merchants: merchants::Merchants,
    pub audit: audit::Audit,
    pub reports: reports::Reports,
    pub points: points::PointsDirectory,
    pub ops: ops::Ops,
    pub risk: risk::RiskRules,
    pub settlements: settlements::Settlements,
    pub staff: staff::Staff,
    pub reconciliation: reconciliation::Reconciliation,
}

impl App {
    /// `fee_rate_bp`: WeChat Pay's fee rate for settlements (`APP_WECHAT_FEE_RATE_BP`).
    pub fn new(db: Db, security: Arc<SecurityState>, cache: Cache, fee_rate_bp: u32) -> App {
        let users = users::Users::new(db.clone(), security.clone());
        App {
            identity: identity::Identity::new(db.clone(), security.clone(), users.clone()),
            merchants: merchants::Merchants::new(db.clone(), security, &cache),
            reports: reports::Reports::new(db.clone(), cache),
            points: points::PointsDirectory::new(db.clone()),
            ops: ops::Ops::new(db.clone()),
            risk: risk::RiskRules::new(db.clone()),
            settlements: settlements::Settlements::new(db.clone(), fee_rate_bp),
            staff: staff::Staff::new(db.clone()),
            reconciliation: reconciliation::Reconciliation::new(db.clone()),
            users,
            audit: audit::Audit::new(db.clone()),
            db,
        }
    }

    /// The database, for start-up, tests, and the payment handlers that still reach it.
    pub fn db(&self) -> &Db {
        &self.db
    }
}
