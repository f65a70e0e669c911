//! China Standard Time (UTC+8, no daylight saving): the calendar of caps and statistics.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Offset, Utc};

const CST_SECS: i32 = 8 * 3600;
const DAY_SECS: i64 = 86_400;

pub fn cst() -> FixedOffset {
    FixedOffset::east_opt(CST_SECS).unwrap_or_else(|| Utc.fix())
}

/// The CST calendar day of an instant.
pub fn cst_day(ts: DateTime<Utc>) -> NaiveDate {
    ts.with_timezone(&cst()).date_naive()
}

/// The instant (UTC) at which the CST day containing `ts` began.
pub fn cst_day_start(ts: DateTime<Utc>) -> DateTime<Utc> {
    let offset = i64::from(CST_SECS);
    let start = (ts.timestamp() + offset).div_euclid(DAY_SECS) * DAY_SECS - offset;
    DateTime::from_timestamp(start, 0).unwrap_or(ts)
}

/// `YYYY-MM` of the CST month containing `ts`.
pub fn cst_month(ts: DateTime<Utc>) -> String {
    let d = cst_day(ts);
    format!("{:04}-{:02}", d.year(), d.month())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn day_turns_at_utc_16h() {
        let before = Utc.with_ymd_and_hms(2026, 11, 27, 15, 59, 59).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 11, 27, 16, 0, 0).unwrap();
        assert_eq!(
            cst_day(before),
            NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
        );
        assert_eq!(
            cst_day(after),
            NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
        );
        assert_eq!(cst_day_start(after), after);
        assert_eq!(
            cst_day_start(before),
            Utc.with_ymd_and_hms(2026, 11, 26, 16, 0, 0).unwrap()
        );
        assert_eq!(
            cst_month(Utc.with_ymd_and_hms(2026, 11, 30, 16, 0, 0).unwrap()),
            "2026-12"
        );
    }
}
