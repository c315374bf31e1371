//! Integration tests of the Microsoft 365 emulator: one binary, one module per area.

mod control;
mod graph;
mod helpers;
mod identity;
mod throttling;
