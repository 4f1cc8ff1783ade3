//! Delivering events to subscribing components: a component that exports
//! `event-handler` is handed each numbered event its grant subscribes it to
//! (`subscribe` in [`super::policy::GrantSpec`]), at least once and in
//! order, with a cursor of its own (`component:<name>` in
//! `souk_event_cursors`) so a restart resumes where it left off.
//!
//! Each delivery is a unit of work of its own (request id `event:<id>`,
//! [`Intent::Write`]) that first moves the subscriber's cursor from where
//! it was to the event, conditionally ([`events::advance_cursor`]), then
//! calls the handler in a fresh instance with the subscriber's limits. It
//! commits only if the cursor moved (exactly one row) and the handler
//! returned `ok`: the handler's writes and "this event is done" are one
//! commit, so an acknowledged event is never handled again, and of two
//! replicas racing for one event only one can commit (on PostgreSQL the
//! loser waits on the cursor row, then moves nothing and rolls back, never
//! running the handler). An `err`, a trap or a deadline rolls back and the
//! same event is retried with [`Backoff`], for that subscriber only.
//!
//! Events the grant does not cover are not delivered: the next delivery
//! moves the cursor past them too, and a run of them at the end of a batch
//! is remembered by the worker and recorded in one statement at most every
//! [`RECORD_PASSED_EVERY`] (or when the worker catches up), not once per
//! batch: under a steady stream of events the subscriber does not want
//! (every purchase, for the wishlist), recording each batch was one more
//! write transaction per commit, queued with the requests' own. Events
//! passed but not yet recorded are only read and passed again after a
//! restart. A grant's new patterns therefore apply from the subscriber's
//! position on (give or take the events passed since it was last
//! recorded); a new subscriber starts from the first event (its cursor is
//! 0), so it catches up on history.
//!
//! One supervisor task (spawned next to the event pump) starts a worker
//! per loaded subscriber and restarts it when a subscriber appears again;
//! each worker takes the current version of its component for every
//! delivery, so after a hot swap the new version handles the next event.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use super::{
    CallError, Runtime,
    background::{Backoff, FailureLog, StopSignal},
    registry::LoadedComponent,
    state::RequestScope,
};
use crate::{
    bindings::{event_handler, events::Event, types::Error as WitError},
    storage::{
        Intent,
        events::{self, StoredEvent},
        uow::UnitOfWork,
    },
};

/// The supervisor's name in logs and health.
const SUBSCRIBERS: &str = "event subscribers";
/// A worker's name in logs (one per subscribing component).
const WORKER: &str = "event subscriber";
/// How often the supervisor looks for newly loaded subscribers.
const RESCAN_EVERY: Duration = Duration::from_millis(500);
/// How long a caught-up worker waits for the pump before looking anyway
/// (a lost wake-up, or events another replica numbered).
const IDLE_RECHECK: Duration = Duration::from_secs(2);
/// Events read per batch.
const BATCH: u32 = 100;
/// How long events passed over may go unrecorded in the cursor while more
/// keep coming (see the module documentation).
const RECORD_PASSED_EVERY: Duration = Duration::from_secs(1);
/// First and longest wait before retrying a failed delivery.
const RETRY_BASE: Duration = Duration::from_millis(200);
const RETRY_CAP: Duration = Duration::from_secs(60);

/// The cursor name of subscribing component `name`.
pub fn consumer_name(component: &str) -> String {
    format!("component:{component}")
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivered {
    /// Committed: the cursor is at the event.
    Done,
    /// Someone else (another replica) moved the cursor first; nothing was
    /// handled here.
    Raced,
}

/// Why a delivery failed; it is retried.
#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    /// The handler answered with an error.
    #[error("the handler refused event {sequence} (`{event_type}`): {error:?}")]
    Refused {
        sequence: u64,
        event_type: String,
        error: WitError,
    },
    /// The call failed (trap, deadline, memory, overload).
    #[error("handling event {sequence} failed: {source}")]
    Call { sequence: u64, source: CallError },
    /// The database failed.
    #[error("{0:#}")]
    Storage(anyhow::Error),
}

/// Subscribers failing right now (name → why), reported to health as one
/// problem of [`SUBSCRIBERS`].
#[derive(Debug, Default)]
struct Failing(Mutex<BTreeMap<String, String>>);

