//! The event pump: numbers committed events in the outbox (the sequencer,
//! [`crate::storage::events::sequence`]) and wakes whatever consumes them
//! (subscribing components, webhooks, NATS) with the last number given.
//!
//! It runs on a short tick and at once when a request that emitted events
//! commits. Several replicas may run it: the sequencer takes a lock, so
//! numbers stay gap-free and in one order.

use std::{sync::Arc, time::Duration};

use tokio::sync::{Notify, watch};

use super::{
    Runtime,
    background::{Backoff, FailureLog},
};
use crate::storage::events;

/// How often the pump looks for events nobody woke it for (other replicas'
/// requests, or a wake-up lost to a crash).
const PUMP_EVERY: Duration = Duration::from_millis(250);
/// First and longest wait after the sequencer failed.
const RETRY_BASE: Duration = Duration::from_millis(250);
const RETRY_CAP: Duration = Duration::from_secs(30);
/// The pump's name in logs and health.
const PUMP: &str = "event pump";

/// What the pump shares with the rest of the host.
#[derive(Debug)]
pub struct EventBus {
    /// Poked after a request that emitted events commits.
    emitted: Arc<Notify>,
    /// The last event number given; consumers wait for it to move.
    sequenced: watch::Sender<u64>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            emitted: Arc::new(Notify::new()),
            sequenced: watch::Sender::new(0),
        }
    }
}

impl EventBus {
    /// Tell the pump that a request that emitted events committed.
    pub fn committed(&self) {
        self.emitted.notify_one();
    }

    /// A receiver of the last event number given.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.sequenced.subscribe()
    }
}

impl Runtime {
    /// The pump's handle: poke it after commits, or follow its numbers.
    pub fn event_bus(&self) -> &EventBus {
        &self.events
    }

    /// Start the pump; it stops with the host's other background work.
    pub fn spawn_event_pump(self: &Arc<Self>) {
        let runtime = Arc::downgrade(self);
        let stop = self.background.signal();
        let emitted = self.events.emitted.clone();
        self.background.spawn(PUMP, async move {
            let mut backoff = Backoff::new(RETRY_BASE, RETRY_CAP);
            let mut failures = FailureLog::new("numbering events");
            let mut delay = Duration::ZERO;
            loop {
                tokio::select! {
                    biased;
                    () = stop.stopped() => return,
                    () = tokio::time::sleep(delay) => {}
                    () = emitted.notified() => {}
                }
                let Some(runtime) = runtime.upgrade() else {
                    return;
                };
                let db = runtime.database().clone();
                match pump_once(&db).await {
                    Ok(last) => {
                        failures.succeeded();
                        runtime.background.report(PUMP, None);
                        backoff.reset();
                        runtime.events.sequenced.send_if_modified(|seen| {
                            let moved = last > *seen;
                            *seen = (*seen).max(last);
                            moved
                        });
                        delay = PUMP_EVERY;
                    }
                    Err(error) => {
                        failures.failed(&format!("{error:#}"));
                        runtime.background.report(PUMP, Some(format!("{error:#}")));
                        delay = backoff.next_delay();
                    }
                }
            }
        });
    }
}

/// Number what is waiting; the last number given. One pass (one write
/// transaction) per wake-up unless a pass was full: wake-ups that arrive
/// while a pass runs are one wake-up, so under load a pass numbers the
/// events of many requests.
async fn pump_once(db: &crate::storage::Database) -> anyhow::Result<u64> {
    loop {
        let pass = events::sequence(db).await?;
        if pass.numbered < events::SEQUENCE_BATCH {
            return Ok(pass.last);
        }
    }
}
