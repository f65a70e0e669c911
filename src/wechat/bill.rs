//! WeChat Pay v3 trade bills: `GET /v3/bill/tradebill` (where to download the day's bill and
//! its SHA1), the signed download of `download_url` (whose answer WeChat does not sign), and
//! the bill's CSV: a header line, one row per payment or refund with every field prefixed
//! by a backtick, then a summary header and a summary line. Amounts are yuan with two
//! decimals, read into fen by string arithmetic (never floats). The fee (`手续费`) is written
//! with five decimals but is charged per row rounded to the fen (`0.07000`); on a refund row
//! it is negative, the fee WeChat returns (`-0.01000`).

use std::io::Read as _;

use chrono::NaiveDate;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::client::{WechatClient, transport_error};
use super::error::WechatError;

/// Largest bill accepted, compressed or not (a day of a busy merchant is a few MiB).
pub const MAX_BILL_BYTES: u64 = 256 * 1024 * 1024;

/// The answer of `GET /v3/bill/tradebill`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillLocation {
    /// `SHA1`.
    pub hash_type: String,
    /// Hex SHA1 of the bill as a plain file (after decompressing a GZIP download).
    pub hash_value: String,
    /// Valid for 30 s; fetched with a signed GET.
    pub download_url: String,
}

/// What a bill row says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BillRowKind {
    /// A payment (`交易状态` SUCCESS; a payment refunded later keeps its SUCCESS row).
    Payment,
    /// A refund (`交易状态` REFUND).
    Refund,
    /// Anything else WeChat lists (`REVOKED`, …), kept verbatim for the report.
    Other,
}

/// One detail row of an ALL trade bill, the fields reconciliation reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillRow {
    /// `交易时间`, China Standard Time, `YYYY-MM-DD HH:MM:SS`.
    pub trade_time: String,
    pub appid: String,
    pub mchid: String,
    pub transaction_id: String,
    pub out_trade_no: String,
    pub trade_type: String,
    /// `交易状态`: SUCCESS, REFUND, REVOKED, …
    pub trade_state: String,
    pub currency: String,
    /// `应结订单金额` in fen.
    pub settlement_fen: i64,
    /// `微信退款单号` (refund rows).
    pub refund_id: Option<String>,
    /// `商户退款单号` (refund rows).
    pub out_refund_no: Option<String>,
    /// `退款金额` in fen.
    pub refund_fen: i64,
    /// `退款状态` (refund rows): SUCCESS, PROCESSING, …
    pub refund_status: Option<String>,
    /// `手续费` in fen as WeChat writes it: what it charged on a payment row (positive), what
    /// it returns on a refund row (negative).
    pub fee_fen: i64,
    pub kind: BillRowKind,
}

/// The summary line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillSummary {
    /// `总交易单数`.
    pub rows: i64,
    /// `应结订单总金额` in fen.
    pub settlement_fen: i64,
    /// `退款总金额` in fen.
    pub refund_fen: i64,
    /// `手续费总金额` in fen: the rows' fees, returned ones subtracted.
    pub fee_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeBill {
    pub rows: Vec<BillRow>,
    pub summary: BillSummary,
}

/// The columns of an ALL trade bill, in WeChat's order.
pub const TRADE_BILL_HEADER: [&str; 27] = [
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "申请退款金额",
    "费率备注",
];

/// The summary header of a trade bill.
pub const TRADE_BILL_SUMMARY_HEADER: [&str; 7] = [
    "总交易单数",
    "应结订单总金额",
    "退款总金额",
    "充值券退款总金额",
    "手续费总金额",
    "订单总金额",
    "申请退款总金额",
];

/// Why a bill could not be read. Any of these fails the whole bill: never a partial result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillError {
    #[error("bill: {0}")]
    Format(String),
    #[error("bill amount {0:?} is not yuan with at most two decimals")]
    Amount(String),
    #[error("bill hash mismatch: expected {expected}, got {actual}")]
    Hash { expected: String, actual: String },
}

impl From<BillError> for WechatError {
    fn from(e: BillError) -> Self {
        WechatError::Protocol(e.to_string())
    }
}

