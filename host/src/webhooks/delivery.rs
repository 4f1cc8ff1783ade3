//! The webhook sender: claims due deliveries and POSTs them.
//!
//! A claim counts the attempt and pushes the delivery's due time past
//! what the attempt can take ([`lease`]), so no other replica sends it
//! meanwhile, and a replica that dies mid-attempt leaves a delivery that
//! comes due again by itself. The outcome is recorded only if that claim
//! is still the latest (see [`storage::record`]).
//!
//! Sends run concurrently, at most [`MAX_IN_FLIGHT`] per replica, each
//! within [`WebhookSettings::timeout`], so a receiver that hangs holds
//! one slot for that long and never a request of the API.

use std::{collections::HashMap, sync::Arc, time::Duration};

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use tokio::{sync::Notify, task::JoinSet};

use super::{EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, now_ms, signature, storage};
use crate::{
    config::WebhookSettings,
    runtime::{
        Runtime,
        background::{Backoff, FailureLog},
    },
    storage::{
        Database,
        webhooks::{Claimed, Outcome},
    },
};

/// Most attempts in flight at once on one replica.
pub const MAX_IN_FLIGHT: usize = 16;
/// The loop's name in logs and health.
const SENDER: &str = "webhook sender";
/// Beyond the attempt's own timeout, how long a claim is held: time to
/// build the request and record the outcome (a database write, bounded by
/// the pool's acquire timeout).
const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// First and longest wait after the database failed.
const RETRY_BASE: Duration = Duration::from_millis(250);
const RETRY_CAP: Duration = Duration::from_secs(30);
/// Longest error text kept per delivery.
const MAX_ERROR_CHARS: usize = 300;

/// How long a claim keeps a delivery from other senders.
pub fn lease(settings: &WebhookSettings) -> Duration {
    settings.timeout + LEASE_MARGIN
}

/// The wait after failed attempt number `attempt` (1 for the first):
/// `retry_base` doubling per attempt up to `retry_cap`, a random point in
/// the upper half of that step, so retries of many deliveries that failed
/// together spread out.
pub fn retry_delay(settings: &WebhookSettings, attempt: u32) -> Duration {
    let step = settings
        .retry_base
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(31)))
        .min(settings.retry_cap);
    Backoff::new(step, step).next_delay()
}

/// What one attempt came to, for the loop to log.
enum Attempted {
    /// The receiver took it.
    Delivered { webhook_id: String },
    /// The receiver did not; already recorded.
    Refused { webhook_id: String, error: String },
}

/// Start the sender; `enqueued` wakes it when new deliveries are waiting.
pub fn spawn(runtime: &Arc<Runtime>, settings: WebhookSettings, enqueued: Arc<Notify>) {
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(settings.timeout)
        .timeout(settings.timeout)
        .user_agent(concat!("souk-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!("cannot build the webhook HTTP client; webhooks are not sent: {error}");
            runtime.background().report(
                SENDER,
                Some(format!("cannot build the HTTP client: {error}")),
            );
            return;
        }
    };
    let weak = Arc::downgrade(runtime);
    let stop = runtime.background().signal();
    runtime.background().spawn(SENDER, async move {
        let mut in_flight: JoinSet<anyhow::Result<Attempted>> = JoinSet::new();
        let mut backoff = Backoff::new(RETRY_BASE, RETRY_CAP);
        let mut failures = FailureLog::new("sending webhooks");
        // One log per webhook whose receiver fails, so a receiver that is
        // down is logged when it starts failing and about once a minute,
        // not once per attempt, and a healthy one never mixes in.
        let mut receivers: HashMap<String, FailureLog> = HashMap::new();
        let mut delay = Duration::ZERO;
        loop {
            tokio::select! {
                biased;
                // Dropping the set aborts the attempts in flight; their
                // claims expire and they are sent again.
                () = stop.stopped() => return,
                Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                    match joined {
                        Ok(Ok(Attempted::Delivered { webhook_id })) => {
                            if let Some(mut log) = receivers.remove(&webhook_id) {
                                log.succeeded();
                            }
                        }
                        Ok(Ok(Attempted::Refused { webhook_id, error })) => {
                            receivers
                                .entry(webhook_id.clone())
                                .or_insert_with(|| {
                                    FailureLog::new(format!("delivering to webhook {webhook_id}"))
                                })
                                .failed(&error);
                        }
                        Ok(Err(error)) => failures.failed(&format!("{error:#}")),
                        Err(error) => tracing::warn!("a webhook attempt ended abnormally: {error}"),
                    }
                    // A slot is free: claim again without waiting.
                    if !failures.is_failing() {
                        delay = Duration::ZERO;
                    }
                    continue;
                }
                () = enqueued.notified(), if !failures.is_failing() => {}
                () = tokio::time::sleep(delay) => {}
            }
            let Some(runtime) = weak.upgrade() else {
                return;
            };
            let db = runtime.database().clone();
            drop(runtime);
            let room = MAX_IN_FLIGHT.saturating_sub(in_flight.len());
            if room == 0 {
                delay = settings.poll;
                continue;
            }
            let now = now_ms();
            let lease_ms = i64::try_from(lease(&settings).as_millis()).unwrap_or(i64::MAX);
            let limit = u32::try_from(room).unwrap_or(u32::MAX);
            match storage::claim_due(&db, now, now.saturating_add(lease_ms), limit).await {
                Ok(claims) => {
                    if failures.is_failing() {
                        failures.succeeded();
                    }
                    if let Some(runtime) = weak.upgrade() {
                        runtime.background().report(SENDER, None);
                    }
                    backoff.reset();
                    // A full batch means more may be due: look again as
                    // soon as a slot frees up; else at the next poll.
                    delay = settings.poll;
                    for claim in claims {
                        in_flight.spawn(attempt(db.clone(), client.clone(), settings, claim));
                    }
                }
                Err(error) => {
                    failures.failed(&format!("{error:#}"));
                    if let Some(runtime) = weak.upgrade() {
                        runtime
                            .background()
                            .report(SENDER, Some(format!("{error:#}")));
                    }
                    delay = backoff.next_delay();
                }
            }
        }
    });
}

