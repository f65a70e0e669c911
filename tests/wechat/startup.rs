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
