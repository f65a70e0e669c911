//! The admin console (`admin/`, a Vue app) served at `/admin/`: built into the binary by
//! `build.rs` (or, with `APP_ADMIN_DIR`, read from a build on disk while working on it).
//! Hashed assets are cached for a year, `index.html` never; every unknown console path is
//! answered with `index.html` (the console routes in the browser), a missing asset with a
//! 404; gzip/brotli, ETags, and a strict content security policy.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use actix_files::{Files, NamedFile};
use actix_web::dev::{ServiceRequest, ServiceResponse, fn_service};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{Compress, DefaultHeaders};
use actix_web::{HttpRequest, HttpResponse, web};

use super::error::{ApiError, ErrorCode};

include!(concat!(env!("OUT_DIR"), "/admin_console.rs"));

/// How this binary's console was made (`build.rs`): built by npm, copied, or why not.
pub const CONSOLE_BUILD: &str = env!("POINTS_ADMIN_SOURCE");

/// Where `/admin/` comes from, for the start-up banner.
pub fn console_source(dir: Option<&Path>) -> Result<String, String> {
    match dir {
        Some(dir) if dir.join("index.html").is_file() => Ok(format!("from {}", dir.display())),
        Some(dir) => Err(format!(
            "APP_ADMIN_DIR={} holds no index.html",
            dir.display()
        )),
        None if Console::get("index.html").is_some() => Ok(format!("embedded, {CONSOLE_BUILD}")),
        None => Err(format!("not in this binary ({CONSOLE_BUILD})")),
    }
}

/// Checked in a browser on every page: Element Plus and ECharts need nothing looser.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; \
base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// Registers `/admin/`: from `dir` when given, else the console built into the binary;
/// without either, `/admin/` explains how to get one.
pub fn configure(cfg: &mut web::ServiceConfig, dir: Option<&Path>) {
    if console_source(dir).is_err() {
        cfg.service(web::resource("/admin{tail:.*}").to(not_built));
        return;
    }
    let scope = web::scope("/admin")
        .wrap(Compress::default())
        .wrap(
            DefaultHeaders::new()
                .add((header::CONTENT_SECURITY_POLICY, CSP))
                .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .add((header::REFERRER_POLICY, "same-origin"))
                // For browsers older than CSP's frame-ancestors: never inside a frame.
                .add((header::X_FRAME_OPTIONS, "DENY")),
        )
        .wrap(actix_web::middleware::from_fn(cache_headers));
    match dir {
        Some(dir) => cfg.service(scope.service(files(dir))),
        None => cfg.service(scope.default_service(web::to(embedded))),
    };
}

/// A console build on disk (`APP_ADMIN_DIR`), for working on the console.
fn files(dir: &Path) -> Files {
    let fallback: PathBuf = dir.join("index.html");
    Files::new("/", dir)
        .index_file("index.html")
        .use_etag(true)
        .default_handler(fn_service(move |req: ServiceRequest| {
            let fallback = fallback.clone();
            async move {
                let (req, _) = req.into_parts();
                let file = NamedFile::open_async(&fallback).await?;
                let res = file.into_response(&req);
                Ok(ServiceResponse::new(req, res))
            }
        }))
}

/// The embedded console: a file by its path under `/admin/`, `index.html` for console
/// routes, 404 for a missing asset, 400 for a path that climbs or names a hidden file.
async fn embedded(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            "the admin console answers GET and HEAD",
        ));
    }
    // Decoded first: a path may hide `..` in `%2e` escapes.
    let raw = req.path().strip_prefix("/admin").unwrap_or_default();
    let path = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::new(ErrorCode::InvalidPath, "the path is not valid UTF-8"))?;
    let path = path.trim_start_matches('/');
    if path.split('/').any(|segment| {
        segment.starts_with('.') || segment.contains(['\\', '\0']) || segment.contains("..")
    }) {
        return Err(ApiError::new(
            ErrorCode::InvalidPath,
            "the path climbs out of the console or names a hidden file",
        ));
    }
    let file = match Console::get(path) {
        Some(file) if !path.is_empty() => file,
        _ if path.starts_with("assets/") => {
            return Err(ApiError::not_found("no such console asset"));
        }
        _ => Console::get("index.html")
            .ok_or_else(|| ApiError::new(ErrorCode::AdminNotBuilt, "the console has no index"))?,
    };
    let etag = format!(
        "\"{}\"",
        file.metadata.sha256_hash()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = HttpResponse::build(if matches {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    });
    res.insert_header((header::ETAG, etag));
    if matches {
        return Ok(res.finish());
    }
    res.insert_header((header::CONTENT_TYPE, file.metadata.mimetype()));
    Ok(match file.data {
        Cow::Borrowed(bytes) => res.body(bytes),
        Cow::Owned(bytes) => res.body(bytes),
    })
}

/// Hashed assets never change: cache them for a year. Everything else is revalidated.
async fn cache_headers(
    req: ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let hashed = req.path().starts_with("/admin/assets/");
    let mut res = next.call(req).await?;
    let value = if hashed {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    Ok(res)
}

async fn not_built(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let dir = req
        .app_data::<web::Data<crate::http::AppState>>()
        .and_then(|s| s.settings.admin_dir.clone());
    let why = console_source(dir.as_deref()).err().unwrap_or_default();
    Err(ApiError::new(
        ErrorCode::AdminNotBuilt,
        format!(
            "the admin console is {why}: install Node.js >= 20.19 and rebuild \
             (`cargo build` runs the console's npm build), or set APP_ADMIN_DIR to a \
             `npm --prefix admin run build` output"
        ),
    ))
}