/// Send one claimed attempt and record its outcome.
async fn attempt(
    db: Database,
    client: reqwest::Client,
    settings: WebhookSettings,
    claim: Claimed,
) -> anyhow::Result<Attempted> {
    let body = serde_json::to_vec(&claim.event.to_json())?;
    let timestamp = u64::try_from(now_ms() / 1000).unwrap_or(0);
    let mut request = client
        .post(&claim.url)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header(SIGNATURE_HEADER, signature(&claim.secret, timestamp, &body));
    // Ids and types are ASCII by construction; a value that somehow is not
    // a valid header is left out rather than failing the delivery.
    for (name, value) in [
        (EVENT_ID_HEADER, &claim.event.id),
        (EVENT_TYPE_HEADER, &claim.event.event_type),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            request = request.header(name, value);
        }
    }
    // The answer's body is never read: only its status matters, and the
    // host must not become a way to read what the URL points at.
    let (status_code, error) = match request.body(body).send().await {
        Ok(response) if response.status().is_success() => (Some(response.status().as_u16()), None),
        Ok(response) => (
            Some(response.status().as_u16()),
            Some(format!("the receiver answered {}", response.status())),
        ),
        Err(error) => (None, Some(describe(error, &settings))),
    };
    let webhook_id = claim.webhook_id.clone();
    let (outcome, attempted) = match (status_code, error) {
        (Some(status_code), None) => (
            Outcome::Delivered { status_code },
            Attempted::Delivered { webhook_id },
        ),
        (status_code, error) => {
            let error = error.unwrap_or_default();
            let outcome = if claim.attempt >= settings.max_attempts {
                Outcome::Failed {
                    status_code,
                    error: error.clone(),
                }
            } else {
                let wait = retry_delay(&settings, claim.attempt);
                Outcome::Retry {
                    status_code,
                    error: error.clone(),
                    next_attempt_ms: now_ms()
                        .saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)),
                }
            };
            (outcome, Attempted::Refused { webhook_id, error })
        }
    };
    storage::record(&db, &claim.delivery_id, claim.attempt, &outcome).await?;
    Ok(attempted)
}

/// A transport error in words, with its causes, without the URL (which
/// may carry a token in its path or query), bounded.
fn describe(error: reqwest::Error, settings: &WebhookSettings) -> String {
    if error.is_timeout() {
        return format!("no answer within {} ms", settings.timeout.as_millis());
    }
    let error = error.without_url();
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text.chars().take(MAX_ERROR_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_the_base_up_to_the_cap() {
        let settings = WebhookSettings {
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(300),
            ..WebhookSettings::default()
        };
        for (attempt, step) in [(1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (1000, 300)] {
            let step = Duration::from_secs(step);
            for _ in 0..20 {
                let delay = retry_delay(&settings, attempt);
                assert!(
                    delay >= step / 2 && delay <= step,
                    "attempt {attempt}: {delay:?}"
                );
            }
        }
    }

    #[test]
    fn the_default_schedule_gives_up_within_minutes() {
        let settings = WebhookSettings::default();
        let longest: Duration = (1..settings.max_attempts)
            .map(|attempt| {
                settings
                    .retry_base
                    .saturating_mul(2u32.pow(attempt - 1))
                    .min(settings.retry_cap)
            })
            .sum();
        assert!(longest <= Duration::from_secs(180), "{longest:?}");
        assert!(lease(&settings) > settings.timeout);
    }
}
