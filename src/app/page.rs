//! Cursor pagination shared by every listing: newest first, the cursor is the id of the last
//! item seen, and one extra row is fetched to know whether another page exists.

use serde::Serialize;

use super::error::{AppError, ErrorCode};

/// Items per page when the client does not say.
pub const DEFAULT_LIMIT: i64 = 20;
/// The most items one page may hold: bounds what one request costs.
pub const MAX_LIMIT: i64 = 100;
/// Ids are UUIDs; anything longer is not a cursor this server gave out.
const MAX_CURSOR_LEN: usize = 64;

/// A checked page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    cursor: Option<String>,
    limit: i64,
}

impl PageRequest {
    /// Checks a client's `cursor` and `limit`: the limit 1..=100 (default 20) or
    /// `INVALID_QUERY`; an empty cursor is the first page, an over-long one `INVALID_CURSOR`.
    pub fn new(cursor: Option<String>, limit: Option<i64>) -> Result<PageRequest, AppError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(AppError::new(
                ErrorCode::InvalidQuery,
                format!("limit must be 1..{MAX_LIMIT}"),
            ));
        }
        let cursor = cursor.filter(|c| !c.is_empty());
        if cursor.as_ref().is_some_and(|c| c.len() > MAX_CURSOR_LEN) {
            return Err(AppError::new(
                ErrorCode::InvalidCursor,
                "cursor is not valid",
            ));
        }
        Ok(PageRequest { cursor, limit })
    }

    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    pub fn limit(&self) -> i64 {
        self.limit
    }

    /// How many rows to read: one more than the page, to learn whether more exist.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }
}

/// One page of items and the cursor of the next (absent on the last page).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Paged<T> {
    /// Trims rows read with [`PageRequest::fetch`] to the page; the next cursor is the id of
    /// the last item kept when a row beyond the page was read.
    pub fn from_rows(mut rows: Vec<T>, page: &PageRequest, id: impl Fn(&T) -> String) -> Self {
        let limit = usize::try_from(page.limit).unwrap_or(0);
        if rows.len() > limit {
            rows.truncate(limit);
            let next_cursor = rows.last().map(id);
            Paged {
                items: rows,
                next_cursor,
            }
        } else {
            Paged {
                items: rows,
                next_cursor: None,
            }
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paged<U> {
        Paged {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked() {
        assert_eq!(PageRequest::new(None, None).unwrap().limit(), 20);
        assert_eq!(PageRequest::new(None, Some(100)).unwrap().limit(), 100);
        for bad in [0, -1, 101] {
            let e = PageRequest::new(None, Some(bad)).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidQuery);
        }
        let e = PageRequest::new(Some("x".repeat(65)), None).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidCursor);
        assert_eq!(
            PageRequest::new(Some(String::new()), None)
                .unwrap()
                .cursor(),
            None
        );
    }

    #[test]
    fn pages_trim_and_point_at_the_next() {
        let page = PageRequest::new(None, Some(2)).unwrap();
        let p = Paged::from_rows(vec![5, 4, 3], &page, |i| i.to_string());
        assert_eq!(p.items, vec![5, 4]);
        assert_eq!(p.next_cursor.as_deref(), Some("4"));
        let p = Paged::from_rows(vec![5, 4], &page, |i| i.to_string());
        assert_eq!(p.next_cursor, None);
    }
}
