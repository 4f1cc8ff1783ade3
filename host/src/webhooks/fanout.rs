//! The webhook fan-out: turns numbered events into pending deliveries.
//!
//! It wakes when the event pump gives new numbers (on any replica: every
//! pump publishes the highest number in the database), and re-checks on a
//! slow tick as a fallback. Each batch is one transaction that enqueues
//! and moves the cursor only if the cursor is still where this replica
//! read it ([`storage::fan_out`]), so replicas share the work without
//! duplicating it.

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;

use super::{now_ms, storage};
use crate::{
    runtime::{
        Runtime,
        background::{Backoff, FailureLog},
    },
    storage::{Database, events},
};

/// The loop's name in logs and health.
const FAN_OUT: &str = "webhook fan-out";
/// Events read per transaction.
const BATCH: u32 = 500;
/// Re-check this often even if the pump said nothing.
const RECHECK_EVERY: Duration = Duration::from_secs(5);
/// First and longest wait after a failure.
const RETRY_BASE: Duration = Duration::from_millis(250);
const RETRY_CAP: Duration = Duration::from_secs(30);

/// Start the fan-out; it pokes `enqueued` whenever it enqueued deliveries.
pub fn spawn(runtime: &Arc<Runtime>, enqueued: Arc<Notify>) {
    let weak = Arc::downgrade(runtime);
    let stop = runtime.background().signal();
    let mut sequenced = runtime.event_bus().subscribe();
    runtime.background().spawn(FAN_OUT, async move {
        let mut backoff = Backoff::new(RETRY_BASE, RETRY_CAP);
        let mut failures = FailureLog::new("fanning events out to webhooks");
        let mut delay = Duration::ZERO;
        loop {
            // While failing, wait out the backoff: new events must not
            // turn it into a retry per event.
            let failing = failures.is_failing();
            tokio::select! {
                biased;
                () = stop.stopped() => return,
                () = tokio::time::sleep(delay) => {}
                changed = sequenced.changed(), if !failing => {
                    if changed.is_err() {
                        return; // The pump (and its runtime) is gone.
                    }
                }
            }
            let Some(runtime) = weak.upgrade() else {
                return;
            };
            match fan_out_all(runtime.database()).await {
                Ok(enqueued_now) => {
                    failures.succeeded();
                    runtime.background().report(FAN_OUT, None);
                    backoff.reset();
                    if enqueued_now > 0 {
                        enqueued.notify_one();
                    }
                    delay = RECHECK_EVERY;
                }
                Err(error) => {
                    failures.failed(&format!("{error:#}"));
                    runtime
                        .background()
                        .report(FAN_OUT, Some(format!("{error:#}")));
                    delay = backoff.next_delay();
                }
            }
        }
    });
}

/// Fan out every numbered event after the cursor; how many deliveries
/// were enqueued.
async fn fan_out_all(db: &Database) -> anyhow::Result<usize> {
    let mut enqueued = 0;
    loop {
        let from = events::cursor(db, storage::CONSUMER).await?;
        let batch = events::events_after(db, from, BATCH).await?;
        if batch.is_empty() {
            return Ok(enqueued);
        }
        let full = batch.len() == BATCH as usize;
        match storage::fan_out(db, from, &batch, now_ms()).await? {
            Some(n) => enqueued += n,
            // Another replica moved the cursor: read it again.
            None => continue,
        }
        if !full {
            return Ok(enqueued);
        }
    }
}
