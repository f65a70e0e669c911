//! Every way a notification can be refused, each with its typed error.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::SecretString;

use super::super::aead::{AeadError, ApiV3Key};
use super::super::keys::{self, PlatformKeys, RsaSigner};
use super::super::notify::{NotificationResource, NotificationVerifier, NotifyError};
use super::super::sign::{FixedClock, PlatformSigner, PlatformVerifier};
use super::super::types::{EncryptedResource, NotificationBody};

use super::testdata;
use super::vectors::vector_platform;

/// A platform and merchant of our own, producing notifications as WeChat does.
struct Fixture {
    signer: PlatformSigner,
    key: ApiV3Key,
    verifier: NotificationVerifier,
    now: i64,
}

pub(super) const APIV3: &str = "0123456789abcdef0123456789ABCDEF";
pub(super) const KEY_ID: &str = "PUB_KEY_ID_0114000000000000000000000001";

fn fixture() -> Fixture {
    let private = keys::generate_private_key().unwrap();
    let public_pem = keys::public_key_to_pem(&private.to_public_key().unwrap()).unwrap();
    let mut platform = PlatformKeys::new();
    // Public-key mode and certificate mode at once, as during WeChat's migration.
    platform.insert(KEY_ID, keys::public_key_from_pem(&public_pem).unwrap());
    let (cert_platform, _) = vector_platform();
    for serial in cert_platform.serials() {
        let pem = keys::read_pem(&testdata("platform_test_cert.pem")).unwrap();
        let (cert_serial, key) = keys::certificate_from_pem(&pem).unwrap();
        assert_eq!(cert_serial, serial);
        platform.insert(cert_serial, key);
    }
    let now = 1_800_000_000;
    let key = ApiV3Key::parse(SecretString::from(APIV3.to_string())).unwrap();
    Fixture {
        signer: PlatformSigner::new(KEY_ID, RsaSigner::new(private)),
        verifier: NotificationVerifier::new(
            PlatformVerifier::with_clock(platform, Arc::new(FixedClock(now))),
            key.clone(),
            "1900000109",
            "wxapp",
        ),
        key,
        now,
    }
}

fn transaction_json(mchid: &str, appid: &str) -> String {
    format!(
        r#"{{"appid":"{appid}","mchid":"{mchid}","out_trade_no":"order-0001","transaction_id":"4200000001","trade_type":"JSAPI","trade_state":"SUCCESS","success_time":"2026-11-27T10:00:00+08:00","payer":{{"openid":"o1"}},"amount":{{"total":1234,"payer_total":1234,"currency":"CNY","payer_currency":"CNY"}}}}"#
    )
}

impl Fixture {
    fn body(&self, event: &str, plaintext: &str, key: &ApiV3Key) -> Vec<u8> {
        let nonce = "abcdefghijkl";
        let body = NotificationBody {
            id: "n-1".into(),
            create_time: "2026-11-27T10:00:00+08:00".into(),
            event_type: event.into(),
            resource_type: "encrypt-resource".into(),
            summary: "ok".into(),
            resource: EncryptedResource {
                algorithm: "AEAD_AES_256_GCM".into(),
                ciphertext: key
                    .encrypt(nonce, "transaction", plaintext.as_bytes())
                    .unwrap(),
                associated_data: "transaction".into(),
                nonce: nonce.into(),
                original_type: "transaction".into(),
            },
        };
        serde_json::to_vec(&body).unwrap()
    }

