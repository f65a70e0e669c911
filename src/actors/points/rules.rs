//! The earning rule in force, in the L1 cache (kind `rules`, a few seconds) so an admin's
//! edit takes effect without a restart and without a query per batch. An edit invalidates
//! it on every instance; start-up warms it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::error::PointsError;
use super::store;
use crate::cache::{Cache, Kind, L1};
use crate::domain::{PointsRule, PointsRuleSpec};
use crate::storage::Db;

/// A rule as shown to admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PointsRuleView {
    pub id: Option<String>,
    #[serde(flatten)]
    pub spec: PointsRuleSpec,
    pub effective_from: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
}

/// The one key of the rules cache.
const CURRENT: &str = "current";

pub struct RuleCache {
    db: Db,
    cached: L1<(Arc<PointsRule>, PointsRuleView)>,
}

impl RuleCache {
    pub fn new(db: Db, cache: &Cache) -> RuleCache {
        RuleCache {
            db,
            cached: cache.l1(Kind::Rules),
        }
    }

    /// After a rule change: this instance and every other one read it again.
    pub async fn invalidate(&self) {
        self.cached.invalidate(CURRENT).await;
    }

    pub async fn current(&self, now: DateTime<Utc>) -> Result<Arc<PointsRule>, PointsError> {
        Ok(self.current_view(now).await?.0)
    }

    pub async fn current_view(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(Arc<PointsRule>, PointsRuleView), PointsError> {
        if let Some(hit) = self.cached.get(CURRENT) {
            return Ok(hit);
        }
        let row = store::current_rule_row(&self.db, now).await?;
        let (rule, view) = match row {
            Some(row) => match PointsRule::try_from(row.spec()) {
                Ok(rule) => {
                    let view = PointsRuleView {
                        id: Some(row.id.clone()),
                        spec: row.spec(),
                        effective_from: Some(store::utc(row.effective_from)),
                        created_by: Some(row.created_by.clone()),
                    };
                    (rule, view)
                }
                Err(e) => {
                    tracing::error!(category = "business", rule = %row.id, error = %e, "stored points rule is invalid; using the default");
                    default_view()
                }
            },
            None => default_view(),
        };
        let rule = Arc::new(rule);
        self.cached.put(CURRENT, (rule.clone(), view.clone()));
        Ok((rule, view))
    }
}

fn default_view() -> (PointsRule, PointsRuleView) {
    let rule = PointsRule::default();
    let view = PointsRuleView {
        id: None,
        spec: rule.spec().clone(),
        effective_from: None,
        created_by: None,
    };
    (rule, view)
}
