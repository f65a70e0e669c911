//! The official vectors byte for byte, and every way a notification can be refused.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::LineEnding;
use secrecy::SecretString;

use super::aead::{AeadError, ApiV3Key};
use super::keys::{self, PlatformKeys, RsaSigner, RsaVerifier};
use super::notify::{NotificationResource, NotificationVerifier, NotifyError};
use super::sign::{
    AuthorizationHeader, FixedClock, MerchantSigner, PlatformSigner, PlatformVerifier, VerifyError,
    request_message,
};
use super::types::{EncryptedResource, NotificationBody};

fn testdata(file: &str) -> PathBuf {
    let beside = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/wechatpay");
    let dir = if beside.exists() {
        beside
    } else {
        PathBuf::from("/work/shared/testdata/wechatpay")
    };
    dir.join(file)
}

fn vectors() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(testdata("vectors.json")).unwrap()).unwrap()
}

fn s<'a>(v: &'a serde_json::Value, path: &[&str]) -> &'a str {
    path.iter().fold(v, |v, k| &v[*k]).as_str().unwrap()
}

#[test]
fn rsa_signature_vector_byte_for_byte() {
    let v = vectors();
    let pem = keys::read_pem(&testdata(s(&v, &["rsa_sign", "private_key_file"]))).unwrap();
    let signer = RsaSigner::new(keys::private_key_from_pem(&pem).unwrap());
    let message = s(&v, &["rsa_sign", "message"]);
    assert_eq!(
        signer.sign_base64(message.as_bytes()),
        s(&v, &["rsa_sign", "signature"])
    );

    // The same key as PKCS#1 signs identically.
    let key = keys::private_key_from_pem(&pem).unwrap();
    let pkcs1 = key.to_pkcs1_pem(LineEnding::LF).unwrap();
    assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let again = RsaSigner::new(keys::private_key_from_pem(&pkcs1).unwrap());
    assert_eq!(
        again.sign_base64(message.as_bytes()),
        s(&v, &["rsa_sign", "signature"])
    );
}

#[test]
fn authorization_header_has_wechats_shape_and_verifies() {
    let v = vectors();
    let pem = keys::read_pem(&testdata("merchant_test_key.pem")).unwrap();
    let key = keys::private_key_from_pem(&pem).unwrap();
    let public = key.to_public_key();
    let merchant = MerchantSigner::new(
        s(&v, &["rsa_sign", "mchid"]),
        s(&v, &["rsa_sign", "serial_no"]),
        RsaSigner::new(key),
    );
    let body = br#"{"mchid":"1234567890"}"#;
    let header = merchant.authorization(
        "POST",
        "/v3/pay/transactions/jsapi",
        1624523846,
        "NONCE123",
        body,
    );
    assert!(header.starts_with("WECHATPAY2-SHA256-RSA2048 mchid=\"1234567890\",nonce_str=\"NONCE123\",timestamp=\"1624523846\",serial_no=\"F5765756002FDD77\",signature=\""));
    let parsed = AuthorizationHeader::parse(&header).unwrap();
    let message = request_message(
        "POST",
        "/v3/pay/transactions/jsapi",
        1624523846,
        "NONCE123",
        body,
    );
    assert_eq!(
        message,
        b"POST\n/v3/pay/transactions/jsapi\n1624523846\nNONCE123\n{\"mchid\":\"1234567890\"}\n"
    );
    assert!(RsaVerifier::new(public.clone()).verify_base64(&message, &parsed.signature));
    let get = request_message("GET", "/v3/x?mchid=1", 1, "n", b"");
    assert_eq!(get, b"GET\n/v3/x?mchid=1\n1\nn\n\n");
    assert!(AuthorizationHeader::parse("WECHATPAY2-SHA256-RSA2048 mchid=\"1\"").is_none());
}

