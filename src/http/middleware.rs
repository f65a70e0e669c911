//! The wrapper every request passes through: trace id in and out, a span that every log line
//! of the request carries, request metrics by route template, JSON bodies for the errors
//! actix answers itself (405), and a JSON 500 instead of a dropped connection when a handler
//! panics.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue, X_CONTENT_TYPE_OPTIONS};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError, web};
use futures_util::FutureExt;
use prometheus::IntGauge;
use tracing::Instrument;

use super::error::ApiError;
use crate::telemetry::{Metrics, TRACE_ID, accept_trace_id, new_trace_id, panic_message};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Browsers take a response for what its Content-Type says, never for what it looks like.
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

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
    // Counted down when this future ends in any way: answered, panicked, or dropped because
    // the client went away.
    let in_flight = metrics
        .as_ref()
        .map(|m| InFlight::enter(&m.http_requests_in_flight));
    let started = Instant::now();
    let result = AssertUnwindSafe(
        TRACE_ID
            .scope(trace_id.clone(), next.call(req))
            .instrument(span.clone()),
    )
    .catch_unwind()
    .await;
    let elapsed = started.elapsed();
    drop(in_flight);
    let mut res = match result {
        Ok(Ok(res)) => res.map_into_boxed_body(),
        Ok(Err(err)) => return Err(err),
        Err(panic) => {
            // The request went down with the handler, so the answer leaves as an error that
            // carries its own response.
            let what = panic_message(panic.as_ref());
            span.in_scope(|| {
                tracing::error!(category = "system", panic = %what, "handler panicked");
            });
            if let Some(m) = &metrics {
                m.http_requests_total
                    .with_label_values(&[method.as_str(), route.as_str(), "500"])
                    .inc();
                m.http_request_duration_seconds
                    .with_label_values(&[method.as_str(), route.as_str()])
                    .observe(elapsed.as_secs_f64());
            }
            let api = ApiError::new(
                super::error::ErrorCode::Internal,
                "internal error; quote the trace id when reporting it",
            );
            let mut answer = TRACE_ID.sync_scope(trace_id.clone(), || api.error_response());
            if let Ok(value) = HeaderValue::from_str(&trace_id) {
                answer.headers_mut().insert(REQUEST_ID, value);
            }
            answer.headers_mut().insert(X_CONTENT_TYPE_OPTIONS, NOSNIFF);
            return Err(InternalError::from_response(what, answer).into());
        }
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
    res.headers_mut().insert(X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    Ok(res)
}

/// One request in `http_requests_in_flight` for as long as it lives.
struct InFlight(IntGauge);

impl InFlight {
    fn enter(gauge: &IntGauge) -> Self {
        gauge.inc();
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::{App, HttpResponse, test, web};

    use super::*;

    async fn boom() -> HttpResponse {
        panic!("a handler bug")
    }

    #[actix_web::test]
    async fn a_panicking_handler_answers_json_500_and_leaves_the_in_flight_gauge() {
        let metrics = Metrics::new().unwrap();
        let app = test::init_service(
            App::new()
                .wrap(from_fn(observe))
                .app_data(web::Data::new(metrics.clone()))
                .route("/boom", web::get().to(boom))
                .route("/ok", web::get().to(HttpResponse::Ok)),
        )
        .await;
        for _ in 0..3 {
            let res =
                test::try_call_service(&app, test::TestRequest::get().uri("/boom").to_request())
                    .await
                    .map_or_else(|e| e.error_response(), |r| r.into_parts().1);
            assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let trace = res.headers().get(&REQUEST_ID).cloned().unwrap();
            let bytes = actix_web::body::to_bytes(res.into_body()).await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body["code"], "INTERNAL", "{body}");
            assert_eq!(body["trace_id"], trace.to_str().unwrap(), "{body}");
        }
        assert_eq!(metrics.http_requests_in_flight.get(), 0);
        let served = metrics
            .http_requests_total
            .with_label_values(&["GET", "/boom", "500"])
            .get();
        assert_eq!(served, 3);
        // The worker that ran the panicking handler still serves.
        let res = test::call_service(&app, test::TestRequest::get().uri("/ok").to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
}
