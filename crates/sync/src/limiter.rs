//! Microsoft's per-mailbox limits on our side (MICROSOFT.md §4.1–§4.2): at most 4 Graph requests in
//! flight per mailbox (a semaphore), and a "not before" instant set from `Retry-After` that every
//! request to that mailbox waits for. Each mailbox has its own gate, so one mailbox's throttling
//! never delays another's requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Microsoft's concurrency limit per app and mailbox.
pub const MAX_IN_FLIGHT_PER_MAILBOX: usize = 4;

#[derive(Debug)]
pub struct MailboxGate {
    permits: Arc<Semaphore>,
    not_before: Mutex<Option<Instant>>,
    in_flight: AtomicU32,
    max_in_flight: AtomicU32,
}

impl MailboxGate {
    fn new() -> MailboxGate {
        MailboxGate {
            permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_MAILBOX)),
            not_before: Mutex::new(None),
            in_flight: AtomicU32::new(0),
            max_in_flight: AtomicU32::new(0),
        }
    }

    /// When the next request may be sent (a `Retry-After` still running), if later than now.
    pub fn not_before(&self) -> Option<Instant> {
        let nb = *self.not_before.lock().unwrap_or_else(|p| p.into_inner());
        nb.filter(|t| *t > Instant::now())
    }

    /// Nothing may be sent to this mailbox before `now + wait` (never shortens an earlier wait).
    pub fn hold_off(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut nb = self.not_before.lock().unwrap_or_else(|p| p.into_inner());
        *nb = Some(nb.map_or(until, |t| t.max(until)));
    }

    /// Waits for the hold-off, then for a slot; the slot is given back when the permit drops.
    pub(crate) async fn acquire(self: &Arc<Self>) -> InFlight {
        self.acquire_slots(1).await
    }

    /// [`MailboxGate::acquire`] for a request Microsoft runs as `slots` at once (a JSON batch:
    /// up to 4 of its requests run concurrently), 1 to 4.
    pub(crate) async fn acquire_slots(self: &Arc<Self>, slots: u32) -> InFlight {
        let slots = slots.clamp(1, MAX_IN_FLIGHT_PER_MAILBOX as u32);
        loop {
            if let Some(t) = self.not_before() {
                tokio::time::sleep_until(t).await;
            }
            // A closed semaphore cannot happen (never closed); treat it as "try again".
            let Ok(permit) = self.permits.clone().acquire_many_owned(slots).await else { continue };
            // A Retry-After may have arrived while we waited for the slot.
            if self.not_before().is_some() {
                drop(permit);
                continue;
            }
            let now = self.in_flight.fetch_add(slots, Ordering::SeqCst) + slots;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            return InFlight { gate: self.clone(), permit: Some(permit), slots };
        }
    }

    /// The most requests this process ever had in flight to this mailbox at once.
    pub fn max_in_flight(&self) -> u32 {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

/// One request in flight. Dropping it frees the slot; [`InFlight::linger`] keeps the slot taken a
/// while longer (a timed-out request may still be running at Microsoft and still counts there).
pub(crate) struct InFlight {
    gate: Arc<MailboxGate>,
    permit: Option<OwnedSemaphorePermit>,
    slots: u32,
}

impl InFlight {
    pub(crate) fn linger(mut self, for_how_long: Duration) {
        if let Some(permit) = self.permit.take() {
            let (gate, slots) = (self.gate.clone(), self.slots);
            tokio::spawn(async move {
                tokio::time::sleep(for_how_long).await;
                gate.in_flight.fetch_sub(slots, Ordering::SeqCst);
                drop(permit);
            });
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.permit.take().is_some() {
            self.gate.in_flight.fetch_sub(self.slots, Ordering::SeqCst);
        }
    }
}

/// The gates of every mailbox this process talks to, keyed by Graph mailbox (the sync mailbox id).
#[derive(Debug, Default)]
pub struct Gates {
    gates: Mutex<HashMap<uuid::Uuid, Arc<MailboxGate>>>,
}

impl Gates {
    pub fn gate(&self, mailbox: uuid::Uuid) -> Arc<MailboxGate> {
        self.gates.lock().unwrap_or_else(|p| p.into_inner()).entry(mailbox).or_insert_with(|| Arc::new(MailboxGate::new())).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn never_more_than_four_and_hold_offs_delay_everyone() {
        let gates = Gates::default();
        let g = gates.gate(uuid::Uuid::nil());
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(g.acquire().await);
        }
        let g2 = g.clone();
        let fifth = tokio::spawn(async move { g2.acquire().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!fifth.is_finished(), "a fifth request waits for a slot");
        held.pop();
        let fifth = fifth.await.unwrap();
        assert_eq!(g.max_in_flight(), 4);
        drop(fifth);
        drop(held);

        g.hold_off(Duration::from_secs(2));
        let start = Instant::now();
        let _p = g.acquire().await;
        assert!(Instant::now() - start >= Duration::from_secs(2));
        // Another mailbox is not affected.
        let other = gates.gate(uuid::Uuid::from_u128(1));
        let start = Instant::now();
        other.hold_off(Duration::ZERO);
        let _q = other.acquire().await;
        assert!(Instant::now() - start < Duration::from_millis(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lingering_slot_is_freed_later() {
        let g = Gates::default().gate(uuid::Uuid::nil());
        for _ in 0..4 {
            g.acquire().await.linger(Duration::from_secs(1));
        }
        let start = Instant::now();
        let _p = g.acquire().await;
        assert!(Instant::now() - start >= Duration::from_secs(1));
    }
}
