//! The official vectors byte for byte, every way a notification can be refused, typed
//! error codes and configuration loading.

mod config;
mod refusals;
mod timing;
mod vectors;

use std::path::PathBuf;

/// A file of the official vectors, kept in the repository (`tests/vectors/wechatpay`).
pub(super) fn testdata(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/wechatpay")
        .join(file)
}

pub(super) fn vectors() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(testdata("vectors.json")).unwrap()).unwrap()
}

pub(super) fn s<'a>(v: &'a serde_json::Value, path: &[&str]) -> &'a str {
    path.iter().fold(v, |v, k| &v[*k]).as_str().unwrap()
}

#[test]
fn error_codes_are_typed() {
    use super::error::{MpErrorCode, PayErrorCode};
    for code in [
        "ORDERPAID",
        "ORDER_CLOSED",
        "NOT_ENOUGH",
        "SIGN_ERROR",
        "PARAM_ERROR",
        "SYSTEM_ERROR",
        "FREQUENCY_LIMITED",
        "OUT_TRADE_NO_USED",
    ] {
        let parsed = PayErrorCode::parse(code);
        assert!(!matches!(parsed, PayErrorCode::Other(_)), "{code}");
        assert_eq!(parsed.as_str(), code);
    }
    assert_eq!(
        PayErrorCode::parse("ORDERNOTEXIST"),
        PayErrorCode::OrderNotExist
    );
    assert_eq!(
        PayErrorCode::parse("NEW_CODE"),
        PayErrorCode::Other("NEW_CODE".into())
    );
    for code in [40029, 40163, 45011, 40226, -1, 40001, 42001, 43101, 47003] {
        let parsed = MpErrorCode::from_code(code);
        assert!(!matches!(parsed, MpErrorCode::Other(_)), "{code}");
        assert_eq!(parsed.code(), code);
    }
}
