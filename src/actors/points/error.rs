//! The points engine's error boundary: a stable code for clients, the cause for the log.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
pub enum PointsError {
    #[error("insufficient points: {available} available, {requested} requested")]
    Insufficient { available: i64, requested: i64 },
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("source {0} was already used for another user")]
    SourceConflict(String),
    #[error("Idempotency-Key {0} was already used for a different request")]
    KeyReused(String),
    #[error("points engine busy: {0}")]
    Busy(String),
    #[error("points engine unavailable: {0}")]
    Unavailable(String),
    #[error("storage: {0}")]
    Storage(String),
}

impl PointsError {
    /// The stable code of API.md (`POINTS_INSUFFICIENT` for a short deduct).
    pub fn code(&self) -> &'static str {
        match self {
            PointsError::Insufficient { .. } => "POINTS_INSUFFICIENT",
            PointsError::Invalid(_) => "VALIDATION_FAILED",
            PointsError::SourceConflict(_) => "IDEMPOTENCY_CONFLICT",
            PointsError::KeyReused(_) => "IDEMPOTENCY_KEY_REUSED",
            PointsError::Busy(_) => "POINTS_BUSY",
            PointsError::Unavailable(_) => "SERVICE_UNAVAILABLE",
            PointsError::Storage(_) => "INTERNAL",
        }
    }

    /// The HTTP status that fits (the lead maps it to `ApiError`).
    pub fn http_status(&self) -> u16 {
        match self {
            PointsError::Insufficient { .. } => 409,
            PointsError::Invalid(_) => 400,
            PointsError::SourceConflict(_) => 409,
            PointsError::KeyReused(_) => 422,
            PointsError::Busy(_) | PointsError::Unavailable(_) => 503,
            PointsError::Storage(_) => 500,
        }
    }
}

impl From<crate::storage::StorageError> for PointsError {
    fn from(e: crate::storage::StorageError) -> Self {
        PointsError::Storage(e.to_string())
    }
}

impl From<crate::domain::DomainError> for PointsError {
    fn from(e: crate::domain::DomainError) -> Self {
        PointsError::Invalid(e.to_string())
    }
}
