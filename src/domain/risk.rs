//! Risk rules as data: a condition, an action and a priority, stored in `risk_rules` and
//! evaluated here without I/O. The lowest priority number that matches wins.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RiskCondition {
    /// `max` or more payments created by one user within the last minute (the seed's form,
    /// still read).
    PaymentsPerMinute { max: u32 },
    /// `max` or more payments created by one user within the last `window_secs` seconds.
    PaymentsInWindow { max: u32, window_secs: u32 },
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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RiskContext {
    /// Payments this user created, not counting this one, per window the rules use:
    /// `(window_secs, count)` (see [`velocity_windows`]).
    pub payments: Vec<(u32, u32)>,
    /// Whether the request's IP is one the user has logged in from before.
    pub ip_known: bool,
}

impl RiskContext {
    /// Payments in the last `window_secs`; 0 when that window was not counted.
    pub fn payments_within(&self, window_secs: u32) -> u32 {
        self.payments
            .iter()
            .find(|(w, _)| *w == window_secs)
            .map_or(0, |(_, n)| *n)
    }
}

impl RiskCondition {
    /// The window a velocity condition counts payments over.
    pub fn window_secs(&self) -> Option<u32> {
        match self {
            RiskCondition::PaymentsPerMinute { .. } => Some(60),
            RiskCondition::PaymentsInWindow { window_secs, .. } => Some(*window_secs),
            RiskCondition::NewLoginIp => None,
        }
    }

    pub fn matches(&self, ctx: &RiskContext) -> bool {
        match self {
            RiskCondition::PaymentsPerMinute { max } => ctx.payments_within(60) >= *max,
            RiskCondition::PaymentsInWindow { max, window_secs } => {
                ctx.payments_within(*window_secs) >= *max
            }
            RiskCondition::NewLoginIp => !ctx.ip_known,
        }
    }
}

/// The windows (seconds) the rules count payments over, each once: what to ask the database.
pub fn velocity_windows(rules: &[RiskRule]) -> Vec<u32> {
    let mut windows: Vec<u32> = rules
        .iter()
        .filter_map(|r| r.condition.window_secs())
        .collect();
    windows.sort_unstable();
    windows.dedup();
    windows
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

    /// The rules the migrations seed.
    fn defaults() -> Vec<RiskRule> {
        vec![
            RiskRule::from_stored(
                "payment_velocity",
                r#"{"type":"payments_in_window","max":20,"window_secs":3600}"#,
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

    fn ctx(payments: &[(u32, u32)], ip_known: bool) -> RiskContext {
        RiskContext {
            payments: payments.to_vec(),
            ip_known,
        }
    }

    #[test]
    fn the_twenty_first_payment_in_an_hour_is_blocked() {
        let rules = defaults();
        assert_eq!(velocity_windows(&rules), vec![3600]);
        let r = evaluate(&rules, &ctx(&[(3600, 20)], true)).unwrap();
        assert_eq!(
            (r.name.as_str(), r.action),
            ("payment_velocity", RiskAction::Block)
        );
        assert!(evaluate(&rules, &ctx(&[(3600, 19)], true)).is_none());
        // A window that was not counted is taken as no payments, never as many.
        assert!(evaluate(&rules, &ctx(&[(60, 500)], true)).is_none());
    }

    #[test]
    fn the_seeds_per_minute_form_still_reads_and_counts_a_minute() {
        let rule = RiskRule::from_stored(
            "old",
            r#"{"type":"payments_per_minute","max":10}"#,
            "block",
            1,
        )
        .unwrap();
        let rules = vec![rule, defaults().remove(0)];
        assert_eq!(velocity_windows(&rules), vec![60, 3600]);
        assert_eq!(
            evaluate(&rules, &ctx(&[(60, 10), (3600, 10)], true))
                .unwrap()
                .name,
            "old"
        );
        assert!(evaluate(&rules, &ctx(&[(60, 9), (3600, 19)], true)).is_none());
    }

    #[test]
    fn priority_decides_between_matching_rules() {
        let rules = defaults();
        let both = ctx(&[(3600, 50)], false);
        assert_eq!(evaluate(&rules, &both).unwrap().name, "payment_velocity");
        let new_ip = ctx(&[(3600, 0)], false);
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
        assert!(
            RiskRule::from_stored("x", r#"{"type":"payments_in_window","max":3}"#, "block", 1)
                .is_none(),
            "a window is required"
        );
    }
}