#[test]
fn aes_256_gcm_vector_byte_for_byte() {
    let v = vectors();
    let a = &v["aes_256_gcm"];
    let key = ApiV3Key::parse(SecretString::from(s(a, &["key"]).to_string())).unwrap();
    let plain = key
        .decrypt(
            s(a, &["nonce"]),
            s(a, &["associated_data"]),
            s(a, &["ciphertext"]),
        )
        .unwrap();
    assert_eq!(plain, s(a, &["plaintext"]).as_bytes());
    let encrypted = key
        .encrypt(
            s(a, &["nonce"]),
            s(a, &["associated_data"]),
            s(a, &["plaintext"]).as_bytes(),
        )
        .unwrap();
    assert_eq!(encrypted, s(a, &["ciphertext"]));
    // Wrong AAD, a flipped tag bit, or a cut tag all fail.
    assert_eq!(
        key.decrypt(s(a, &["nonce"]), "other", s(a, &["ciphertext"])),
        Err(AeadError::Authentication)
    );
    let mut raw = B64.decode(s(a, &["ciphertext"])).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    assert_eq!(
        key.decrypt(
            s(a, &["nonce"]),
            s(a, &["associated_data"]),
            &B64.encode(&raw)
        ),
        Err(AeadError::Authentication)
    );
    assert_eq!(
        key.decrypt(
            s(a, &["nonce"]),
            s(a, &["associated_data"]),
            &B64.encode(&raw[..10])
        ),
        Err(AeadError::Truncated)
    );
    assert!(ApiV3Key::parse(SecretString::from("short".to_string())).is_err());
}

fn vector_platform() -> (PlatformKeys, serde_json::Value) {
    let v = vectors();
    let n = v["notification_signature"].clone();
    let pem = keys::read_pem(&testdata(s(&n, &["platform_certificate_file"]))).unwrap();
    let mut platform = PlatformKeys::new();
    let serial = platform.insert_certificate_pem(&pem).unwrap();
    assert_eq!(serial, s(&n, &["headers", "Wechatpay-Serial"]));
    (platform, n)
}

fn vector_headers(n: &serde_json::Value) -> HashMap<String, String> {
    n["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn notification_signature_vector_with_the_clock_at_its_time() {
    let (platform, n) = vector_platform();
    let headers = vector_headers(&n);
    let body = s(&n, &["body"]).as_bytes();
    let at = |t: i64| PlatformVerifier::with_clock(platform.clone(), Arc::new(FixedClock(t)));
    at(1624523846).verify_headers(&headers, body).unwrap();
    at(1624523846 + 299).verify_headers(&headers, body).unwrap();
    at(1624523846 - 299).verify_headers(&headers, body).unwrap();
    assert_eq!(
        at(1624523846 + 300).verify_headers(&headers, body),
        Err(VerifyError::StaleTimestamp)
    );
    assert_eq!(
        at(1624523846 - 300).verify_headers(&headers, body),
        Err(VerifyError::StaleTimestamp)
    );
    // One byte of the raw body changed (re-serialising would change bytes too).
    let mut tampered = body.to_vec();
    tampered[10] ^= 1;
    assert_eq!(
        at(1624523846).verify_headers(&headers, &tampered),
        Err(VerifyError::BadSignature)
    );
}

/// A platform and merchant of our own, producing notifications as WeChat does.
struct Fixture {
    signer: PlatformSigner,
    key: ApiV3Key,
    verifier: NotificationVerifier,
    now: i64,
}

const APIV3: &str = "0123456789abcdef0123456789ABCDEF";
const KEY_ID: &str = "PUB_KEY_ID_0114000000000000000000000001";

fn fixture() -> Fixture {
    let private = keys::generate_private_key().unwrap();
    let public_pem = keys::public_key_to_pem(&private.to_public_key()).unwrap();
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
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(f.check(&old, &body), Err(NotifyError::StaleTimestamp));
    let future: HashMap<String, String> = f
        .signer
        .headers(f.now + 300, &body)
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
