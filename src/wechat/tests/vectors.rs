//! The official vectors of `tests/vectors/wechatpay/vectors.json`, byte for byte.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::SecretString;
use x509_cert::der::asn1::AnyRef;
use x509_cert::der::pem::{self, LineEnding};
use x509_cert::der::{Decode as _, Tag, Tagged as _};

use super::super::aead::{AeadError, ApiV3Key};
use super::super::keys::{self, PlatformKeys, RsaSigner, RsaVerifier};
use super::super::sign::{
    AuthorizationHeader, FixedClock, MerchantSigner, PlatformVerifier, VerifyError, request_message,
};

use super::{s, testdata, vectors};

#[test]
fn rsa_signature_vector_byte_for_byte() {
    let v = vectors();
    let pem = keys::read_pem(&testdata(s(&v, &["rsa_sign", "private_key_file"]))).unwrap();
    let signer = RsaSigner::new(keys::private_key_from_pem(&pem).unwrap());
    let message = s(&v, &["rsa_sign", "message"]);
    assert_eq!(
        signer.sign_base64(message.as_bytes()).unwrap(),
        s(&v, &["rsa_sign", "signature"])
    );

    // The same key as PKCS#1 signs identically.
    let pkcs1 = pkcs1_pem_of(&pem);
    assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let again = RsaSigner::new(keys::private_key_from_pem(&pkcs1).unwrap());
    assert_eq!(
        again.sign_base64(message.as_bytes()).unwrap(),
        s(&v, &["rsa_sign", "signature"])
    );
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 PEM (its third field, an OCTET STRING), as PEM.
fn pkcs1_pem_of(pkcs8_pem: &str) -> String {
    let (label, der) = pem::decode_vec(pkcs8_pem.as_bytes()).unwrap();
    assert_eq!(label, "PRIVATE KEY");
    let fields = Vec::<AnyRef<'_>>::from_der(&der).unwrap();
    let [version, _algorithm, key] = fields.as_slice() else {
        panic!("PKCS#8 has three fields here");
    };
    assert_eq!(version.value(), [0]);
    assert_eq!(key.tag(), Tag::OctetString);
    pem::encode_string("RSA PRIVATE KEY", LineEnding::LF, key.value()).unwrap()
}

#[test]
fn authorization_header_has_wechats_shape_and_verifies() {
    let v = vectors();
    let pem = keys::read_pem(&testdata("merchant_test_key.pem")).unwrap();
    let key = keys::private_key_from_pem(&pem).unwrap();
    let public = key.to_public_key().unwrap();
    let merchant = MerchantSigner::new(
        s(&v, &["rsa_sign", "mchid"]),
        s(&v, &["rsa_sign", "serial_no"]),
        RsaSigner::new(key),
    );
    let body = br#"{"mchid":"1234567890"}"#;
    let header = merchant
        .authorization(
            "POST",
            "/v3/pay/transactions/jsapi",
            1624523846,
            "NONCE123",
            body,
        )
        .unwrap();
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

pub(super) fn vector_platform() -> (PlatformKeys, serde_json::Value) {
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
