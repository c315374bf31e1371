//! The workflows, run as plain async functions against a SQLite store and an in-process
//! emulator: no browser, no Leptos, no HTTP server of ours.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod activity;
mod consent;
mod harness;
mod mode_switch;
mod oauth;
mod people;
mod probes;
mod reconnect;
mod settings;
mod status_pages;
mod tenant;
mod writes;
