//! Risk rules an admin runs: listed, switched on and off, their thresholds and actions
//! edited, audited. A change takes effect at once on the instance that made it and within
//! the rule cache's lifetime (5 s) on the others.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::audit::{self, Actor, Audit};
use super::error::{AppError, ErrorCode};
use crate::domain::risk::{RiskCondition, RiskRule};
use crate::storage::Db;
use crate::storage::shop::{self, RiskRuleRow};

/// Longest velocity window a rule may count over (31 days).
pub const MAX_WINDOW_SECS: u32 = 31 * 24 * 3600;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RiskRuleView {
    pub id: String,
    pub name: String,
    /// The condition as stored, e.g. `{"type":"payments_in_window","max":20,"window_secs":3600}`
    /// or `{"type":"new_login_ip"}`.
    #[schema(value_type = Object)]
    pub condition: serde_json::Value,
    /// `block` or `require_verification`.
    pub action: String,
    /// The lowest matching number decides.
    pub priority: i32,
    pub enabled: bool,
    pub updated_at: DateTime<Utc>,
}

/// What an admin changes; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskRulePatch {
    #[schema(value_type = Option<Object>)]
    pub condition: Option<serde_json::Value>,
    pub action: Option<String>,
    pub priority: Option<i32>,
    pub enabled: Option<bool>,
}

fn view(r: RiskRuleRow) -> RiskRuleView {
    RiskRuleView {
        condition: serde_json::from_str(&r.condition_json).unwrap_or(serde_json::Value::Null),
        id: r.id,
        name: r.name,
        action: r.action,
        priority: r.priority,
        enabled: r.enabled,
        updated_at: r.updated_at.and_utc(),
    }
}

fn describe(r: &RiskRuleRow) -> String {
    serde_json::json!({
        "condition": serde_json::from_str::<serde_json::Value>(&r.condition_json).ok(),
        "action": r.action,
        "priority": r.priority,
        "enabled": r.enabled,
    })
    .to_string()
}

/// The rule `patch` makes of `current`, if this build understands it and its numbers are
/// sane.
fn patched(current: &RiskRuleRow, patch: &RiskRulePatch) -> Result<RiskRuleRow, AppError> {
    let mut next = current.clone();
    if let Some(c) = &patch.condition {
        next.condition_json = c.to_string();
    }
    if let Some(a) = &patch.action {
        next.action = a.clone();
    }
    if let Some(p) = patch.priority {
        next.priority = p;
    }
    if let Some(e) = patch.enabled {
        next.enabled = e;
    }
    let rule = RiskRule::from_stored(&next.name, &next.condition_json, &next.action, next.priority)
        .ok_or_else(|| {
            AppError::validation(
                "condition or action not understood: conditions are {\"type\":\"payments_in_window\",\"max\":N,\"window_secs\":S}, {\"type\":\"payments_per_minute\",\"max\":N} or {\"type\":\"new_login_ip\"}; actions block or require_verification",
            )
        })?;
    let sane = match rule.condition {
        RiskCondition::PaymentsPerMinute { max } => max >= 1,
        RiskCondition::PaymentsInWindow { max, window_secs } => {
            max >= 1 && (1..=MAX_WINDOW_SECS).contains(&window_secs)
        }
        RiskCondition::NewLoginIp => true,
    };
    if !sane || !(0..=1_000_000).contains(&next.priority) {
        return Err(AppError::validation(format!(
            "max at least 1, window_secs 1..={MAX_WINDOW_SECS}, priority 0..=1000000"
        )));
    }
    Ok(next)
}

#[derive(Clone)]
pub struct RiskRules {
    db: Db,
}

impl RiskRules {
    pub fn new(db: Db) -> RiskRules {
        RiskRules { db }
    }

    pub async fn list(&self) -> Result<Vec<RiskRuleView>, AppError> {
        Ok(shop::all_risk_rules(&self.db)
            .await?
            .into_iter()
            .map(view)
            .collect())
    }

    /// Changes one rule with its audit record; refuses (422) what the engine would not run.
    pub async fn change(
        &self,
        actor: &Actor,
        id: &str,
        patch: &RiskRulePatch,
    ) -> Result<RiskRuleView, AppError> {
        let action = "risk_rule.change";
        let target = ("risk_rule", id);
        let patch = patch.clone();
        let changed = shop::change_risk_rule_audited(
            &self.db,
            id,
            Audit::row(actor, action, target),
            describe,
            move |current| patched(current, &patch),
        )
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such risk rule"))??;
        audit::logged(actor, action, target);
        Ok(view(changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(condition: &str) -> RiskRuleRow {
        let t = chrono::DateTime::from_timestamp(0, 0).unwrap().naive_utc();
        RiskRuleRow {
            id: "r".into(),
            name: "payment_velocity".into(),
            condition_json: condition.into(),
            action: "block".into(),
            priority: 10,
            enabled: true,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn patches_keep_what_they_do_not_name_and_refuse_what_cannot_run() {
        let current = row(r#"{"type":"payments_in_window","max":20,"window_secs":3600}"#);
        let off = patched(
            &current,
            &RiskRulePatch {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(!off.enabled);
        assert_eq!(off.condition_json, current.condition_json);
        let tighter = RiskRulePatch {
            condition: Some(
                serde_json::json!({"type": "payments_in_window", "max": 5, "window_secs": 600}),
            ),
            ..Default::default()
        };
        let t = patched(&current, &tighter).unwrap();
        assert!(t.condition_json.contains("600"));
        for bad in [
            serde_json::json!({"type": "moon_phase"}),
            serde_json::json!({"type": "payments_in_window", "max": 0, "window_secs": 60}),
            serde_json::json!({"type": "payments_in_window", "max": 3, "window_secs": 0}),
            serde_json::json!({"type": "payments_in_window", "max": 3, "window_secs": MAX_WINDOW_SECS + 1}),
            serde_json::json!({"type": "payments_in_window", "max": -1, "window_secs": 60}),
            serde_json::json!("block everyone"),
        ] {
            let p = RiskRulePatch {
                condition: Some(bad.clone()),
                ..Default::default()
            };
            assert!(patched(&current, &p).is_err(), "{bad}");
        }
        let p = RiskRulePatch {
            action: Some("shrug".into()),
            ..Default::default()
        };
        assert!(patched(&current, &p).is_err());
        let p = RiskRulePatch {
            priority: Some(-1),
            ..Default::default()
        };
        assert!(patched(&current, &p).is_err());
    }
}
