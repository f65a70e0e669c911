//! The wrapper every request passes through: trace id in and out, a span that every log line
//! of the request carries, request metrics by route template, and JSON bodies for the errors
//! actix answers itself (405).

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError, web};
use tracing::Instrument;

use super::error::ApiError;
use crate::telemetry::{Metrics, TRACE_ID, accept_trace_id, new_trace_id};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let trace_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(accept_trace_id)
        .unwrap_or_else(new_trace_id);
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    // `user_id` and `merchant_id` are filled in by the extractors once known (AuthUser,
    // MerchantOwner), so every later line of the request names them.
    let span = tracing::info_span!(
        "request",
        trace_id = %trace_id,
        method = %method,
        route = %route,
        user_id = tracing::field::Empty,
        merchant_id = tracing::field::Empty,
    );
    if let Some(m) = &metrics {
        m.http_requests_in_flight.inc();
    }
    let started = Instant::now();
    let result = TRACE_ID
        .scope(trace_id.clone(), next.call(req))
        .instrument(span.clone())
        .await;
    let elapsed = started.elapsed();
    if let Some(m) = &metrics {
        m.http_requests_in_flight.dec();
    }
    let mut res = match result {
        Ok(res) => res.map_into_boxed_body(),
        Err(err) => return Err(err),
    };
    if res.status() == StatusCode::METHOD_NOT_ALLOWED && !res.headers().contains_key(CONTENT_TYPE) {
        let api = ApiError::new(
            super::error::ErrorCode::MethodNotAllowed,
            "this method is not allowed on this path",
        );
        let body = TRACE_ID.sync_scope(trace_id.clone(), || api.error_response());
        res = res.into_response(body);
    }
    let status = res.status();
    if let Some(m) = &metrics {
        m.http_requests_total
            .with_label_values(&[method.as_str(), route.as_str(), status.as_str()])
            .inc();
        m.http_request_duration_seconds
            .with_label_values(&[method.as_str(), route.as_str()])
            .observe(elapsed.as_secs_f64());
    }
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        // Successful requests log at debug: at thousands per second an info line each costs
        // more than the request. Metrics count them all.
        if status.is_success() || status.is_redirection() {
            tracing::debug!(
                category = "system",
                status = status.as_u16(),
                latency_ms,
                "request served"
            );
        } else {
            tracing::info!(
                category = "system",
                status = status.as_u16(),
                latency_ms,
                "request served"
            );
        }
    });
    if let Ok(value) = HeaderValue::from_str(&trace_id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}
