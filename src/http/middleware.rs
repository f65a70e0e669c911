//! The wrapper every request passes through: trace id in and out, a span that every log line
//! of the request carries, request metrics by route template, JSON bodies for the errors
//! actix answers itself (405), and a JSON 500 instead of a dropped connection when a handler
//! panics.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{
    CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue,
    TRANSFER_ENCODING, X_CONTENT_TYPE_OPTIONS,
};
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
    mut req: ServiceRequest,
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
    let client_ip = super::extract::remember_client_ip(req.request());
    // `user_id` and `merchant_id` are filled in by the extractors once known (AuthUser,
    // Member), so every later line of the request names them.
    let span = tracing::info_span!(
        "request",
        trace_id = %trace_id,
        method = %method,
        route = %route,
        client_ip = %client_ip,
        user_id = tracing::field::Empty,
        merchant_id = tracing::field::Empty,
    );
    // Counted down when this future ends in any way: answered, panicked, or dropped because
    // the client went away.
    let in_flight = metrics
        .as_ref()
        .map(|m| InFlight::enter(&m.http_requests_in_flight));
    let started = Instant::now();
    let timeout = req
        .app_data::<web::Data<super::AppState>>()
        .map_or(DEFAULT_BODY_TIMEOUT, |s| {
            Duration::from_secs(s.settings.body_timeout_secs.max(1))
        });
    let body_timed_out = limit_body_time(&mut req, timeout);
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
    if body_timed_out.is_some_and(|t| t.get()) {
        let api = ApiError::new(
            super::error::ErrorCode::RequestTimeout,
            format!(
                "the request body did not arrive within {} s",
                timeout.as_secs()
            ),
        );
        let mut answer = TRACE_ID.sync_scope(trace_id.clone(), || api.error_response());
        // The rest of a stalled body is never read: the connection cannot be reused.
        answer
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        res = res.into_response(answer);
    } else if needs_json_body(&res) {
        res = json_error_for(res, &trace_id);
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

/// Parses `APP_CORS_ORIGINS`: each entry an origin (`scheme://host[:port]`, no path).
pub fn cors_origins(list: &str) -> std::io::Result<Vec<String>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|o| {
            let ok = (o.starts_with("https://") || o.starts_with("http://"))
                && !o.ends_with('/')
                && o.split("://")
                    .nth(1)
                    .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
                && HeaderValue::from_str(o).is_ok();
            ok.then(|| o.to_string()).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "APP_CORS_ORIGINS: '{o}' is not an origin like https://console.example.com"
                    ),
                )
            })
        })
        .collect()
}

/// CORS: closed unless origins are named. A named origin's pages may call the API with the
/// headers the clients send; a request from any other origin is served without CORS
/// headers (so a browser does not let that page read it), never refused outright, so the
/// console served from here keeps working.
pub fn cors(origins: &[String]) -> actix_web::middleware::Condition<actix_cors::Cors> {
    let mut cors = actix_cors::Cors::default()
        .block_on_origin_mismatch(false)
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            "authorization",
            "content-type",
            "idempotency-key",
            "x-timestamp",
            "x-nonce",
            "x-signature",
            "x-request-id",
        ])
        .expose_headers(["x-request-id", "retry-after"])
        .max_age(3600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    actix_web::middleware::Condition::new(!origins.is_empty(), cors)
}

/// How long a body may take when no settings are at hand (`APP_BODY_TIMEOUT_SECS`).
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Makes a request's body fail once `timeout` has passed since the request started (a
/// client that sends the head and then trickles or stalls the body would otherwise hold
/// its worker's slot forever). Returns the flag that says it did, for requests with a body.
fn limit_body_time(req: &mut ServiceRequest, timeout: Duration) -> Option<Rc<Cell<bool>>> {
    use actix_web::HttpMessage;
    use actix_web::dev::Payload;
    use actix_web::error::PayloadError;
    use futures_util::StreamExt;

    let has_body = req.headers().contains_key(TRANSFER_ENCODING)
        || req
            .headers()
            .get(CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if !has_body {
        return None;
    }
    let timed_out = Rc::new(Cell::new(false));
    let flag = timed_out.clone();
    let deadline = tokio::time::Instant::now() + timeout;
    let body = req.take_payload();
    let limited = futures_util::stream::unfold(Some(body), move |body| {
        let flag = flag.clone();
        async move {
            let mut body = body?;
            match tokio::time::timeout_at(deadline, body.next()).await {
                Ok(Some(chunk)) => Some((chunk, Some(body))),
                Ok(None) => None,
                Err(_) => {
                    flag.set(true);
                    let late = std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the request body did not arrive in time",
                    );
                    Some((Err(PayloadError::Io(late)), None))
                }
            }
        }
    });
    req.set_payload(Payload::from(limited.boxed_local()));
    Some(timed_out)
}

/// An error answer that is not JSON (actix's own: 404 and 405 before routing, 413 of a body
/// extractor, 400 of the static files): every error leaves as `{code, message, trace_id}`.
fn needs_json_body(res: &ServiceResponse<BoxBody>) -> bool {
    let status = res.status();
    (status.is_client_error() || status.is_server_error())
        && !res
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
}

fn json_error_for(res: ServiceResponse<BoxBody>, trace_id: &str) -> ServiceResponse<BoxBody> {
    use super::error::ErrorCode as E;
    let status = res.status();
    let (code, message) = match status.as_u16() {
        400 => (E::BadBody, "the request could not be read"),
        401 => (E::Unauthorized, "sign in first"),
        403 => (E::Forbidden, "not allowed"),
        404 => (E::NotFound, "nothing here"),
        405 => (
            E::MethodNotAllowed,
            "this method is not allowed on this path",
        ),
        408 => (E::RequestTimeout, "the request did not arrive in time"),
        413 => (E::PayloadTooLarge, "the body is too large"),
        415 => (E::UnsupportedMediaType, "this content type is not accepted"),
        429 => (E::RateLimited, "too many requests"),
        500..=599 => (
            E::Internal,
            "internal error; quote the trace id when reporting it",
        ),
        _ => (E::BadBody, "the request could not be served"),
    };
    let api = ApiError::new(code, message);
    let mut answer = TRACE_ID.sync_scope(trace_id.to_string(), || api.error_response());
    // The status stays what it was (a 412 or 416 of the static files is not a 400), and so
    // do headers such as `Allow` or `Retry-After`.
    *answer.status_mut() = status;
    for (name, value) in res.headers() {
        if ![
            CONTENT_TYPE,
            CONTENT_LENGTH,
            CONTENT_ENCODING,
            TRANSFER_ENCODING,
        ]
        .contains(name)
        {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    res.into_response(answer)
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
    use actix_web::http::StatusCode;
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
