//! Committed events published to NATS JetStream, when `SOUK_NATS_URL` is
//! set: the distributed log outside consumers read, as DESIGN.md's
//! "Events" and "Scaling out" say. Without the setting nothing here runs.
//!
//! One background loop per replica follows the event pump with its own
//! cursor (`souk_event_cursors`, consumer [`CONSUMER`]): it publishes each
//! numbered event after the cursor to subject `souk.events.<type>` of the
//! stream [`STREAM`] (created if missing, on `souk.events.>`; an existing
//! stream's configuration is left as the operator set it), with the body
//! [`StoredEvent::to_json`] and the header `Nats-Msg-Id: <event id>`, and
//! moves the cursor only after JetStream acknowledged every message of the
//! batch. A crash between the acks and the cursor, or two replicas
//! publishing the same batch, sends an event twice; JetStream drops the
//! second copy by its id (within the stream's duplicate window, two
//! minutes by default), so consumers see each event once.
//!
//! [`StoredEvent::to_json`]: crate::storage::events::StoredEvent::to_json

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use async_nats::jetstream;

use crate::{
    config::Secret,
    runtime::{
        Runtime,
        background::{Backoff, FailureLog},
    },
    storage::{Database, events},
};

/// The stream events are published to.
pub const STREAM: &str = "SOUK_EVENTS";
/// Subjects are `<SUBJECT_PREFIX>.<event type>`.
pub const SUBJECT_PREFIX: &str = "souk.events";
/// The publisher's event cursor.
pub const CONSUMER: &str = "nats";
/// The loop's name in logs and health.
const PUBLISHER: &str = "nats publisher";
/// Events per batch (one cursor move).
const BATCH: u32 = 200;
/// Bound of connecting, and of each acknowledgement.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Re-check this often even if the pump said nothing.
const RECHECK_EVERY: Duration = Duration::from_secs(5);
/// First and longest wait after a failure (NATS or the database).
const RETRY_BASE: Duration = Duration::from_millis(500);
const RETRY_CAP: Duration = Duration::from_secs(30);

/// The subject of events of `event_type`.
pub fn subject(event_type: &str) -> String {
    format!("{SUBJECT_PREFIX}.{event_type}")
}

/// Start publishing to the NATS server at `url`, if one is configured;
/// stops with the host's other background work.
pub fn spawn(runtime: &Arc<Runtime>, url: Option<Secret>) {
    let Some(url) = url else {
        return;
    };
    let weak = Arc::downgrade(runtime);
    let stop = runtime.background().signal();
    let mut sequenced = runtime.event_bus().subscribe();
    runtime.background().spawn(PUBLISHER, async move {
        let mut backoff = Backoff::new(RETRY_BASE, RETRY_CAP);
        let mut failures = FailureLog::new("publishing events to NATS");
        let mut stream: Option<jetstream::Context> = None;
        let mut delay = Duration::ZERO;
        loop {
            let failing = failures.is_failing();
            tokio::select! {
                biased;
                () = stop.stopped() => return,
                () = tokio::time::sleep(delay) => {}
                changed = sequenced.changed(), if !failing => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            let Some(runtime) = weak.upgrade() else {
                return;
            };
            let db = runtime.database().clone();
            let result = async {
                if stream.is_none() {
                    stream = Some(connect(&url).await?);
                }
                match &stream {
                    Some(context) => publish_pending(&db, context).await,
                    None => Ok(()),
                }
            }
            .await;
            match result {
                Ok(()) => {
                    failures.succeeded();
                    runtime.background().report(PUBLISHER, None);
                    backoff.reset();
                    delay = RECHECK_EVERY;
                }
                Err(error) => {
                    failures.failed(&format!("{error:#}"));
                    runtime
                        .background()
                        .report(PUBLISHER, Some(format!("{error:#}")));
                    delay = backoff.next_delay();
                }
            }
        }
    });
}

/// Connect and make sure the stream exists. The client reconnects by
/// itself after this; only a first connection is retried here.
async fn connect(url: &Secret) -> anyhow::Result<jetstream::Context> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(TIMEOUT)
        .connect(url.expose())
        .await
        // The URL may carry credentials: never in the message.
        .map_err(|e| anyhow::anyhow!("cannot connect to NATS: {}", e.kind()))?;
    let mut context = jetstream::new(client);
    context.set_timeout(TIMEOUT);
    context
        .get_or_create_stream(jetstream::stream::Config {
            name: STREAM.to_owned(),
            subjects: vec![format!("{SUBJECT_PREFIX}.>")],
            ..Default::default()
        })
        .await
        .with_context(|| format!("cannot create or find the JetStream stream {STREAM}"))?;
    Ok(context)
}

/// Publish every numbered event after the cursor, a batch at a time,
/// moving the cursor after each fully acknowledged batch.
async fn publish_pending(db: &Database, context: &jetstream::Context) -> anyhow::Result<()> {
    loop {
        let from = events::cursor(db, CONSUMER).await?;
        let batch = events::events_after(db, from, BATCH).await?;
        let Some(last) = batch.last().map(|event| event.sequence) else {
            return Ok(());
        };
        // Send the whole batch, then wait for the acks: one round trip's
        // latency per batch rather than per event.
        let mut acks = Vec::with_capacity(batch.len());
        for event in &batch {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, event.id.as_str());
            let body = serde_json::to_vec(&event.to_json())?;
            let ack = context
                .publish_with_headers(subject(&event.event_type), headers, body.into())
                .await
                .with_context(|| format!("cannot publish event {}", event.id))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await
                .context("JetStream did not acknowledge an event")?;
        }
        // Lost to another replica: it published the same events, which
        // JetStream de-duplicated; read the cursor again.
        events::advance(db, CONSUMER, from, last).await?;
        if batch.len() < BATCH as usize {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_under_the_streams_prefix() {
        assert_eq!(
            subject("customer.registered"),
            "souk.events.customer.registered"
        );
    }
}
