//! Integration tests of the Microsoft client against the in-process emulator (a test double for
//! login.microsoftonline.com and graph.microsoft.com; the client shares no types with it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod certificates;
mod consent;
mod delta;
mod faults;
mod graph;
mod helpers;
mod id_tokens;
mod sign_in;
mod tokens;
