//! The OpenAPI document covers every route registered in `http::configure`, and every path
//! it documents is served.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::spawn_app;

/// (METHOD, path) of every `web::resource(..).route(web::METHOD()..)` in `http/mod.rs`.
fn registered_routes() -> BTreeSet<(String, String)> {
    let src =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/mod.rs")).unwrap();
    let mut out = BTreeSet::new();
    let parts: Vec<&str> = src.split("web::resource(\"").skip(1).collect();
    for part in parts {
        let (path, rest) = part.split_once('"').unwrap();
        for method in ["get", "post", "put", "patch", "delete"] {
            if rest.contains(&format!("web::{method}()")) {
                out.insert((method.to_string(), path.to_string()));
            }
        }
    }
    out
}

#[actix_web::test]
async fn every_registered_route_is_documented_and_served() {
    let app = spawn_app().await;
    let res = app.get("/api-docs/openapi.json").await;
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    let routes = registered_routes();
    assert!(routes.len() >= 20, "{routes:?}");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    let missing: Vec<_> = routes.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the OpenAPI document: {missing:?}"
    );
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(extra.is_empty(), "documented but not registered: {extra:?}");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    let page = app.get("/api-docs").await;
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("/api-docs/openapi.json")
    );
}
