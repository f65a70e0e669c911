//! The one API error: `{code, message, trace_id}` with a stable code and a plain message.
//! Causes go to the log (with the trace id), never to the client.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, error};
use serde::Serialize;

use crate::telemetry::current_trace_id;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    cause: Option<anyhow::Error>,
    /// Seconds for a `Retry-After` header (429, 503).
    retry_after: Option<u64>,
}

#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub code: &'a str,
    pub message: &'a str,
    pub trace_id: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            cause: None,
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
            message,
        )
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// An internal failure: the client sees a generic message, the log gets the cause.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "INTERNAL",
            message: "internal error; quote the trace id when reporting it".into(),
            cause: Some(cause.into()),
            retry_after: None,
        }
    }

    pub fn with_cause(mut self, cause: impl Into<anyhow::Error>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        match &self.cause {
            Some(cause) if self.status.is_server_error() => {
                tracing::error!(category = "system", code = self.code, cause = ?cause, "request failed")
            }
            Some(cause) => {
                tracing::info!(category = "system", code = self.code, cause = %cause, "request refused")
            }
            None => {}
        }
        let mut res = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            res.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        res.json(ErrorBody {
            code: self.code,
            message: &self.message,
            trace_id: current_trace_id(),
        })
    }
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(e: crate::storage::StorageError) -> Self {
        match e {
            crate::storage::StorageError::Pool(_) => {
                ApiError::unavailable("DATABASE_UNAVAILABLE", "the database is busy; retry")
                    .with_cause(e)
            }
            other => ApiError::internal(other),
        }
    }
}

/// Malformed, oversized or wrongly typed JSON bodies.
pub fn json_error(err: error::JsonPayloadError) -> ApiError {
    use error::JsonPayloadError as J;
    match &err {
        J::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "expected Content-Type: application/json",
        ),
        J::Overflow { limit } | J::OverflowKnownLength { limit, .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the body is larger than {limit} bytes"),
        ),
        J::Deserialize(de) if de.is_data() => ApiError::validation(format!("invalid field: {de}")),
        J::Deserialize(de) => {
            ApiError::bad_request("MALFORMED_JSON", format!("malformed JSON: {de}"))
        }
        _ => ApiError::bad_request("BAD_BODY", "the request body could not be read"),
    }
    .with_cause(anyhow::anyhow!("{err}"))
}

pub fn query_error(err: error::QueryPayloadError) -> ApiError {
    ApiError::bad_request("INVALID_QUERY", format!("invalid query string: {err}"))
}

pub fn path_error(err: error::PathError) -> ApiError {
    ApiError::bad_request("INVALID_PATH", format!("invalid path parameter: {err}"))
}
