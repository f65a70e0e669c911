//! API tests: one binary, the real server on port 0, a fresh database per test.

mod admin;
mod admin_web;
mod auth;
mod authz;
mod cache;
mod crash;
mod errors;
mod health;
mod helpers;
mod identity;
mod logging;
mod merchants;
mod metrics_export;
mod migrations;
mod openapi;
mod orders_storage;
mod orphans;
mod payments;
mod payments_faults;
mod payments_flow;
mod points_http;
mod ratelimit;
mod security;
mod shutdown;
mod signing;
mod users;
