//! Merchant settlement: per merchant and China Standard Time day, what was paid (gross),
//! what was refunded, WeChat Pay's fee and what the merchant nets. Computed on read from the
//! orders and refunds (`storage::settlement`), so the payment path writes nothing for it.
//!
//! - gross: the amounts of the orders paid that day;
//! - refunds: the refunds that succeeded that day (whichever day their order was paid);
//! - fee: WeChat's fee on each order paid that day: the fee the trade bill charged where a
//!   reconciliation run recorded it, else estimated at `APP_WECHAT_FEE_RATE_BP`, rounded
//!   half up to the fen per order (`domain::money::wechat_fee_fen`);
//! - fee refunded: the fee WeChat returns with the day's refunds: the bill's returned fee
//!   where recorded, else in proportion to the amount refunded (cumulatively per order, so
//!   it never exceeds the order's fee);
//! - net = gross - refunds - fee + fee refunded;
//! - where the fees came from: how many orders and refunds took the bill's, and in a word
//!   ([`FeeSource`]).

use chrono::{Duration, NaiveDate};
use serde::Serialize;

use super::error::AppError;
use super::page::{PageRequest, Paged};
use super::reports::{cst_midnight_utc, spreadsheet_safe};
use crate::storage::settlement::{self, Figures};
use crate::storage::{Db, shop};

/// Merchants read and written per chunk of the admin CSV export.
pub const CSV_CHUNK_MERCHANTS: i64 = 500;

/// Where the fees of a day, a merchant or a range came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeeSource {
    /// No order and no refund: no fee.
    #[default]
    None,
    /// Every fee is WeChat's, from a reconciled trade bill.
    Bill,
    /// Every fee is estimated at the configured rate (no reconciliation recorded it yet).
    Estimate,
    /// Some from the bill, some estimated.
    Mixed,
}

impl FeeSource {
    /// From the number of orders and refunds whose fee came from the bill, and the number
    /// estimated.
    pub fn of(from_bill: i64, estimated: i64) -> FeeSource {
        match (from_bill > 0, estimated > 0) {
            (false, false) => FeeSource::None,
            (true, false) => FeeSource::Bill,
            (false, true) => FeeSource::Estimate,
            (true, true) => FeeSource::Mixed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FeeSource::None => "none",
            FeeSource::Bill => "bill",
            FeeSource::Estimate => "estimate",
            FeeSource::Mixed => "mixed",
        }
    }
}

/// The sums of a day, a merchant or a range; every amount in fen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SettlementSums {
    /// Orders paid.
    pub order_count: i64,
    /// Their amounts.
    pub gross_fen: i64,
    /// Refunds that succeeded.
    pub refund_count: i64,
    pub refund_fen: i64,
    /// WeChat's fee on the orders paid: the trade bill's where reconciled, else estimated at
    /// the configured rate, each rounded half up to the fen.
    pub fee_fen: i64,
    /// The fee WeChat returns with the refunds: the trade bill's where reconciled, else
    /// estimated.
    pub fee_refund_fen: i64,
    /// gross_fen - refund_fen - fee_fen + fee_refund_fen (negative on a day of refunds only).
    pub net_fen: i64,
    /// Orders whose fee is WeChat's from the trade bill; the other order_count -
    /// fee_from_bill_orders are estimated.
    pub fee_from_bill_orders: i64,
    /// Refunds whose returned fee is WeChat's from the trade bill; the other refund_count -
    /// fee_from_bill_refunds are estimated.
    pub fee_from_bill_refunds: i64,
    /// `bill` when every fee is the bill's, `estimate` when none is, `mixed` otherwise, and
    /// `none` without orders or refunds.
    pub fee_source: FeeSource,
}

impl SettlementSums {
    fn of(f: Figures) -> SettlementSums {
        SettlementSums {
            order_count: f.order_count,
            gross_fen: f.gross_fen,
            refund_count: f.refund_count,
            refund_fen: f.refund_fen,
            fee_fen: f.fee_fen,
            fee_refund_fen: f.fee_refund_fen,
            net_fen: f.gross_fen - f.refund_fen - f.fee_fen + f.fee_refund_fen,
            fee_from_bill_orders: f.fee_from_bill_orders,
            fee_from_bill_refunds: f.fee_from_bill_refunds,
            fee_source: FeeSource::None,
        }
        .with_source()
    }

    /// `fee_source` from the counts.
    fn with_source(mut self) -> SettlementSums {
        let from_bill = self.fee_from_bill_orders + self.fee_from_bill_refunds;
        let estimated = self.order_count + self.refund_count - from_bill;
        self.fee_source = FeeSource::of(from_bill, estimated);
        self
    }

