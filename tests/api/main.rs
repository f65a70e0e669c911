//! API tests: one binary, the real server on port 0, a fresh database per test.

mod admin_web;
mod errors;
mod health;
mod helpers;
mod migrations;
mod orders_storage;
mod shutdown;
