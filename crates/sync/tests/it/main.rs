//! The sync engine against the in-process emulator and a SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backfill;
mod batching;
mod faults;
mod harness;
mod instances;
mod paging;
mod property;
mod reconcile;
mod scenarios;
mod token_races;
mod wakeups;
mod writes;