    fn add(&mut self, o: &SettlementSums) {
        self.order_count += o.order_count;
        self.gross_fen += o.gross_fen;
        self.refund_count += o.refund_count;
        self.refund_fen += o.refund_fen;
        self.fee_fen += o.fee_fen;
        self.fee_refund_fen += o.fee_refund_fen;
        self.net_fen += o.net_fen;
        self.fee_from_bill_orders += o.fee_from_bill_orders;
        self.fee_from_bill_refunds += o.fee_from_bill_refunds;
        *self = self.with_source();
    }

    fn cells(&self) -> [String; 10] {
        [
            self.order_count.to_string(),
            self.gross_fen.to_string(),
            self.refund_count.to_string(),
            self.refund_fen.to_string(),
            self.fee_fen.to_string(),
            self.fee_refund_fen.to_string(),
            self.net_fen.to_string(),
            self.fee_from_bill_orders.to_string(),
            self.fee_from_bill_refunds.to_string(),
            self.fee_source.as_str().to_string(),
        ]
    }
}

const SUM_COLUMNS: [&str; 10] = [
    "order_count",
    "gross_fen",
    "refund_count",
    "refund_fen",
    "fee_fen",
    "fee_refund_fen",
    "net_fen",
    "fee_from_bill_orders",
    "fee_from_bill_refunds",
    "fee_source",
];

/// One CST day of a merchant's settlement.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SettlementDay {
    /// `YYYY-MM-DD`, China Standard Time.
    pub date: String,
    #[serde(flatten)]
    pub sums: SettlementSums,
}

/// A merchant's settlement for the CST days `from..=to`: every day of the range, zeros
/// included, and the totals.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MerchantSettlement {
    pub merchant_id: String,
    pub from: String,
    pub to: String,
    /// The fee rate the estimated fees are computed at, in basis points (60 = 0.6%); fees
    /// from a reconciled trade bill are WeChat's own.
    pub fee_rate_bp: u32,
    pub items: Vec<SettlementDay>,
    pub totals: SettlementSums,
}

/// One merchant's settlement for a day.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MerchantDaySettlement {
    pub merchant_id: String,
    pub merchant_name: String,
    #[serde(flatten)]
    pub sums: SettlementSums,
}

/// Every merchant's settlement for one CST day, a page of merchants (in merchant id order),
/// and the day's totals over all of them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DaySettlement {
    pub date: String,
    /// The rate the estimated fees are computed at, in basis points.
    pub fee_rate_bp: u32,
    pub items: Vec<MerchantDaySettlement>,
    pub next_cursor: Option<String>,
    /// Over every merchant of the day, not only this page.
    pub totals: SettlementSums,
}

#[derive(Clone)]
pub struct Settlements {
    db: Db,
    fee_rate_bp: u32,
}

/// `[start, end)` in UTC of the CST days `from..=to`.
fn bounds(from: NaiveDate, to: NaiveDate) -> (chrono::NaiveDateTime, chrono::NaiveDateTime) {
    (
        cst_midnight_utc(from),
        cst_midnight_utc(to + Duration::days(1)),
    )
}

/// A CSV writer whose output starts with the UTF-8 BOM (so Excel reads it as UTF-8) when
/// `first`.
fn csv_writer(first: bool) -> csv::Writer<Vec<u8>> {
    csv::Writer::from_writer(if first {
        Vec::from("\u{feff}".as_bytes())
    } else {
        Vec::new()
    })
}

fn write_row(out: &mut csv::Writer<Vec<u8>>, cells: &[String]) -> Result<(), AppError> {
    out.write_record(cells.iter().map(|c| spreadsheet_safe(c).into_owned()))
        .map_err(AppError::internal)
}

fn finish(out: csv::Writer<Vec<u8>>) -> Result<bytes::Bytes, AppError> {
    let bytes = out
        .into_inner()
        .map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))?;
    Ok(bytes::Bytes::from(bytes))
}

impl Settlements {
    pub fn new(db: Db, fee_rate_bp: u32) -> Settlements {
        Settlements { db, fee_rate_bp }
    }

    /// The fee rate in force, in basis points.
    pub fn fee_rate_bp(&self) -> u32 {
        self.fee_rate_bp
    }

