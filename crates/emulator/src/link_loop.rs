//! A fault no rule expresses: delta paging that never ends. While it is on, every delta page
//! (messages, events, contacts, tasks) ends with a nextLink and never with a deltaLink, either the
//! very link that fetched the page or a new link each time, so a client that follows nextLinks
//! without a bound never finishes its round. Turned off, a stored link of the chain resumes the
//! round where it was.

use crate::{RunningEmulator, Shared, lock};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How delta paging loops (see [`RunningEmulator::loop_delta_links`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeltaLinkLoop {
    /// The nextLink is the link that fetched the page.
    Repeat,
    /// A new nextLink on every page, forever (the round's position does not move once its items
    /// are all sent).
    Endless,
}

#[derive(Default)]
pub(crate) struct LinkLoop {
    mode: Mutex<Option<DeltaLinkLoop>>,
    /// Makes each link of an endless chain different from the one before.
    served: AtomicU64,
}

impl RunningEmulator {
    /// Makes delta paging loop (`Some`) or end as usual again (`None`).
    pub fn loop_delta_links(&self, mode: Option<DeltaLinkLoop>) {
        *lock(&self.shared.link_loop.mode) = mode;
    }
}

/// The nextLink a looping delta page ends with instead of its own link, if delta paging loops:
/// `request` is the URL that fetched the page, `resume` the link that goes on from this page.
pub(crate) fn looped_next_link(shared: &Shared, request: &str, resume: &str) -> Option<String> {
    match (*lock(&shared.link_loop.mode))? {
        DeltaLinkLoop::Repeat => Some(request.to_string()),
        DeltaLinkLoop::Endless => Some(format!("{resume}&loop={}", shared.link_loop.served.fetch_add(1, Ordering::Relaxed))),
    }
}
