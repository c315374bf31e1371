//! One module per page.

pub mod actions;
pub mod activity;
pub mod admin_consent;
pub mod audit;
pub mod compose;
pub mod connect_result;
pub mod integrations;
pub mod login;
pub mod my_connection;
pub mod not_found;
pub mod office365;
pub mod profile;
pub mod service_accounts;
pub mod sync_status;
pub mod team_connections;
