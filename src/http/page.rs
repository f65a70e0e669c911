//! The one pagination query of every listing route: `?cursor=&limit=`.

use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use crate::app::PageRequest;

/// `cursor` is the `next_cursor` of the previous page; `limit` is 1..=100 (default 20), a
/// bad one is 400 `INVALID_QUERY`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

impl PageQuery {
    /// The checked page request.
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        Ok(PageRequest::new(self.cursor.clone(), self.limit)?)
    }
}
