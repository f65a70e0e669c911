//! points-app: WeChat scan-to-pay with loyalty points.
//!
//! The program is this library; `main` only loads settings, installs telemetry and runs
//! [`startup::Application`].
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod actors;
pub mod app;
pub mod cache;
pub mod config;
pub mod domain;
pub mod http;
pub mod sandbox;
pub mod security;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod wechat;
