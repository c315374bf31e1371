//! Full-stack tests: the real router in-process on port 0, a fresh SQLite database, and an HTTP
//! client that keeps cookies like a browser.

// Test-only code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod assets;
mod cli;
mod edge;
mod helpers;
mod malformed;
mod notifications;
mod oauth;
mod operations;
mod process;
mod service_accounts;
mod sign_in;