/// Yuan as WeChat writes them (`12.34`, `-0.01`, `0.5`, `7`) to fen, exactly.
pub fn yuan_to_fen(s: &str) -> Result<i64, BillError> {
    let bad = || BillError::Amount(s.to_string());
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = match digits.split_once('.') {
        Some((w, f)) => (w, f),
        None => (digits, ""),
    };
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 15 || frac.len() > 2 || !all_digits(whole) {
        return Err(bad());
    }
    if !all_digits(frac) || (digits.contains('.') && frac.is_empty()) {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().map_err(|_| bad())? * 10,
        _ => frac.parse().map_err(|_| bad())?,
    };
    let fen = whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)?;
    Ok(if negative { -fen } else { fen })
}

/// A fee as WeChat writes it (yuan with up to five decimals: `0.07000`, `-0.01000`, `0.5`) to
/// fen, exactly. WeChat charges each fee rounded to the fen, so the digits past the fen must
/// be zeros; a fraction of a fen is refused rather than rounded here.
pub fn fee_to_fen(s: &str) -> Result<i64, BillError> {
    let bad = || BillError::Amount(s.to_string());
    match s.split_once('.') {
        Some((whole, frac)) if frac.len() > 2 => {
            let (fen, rest) = frac.split_at(2);
            if frac.len() > 5 || !rest.bytes().all(|b| b == b'0') {
                return Err(bad());
            }
            yuan_to_fen(&format!("{whole}.{fen}")).map_err(|_| bad())
        }
        _ => yuan_to_fen(s),
    }
}

/// Fen as WeChat writes yuan: `1234` -> `12.34`, `-5` -> `-0.05`.
pub fn fen_to_yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Lower-case hex SHA1 of `bytes`.
pub fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, bytes).as_ref(),
    )
}

/// The fields of a line whose fields all start with a backtick.
fn ticked_fields(line: &str) -> Result<Vec<&str>, BillError> {
    let rest = line
        .strip_prefix('`')
        .ok_or_else(|| BillError::Format(format!("row without backticks: {line:.80}")))?;
    // Split on ",`" so a comma inside a field (a product name) does not shift the columns.
    Ok(rest.split(",`").collect())
}

fn header_fields(line: &str) -> Vec<&str> {
    line.split(',').map(str::trim).collect()
}

/// Parses a trade bill (ALL, SUCCESS or REFUND: the same columns). The summary must agree
/// with the rows (count and sums), so a truncated bill is refused rather than half-read.
pub fn parse_trade_bill(text: &str) -> Result<TradeBill, BillError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
    let header = lines
        .next()
        .ok_or_else(|| BillError::Format("empty".into()))?;
    let header = header_fields(header);
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| BillError::Format(format!("no column {name}")))
    };
    let c_time = col("交易时间")?;
    let c_appid = col("公众账号ID")?;
    let c_mchid = col("商户号")?;
    let c_txn = col("微信订单号")?;
    let c_out = col("商户订单号")?;
    let c_type = col("交易类型")?;
    let c_state = col("交易状态")?;
    let c_currency = col("货币种类")?;
    let c_settle = col("应结订单金额")?;
    let c_refund_id = col("微信退款单号")?;
    let c_out_refund = col("商户退款单号")?;
    let c_refund = col("退款金额")?;
    let c_refund_status = col("退款状态")?;
    let c_fee = col("手续费")?;
    let width = header.len();

    let mut rows = Vec::new();
    let mut summary = None;
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        if line.starts_with("总交易单数") {
            let names = header_fields(line);
            let values = lines
                .next()
                .ok_or_else(|| BillError::Format("summary header without a summary".into()))?;
            let values = ticked_fields(values)?;
            let get = |name: &str| -> Result<&str, BillError> {
                let i = names
                    .iter()
                    .position(|h| *h == name)
                    .ok_or_else(|| BillError::Format(format!("no summary column {name}")))?;
                values
                    .get(i)
                    .copied()
                    .ok_or_else(|| BillError::Format(format!("summary without {name}")))
            };
            let count: i64 = get("总交易单数")?
                .trim()
                .parse()
                .map_err(|_| BillError::Format("总交易单数 is not a number".into()))?;
            summary = Some(BillSummary {
                rows: count,
                settlement_fen: yuan_to_fen(get("应结订单总金额")?.trim())?,
                refund_fen: yuan_to_fen(get("退款总金额")?.trim())?,
                fee_fen: fee_to_fen(get("手续费总金额")?.trim())?,
            });
            if lines.any(|l| !l.trim().is_empty()) {
                return Err(BillError::Format("lines after the summary".into()));
            }
            break;
        }
        let f = ticked_fields(line)?;
        if f.len() != width {
            return Err(BillError::Format(format!(
                "row has {} fields, header {width}",
                f.len()
            )));
        }
        let text = |i: usize| f[i].trim().to_string();
        let opt = |i: usize| {
            let v = f[i].trim();
            (!v.is_empty() && v != "0").then(|| v.to_string())
        };
        let trade_state = text(c_state);
        let kind = match trade_state.as_str() {
            "SUCCESS" => BillRowKind::Payment,
            "REFUND" => BillRowKind::Refund,
            _ => BillRowKind::Other,
        };
        rows.push(BillRow {
            trade_time: text(c_time),
            appid: text(c_appid),
            mchid: text(c_mchid),
            transaction_id: text(c_txn),
            out_trade_no: text(c_out),
            trade_type: text(c_type),
            trade_state,
            currency: text(c_currency),
            settlement_fen: yuan_to_fen(f[c_settle].trim())?,
            refund_id: opt(c_refund_id),
            out_refund_no: opt(c_out_refund),
            refund_fen: yuan_to_fen(f[c_refund].trim())?,
            refund_status: opt(c_refund_status),
            fee_fen: fee_to_fen(f[c_fee].trim())?,
            kind,
        });
    }
    let summary = summary.ok_or_else(|| BillError::Format("no summary (truncated?)".into()))?;
    let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let settled: i64 = rows.iter().map(|r| r.settlement_fen).sum();
    let refunded: i64 = rows.iter().map(|r| r.refund_fen).sum();
    let fees: i64 = rows.iter().map(|r| r.fee_fen).sum();
    if summary.rows != count
        || summary.settlement_fen != settled
        || summary.refund_fen != refunded
        || summary.fee_fen != fees
    {
        return Err(BillError::Format(format!(
            "summary ({} rows, {} / {} / fee {} fen) disagrees with the rows ({count}, {settled} / {refunded} / fee {fees})",
            summary.rows, summary.settlement_fen, summary.refund_fen, summary.fee_fen
        )));
    }
    Ok(TradeBill { rows, summary })
}

