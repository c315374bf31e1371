//! Pieces shared by the pages: the app shell and the guard that decides who may see a page.

pub mod guard;
pub mod ready;
pub mod shell;
