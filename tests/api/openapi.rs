//! The OpenAPI document against the router: every route of the route table
//! (`points_app::http::routes`, the one list `http::configure` registers) is documented and
//! every documented operation is routed; each operation has a 2xx answer with a schema or
//! a declared content type, its error statuses with `ErrorBody`, and the security its route
//! needs; the document parses as OpenAPI 3.1 with every `$ref` resolving; and the viewer at
//! `/api-docs` is served from the binary, naming no external URL.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::Method;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};

/// Registered routes that are not operations of the API and so need not be in the
/// document. Everything else the router serves must be documented.
const NOT_DOCUMENTED: &[(&str, &str)] = &[
    // The viewer's own files (the viewer page and the JSON document are documented).
    ("get", "/api-docs/swagger-ui.css"),
    ("get", "/api-docs/swagger-ui-bundle.js"),
    ("get", "/api-docs/viewer.js"),
    // Not here because not in the table: the admin console's static files under `/admin/`
    // (`http::admin_web`, a scope of files; `no_route_is_registered_outside_the_table`
    // keeps that the only exception).
];

/// Documented operations whose 2xx JSON answer may be schema-less: the document itself
/// (its schema would be the OpenAPI meta-schema).
const SCHEMA_FREE: &[(&str, &str)] = &[("get", "/api-docs/openapi.json")];

/// Operations anyone may call: no bearer token. The WeChat notification routes are public
/// too, but authenticated by their `Wechatpay-*` headers (checked separately).
const PUBLIC: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api-docs"),
    ("get", "/api-docs/openapi.json"),
    ("post", "/api/auth/wechat-login"),
    ("post", "/api/auth/refresh"),
    ("post", "/api/admin/login"),
    ("get", "/api/payment-codes/{code_id}"),
    ("get", "/api/payment-codes/{code_id}/qr.png"),
];

const WECHAT_HEADERS: &[&str] = &[
    "Wechatpay-Serial",
    "Wechatpay-Timestamp",
    "Wechatpay-Nonce",
    "Wechatpay-Signature",
];

/// An actix pattern as an OpenAPI path: `{name:regex}` becomes `{name}`.
fn openapi_path(actix: &str) -> String {
    let mut out = String::new();
    let mut rest = actix;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').expect("a closed {segment}") + open;
        let name = rest[open + 1..close].split(':').next().unwrap();
        out.push_str(&format!("{{{name}}}"));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// (method, OpenAPI path) of every route the router registers.
fn routed() -> BTreeSet<(String, String)> {
    points_app::http::routes::routes()
        .iter()
        .map(|r| (r.method.as_str().to_lowercase(), openapi_path(r.path)))
        .collect()
}

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// (method, path) -> operation of the served document.
fn operations(doc: &Value) -> BTreeMap<(String, String), &Value> {
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            if METHODS.contains(&method.as_str()) {
                out.insert((method.clone(), path.clone()), op);
            }
        }
    }
    out
}

fn listed(list: &[(&str, &str)], key: &(String, String)) -> bool {
    list.iter().any(|(m, p)| *m == key.0 && *p == key.1)
}

async fn served_document(app: &TestApp) -> (Value, String) {
    let res = app.get("/api-docs/openapi.json").await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    (serde_json::from_str(&text).unwrap(), text)
}

#[test]
fn actix_patterns_become_openapi_paths() {
    assert_eq!(openapi_path("/a/{id}/b/{n}"), "/a/{id}/b/{n}");
    assert_eq!(openapi_path("/a/{tail:.*}"), "/a/{tail}");
    assert_eq!(openapi_path("/healthz"), "/healthz");
}

#[actix_web::test]
async fn every_routed_operation_is_documented_and_every_documented_one_routed() {
    let app = spawn_app().await;
    let (doc, _) = served_document(&app).await;
    let routes = routed();
    assert!(routes.len() >= 50, "{routes:?}");
    let documented: BTreeSet<_> = operations(&doc).into_keys().collect();

    let missing: Vec<_> = routes
        .iter()
        .filter(|r| !documented.contains(*r) && !listed(NOT_DOCUMENTED, r))
        .collect();
    assert!(
        missing.is_empty(),
        "routed but missing from the OpenAPI document (annotate the handler with \
         #[utoipa::path] and add it to ApiDoc's paths): {missing:?}"
    );
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(extra.is_empty(), "documented but not routed: {extra:?}");
    for exempt in NOT_DOCUMENTED {
        let key = (exempt.0.to_string(), exempt.1.to_string());
        assert!(
            routes.contains(&key),
            "allow-listed but not routed: {key:?}"
        );
    }

    // The router serves the table: each route reaches a handler (whatever it answers
    // without credentials), none falls through to the 404 of unknown routes or to 405.
    for route in points_app::http::routes::routes() {
        let url = app.url(&openapi_path(route.path).replace(['{', '}'], "x"));
        let res = app
            .client
            .request(
                reqwest::Method::from_bytes(route.method.as_str().as_bytes()).unwrap(),
                &url,
            )
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        assert_ne!(status, 405, "{} {}: {body}", route.method, route.path);
        assert!(
            !body.contains("no such route"),
            "{} {} is in the table but not routed: {status} {body}",
            route.method,
            route.path
        );
    }
}

