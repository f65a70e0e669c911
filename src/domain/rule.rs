//! The earning rule: how many points a paid order earns, under per-order, daily (CST) and
//! lifetime caps.

use serde::{Deserialize, Serialize};

use super::money::{DomainError, Fen, MAX_POINTS, Points};

/// The rule as data (what admins read and write, and what `points_rules` stores).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PointsRuleSpec {
    pub points_per_yuan: i64,
    pub min_order_fen: i64,
    pub max_order_fen: i64,
    pub per_order_max_points: i64,
    pub daily_cap: i64,
    pub lifetime_cap: i64,
    pub expiry_days: i64,
}

impl Default for PointsRuleSpec {
    /// The source design's defaults (also seeded by the initial migration).
    fn default() -> Self {
        PointsRuleSpec {
            points_per_yuan: 1,
            min_order_fen: 100,
            max_order_fen: 100_000_000,
            per_order_max_points: 10_000,
            daily_cap: 50_000,
            lifetime_cap: 10_000_000,
            expiry_days: 365,
        }
    }
}

/// A validated rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PointsRule {
    spec: PointsRuleSpec,
}

/// What an order earns: `points` credited, `capped` withheld by a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Award {
    pub points: Points,
    pub capped: Points,
}

impl TryFrom<PointsRuleSpec> for PointsRule {
    type Error = DomainError;
    fn try_from(spec: PointsRuleSpec) -> Result<Self, DomainError> {
        let bad = |m: &str| Err(DomainError::Invalid(m.to_string()));
        if !(0..=1000).contains(&spec.points_per_yuan) {
            return bad("points_per_yuan must be within 0..=1000");
        }
        Fen::parse(spec.min_order_fen)?;
        Fen::parse(spec.max_order_fen)?;
        if spec.min_order_fen > spec.max_order_fen {
            return bad("min_order_fen must not exceed max_order_fen");
        }
        Points::parse(spec.per_order_max_points)?;
        Points::parse(spec.daily_cap)?;
        Points::parse(spec.lifetime_cap)?;
        if !(1..=36_500).contains(&spec.expiry_days) {
            return bad("expiry_days must be within 1..=36500");
        }
        Ok(PointsRule { spec })
    }
}

impl PointsRule {
    pub fn spec(&self) -> &PointsRuleSpec {
        &self.spec
    }

    pub fn expiry(&self) -> chrono::Duration {
        chrono::Duration::days(self.spec.expiry_days)
    }

    /// Points for a paid order of `amount`, given what the user already earned today (CST)
    /// and in their lifetime. Orders outside `[min_order_fen, max_order_fen]` earn nothing
    /// (an order above the maximum is a risk signal, not a bigger award). Whole yuan,
    /// rounded down, times the ratio; then the per-order, daily and lifetime caps in turn.
    pub fn award_for(&self, amount: Fen, earned_today: Points, earned_lifetime: Points) -> Award {
        let s = &self.spec;
        if amount.value() < s.min_order_fen || amount.value() > s.max_order_fen {
            return Award {
                points: Points::ZERO,
                capped: Points::ZERO,
            };
        }
        let base = amount
            .whole_yuan()
            .saturating_mul(s.points_per_yuan)
            .min(MAX_POINTS);
        let room_today = s.daily_cap.saturating_sub(earned_today.value()).max(0);
        let room_life = s
            .lifetime_cap
            .saturating_sub(earned_lifetime.value())
            .max(0);
        let points = base
            .min(s.per_order_max_points)
            .min(room_today)
            .min(room_life)
            .max(0);
        Award {
            points: Points::parse(points).unwrap_or(Points::ZERO),
            capped: Points::parse(base - points).unwrap_or(Points::ZERO),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(v: i64) -> Points {
        Points::parse(v).unwrap()
    }
    fn fen(v: i64) -> Fen {
        Fen::parse(v).unwrap()
    }

    #[test]
    fn default_rule_one_point_per_whole_yuan() {
        let r = PointsRule::default();
        assert_eq!(r.award_for(fen(199), p(0), p(0)).points, p(1));
        assert_eq!(r.award_for(fen(99), p(0), p(0)).points, p(0));
        assert_eq!(r.award_for(fen(100_000_001), p(0), p(0)).points, p(0));
        let big = r.award_for(fen(2_000_000), p(0), p(0));
        assert_eq!((big.points, big.capped), (p(10_000), p(10_000)));
    }

    #[test]
    fn daily_and_lifetime_caps() {
        let r = PointsRule::default();
        let a = r.award_for(fen(10_000), p(49_950), p(0));
        assert_eq!((a.points, a.capped), (p(50), p(50)));
        let a = r.award_for(fen(10_000), p(0), p(9_999_990));
        assert_eq!((a.points, a.capped), (p(10), p(90)));
        let a = r.award_for(fen(10_000), p(60_000), p(0));
        assert_eq!((a.points, a.capped), (p(0), p(100)));
    }

    #[test]
    fn invalid_specs_are_refused() {
        let s = PointsRuleSpec {
            min_order_fen: 10,
            max_order_fen: 5,
            ..PointsRuleSpec::default()
        };
        assert!(PointsRule::try_from(s).is_err());
        let s = PointsRuleSpec {
            expiry_days: 0,
            ..PointsRuleSpec::default()
        };
        assert!(PointsRule::try_from(s).is_err());
    }

    proptest! {
        #[test]
        fn award_respects_every_cap(
            amount in 0i64..1_000_000_000, today in 0i64..100_000, life in 0i64..20_000_000,
            ppy in 0i64..10, per in 0i64..20_000, daily in 0i64..60_000, lifetime in 0i64..20_000_000,
        ) {
            let rule = PointsRule::try_from(PointsRuleSpec {
                points_per_yuan: ppy, min_order_fen: 100, max_order_fen: 900_000_000,
                per_order_max_points: per, daily_cap: daily, lifetime_cap: lifetime, expiry_days: 30,
            }).unwrap();
            let a = rule.award_for(fen(amount), p(today), p(life));
            prop_assert!(a.points.value() >= 0 && a.capped.value() >= 0);
            prop_assert!(a.points.value() <= per);
            prop_assert!(today + a.points.value() <= daily.max(today));
            prop_assert!(life + a.points.value() <= lifetime.max(life));
            if (100..=900_000_000).contains(&amount) {
                prop_assert_eq!(a.points.value() + a.capped.value(), amount / 100 * ppy);
            } else {
                prop_assert_eq!(a.points.value(), 0);
            }
        }
    }
}