    /// A merchant's settlement for the CST days `from..=to` (callers bound the range).
    pub async fn merchant(
        &self,
        merchant_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<MerchantSettlement, AppError> {
        let (start, end) = bounds(from, to);
        let mut found =
            settlement::by_day(&self.db, self.fee_rate_bp, Some(merchant_id), start, end).await?;
        let mut items = Vec::new();
        let mut totals = SettlementSums::default();
        for day in from.iter_days().take_while(|d| *d <= to) {
            let date = day.to_string();
            let sums = SettlementSums::of(found.remove(&date).unwrap_or_default());
            totals.add(&sums);
            items.push(SettlementDay { date, sums });
        }
        Ok(MerchantSettlement {
            merchant_id: merchant_id.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            fee_rate_bp: self.fee_rate_bp,
            items,
            totals,
        })
    }

    /// The merchant's settlement as CSV: UTF-8 with a BOM, a header, one line per day and a
    /// last line `total`. At most 92 days, so one chunk.
    pub fn merchant_csv(
        &self,
        merchant_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl futures_util::Stream<Item = Result<bytes::Bytes, AppError>> + 'static {
        let this = self.clone();
        let merchant_id = merchant_id.to_string();
        futures_util::stream::once(async move {
            let s = this.merchant(&merchant_id, from, to).await?;
            let mut out = csv_writer(true);
            let header: Vec<String> = std::iter::once("date")
                .chain(SUM_COLUMNS)
                .map(str::to_string)
                .collect();
            write_row(&mut out, &header)?;
            for d in &s.items {
                let row: Vec<String> = std::iter::once(d.date.clone())
                    .chain(d.sums.cells())
                    .collect();
                write_row(&mut out, &row)?;
            }
            let total: Vec<String> = std::iter::once("total".to_string())
                .chain(s.totals.cells())
                .collect();
            write_row(&mut out, &total)?;
            finish(out)
        })
    }

    /// One page of the merchants' settlements for a CST day, with the day's totals.
    pub async fn day(
        &self,
        date: NaiveDate,
        page: &PageRequest,
    ) -> Result<DaySettlement, AppError> {
        let (start, end) = bounds(date, date);
        let rows = self
            .day_page(start, end, page.cursor(), page.fetch())
            .await?;
        let paged = Paged::from_rows(rows, page, |m| m.merchant_id.clone());
        let totals = settlement::by_day(&self.db, self.fee_rate_bp, None, start, end)
            .await?
            .into_values()
            .map(SettlementSums::of)
            .fold(SettlementSums::default(), |mut t, s| {
                t.add(&s);
                t
            });
        Ok(DaySettlement {
            date: date.to_string(),
            fee_rate_bp: self.fee_rate_bp,
            items: paged.items,
            next_cursor: paged.next_cursor,
            totals,
        })
    }

    async fn day_page(
        &self,
        start: chrono::NaiveDateTime,
        end: chrono::NaiveDateTime,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MerchantDaySettlement>, AppError> {
        let rows =
            settlement::by_merchant(&self.db, self.fee_rate_bp, start, end, after, limit).await?;
        let ids: Vec<String> = rows.iter().map(|(id, _)| id.clone()).collect();
        let names = shop::merchant_names(&self.db, &ids).await?;
        Ok(rows
            .into_iter()
            .map(|(merchant_id, f)| MerchantDaySettlement {
                merchant_name: names.get(&merchant_id).cloned().unwrap_or_default(),
                merchant_id,
                sums: SettlementSums::of(f),
            })
            .collect())
    }

    /// Every merchant's settlement for a CST day as CSV (UTF-8 with a BOM), streamed in
    /// chunks of [`CSV_CHUNK_MERCHANTS`] merchants read by keyset, and a last line `total`
    /// summed from the lines written.
    pub fn day_csv(
        &self,
        date: NaiveDate,
    ) -> impl futures_util::Stream<Item = Result<bytes::Bytes, AppError>> + 'static {
        let this = self.clone();
        let (start, end) = bounds(date, date);
        let day = date.to_string();
        // (the first chunk is still to write, the last merchant written, the sums so far,
        // the totals line is written)
        let state = (true, None::<String>, SettlementSums::default(), false);
        futures_util::stream::try_unfold(state, move |(first, after, mut totals, done)| {
            let this = this.clone();
            let day = day.clone();
            async move {
                if done {
                    return Ok(None);
                }
                let rows = this
                    .day_page(start, end, after.as_deref(), CSV_CHUNK_MERCHANTS)
                    .await?;
                let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) == CSV_CHUNK_MERCHANTS;
                let mut out = csv_writer(first);
                if first {
                    let header: Vec<String> = ["date", "merchant_id", "merchant_name"]
                        .into_iter()
                        .chain(SUM_COLUMNS)
                        .map(str::to_string)
                        .collect();
                    write_row(&mut out, &header)?;
                }
                let last = rows.last().map(|r| r.merchant_id.clone());
                for r in rows {
                    totals.add(&r.sums);
                    let row: Vec<String> = [day.clone(), r.merchant_id, r.merchant_name]
                        .into_iter()
                        .chain(r.sums.cells())
                        .collect();
                    write_row(&mut out, &row)?;
                }
                if !more {
                    let row: Vec<String> = [day.clone(), "total".to_string(), String::new()]
                        .into_iter()
                        .chain(totals.cells())
                        .collect();
                    write_row(&mut out, &row)?;
                }
                let chunk = finish(out)?;
                Ok(Some((chunk, (false, last.or(after), totals, !more))))
            }
        })
    }
}
