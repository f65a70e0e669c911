//! `WechatConfig::from_settings`: key files read, each missing setting named.

use secrecy::SecretString;

use super::super::keys;
use super::refusals::{APIV3, KEY_ID};
use super::{s, testdata, vectors};

#[test]
fn config_reads_key_files_and_names_what_is_missing() {
    use super::super::config::{WechatConfig, WechatConfigError};
    use crate::config::WechatSettings;

    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("pub.pem");
    let key = keys::generate_private_key().unwrap();
    std::fs::write(
        &public,
        keys::public_key_to_pem(&key.to_public_key().unwrap()).unwrap(),
    )
    .unwrap();
    let settings = WechatSettings {
        appid: Some("wxapp".into()),
        app_secret: Some(SecretString::from("secret".to_string())),
        mchid: Some("1900000109".into()),
        merchant_serial_no: Some("F5765756002FDD77".into()),
        merchant_private_key_file: Some(testdata("merchant_test_key.pem")),
        apiv3_key: Some(SecretString::from(APIV3.to_string())),
        platform_public_key_file: Some(public),
        platform_public_key_id: Some(KEY_ID.into()),
        platform_certificate_file: Some(testdata("platform_test_cert.pem")),
        pay_base_url: Some("http://127.0.0.1:1/".into()),
        api_base_url: None,
        notify_base_url: Some("https://pay.example.test".into()),
    };
    let config = WechatConfig::from_settings(&settings).unwrap();
    let mut serials: Vec<_> = config.platform.keys().serials().collect();
    serials.sort();
    assert_eq!(serials, vec!["D7CE59D1F522D701", KEY_ID]);
    assert_eq!(config.pay_base_url, "http://127.0.0.1:1");
    assert_eq!(config.api_base_url, "https://api.weixin.qq.com");
    assert_eq!(
        config.notify_url("/notify"),
        "https://pay.example.test/notify"
    );
    // The merchant signs exactly as the vector says.
    assert_eq!(
        config.merchant.sign(b"source").unwrap(),
        s(&vectors(), &["rsa_sign", "signature"])
    );
    let shown = format!("{config:?}");
    assert!(
        !shown.contains(APIV3) && !shown.contains("secret\""),
        "{shown}"
    );

    let missing = WechatSettings {
        appid: None,
        ..settings.clone()
    };
    assert!(matches!(
        WechatConfig::from_settings(&missing),
        Err(WechatConfigError::Missing("APPID"))
    ));
    let short = WechatSettings {
        apiv3_key: Some(SecretString::from("short".to_string())),
        ..settings.clone()
    };
    assert!(matches!(
        WechatConfig::from_settings(&short),
        Err(WechatConfigError::ApiV3Key(_))
    ));
    let bad_id = WechatSettings {
        platform_public_key_id: Some("123".into()),
        ..settings.clone()
    };
    assert!(matches!(
        WechatConfig::from_settings(&bad_id),
        Err(WechatConfigError::Invalid(..))
    ));
    let no_platform = WechatSettings {
        platform_public_key_file: None,
        platform_public_key_id: None,
        platform_certificate_file: None,
        ..settings.clone()
    };
    assert!(matches!(
        WechatConfig::from_settings(&no_platform),
        Err(WechatConfigError::Missing(_))
    ));
    let no_file = WechatSettings {
        merchant_private_key_file: Some("/nonexistent.pem".into()),
        ..settings
    };
    assert!(matches!(
        WechatConfig::from_settings(&no_file),
        Err(WechatConfigError::Key(_))
    ));
}
