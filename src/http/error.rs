//! The one API error: `{code, message, trace_id}` with a stable code and a plain message.
//! Causes go to the log (with the trace id), never to the client.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, error};
use serde::Serialize;

use crate::app::AppError;
pub use crate::app::ErrorCode;
use crate::telemetry::current_trace_id;

#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
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
    /// An error with `code`, sent with the code's one status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            cause: None,
            retry_after: None,
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationFailed, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// An internal failure: the client sees a generic message, the log gets the cause.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        AppError::internal(cause).into()
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
        self.code.as_str()
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError {
            code: e.code,
            message: e.message,
            cause: e.cause,
            retry_after: e.retry_after,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status();
        let code = self.code.as_str();
        match &self.cause {
            Some(cause) if status.is_server_error() => {
                tracing::error!(category = "system", code, cause = ?cause, "request failed")
            }
            Some(cause) => {
                tracing::info!(category = "system", code, cause = %cause, "request refused")
            }
            None => {}
        }
        let mut res = HttpResponse::build(status);
        if let Some(secs) = self.retry_after {
            res.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        res.json(ErrorBody {
            code,
            message: &self.message,
            trace_id: current_trace_id(),
        })
    }
}

/// Malformed, oversized or wrongly typed JSON bodies.
pub fn json_error(err: error::JsonPayloadError) -> ApiError {
    use error::JsonPayloadError as J;
    match &err {
        J::ContentType => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "expected Content-Type: application/json",
        ),
        J::Overflow { limit } | J::OverflowKnownLength { limit, .. } => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than {limit} bytes"),
        ),
        J::Deserialize(de) if de.is_data() => ApiError::validation(format!("invalid field: {de}")),
        J::Deserialize(de) => {
            ApiError::new(ErrorCode::MalformedJson, format!("malformed JSON: {de}"))
        }
        _ => ApiError::new(ErrorCode::BadBody, "the request body could not be read"),
    }
    .with_cause(anyhow::anyhow!("{err}"))
}

pub fn query_error(err: error::QueryPayloadError) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidQuery,
        format!("invalid query string: {err}"),
    )
}

pub fn path_error(err: error::PathError) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidPath,
        format!("invalid path parameter: {err}"),
    )
}
