//! The admin console at `/admin/`: SPA fallback, cache headers, CSP; a clear error when the
//! console has not been built.

use crate::helpers::{TestDatabase, error_body, test_settings};

async fn serve(admin_dir: Option<&std::path::Path>) -> (String, TestDatabase, tempfile::TempDir) {
    let db = TestDatabase::create();
    let data = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&db, data.path());
    settings.admin_dir = admin_dir
        .map(|d| d.to_path_buf())
        .unwrap_or_else(|| data.path().join("no-admin-build"));
    let app = points_app::startup::Application::build(settings)
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    actix_web::rt::spawn(app.run_until_stopped());
    (url, db, data)
}

#[actix_web::test]
async fn the_built_console_is_served_with_cache_headers_and_csp() {
    let dist = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dist.path().join("assets")).unwrap();
    std::fs::write(
        dist.path().join("index.html"),
        "<!doctype html><div id=app></div>",
    )
    .unwrap();
    std::fs::write(
        dist.path().join("assets/index-abc123.js"),
        "console.log(1)".repeat(200),
    )
    .unwrap();
    let (url, _db, _data) = serve(Some(dist.path())).await;
    let client = reqwest::Client::new();

    let index = client.get(format!("{url}/admin/")).send().await.unwrap();
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()["cache-control"], "no-cache");
    let csp = index.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(index.headers()["x-frame-options"], "DENY");
    assert_eq!(index.headers()["referrer-policy"], "same-origin");
    assert!(index.text().await.unwrap().contains("id=app"));

    let asset = client
        .get(format!("{url}/admin/assets/index-abc123.js"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(asset.status(), 200);
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(asset.headers()["content-encoding"], "gzip");

    // A console route the browser handles: index.html, not a 404.
    let deep = client
        .get(format!("{url}/admin/orders/123"))
        .send()
        .await
        .unwrap();
    assert_eq!(deep.status(), 200);
    assert!(deep.text().await.unwrap().contains("id=app"));
}

#[actix_web::test]
async fn an_unbuilt_console_says_how_to_build_it() {
    let (url, _db, _data) = serve(None).await;
    let res = reqwest::get(format!("{url}/admin/")).await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(error_body(res).await["code"], "ADMIN_NOT_BUILT");
}

/// Errors of the static files (a path that tries to climb out, a hidden file) are the same
/// JSON as every other error, not actix's plain text.
#[actix_web::test]
async fn console_errors_are_json_too() {
    let dist = tempfile::tempdir().unwrap();
    std::fs::write(dist.path().join("index.html"), "<!doctype html>").unwrap();
    let (url, _db, _data) = serve(Some(dist.path())).await;
    let client = reqwest::Client::new();
    let mut seen = Vec::new();
    for path in [
        "/admin/%2E%2E/Cargo.toml",
        "/admin/a/%2e%2e/%2e%2e/x",
        "/admin/.env",
        "/admin/%00",
    ] {
        let res = client.get(format!("{url}{path}")).send().await.unwrap();
        let status = res.status();
        seen.push((path, status.as_u16()));
        if status.is_client_error() {
            let body = error_body(res).await;
            assert!(body["code"].is_string(), "{path}: {body}");
        }
    }
    assert!(seen.iter().any(|(_, s)| *s == 400), "{seen:?}");
}