    fn headers(&self, body: &[u8]) -> HashMap<String, String> {
        self.signer
            .headers(self.now, body)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    fn check(
        &self,
        headers: &HashMap<String, String>,
        body: &[u8],
    ) -> Result<NotificationResource, NotifyError> {
        self.verifier
            .verify_and_decrypt(headers, body)
            .map(|n| n.resource)
    }
}

#[test]
fn a_genuine_notification_is_accepted_and_typed() {
    let f = fixture();
    let body = f.body(
        "TRANSACTION.SUCCESS",
        &transaction_json("1900000109", "wxapp"),
        &f.key,
    );
    let n = f
        .verifier
        .verify_and_decrypt(&f.headers(&body), &body)
        .unwrap();
    assert_eq!(n.id, "n-1");
    assert_eq!(n.event_type, "TRANSACTION.SUCCESS");
    match n.resource {
        NotificationResource::Transaction(t) => {
            assert_eq!(t.amount.total, 1234);
            assert_eq!(t.out_trade_no, "order-0001");
        }
        other => panic!("{other:?}"),
    }
    let refund = r#"{"mchid":"1900000109","out_trade_no":"order-0001","transaction_id":"42","out_refund_no":"r1","refund_id":"50","refund_status":"SUCCESS","amount":{"total":1234,"refund":100,"payer_total":1234,"payer_refund":100}}"#;
    let body = f.body("REFUND.SUCCESS", refund, &f.key);
    assert!(
        matches!(f.check(&f.headers(&body), &body), Ok(NotificationResource::Refund(r)) if r.amount.refund == 100)
    );
}

#[test]
fn tampered_body_or_headers_are_refused() {
    let f = fixture();
    let body = f.body(
        "TRANSACTION.SUCCESS",
        &transaction_json("1900000109", "wxapp"),
        &f.key,
    );
    let headers = f.headers(&body);
    let mut tampered = body.clone();
    tampered[20] ^= 1;
    assert_eq!(f.check(&headers, &tampered), Err(NotifyError::BadSignature));
    let mut h = headers.clone();
    h.insert("Wechatpay-Timestamp".into(), (f.now + 1).to_string());
    assert_eq!(f.check(&h, &body), Err(NotifyError::BadSignature));
    let mut h = headers.clone();
    h.insert("Wechatpay-Nonce".into(), "X".repeat(32));
    assert_eq!(f.check(&h, &body), Err(NotifyError::BadSignature));
    let mut h = headers.clone();
    let sig = h["Wechatpay-Signature"].clone();
    let mut raw = B64.decode(&sig).unwrap();
    raw[0] ^= 1;
    h.insert("Wechatpay-Signature".into(), B64.encode(raw));
    assert_eq!(f.check(&h, &body), Err(NotifyError::BadSignature));
    h.insert("Wechatpay-Signature".into(), "not base64!".into());
    assert_eq!(f.check(&h, &body), Err(NotifyError::BadSignature));
    let mut h = headers.clone();
    h.insert("Wechatpay-Timestamp".into(), "soon".into());
    assert_eq!(
        f.check(&h, &body),
        Err(NotifyError::BadHeader("Wechatpay-Timestamp"))
    );
    let mut h = headers.clone();
    h.insert(
        "Wechatpay-Signature-Type".into(),
        "WECHATPAY2-SM2-WITH-SM3".into(),
    );
    assert_eq!(
        f.check(&h, &body),
        Err(NotifyError::UnsupportedSignatureType)
    );
}

#[test]
fn missing_headers_are_named() {
    let f = fixture();
    let body = f.body(
        "TRANSACTION.SUCCESS",
        &transaction_json("1900000109", "wxapp"),
        &f.key,
    );
    for name in [
        "Wechatpay-Timestamp",
        "Wechatpay-Nonce",
        "Wechatpay-Signature",
        "Wechatpay-Serial",
    ] {
        let mut h = f.headers(&body);
        h.remove(name);
        assert_eq!(
            f.check(&h, &body),
            Err(NotifyError::MissingHeader(name)),
            "{name}"
        );
        let mut h = f.headers(&body);
        h.insert(name.into(), " ".into());
        assert_eq!(
            f.check(&h, &body),
            Err(NotifyError::MissingHeader(name)),
            "{name} blank"
        );
    }
}

#[test]
fn unknown_serial_stale_timestamp_and_signtest_are_refused() {
    let f = fixture();
    let body = f.body(
        "TRANSACTION.SUCCESS",
        &transaction_json("1900000109", "wxapp"),
        &f.key,
    );
    let mut h = f.headers(&body);
    h.insert("Wechatpay-Serial".into(), "PUB_KEY_ID_SOMEONE_ELSE".into());
    assert_eq!(f.check(&h, &body), Err(NotifyError::UnknownSerial));
    // A message genuinely signed long ago.
    let old: HashMap<String, String> = f
        .signer
        .headers(f.now - 301, &body)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(f.check(&old, &body), Err(NotifyError::StaleTimestamp));
    let future: HashMap<String, String> = f
        .signer
        .headers(f.now + 300, &body)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(f.check(&future, &body), Err(NotifyError::StaleTimestamp));
    let mut h = f.headers(&body);
    h.insert(
        "Wechatpay-Signature".into(),
        "WECHATPAY/SIGNTEST/abcdef".into(),
    );
    assert_eq!(f.check(&h, &body), Err(NotifyError::SignTestProbe));
}

#[test]
fn wrong_key_truncated_ciphertext_and_non_json_are_refused() {
    let f = fixture();
    let other = ApiV3Key::parse(SecretString::from(
        "ffffffffffffffffffffffffffffffff".to_string(),
    ))
    .unwrap();
    let body = f.body(
        "TRANSACTION.SUCCESS",
        &transaction_json("1900000109", "wxapp"),
        &other,
    );
    assert_eq!(
        f.check(&f.headers(&body), &body),
        Err(NotifyError::Decrypt(AeadError::Authentication))
    );

    let good = f.body(
        "TRANSACTION.SUCCESS",
        &transaction_json("1900000109", "wxapp"),
        &f.key,
    );
    let mut parsed: NotificationBody = serde_json::from_slice(&good).unwrap();
    let raw = B64.decode(&parsed.resource.ciphertext).unwrap();
    parsed.resource.ciphertext = B64.encode(&raw[..raw.len() - 1]);
    let cut = serde_json::to_vec(&parsed).unwrap();
    assert_eq!(
        f.check(&f.headers(&cut), &cut),
        Err(NotifyError::Decrypt(AeadError::Authentication))
    );
    parsed.resource.ciphertext = B64.encode(&raw[..8]);
    let cut = serde_json::to_vec(&parsed).unwrap();
    assert_eq!(
        f.check(&f.headers(&cut), &cut),
        Err(NotifyError::Decrypt(AeadError::Truncated))
    );

    let not_json = b"<xml>hello</xml>".to_vec();
    assert_eq!(
        f.check(&f.headers(&not_json), &not_json),
        Err(NotifyError::NotJson)
    );
    let plain_not_json = f.body("TRANSACTION.SUCCESS", "not json", &f.key);
    assert_eq!(
        f.check(&f.headers(&plain_not_json), &plain_not_json),
        Err(NotifyError::BadResource)
    );
}

#[test]
fn notifications_for_another_merchant_or_app_are_refused() {
    let f = fixture();
    let body = f.body(
        "TRANSACTION.SUCCESS",
        &transaction_json("1900000999", "wxapp"),
        &f.key,
    );
    assert_eq!(
        f.check(&f.headers(&body), &body),
        Err(NotifyError::WrongMerchant)
    );
    let body = f.body(
        "TRANSACTION.SUCCESS",
        &transaction_json("1900000109", "wxother"),
        &f.key,
    );
    assert_eq!(
        f.check(&f.headers(&body), &body),
        Err(NotifyError::WrongApp)
    );
    assert_eq!(
        f.verifier.check_merchant("1900000109", Some("wxapp")),
        Ok(())
    );
    assert_eq!(f.verifier.check_merchant("1900000109", None), Ok(()));
}

#[test]
fn absurd_timestamps_are_stale_not_a_crash() {
    let f = fixture();
    let body = f.body(
        "TRANSACTION.SUCCESS",
        &transaction_json("1900000109", "wxapp"),
        &f.key,
    );
    for ts in [i64::MIN, i64::MAX, -1] {
        let mut h = f.headers(&body);
        h.insert("Wechatpay-Timestamp".into(), ts.to_string());
        assert_eq!(f.check(&h, &body), Err(NotifyError::StaleTimestamp), "{ts}");
    }
    assert_eq!(NotifyError::StaleTimestamp.http_status(), 401);
    assert_eq!(NotifyError::WrongApp.answer_body()["code"], "FAIL");
}

/// A writer that keeps what the subscriber writes, for checking log lines.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn each_refusal_is_logged_once_at_warn_as_security_without_secrets() {
    let f = fixture();
    let body = f.body(
        "TRANSACTION.SUCCESS",
        &transaction_json("1900000999", "wxapp"),
        &f.key,
    );
    let headers = f.headers(&body);
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        assert_eq!(f.check(&headers, &body), Err(NotifyError::WrongMerchant));
        f.check(&headers, &body).unwrap_err();
    });
    let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "one line per refusal: {out}");
    let line = &lines[0];
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["fields"]["category"], "security");
    assert_eq!(line["fields"]["serial"], KEY_ID);
    assert_eq!(line["fields"]["nonce"], headers["Wechatpay-Nonce"].as_str());
    for secret in [APIV3, "o1", "1234", headers["Wechatpay-Signature"].as_str()] {
        assert!(
            !out.contains(&format!("\"{secret}\"")),
            "{secret} leaked: {out}"
        );
    }
}
