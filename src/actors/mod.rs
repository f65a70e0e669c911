//! Actors of the application. Each family keeps its messages in `messages.rs` and its
//! business logic in plain structs (see `crate::domain`).

pub mod points;

pub mod payments;

pub mod notifier;