/// Registration constructs outside the route table: a route added any other way would not
/// be seen by the test above.
#[test]
fn no_route_is_registered_outside_the_table() {
    const CONSTRUCTS: &[&str] = &[
        "web::resource(",
        "web::scope(",
        "web::route(",
        "web::get(",
        "web::post(",
        "web::put(",
        "web::patch(",
        "web::delete(",
        "web::method(",
        ".route(",
        ".service(",
        "#[get(",
        "#[post(",
        "#[put(",
        "#[patch(",
        "#[delete(",
        "#[route(",
        "#[actix_web::get",
        "#[actix_web::post",
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    collect_rust_files(&root.join("src"), &mut files);
    let mut found = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // The WeChat sandbox is a server of its own; the admin console's files are the one
        // exception the route table does not hold (see NOT_DOCUMENTED).
        if rel.starts_with("src/sandbox/")
            || rel == "src/http/admin_web.rs"
            || rel == "src/http/routes.rs"
        {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests build small apps of their own.
        let code = text.split("#[cfg(test)]").next().unwrap();
        for construct in CONSTRUCTS {
            if code.contains(construct) {
                found.push(format!("{rel}: {construct}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "routes must be added to the table in src/http/routes.rs: {found:?}"
    );

    // In the table's own file, only `register` builds resources, once per path.
    let table = std::fs::read_to_string(root.join("src/http/routes.rs")).unwrap();
    for (construct, count) in [("web::resource(", 1), (".service(", 1), ("web::route()", 1)] {
        assert_eq!(
            table.matches(construct).count(),
            count,
            "src/http/routes.rs: {construct}"
        );
    }
}

fn collect_rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_json(media_type: &str) -> bool {
    media_type == "application/json" || media_type.ends_with("+json")
}

/// A schema is given: a `$ref`, or an inline schema that says something.
fn has_schema(content: &Value) -> bool {
    content["schema"]
        .as_object()
        .is_some_and(|schema| !schema.is_empty())
}

#[actix_web::test]
async fn every_operation_has_typed_answers_errors_and_its_security() {
    let app = spawn_app().await;
    let (doc, _) = served_document(&app).await;
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(
        doc.get("security").is_none(),
        "security is per operation, not global"
    );
    let mut problems = Vec::new();
    let mut operation_ids = BTreeSet::new();
    for (key, op) in operations(&doc) {
        let name = format!("{} {}", key.0.to_uppercase(), key.1);
        let id = op["operationId"].as_str().unwrap_or_default().to_string();
        if id.is_empty() || !operation_ids.insert(id.clone()) {
            problems.push(format!("{name}: operationId {id:?} missing or not unique"));
        }
        let responses = op["responses"].as_object().expect("responses");

        // 2xx: at least one; a body has a content type, and a JSON body a schema.
        let success: Vec<_> = responses
            .iter()
            .filter(|(s, _)| s.starts_with('2'))
            .collect();
        if success.is_empty() {
            problems.push(format!("{name}: no 2xx answer"));
        }
        for (status, response) in success {
            let content = response["content"].as_object();
            match content {
                None if status == "204" => {}
                None => problems.push(format!("{name}: {status} has no content type")),
                Some(content) => {
                    for (media_type, c) in content {
                        if is_json(media_type) && !has_schema(c) && !listed(SCHEMA_FREE, &key) {
                            problems.push(format!("{name}: {status} {media_type} has no schema"));
                        }
                    }
                }
            }
        }

        // A JSON request body has a schema.
        if let Some(content) = op["requestBody"]["content"].as_object() {
            for (media_type, c) in content {
                if is_json(media_type) && !has_schema(c) {
                    problems.push(format!("{name}: request {media_type} has no schema"));
                }
            }
        }

        // Errors: each with a JSON body of its schema (ErrorBody, or WeChat's format on
        // the notification routes).
        let wechat = key.1.starts_with("/api/wechat/");
        let error_schema = if wechat {
            "#/components/schemas/NotifyFailure"
        } else {
            "#/components/schemas/ErrorBody"
        };
        for (status, response) in responses.iter().filter(|(s, _)| s.starts_with(['4', '5'])) {
            if response["content"]["application/json"]["schema"]["$ref"] != error_schema {
                problems.push(format!("{name}: {status} is not {error_schema}"));
            }
        }
        let statuses: BTreeSet<&str> = responses.keys().map(String::as_str).collect();

        // Security: bearer unless public; WeChat's routes are signed by their headers.
        let bearer = op["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|req| req.get("bearer").is_some()));
        let headers: BTreeSet<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "header")
            .filter_map(|p| p["name"].as_str())
            .collect();
        if wechat {
            if op.get("security").is_some() {
                problems.push(format!("{name}: WeChat calls it without a token"));
            }
            for header in WECHAT_HEADERS {
                if !headers.contains(header) {
                    problems.push(format!("{name}: {header} not documented"));
                }
            }
        } else if listed(PUBLIC, &key) {
            if op.get("security").is_some() {
                problems.push(format!("{name}: public, but marked as needing a token"));
            }
        } else if !bearer {
            problems.push(format!("{name}: needs a bearer token, not marked"));
        } else if !statuses.contains("401") || !statuses.contains("403") {
            problems.push(format!("{name}: takes a token but lists no 401/403"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[actix_web::test]
async fn the_document_is_valid_openapi_3_1_and_every_ref_resolves() {
    let app = spawn_app().await;
    let (doc, text) = served_document(&app).await;
    let spec = oas3::from_json(&text).expect("the document parses as OpenAPI 3.1");
    let version = spec
        .validate_version()
        .expect("a supported OpenAPI version");
    assert_eq!((version.major, version.minor), (3, 1));
    for (path, method, op) in spec.operations() {
        if let Some(body) = &op.request_body {
            let body = body.resolve(&spec).expect("request body resolves");
            for media in body.content.values() {
                if let Some(schema) = &media.schema {
                    schema
                        .resolve(&spec)
                        .unwrap_or_else(|e| panic!("{method} {path}: request schema: {e}"));
                }
            }
        }
        for (status, response) in op.responses.iter().flatten() {
            let response = response.resolve(&spec).expect("response resolves");
            for media in response.content.values() {
                if let Some(schema) = &media.schema {
                    schema
                        .resolve(&spec)
                        .unwrap_or_else(|e| panic!("{method} {path} {status}: {e}"));
                }
            }
        }
    }

    // Every `$ref` anywhere (nested in schemas too) names a component that exists.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 50);
    for r in all {
        let pointer = r.strip_prefix('#').expect("a local $ref");
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }
}

#[actix_web::test]
async fn the_viewer_is_served_from_the_binary_and_names_no_external_url() {
    let app = spawn_app().await;
    let page = app.get("/api-docs").await;
    assert_eq!(page.status(), 200);
    let content_type = |res: &reqwest::Response| {
        res.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string()
    };
    assert!(content_type(&page).starts_with("text/html"));
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"));
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"),
        "the page names an external URL: {html}"
    );

    // Every src= and href= of the page is a file of this server, with its content type.
    let mut assets = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            assets.push(part.split('"').next().unwrap().to_string());
        }
    }
    assert!(assets.len() >= 3, "{assets:?}");
    let mut scripts = String::new();
    for asset in &assets {
        assert!(
            asset.starts_with('/'),
            "{asset} is not a path on this server"
        );
        let res = app.get(asset).await;
        assert_eq!(res.status(), 200, "{asset}");
        let ct = content_type(&res);
        let expected = if asset.ends_with(".js") {
            "text/javascript"
        } else if asset.ends_with(".css") {
            "text/css"
        } else {
            "application/json"
        };
        assert!(ct.starts_with(expected), "{asset}: {ct}");
        let body = res.text().await.unwrap();
        assert!(body.len() > 10, "{asset} is empty");
        if asset == "/api-docs/viewer.js" {
            scripts = body;
        }
    }
    // The start-up script loads the served document, and turns off Swagger UI's external
    // validator badge.
    assert!(scripts.contains("/api-docs/openapi.json"), "{scripts}");
    assert!(scripts.contains("validatorUrl: null"), "{scripts}");
    assert!(!scripts.contains("http://") && !scripts.contains("https://"));

    let missing = app.get("/api-docs/nothing.js").await;
    assert_eq!(missing.status(), 404);
}

#[test]
fn the_route_table_names_each_method_and_path_once() {
    let table = points_app::http::routes::routes();
    let mut seen = BTreeSet::new();
    for r in &table {
        assert!(
            seen.insert((r.method.to_string(), r.path)),
            "{} {} twice",
            r.method,
            r.path
        );
        assert!(
            [
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE
            ]
            .contains(&r.method)
        );
    }
}
