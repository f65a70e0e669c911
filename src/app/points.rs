//! What the points routes need besides the points engine itself.

use super::error::{AppError, ErrorCode};
use crate::actors::points::PointsError;
use crate::storage::Db;

impl From<PointsError> for AppError {
    /// The engine's refusals keep their message; its failures keep their cause for the log
    /// and tell the client to retry.
    fn from(e: PointsError) -> Self {
        let code = match &e {
            PointsError::Insufficient { .. } => ErrorCode::PointsInsufficient,
            PointsError::Invalid(_) => ErrorCode::ValidationFailed,
            PointsError::SourceConflict(_) => ErrorCode::IdempotencyConflict,
            PointsError::KeyReused(_) => ErrorCode::IdempotencyKeyReused,
            PointsError::Busy(_) => ErrorCode::PointsBusy,
            PointsError::Unavailable(_) => ErrorCode::ServiceUnavailable,
            PointsError::Storage(_) => ErrorCode::Internal,
        };
        if code.status() >= 500 {
            AppError::new(code, "the points service could not complete this; retry").with_cause(e)
        } else {
            AppError::new(code, e.to_string())
        }
    }
}

#[derive(Clone)]
pub struct PointsDirectory {
    db: Db,
}

impl PointsDirectory {
    pub fn new(db: Db) -> PointsDirectory {
        PointsDirectory { db }
    }

    /// True when the user exists and is active: points are only adjusted for such users.
    pub async fn active_user_exists(&self, user_id: &str) -> Result<bool, AppError> {
        Ok(crate::storage::shop::openid_of(&self.db, user_id)
            .await?
            .is_some())
    }
}
