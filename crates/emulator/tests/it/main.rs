//! Integration tests of the Microsoft 365 emulator: one binary, one module per area.

// Test harness code: a failed expectation should abort the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod control;
mod fidelity;
mod graph;
mod helpers;
mod identity;
mod subscriptions;
mod throttling;
mod writes;
