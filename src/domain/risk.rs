//! Risk rules as data: a condition, an action and a priority, stored in `risk_rules` and
//! evaluated here without I/O. The lowest priority number that matches wins.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RiskCondition {
    /// More than `max` payments created by one user within the last minute.
    PaymentsPerMinute { max: u32 },
    /// The request comes from an IP this user has never logged in from.
    NewLoginIp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskAction {
    Block,
    RequireVerification,
}

impl RiskAction {
    pub fn parse(s: &str) -> Option<RiskAction> {
        match s {
            "block" => Some(RiskAction::Block),
            "require_verification" => Some(RiskAction::RequireVerification),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RiskRule {
    pub name: String,
    pub condition: RiskCondition,
    pub action: RiskAction,
    pub priority: i32,
}

impl RiskRule {
    /// Builds a rule from its stored form; `None` for a condition or action this build does
    /// not know (it is skipped and logged by the caller, never guessed at).
    pub fn from_stored(
        name: &str,
        condition_json: &str,
        action: &str,
        priority: i32,
    ) -> Option<Self> {
        Some(RiskRule {
            name: name.to_string(),
            condition: serde_json::from_str(condition_json).ok()?,
            action: RiskAction::parse(action)?,
            priority,
        })
    }
}

/// What the rules look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskContext {
    /// Payments this user created in the last 60 seconds, not counting this one.
    pub payments_last_minute: u32,
    /// Whether the request's IP is one the user has logged in from before.
    pub ip_known: bool,
}

impl RiskCondition {
    pub fn matches(&self, ctx: &RiskContext) -> bool {
        match self {
            RiskCondition::PaymentsPerMinute { max } => ctx.payments_last_minute >= *max,
            RiskCondition::NewLoginIp => !ctx.ip_known,
        }
    }
}

/// The rule that decides, if any: the matching rule with the lowest priority number.
pub fn evaluate<'a>(rules: &'a [RiskRule], ctx: &RiskContext) -> Option<&'a RiskRule> {
    rules
        .iter()
        .filter(|r| r.condition.matches(ctx))
        .min_by_key(|r| r.priority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Vec<RiskRule> {
        vec![
            RiskRule::from_stored(
                "payment_velocity",
                r#"{"type":"payments_per_minute","max":10}"#,
                "block",
                10,
            )
            .unwrap(),
            RiskRule::from_stored(
                "unknown_login_ip",
                r#"{"type":"new_login_ip"}"#,
                "require_verification",
                20,
            )
            .unwrap(),
        ]
    }

    #[test]
    fn the_eleventh_payment_in_a_minute_is_blocked() {
        let rules = defaults();
        let ten_before = RiskContext {
            payments_last_minute: 10,
            ip_known: true,
        };
        assert_eq!(
            evaluate(&rules, &ten_before).unwrap().action,
            RiskAction::Block
        );
        let nine_before = RiskContext {
            payments_last_minute: 9,
            ip_known: true,
        };
        assert!(evaluate(&rules, &nine_before).is_none());
    }

    #[test]
    fn priority_decides_between_matching_rules() {
        let rules = defaults();
        let both = RiskContext {
            payments_last_minute: 50,
            ip_known: false,
        };
        assert_eq!(evaluate(&rules, &both).unwrap().name, "payment_velocity");
        let new_ip = RiskContext {
            payments_last_minute: 0,
            ip_known: false,
        };
        assert_eq!(
            evaluate(&rules, &new_ip).unwrap().action,
            RiskAction::RequireVerification
        );
    }

    #[test]
    fn unknown_stored_rules_are_not_guessed_at() {
        assert!(RiskRule::from_stored("x", r#"{"type":"moon_phase"}"#, "block", 1).is_none());
        assert!(RiskRule::from_stored("x", r#"{"type":"new_login_ip"}"#, "shrug", 1).is_none());
        assert!(RiskRule::from_stored("x", "not json", "block", 1).is_none());
    }
}
