use points_app::config::Settings;
use points_app::startup::Application;

/// The one-command demo: with no `WECHAT_*` settings the server starts the sandbox beside
/// itself, and its client and the sandbox share keys.
#[actix_web::test]
async fn the_server_starts_the_sandbox_beside_itself() {
    let dir = tempfile::tempdir().unwrap();
    let vars: Vec<(String, String)> = [
        ("APP_PORT", "0"),
        ("APP_DATA_DIR", dir.path().to_str().unwrap()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let app = Application::build(Settings::load_from(&vars).unwrap())
        .await
        .unwrap();
    let sandbox = app.sandbox_url().expect("sandbox mode");
    let wechat = app.state().wechat.clone();
    let metrics = app.state().metrics.clone();
    let port = app.port();
    let handle = app.handle();
    let server = actix_web::rt::spawn(app.run_until_stopped());
    assert_eq!(wechat.client.config().pay_base_url, sandbox);
    assert_eq!(
        wechat.client.config().notify_base_url,
        format!("http://127.0.0.1:{port}")
    );
    let session = wechat.client.code2session("test-demo").await.unwrap();
    assert!(session.openid.starts_with('o'));
    let prepay = wechat
        .client
        .jsapi_prepay(&crate::helpers::prepay_request(
            "order-demo1",
            100,
            &session.openid,
        ))
        .await
        .unwrap();
    assert!(prepay.prepay_id.starts_with("wx"));
    let rendered = metrics.render();
    assert!(
        rendered.contains(r#"wechat_calls_total{call="code2session",outcome="ok"} 1"#),
        "{rendered}"
    );
    assert!(rendered.contains(r#"wechat_calls_total{call="prepay",outcome="ok"} 1"#));
    handle.stop(true).await;
    server.await.unwrap().unwrap();
}

/// Real mode against a standalone sandbox: the `WECHAT_*` settings printed by `sandbox env`
/// are read by `WechatConfig::from_settings` and the client works with them.
#[actix_web::test]
async fn wechat_settings_from_sandbox_env_drive_the_real_mode() {
    let sb = crate::helpers::TestSandbox::start().await;
    let keys_dir = sb.handle.keys().dir.clone();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args([
            "env",
            "--keys-dir",
            keys_dir.to_str().unwrap(),
            "--base-url",
            &sb.handle.base_url(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let data = tempfile::tempdir().unwrap();
    let mut vars: Vec<(String, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.strip_prefix("export ").unwrap().split_once('=').unwrap();
            (k.to_string(), v.trim_matches('\'').to_string())
        })
        .collect();
    assert_eq!(vars.len(), 10);
    vars.push(("APP_PORT".into(), "0".into()));
    vars.push(("APP_DATA_DIR".into(), data.path().to_str().unwrap().into()));
    vars.push((
        "WECHAT_NOTIFY_BASE_URL".into(),
        "https://pay.example.test".into(),
    ));
    let settings = Settings::load_from(&vars).unwrap();
    assert!(!settings.wechat.is_sandbox());
    let (client, _verifier, handle) = points_app::wechat::setup(&settings).await.unwrap();
    assert!(handle.is_none(), "real mode starts no sandbox");
    assert_eq!(
        client.config().notify_url("/n"),
        "https://pay.example.test/n"
    );
    client.code2session("test-real-mode").await.unwrap();
    let prepay = client
        .jsapi_prepay(&crate::helpers::prepay_request("order-real1", 100, "o1"))
        .await
        .unwrap();
    assert!(prepay.prepay_id.starts_with("wx"));
    assert!(!data.path().join("sandbox").exists());
}
