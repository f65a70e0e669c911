//! The admin console (`admin/`, a Vue app) served at `/admin/`: hashed assets cached for a
//! year, `index.html` never cached, every unknown path answered with `index.html` (the
//! console routes in the browser), gzip/brotli, and a strict content security policy.

use std::path::{Path, PathBuf};

use actix_files::{Files, NamedFile};
use actix_web::dev::{ServiceRequest, ServiceResponse, fn_service};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Compress, DefaultHeaders};
use actix_web::{HttpResponse, web};

use super::error::ApiError;

/// Checked in a browser on every page: Element Plus and ECharts need nothing looser.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; \
base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// Registers `/admin/` from `dir` when it holds a build; otherwise `/admin/` explains how
/// to build it.
pub fn configure(cfg: &mut web::ServiceConfig, dir: &Path) {
    let index = dir.join("index.html");
    if !index.is_file() {
        cfg.service(web::resource("/admin{tail:.*}").to(not_built));
        return;
    }
    let fallback = index.clone();
    cfg.service(
        web::scope("/admin")
            .wrap(Compress::default())
            .wrap(
                DefaultHeaders::new()
                    .add((header::CONTENT_SECURITY_POLICY, CSP))
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                    .add((header::REFERRER_POLICY, "same-origin"))
                    // For browsers older than CSP's frame-ancestors: never inside a frame.
                    .add((header::X_FRAME_OPTIONS, "DENY")),
            )
            .wrap(actix_web::middleware::from_fn(cache_headers))
            .service(
                Files::new("/", dir)
                    .index_file("index.html")
                    .use_etag(true)
                    .default_handler(fn_service(move |req: ServiceRequest| {
                        let fallback: PathBuf = fallback.clone();
                        async move {
                            let (req, _) = req.into_parts();
                            let file = NamedFile::open_async(&fallback).await?;
                            let res = file.into_response(&req);
                            Ok(ServiceResponse::new(req, res))
                        }
                    })),
            ),
    );
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

async fn not_built() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        super::error::ErrorCode::AdminNotBuilt,
        "the admin console is not built: run `npm --prefix admin ci && npm --prefix admin run build`",
    ))
}
