//! The store conformance suite: every scenario runs on SQLite, and on PostgreSQL whenever
//! `STORE_TEST_POSTGRES_URL` names a server (`make test` starts a throwaway cluster and sets it).
//! With `STORE_TEST_REQUIRE_POSTGRES=1` a missing PostgreSQL fails the run instead of skipping.

// Test-only code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod connections;
mod consent;
mod harness;
mod hygiene;
mod office365;
mod outbox;
mod scenarios;
mod scheduling;
mod status;
mod subscriptions;
mod sync;
