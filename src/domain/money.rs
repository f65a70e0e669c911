//! Integer money and points. The field is private: a value exists only after `parse`/`TryFrom`
//! accepted it, so code that holds a `Fen` or `Points` never re-checks the range.

use serde::{Deserialize, Serialize};

/// Largest accepted amount of points in one value (keeps every sum far from `i64::MAX`).
pub const MAX_POINTS: i64 = 1_000_000_000_000;
/// Largest accepted amount of money in fen (10 billion yuan).
pub const MAX_FEN: i64 = 1_000_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{what} must not be negative (got {value})")]
    Negative { what: &'static str, value: i64 },
    #[error("{what} is too large (got {value}, at most {max})")]
    TooLarge {
        what: &'static str,
        value: i64,
        max: i64,
    },
    #[error("{0}")]
    Invalid(String),
}

fn check(what: &'static str, value: i64, max: i64) -> Result<i64, DomainError> {
    if value < 0 {
        Err(DomainError::Negative { what, value })
    } else if value > max {
        Err(DomainError::TooLarge { what, value, max })
    } else {
        Ok(value)
    }
}

/// A non-negative number of points.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Points(i64);

impl Points {
    pub const ZERO: Points = Points(0);

    pub fn parse(value: i64) -> Result<Points, DomainError> {
        check("points", value, MAX_POINTS).map(Points)
    }

    pub fn value(self) -> i64 {
        self.0
    }

    /// `self - other`, or zero when `other` is larger.
    pub fn saturating_sub(self, other: Points) -> Points {
        Points(self.0.saturating_sub(other.0).max(0))
    }

    pub fn min(self, other: Points) -> Points {
        Points(self.0.min(other.0))
    }
}

impl TryFrom<i64> for Points {
    type Error = DomainError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Points::parse(value)
    }
}

impl<'de> Deserialize<'de> for Points {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        Points::parse(v).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Points {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A non-negative amount of money in fen (1/100 yuan).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Fen(i64);

impl Fen {
    pub fn parse(value: i64) -> Result<Fen, DomainError> {
        check("amount_fen", value, MAX_FEN).map(Fen)
    }

    pub fn value(self) -> i64 {
        self.0
    }

    /// Whole yuan, rounded down.
    pub fn whole_yuan(self) -> i64 {
        self.0 / 100
    }
}

impl TryFrom<i64> for Fen {
    type Error = DomainError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Fen::parse(value)
    }
}

impl<'de> Deserialize<'de> for Fen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        Fen::parse(v).map_err(serde::de::Error::custom)
    }
}

/// The highest fee rate a setting may name, in basis points (100%).
pub const MAX_FEE_RATE_BP: u32 = 10_000;

/// WeChat Pay's fee on a payment of `amount_fen` at `rate_bp` basis points (60 = 0.6%),
/// rounded half up to the fen as WeChat rounds each transaction's fee: 83 fen at 0.6% is
/// 0.498 fen, so 0; 84 fen is 0.504, so 1; 750 fen is 4.5, so 5. The fee returned with a
/// refund is the same rule on the amount refunded so far, less the fee on what was refunded
/// before it (so the refunds of an order return at most its fee, exactly its fee when it is
/// refunded in full). Storage computes the same rule in SQL (`storage::settlement`).
pub fn wechat_fee_fen(amount_fen: i64, rate_bp: u32) -> i64 {
    let fee = (i128::from(amount_fen.max(0)) * i128::from(rate_bp) + 5_000) / 10_000;
    i64::try_from(fee).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_negative_and_huge() {
        assert!(Points::parse(-1).is_err());
        assert!(Points::parse(MAX_POINTS + 1).is_err());
        assert_eq!(Points::parse(0).unwrap(), Points::ZERO);
        assert!(Fen::parse(-5).is_err());
        assert_eq!(Fen::parse(199).unwrap().whole_yuan(), 1);
    }

    #[test]
    fn deserialize_goes_through_parse() {
        assert!(serde_json::from_str::<Points>("-3").is_err());
        assert_eq!(serde_json::from_str::<Points>("3").unwrap().value(), 3);
        assert!(serde_json::from_str::<Fen>("-3").is_err());
    }

    proptest! {
        #[test]
        fn parse_accepts_exactly_the_range(v in any::<i64>()) {
            prop_assert_eq!(Points::parse(v).is_ok(), (0..=MAX_POINTS).contains(&v));
            prop_assert_eq!(Fen::parse(v).is_ok(), (0..=MAX_FEN).contains(&v));
        }

        #[test]
        fn saturating_sub_never_negative(a in 0..MAX_POINTS, b in 0..MAX_POINTS) {
            let (a, b) = (Points::parse(a).unwrap(), Points::parse(b).unwrap());
            prop_assert!(a.saturating_sub(b).value() >= 0);
        }
    }

    #[test]
    fn wechat_fee_rounds_half_up_to_the_fen() {
        for (amount, fee) in [
            (0, 0),
            (1, 0),
            (83, 0),
            (84, 1),
            (100, 1),
            (250, 2),
            (750, 5),
            (12_345, 74),
            (MAX_FEN, 6_000_000_000),
        ] {
            assert_eq!(wechat_fee_fen(amount, 60), fee, "{amount} fen");
        }
        assert_eq!(wechat_fee_fen(12_345, 0), 0);
        assert_eq!(wechat_fee_fen(12_345, MAX_FEE_RATE_BP), 12_345);
        // A full refund in parts returns exactly the fee: the cumulative rule telescopes.
        let (amount, parts) = (10_001, [3_333, 3_333, 3_335]);
        let mut before = 0;
        let mut returned = 0;
        for p in parts {
            returned += wechat_fee_fen(before + p, 60) - wechat_fee_fen(before, 60);
            before += p;
        }
        assert_eq!(returned, wechat_fee_fen(amount, 60));
    }
}