/// Checks the downloaded bytes against the announced hash: decompresses a GZIP bill (bounded)
/// and compares the SHA1 of the plain file. A mismatch is an error, never a partial bill.
pub fn verify_download(
    location: &BillLocation,
    bytes: &[u8],
    gzip: bool,
) -> Result<Vec<u8>, BillError> {
    if !location.hash_type.eq_ignore_ascii_case("SHA1") {
        return Err(BillError::Format(format!(
            "hash_type {} is not SHA1",
            location.hash_type
        )));
    }
    let plain = if gzip {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(MAX_BILL_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| BillError::Format(format!("gzip: {e}")))?;
        if out.len() as u64 > MAX_BILL_BYTES {
            return Err(BillError::Format("bill larger than allowed".into()));
        }
        out
    } else {
        bytes.to_vec()
    };
    let actual = sha1_hex(&plain);
    if !actual.eq_ignore_ascii_case(location.hash_value.trim()) {
        return Err(BillError::Hash {
            expected: location.hash_value.clone(),
            actual,
        });
    }
    Ok(plain)
}

impl WechatClient {
    /// `GET /v3/bill/tradebill?bill_date=…&bill_type=ALL&tar_type=GZIP`: where the day's
    /// bill is and its SHA1.
    pub async fn trade_bill(&self, bill_date: NaiveDate) -> Result<BillLocation, WechatError> {
        let path = format!(
            "/v3/bill/tradebill?bill_date={}&bill_type=ALL&tar_type=GZIP",
            bill_date.format("%Y-%m-%d")
        );
        self.pay_get(&path).await
    }

    /// Downloads a bill from `location.download_url` (a signed GET whose answer WeChat does
    /// not sign), checks its SHA1 and parses it. The URL must be on the Pay API's host: the
    /// signed request goes nowhere else.
    pub async fn download_trade_bill(
        &self,
        location: &BillLocation,
    ) -> Result<TradeBill, WechatError> {
        let base = &self.config().pay_base_url;
        let path = location
            .download_url
            .strip_prefix(base.as_str())
            .filter(|p| p.starts_with('/'))
            .ok_or_else(|| {
                WechatError::Protocol("download_url is not on the Pay API's host".into())
            })?
            .to_string();
        let bytes = self.download(&path).await?;
        let plain = verify_download(location, &bytes, true)?;
        let text = String::from_utf8(plain)
            .map_err(|_| WechatError::Protocol("bill is not UTF-8".into()))?;
        Ok(parse_trade_bill(&text)?)
    }

