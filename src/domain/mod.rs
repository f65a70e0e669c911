//! Plain types and rules: no HTTP, no SQL, no actors.

pub mod order;
pub mod risk;
