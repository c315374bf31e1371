//! One module per page.

pub mod actions;
pub mod activity;
pub mod integrations;
pub mod login;
pub mod not_found;
pub mod profile;