impl Failing {
    fn set(&self, runtime: &Runtime, component: &str, detail: Option<String>) {
        let mut failing = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let changed = match detail {
            Some(detail) => failing.insert(component.to_owned(), detail).is_none(),
            None => failing.remove(component).is_some(),
        };
        if changed {
            let summary = (!failing.is_empty()).then(|| {
                failing
                    .iter()
                    .map(|(name, why)| format!("`{name}`: {why}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            runtime.background.report(SUBSCRIBERS, summary);
        }
    }
}

impl Runtime {
    /// Start delivering events to subscribing components; it stops with
    /// the host's other background work.
    pub fn spawn_event_subscribers(self: &Arc<Self>) {
        let runtime = Arc::downgrade(self);
        let stop = self.background.signal();
        self.background.spawn(SUBSCRIBERS, async move {
            let running: Arc<Mutex<HashSet<String>>> = Arc::default();
            let failing = Arc::new(Failing::default());
            loop {
                let Some(strong) = runtime.upgrade() else {
                    return;
                };
                for component in strong.registry.snapshot().components() {
                    if component.event_handler.is_none() {
                        continue;
                    }
                    let mut names = running.lock().unwrap_or_else(|e| e.into_inner());
                    if names.insert(component.name.clone()) {
                        let worker = Worker {
                            runtime: runtime.clone(),
                            name: component.name.clone(),
                            consumer: consumer_name(&component.name),
                            stop: stop.clone(),
                            failing: failing.clone(),
                            passed: PassedOver {
                                to: None,
                                recorded_at: std::time::Instant::now(),
                            },
                            _running: Running {
                                names: running.clone(),
                                name: component.name.clone(),
                            },
                        };
                        strong.background.spawn(WORKER, worker.run());
                    }
                }
                drop(strong);
                tokio::select! {
                    biased;
                    () = stop.stopped() => return,
                    () = tokio::time::sleep(RESCAN_EVERY) => {}
                }
            }
        });
    }
}

/// Removes a worker's name from the running set when the worker ends, so
/// the supervisor starts a new one if its component is loaded again.
struct Running {
    names: Arc<Mutex<HashSet<String>>>,
    name: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.name);
    }
}

/// Delivers events to one subscribing component, in order.
struct Worker {
    runtime: Weak<Runtime>,
    name: String,
    consumer: String,
    stop: StopSignal,
    failing: Arc<Failing>,
    /// Events passed over and not yet recorded in the cursor.
    passed: PassedOver,
    _running: Running,
}

/// The last event a worker passed over without recording it in its cursor
/// yet, and when it last recorded such a pass.
struct PassedOver {
    to: Option<u64>,
    recorded_at: std::time::Instant,
}

/// What the worker does next.
enum Next {
    /// More may be waiting: go on at once.
    Continue,
    /// Caught up: wait for new events.
    Idle,
    /// A delivery failed: wait this long, then retry it.
    Retry(Duration),
    /// The component is gone (unloaded, or no longer a subscriber).
    Exit,
}

impl Worker {
    async fn run(mut self) {
        let mut backoff = Backoff::new(RETRY_BASE, RETRY_CAP);
        let mut failures = FailureLog::new(format!("delivering events to `{}`", self.name));
        let Some(mut sequenced) = self.runtime.upgrade().map(|r| r.event_bus().subscribe()) else {
            return;
        };
        loop {
            let Some(runtime) = self.runtime.upgrade() else {
                return;
            };
            let next = match self.step(&runtime).await {
                Ok(next) => {
                    failures.succeeded();
                    backoff.reset();
                    self.failing.set(&runtime, &self.name, None);
                    next
                }
                Err(error) => {
                    failures.failed(&error);
                    self.failing
                        .set(&runtime, &self.name, Some(error.to_string()));
                    Next::Retry(backoff.next_delay())
                }
            };
            drop(runtime);
            match next {
                Next::Continue if !self.stop.is_stopped() => {}
                Next::Continue => return,
                Next::Exit => {
                    tracing::info!(component = %self.name, "no longer a loaded subscriber; delivery stops");
                    return;
                }
                Next::Idle => {
                    tokio::select! {
                        biased;
                        () = self.stop.stopped() => return,
                        changed = sequenced.changed() => if changed.is_err() { return },
                        () = tokio::time::sleep(IDLE_RECHECK) => {}
                    }
                }
                Next::Retry(delay) => {
                    tokio::select! {
                        biased;
                        () = self.stop.stopped() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// One batch: read the cursor and the events after it, deliver those
    /// the grant covers, and pass the rest.
    async fn step(&mut self, runtime: &Arc<Runtime>) -> Result<Next, DeliveryError> {
        let db = runtime.database().clone();
        let mut cursor = events::cursor(&db, &self.consumer)
            .await
            .map_err(DeliveryError::Storage)?;
        // Read on after what was passed over already (if another replica
        // moved the cursor further, from there).
        self.passed.to = self.passed.to.filter(|&to| to > cursor);
        let read_from = self.passed.to.unwrap_or(cursor);
        let batch = events::events_after(&db, read_from, BATCH)
            .await
            .map_err(DeliveryError::Storage)?;
        if batch.is_empty() {
            self.record_passed(&db, cursor).await?;
            return Ok(if subscriber(runtime, &self.name).is_some() {
                Next::Idle
            } else {
                Next::Exit
            });
        }
        let full = batch.len() >= usize::try_from(BATCH).unwrap_or(usize::MAX);
        let mut passed = None;
        for event in &batch {
            if self.stop.is_stopped() {
                return Ok(Next::Continue);
            }
            // The current version, for every event: a hot swap takes
            // effect at the next delivery.
            let Some((component, indices)) = subscriber(runtime, &self.name) else {
                return Ok(Next::Exit);
            };
            if !component.access.grant.subscribes_to(&event.event_type) {
                passed = Some(event.sequence);
                continue;
            }
            match deliver(runtime, &component, &indices, &self.consumer, cursor, event).await? {
                Delivered::Done => {
                    metrics::counter!("souk_event_deliveries_total", "component" => self.name.clone())
                        .increment(1);
                    tracing::debug!(component = %self.name, sequence = event.sequence, event_type = %event.event_type, "event delivered");
                    // The cursor moved past everything passed before it.
                    cursor = event.sequence;
                    passed = None;
                    self.passed.to = None;
                }
                // Another replica is delivering: start again from where
                // the cursor really is.
                Delivered::Raced => return Ok(Next::Continue),
            }
        }
        if let Some(to) = passed {
            self.passed.to = Some(to);
            if self.passed.recorded_at.elapsed() >= RECORD_PASSED_EVERY {
                self.record_passed(&db, cursor).await?;
            }
        }
        Ok(if full { Next::Continue } else { Next::Idle })
    }

    /// Record the events passed over in the cursor, which is at `cursor`,
    /// in one step (if another replica moved it first, nothing is lost
    /// either way).
    async fn record_passed(
        &mut self,
        db: &crate::storage::Database,
        cursor: u64,
    ) -> Result<(), DeliveryError> {
        if let Some(to) = self.passed.to {
            events::advance(db, &self.consumer, cursor, to)
                .await
                .map_err(DeliveryError::Storage)?;
            self.passed.to = None;
        }
        self.passed.recorded_at = std::time::Instant::now();
        Ok(())
    }
}

/// The current version of `name` if it exports `event-handler`.
fn subscriber(
    runtime: &Runtime,
    name: &str,
) -> Option<(Arc<LoadedComponent>, event_handler::GuestIndices)> {
    let snapshot = runtime.registry.snapshot();
    let component = snapshot.get(name)?.clone();
    let indices = component.event_handler.clone()?;
    Some((component, indices))
}

/// Deliver `event` to `component` in a unit of work of its own that also
/// moves `consumer`'s cursor from `from` to the event; it commits only if
/// the event was handled here.
async fn deliver(
    runtime: &Arc<Runtime>,
    component: &Arc<LoadedComponent>,
    indices: &event_handler::GuestIndices,
    consumer: &str,
    from: u64,
    event: &StoredEvent,
) -> Result<Delivered, DeliveryError> {
    RequestScope::for_event(
        UnitOfWork::new(runtime.database().clone(), Intent::Write),
        &event.id,
    )
    .run(
        runtime.event_bus(),
        async |scope| handle_in(runtime, component, indices, scope, consumer, from, event).await,
        |outcome| matches!(outcome, Ok(Delivered::Done)),
    )
    .await
    .map_err(|error| {
        DeliveryError::Storage(anyhow::Error::new(error).context(format!(
            "cannot commit the delivery of event {}",
            event.sequence
        )))
    })?
}

/// The work inside a delivery's unit of work ([`deliver`] commits or rolls
/// back): claim the event by moving the cursor, then call the handler.
async fn handle_in(
    runtime: &Arc<Runtime>,
    component: &Arc<LoadedComponent>,
    indices: &event_handler::GuestIndices,
    scope: &Arc<RequestScope>,
    consumer: &str,
    from: u64,
    event: &StoredEvent,
) -> Result<Delivered, DeliveryError> {
    // First, so that a replica that lost the race waits here (on the
    // cursor's row) and never runs the handler at all.
    let (sql, params) = events::advance_cursor(consumer, from, event.sequence);
    let moved = scope
        .uow
        .run_host(sql, &params)
        .await
        .map_err(|e| DeliveryError::Storage(anyhow::anyhow!("cannot move a cursor: {e:?}")))?;
    if moved != 1 {
        return Ok(Delivered::Raced);
    }
    let call_error = |source| DeliveryError::Call {
        sequence: event.sequence,
        source,
    };
    let result = runtime
        .call_in(component, scope, async |store, instance| {
            indices
                .load(&mut *store, instance)?
                .call_handle(store, &to_wit(event))
                .await
        })
        .await
        .map_err(call_error)?;
    result.map_err(|error| DeliveryError::Refused {
        sequence: event.sequence,
        event_type: event.event_type.clone(),
        error,
    })?;
    Ok(Delivered::Done)
}

/// An event as the WIT `event` record carries it.
fn to_wit(event: &StoredEvent) -> Event {
    Event {
        id: event.id.clone(),
        event_type: event.event_type.clone(),
        sequence: event.sequence,
        occurred_at: event.occurred_at.clone(),
        request_id: event.request_id.clone(),
        actor: event.actor.clone(),
        subject: event.subject.clone(),
        data: event.data.clone(),
    }
}
