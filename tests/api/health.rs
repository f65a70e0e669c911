use crate::helpers::spawn_app;

#[actix_web::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
}

#[actix_web::test]
async fn readyz_checks_the_database_and_redis() {
    let app = spawn_app().await;
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    let redis_expected = if std::env::var("REDIS_URL").is_ok_and(|u| !u.is_empty()) {
        "ok"
    } else {
        "not configured"
    };
    assert_eq!(body["redis"], redis_expected);
}

#[actix_web::test]
async fn readyz_reports_an_unreachable_redis_without_failing() {
    let db = crate::helpers::TestDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(&db, dir.path());
    // Nothing listens on port 1: the server starts and serves from the database; readiness
    // says so but stays 200 (a shared Redis down must not empty the load balancer).
    settings.redis_url = Some("redis://127.0.0.1:1".to_string().into());
    let app = points_app::startup::Application::build(settings)
        .await
        .unwrap();
    let port = app.port();
    actix_web::rt::spawn(app.run_until_stopped());
    let res = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["redis"], "unreachable");
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("dependency_up{dependency=\"redis\"} 0"),
        "{metrics}"
    );
}

#[actix_web::test]
async fn request_id_is_taken_from_the_caller_or_generated() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("X-Request-Id", "caller-id-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "caller-id-123");
    // A value that could forge log lines is replaced, not echoed.
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("X-Request-Id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(id, "bad id with spaces");
    assert_eq!(id.len(), 32);
}

#[actix_web::test]
async fn metrics_count_requests_by_route_template_and_status() {
    let app = spawn_app().await;
    app.get("/healthz").await;
    app.get("/healthz").await;
    app.get("/no/such/route").await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
}

/// An idle connection stays open longer than a proxy in front keeps its own (nginx: 60 s):
/// the server closing first would race the proxy's next request on it. Checked past actix's
/// default of 5 s: a second request on the same connection after 6 s idle is answered.
#[actix_web::test]
async fn an_idle_connection_is_kept_past_five_seconds() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut buf = vec![0u8; 4096];
    for round in 0..2 {
        if round == 1 {
            tokio::time::sleep(std::time::Duration::from_secs(6)).await;
        }
        conn.write_all(request).await.unwrap();
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), conn.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap_or(0);
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "round {round}: {head:?} (0 bytes: the server closed the connection)"
        );
    }
}
