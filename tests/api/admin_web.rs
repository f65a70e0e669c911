//! The admin console at `/admin/`: built into the binary (or read from `APP_ADMIN_DIR`), SPA
//! fallback, cache headers, ETags, CSP; a clear error when there is no console.

use crate::helpers::{TestDatabase, error_body, test_settings};

async fn serve(admin_dir: Option<&std::path::Path>) -> (String, TestDatabase, tempfile::TempDir) {
    let db = TestDatabase::create();
    let data = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&db, data.path());
    settings.admin_dir = admin_dir.map(|d| d.to_path_buf());
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
async fn a_console_dir_without_a_build_says_how_to_get_one() {
    let empty = tempfile::tempdir().unwrap();
    let (url, _db, _data) = serve(Some(empty.path())).await;
    let res = reqwest::get(format!("{url}/admin/")).await.unwrap();
    assert_eq!(res.status(), 503);
    let body = error_body(res).await;
    assert_eq!(body["code"], "ADMIN_NOT_BUILT");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("holds no index.html") && message.contains("Node.js"),
        "{message}"
    );
}

/// The console `build.rs` built into the binary, served with no directory configured: the
/// first command of the README gives it. (Built with `POINTS_ADMIN_BUILD=0` or without npm,
/// the binary has none and says so; `.ci/run` also fetches it from a started server.)
#[actix_web::test]
async fn the_console_built_into_the_binary_is_served() {
    let build = points_app::http::admin_web::CONSOLE_BUILD;
    let (url, _db, _data) = serve(None).await;
    let client = reqwest::Client::new();
    let index = client.get(format!("{url}/admin/")).send().await.unwrap();
    if build.starts_with("not built") {
        assert_eq!(index.status(), 503);
        let body = error_body(index).await;
        assert!(body["message"].as_str().unwrap().contains(build), "{body}");
        return;
    }
    assert_eq!(index.status(), 200, "{build}");
    assert_eq!(index.headers()["cache-control"], "no-cache");
    assert!(
        index.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        index.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let etag = index.headers()["etag"].to_str().unwrap().to_string();
    let html = index.text().await.unwrap();
    assert!(html.contains("<div id=\"app\">"), "{html}");

    // Revalidation: the same ETag gets a 304 with no body.
    let again = client
        .get(format!("{url}/admin/"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    // The entry script index.html names is served, compressed, cached for a year.
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("index.html names its entry script");
    assert!(script.starts_with("/admin/assets/"), "{script}");
    let asset = client
        .get(format!("{url}{script}"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(asset.status(), 200);
    assert_eq!(asset.headers()["content-encoding"], "gzip");
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        asset.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    assert!(asset.text().await.unwrap().len() > 1000);

    // A console route is index.html; a missing asset is a JSON 404, not HTML.
    let deep = client
        .get(format!("{url}/admin/orders/123"))
        .send()
        .await
        .unwrap();
    assert_eq!(deep.status(), 200);
    assert!(deep.text().await.unwrap().contains("<div id=\"app\">"));
    let missing = client
        .get(format!("{url}/admin/assets/nothing-here.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(error_body(missing).await["code"], "NOT_FOUND");
    // The build's manifest is not served.
    let manifest = client
        .get(format!("{url}/admin/.vite/manifest.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.status(), 400);
    let post = client.post(format!("{url}/admin/")).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(error_body(post).await["code"], "METHOD_NOT_ALLOWED");
}

/// Errors of the static files (a path that tries to climb out, a hidden file) are the same
/// JSON as every other error, not actix's plain text.
#[actix_web::test]
async fn console_errors_are_json_too() {
    let dist = tempfile::tempdir().unwrap();
    std::fs::write(dist.path().join("index.html"), "<!doctype html>").unwrap();
    for dir in [Some(dist.path()), None] {
        if dir.is_none() && points_app::http::admin_web::CONSOLE_BUILD.starts_with("not built") {
            continue;
        }
        hostile_paths_are_json_4xx(dir).await;
    }
}

async fn hostile_paths_are_json_4xx(dir: Option<&std::path::Path>) {
    let (url, _db, _data) = serve(dir).await;
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
    assert!(seen.iter().any(|(_, s)| *s == 400), "{dir:?}: {seen:?}");
}
