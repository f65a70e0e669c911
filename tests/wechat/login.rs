use points_app::config::Settings;
use points_app::sandbox::mini_api::UNSUBSCRIBED_TEMPLATE;
use points_app::wechat::{self, MpErrorCode, SubscribeMessage, WechatError};

use crate::helpers::TestSandbox;

fn mp_code(e: WechatError) -> MpErrorCode {
    match e {
        WechatError::MiniProgram { code, .. } => code,
        other => panic!("expected a mini-program error, got {other:?}"),
    }
}

#[actix_web::test]
async fn test_codes_give_stable_openids_and_work_once() {
    let sb = TestSandbox::start().await;
    let c = &sb.client;
    let alice = c.code2session("test-alice.1").await.unwrap();
    let alice_again = c.code2session("test-alice.2").await.unwrap();
    let bob = c.code2session("test-bob").await.unwrap();
    assert_eq!(alice.openid, alice_again.openid);
    assert_ne!(alice.openid, bob.openid);
    assert_eq!(alice.openid.len(), 28);
    // The session key is a secret: it never prints.
    assert!(
        !format!("{alice:?}").contains(secrecy::ExposeSecret::expose_secret(&alice.session_key))
    );

    assert_eq!(
        mp_code(c.code2session("test-alice.1").await.unwrap_err()),
        MpErrorCode::CodeUsed
    );
    assert_eq!(
        mp_code(c.code2session("081abcdef").await.unwrap_err()),
        MpErrorCode::InvalidCode
    );
    assert_eq!(
        mp_code(c.code2session("err-45011").await.unwrap_err()),
        MpErrorCode::RateLimited
    );
    assert_eq!(
        mp_code(c.code2session("err-40226").await.unwrap_err()),
        MpErrorCode::HighRiskUser
    );
    assert_eq!(
        mp_code(c.code2session("err--1").await.unwrap_err()),
        MpErrorCode::Busy
    );
    assert!(matches!(
        c.code2session("").await.unwrap_err(),
        WechatError::InvalidRequest(_)
    ));
}

#[actix_web::test]
async fn a_wrong_app_secret_is_refused() {
    let sb = TestSandbox::start().await;
    let mut config = sb.config();
    config.app_secret = secrecy::SecretString::from("not-the-secret".to_string());
    let client = wechat::WechatClient::new(config).unwrap();
    assert_eq!(
        mp_code(client.code2session("test-alice").await.unwrap_err()),
        MpErrorCode::InvalidAppSecret
    );
}

#[actix_web::test]
async fn subscribe_messages_use_a_cached_token_refreshed_when_replaced() {
    let sb = TestSandbox::start().await;
    let c = &sb.client;
    let message = |template: &str| SubscribeMessage {
        touser: "o-alice".into(),
        template_id: template.into(),
        page: Some("pages/points/index".into()),
        data: serde_json::json!({"thing1": {"value": "Coffee"}, "amount2": {"value": "¥12.34"}}),
        miniprogram_state: Some("developer".into()),
        lang: Some("zh_CN".into()),
    };
    c.send_subscribe_message(&message("tmpl-paid"))
        .await
        .unwrap();
    c.send_subscribe_message(&message("tmpl-paid"))
        .await
        .unwrap();
    // The token is gone (as when another instance fetched a new one): one refresh, then sent.
    let r = sb
        .http
        .post(sb.url("/sandbox/token/expire"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    c.send_subscribe_message(&message("tmpl-points"))
        .await
        .unwrap();
    let err = c
        .send_subscribe_message(&message(UNSUBSCRIBED_TEMPLATE))
        .await
        .unwrap_err();
    assert_eq!(mp_code(err), MpErrorCode::NotSubscribed);
    let sent = sb.get("/sandbox/messages").await;
    let sent = sent["messages"].as_array().unwrap();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[2]["message"]["template_id"], "tmpl-points");
}

#[actix_web::test]
async fn setup_starts_a_sandbox_with_keys_kept_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let vars: Vec<(String, String)> = [
        ("APP_PORT", "0"),
        ("APP_DATA_DIR", dir.path().to_str().unwrap()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let settings = Settings::load_from(&vars).unwrap();
    let (client, _verifier, handle) = wechat::setup(&settings).await.unwrap();
    let handle = handle.expect("sandbox mode starts a sandbox");
    assert!(handle.port() > 0);
    client.code2session("test-setup").await.unwrap();
    let key_file = dir.path().join("sandbox/platform_private_key.pem");
    let first = std::fs::read(&key_file).unwrap();
    handle.stop().await;

    let (client, _, handle) = wechat::setup(&settings).await.unwrap();
    let handle = handle.unwrap();
    assert_eq!(std::fs::read(&key_file).unwrap(), first);
    client
        .jsapi_prepay(&crate::helpers::prepay_request("order-setup", 1, "o1"))
        .await
        .unwrap();
    handle.stop().await;
}

/// WeChat keeps one access token per app current. Instances sharing it through Redis fetch
/// it once between them; instances that each fetched their own would invalidate each other.
#[actix_web::test]
async fn instances_share_the_access_token_through_redis() {
    let Some(url) = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("REDIS_URL not set: skipped (runs in the MariaDB + Redis pass)");
        return;
    };
    let sb = TestSandbox::start().await;
    let a = &sb.client;
    let b = points_app::wechat::WechatClient::new(sb.config()).unwrap();
    let pool = bb8::Pool::builder()
        .build(points_app::cache::RedisManager::new(url).unwrap())
        .await
        .unwrap();
    let key = format!("t{}:wechat:access_token", uuid::Uuid::now_v7().simple());
    a.share_token_through(pool.clone(), key.clone());
    b.share_token_through(pool, key);
    let message = SubscribeMessage {
        touser: "o-alice".into(),
        template_id: "tmpl-paid".into(),
        page: None,
        data: serde_json::json!({"thing1": {"value": "Coffee"}}),
        miniprogram_state: None,
        lang: None,
    };
    for _ in 0..3 {
        a.send_subscribe_message(&message).await.unwrap();
        b.send_subscribe_message(&message).await.unwrap();
    }
    let fetched = |c: &points_app::wechat::WechatClient| {
        c.metrics()
            .calls_total
            .with_label_values(&["token", "ok"])
            .get()
    };
    assert_eq!(fetched(a) + fetched(&b), 1, "one token for both instances");
    let refused = |c: &points_app::wechat::WechatClient| {
        c.metrics()
            .calls_total
            .with_label_values(&["subscribe_send", "mp_error"])
            .get()
    };
    assert_eq!(refused(a) + refused(&b), 0, "no send met a replaced token");

    // A token replaced behind their backs (another app server): one refresh, shared again.
    sb.control("/sandbox/token/expire").await;
    a.send_subscribe_message(&message).await.unwrap();
    b.send_subscribe_message(&message).await.unwrap();
    assert_eq!(fetched(a) + fetched(&b), 2);
    let sent = sb.get("/sandbox/messages").await;
    assert_eq!(sent["messages"].as_array().unwrap().len(), 8);
}