    async fn download(&self, path: &str) -> Result<Vec<u8>, WechatError> {
        let c = self.config();
        let timestamp = chrono::Utc::now().timestamp();
        let nonce = super::sign::new_nonce();
        let authorization = c
            .merchant
            .authorization("GET", path, timestamp, &nonce, b"")?;
        let started = std::time::Instant::now();
        let result = async {
            let mut response = self
                .inner()
                .http
                .request(Method::GET, format!("{}{}", c.pay_base_url, path))
                .header("Authorization", authorization)
                .send()
                .await
                .map_err(transport_error)?;
            let status = response.status().as_u16();
            if !(200..300).contains(&status) {
                let answer = response.bytes().await.map_err(transport_error)?;
                return Err(super::client::pay_error(status, &answer));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
                body.extend_from_slice(&chunk);
                if body.len() as u64 > MAX_BILL_BYTES {
                    return Err(WechatError::Protocol("bill larger than allowed".into()));
                }
            }
            Ok(body)
        }
        .await;
        self.metrics().observe(
            super::metrics::call_label("GET", "/v3/billdownload/file"),
            started.elapsed(),
            &result,
        );
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_become_fen_exactly() {
        for (yuan, fen) in [
            ("0.00", 0),
            ("0.01", 1),
            ("12.34", 1234),
            ("12.3", 1230),
            ("7", 700),
            ("-0.05", -5),
            ("1000000.00", 100_000_000),
            ("0.29", 29),
            ("1.10", 110),
        ] {
            assert_eq!(yuan_to_fen(yuan), Ok(fen), "{yuan}");
            if yuan.contains('.') && yuan.split('.').nth(1).map(str::len) == Some(2) {
                assert_eq!(fen_to_yuan(fen), yuan);
            }
        }
        for bad in [
            "",
            "-",
            ".5",
            "1.",
            "1.234",
            "1,00",
            "a.00",
            "1e3",
            "+1.00",
            "99999999999999999.00",
        ] {
            assert!(yuan_to_fen(bad).is_err(), "{bad}");
        }
    }

    fn bill(rows: &[&str], summary: &str) -> String {
        let mut s = TRADE_BILL_HEADER.join(",");
        s.push_str("\r\n");
        for r in rows {
            s.push_str(r);
            s.push_str("\r\n");
        }
        s.push_str(&TRADE_BILL_SUMMARY_HEADER.join(","));
        s.push_str("\r\n");
        s.push_str(summary);
        s.push_str("\r\n");
        s
    }

    const PAY: &str = "`2026-12-06 10:00:01,`wxapp,`1900000109,`0,`,`4200000001,`o1,`openid,`JSAPI,`SUCCESS,`OTHERS,`CNY,`12.34,`0.00,`0,`0,`0.00,`0.00,`,`,`咖啡, 大杯,`,`0.07000,`0.60%,`12.34,`0.00,`";
    const REFUND: &str = "`2026-12-06 11:00:00,`wxapp,`1900000109,`0,`,`4200000001,`o1,`openid,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`5000001,`r1,`2.00,`0.00,`ORIGINAL,`SUCCESS,`咖啡,`,`-0.01000,`0.60%,`0.00,`2.00,`";

    #[test]
    fn a_bill_with_a_payment_and_a_refund_reads_into_fen() {
        let text = bill(
            &[PAY, REFUND],
            "`2,`12.34,`2.00,`0.00,`0.06000,`12.34,`2.00",
        );
        let b = parse_trade_bill(&text).unwrap();
        assert_eq!(b.rows.len(), 2);
        assert_eq!(b.rows[0].kind, BillRowKind::Payment);
        assert_eq!(b.rows[0].settlement_fen, 1234);
        assert_eq!(b.rows[0].out_trade_no, "o1");
        assert_eq!(b.rows[0].out_refund_no, None);
        assert_eq!(b.rows[1].kind, BillRowKind::Refund);
        assert_eq!(b.rows[1].refund_fen, 200);
        assert_eq!(b.rows[1].out_refund_no.as_deref(), Some("r1"));
        assert_eq!(b.rows[1].refund_status.as_deref(), Some("SUCCESS"));
        assert_eq!(b.rows[0].fee_fen, 7, "the fee charged");
        assert_eq!(b.rows[1].fee_fen, -1, "the fee returned, negative");
        assert_eq!(b.summary.rows, 2);
        assert_eq!(b.summary.fee_fen, 6);
    }

    #[test]
    fn fees_become_fen_exactly_and_a_fraction_of_a_fen_is_refused() {
        for (text, fen) in [
            ("0.07000", 7),
            ("-0.01000", -1),
            ("0.00000", 0),
            ("74.07000", 7407),
            ("0.5", 50),
            ("3", 300),
            ("1.23", 123),
            ("-12.340", -1234),
        ] {
            assert_eq!(fee_to_fen(text), Ok(fen), "{text}");
        }
        for bad in [
            "0.07100", "0.000001", "0.07000x", "", "-", ".07000", "0,07000", "1.2.3",
        ] {
            assert!(fee_to_fen(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bill_whose_fee_total_disagrees_with_its_rows_is_refused() {
        // The rows' fees are 0.07 - 0.01 = 0.06; the summary says 0.07.
        let text = bill(
            &[PAY, REFUND],
            "`2,`12.34,`2.00,`0.00,`0.07000,`12.34,`2.00",
        );
        let err = parse_trade_bill(&text).unwrap_err();
        assert!(err.to_string().contains("fee"), "{err}");
        // A row whose fee is not money is refused whole too.
        let odd_fee = bill(
            &[&PAY.replace("`0.07000,", "`0.07x,")],
            "`1,`12.34,`0.00,`0.00,`0.07000,`12.34,`0.00",
        );
        assert!(matches!(
            parse_trade_bill(&odd_fee),
            Err(BillError::Amount(_))
        ));
        // Without a fee column the bill is not WeChat's layout.
        let no_fee = bill(&[PAY], "`1,`12.34,`0.00,`0.00,`0.07000,`12.34,`0.00").replacen(
            "手续费",
            "fee",
            1,
        );
        assert!(parse_trade_bill(&no_fee).is_err());
    }

    #[test]
    fn an_empty_day_is_a_header_and_a_zero_summary() {
        let b = parse_trade_bill(&bill(&[], "`0,`0.00,`0.00,`0.00,`0.00000,`0.00,`0.00")).unwrap();
        assert!(b.rows.is_empty());
    }

    #[test]
    fn a_truncated_or_inconsistent_bill_is_refused_whole() {
        let full = bill(&[PAY], "`1,`12.34,`0.00,`0.00,`0.07000,`12.34,`0.00");
        let cut = full.split("总交易单数").next().unwrap_or_default();
        assert!(parse_trade_bill(cut).is_err(), "no summary");
        let wrong_sum = bill(&[PAY], "`1,`12.35,`0.00,`0.00,`0.07000,`12.34,`0.00");
        assert!(parse_trade_bill(&wrong_sum).is_err());
        let wrong_count = bill(&[PAY], "`2,`12.34,`0.00,`0.00,`0.07000,`12.34,`0.00");
        assert!(parse_trade_bill(&wrong_count).is_err());
        let bad_amount = bill(
            &[&PAY.replace("`12.34,`0.00,`0,", "`12.345,`0.00,`0,")],
            "`1,`12.34,`0.00,`0.00,`0.07000,`12.34,`0.00",
        );
        assert!(parse_trade_bill(&bad_amount).is_err());
    }

    #[test]
    fn the_hash_is_over_the_plain_file_and_a_mismatch_is_an_error() {
        use std::io::Write as _;
        let text = bill(&[PAY], "`1,`12.34,`0.00,`0.00,`0.07000,`12.34,`0.00");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let mut loc = BillLocation {
            hash_type: "SHA1".into(),
            hash_value: sha1_hex(text.as_bytes()),
            download_url: String::new(),
        };
        assert_eq!(verify_download(&loc, &gz, true).unwrap(), text.as_bytes());
        loc.hash_value = sha1_hex(b"something else");
        assert!(matches!(
            verify_download(&loc, &gz, true),
            Err(BillError::Hash { .. })
        ));
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }
}
