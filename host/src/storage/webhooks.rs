//! Webhooks in the host's own tables: the endpoints admins registered and
//! the delivery of each event to each endpoint.
//!
//! - `souk_webhooks`: url, subscription patterns (a JSON list), the signing
//!   secret (kept to sign with; shown once, at creation), whether enabled,
//!   and `after_seq`, the last event number when it was created, so a new
//!   endpoint is not sent the history that came before it.
//! - `souk_webhook_deliveries`: one row per (event, endpoint) to send,
//!   written by the fan-out in the same transaction that moves its cursor
//!   (so an event is fanned out exactly once, whichever replica does it).
//!   A row is `pending` until a 2xx (`delivered`) or until its attempts
//!   run out (`failed`). `next_attempt_ms` is both the retry schedule and
//!   the lease: claiming a due row pushes it past the attempt's timeout
//!   and bumps `attempts`, conditionally, so two replicas never send the
//!   same attempt, and an attempt lost to a crash comes due again by
//!   itself. `attempts` is the fence: an outcome is recorded only by the
//!   claim that made that attempt.

use anyhow::{Context, bail};
use serde::Serialize;

use super::{
    Database, Intent, Tx,
    events::{self, StoredEvent},
    values,
};
use crate::{bindings::db::Value, config::Secret};

/// The tables of this module, for [`super::migrations::prepare_host_schema`].
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS souk_webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    after_seq BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS souk_webhook_deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES souk_webhooks (id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    event_seq BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_ms BIGINT,
    last_attempt_at TEXT,
    last_status_code BIGINT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    delivered_at TEXT
);
CREATE INDEX IF NOT EXISTS souk_webhook_deliveries_due
    ON souk_webhook_deliveries (next_attempt_ms) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS souk_webhook_deliveries_by_webhook
    ON souk_webhook_deliveries (webhook_id, id);
";

/// The event cursor of the webhook fan-out (`souk_event_cursors`).
pub const CONSUMER: &str = "webhooks";

/// Most deliveries one replay enqueues; the answer says where to go on.
pub const MAX_REPLAY: usize = 1000;

/// Rows per multi-row INSERT (7 parameters each: well under either
/// backend's parameter limit).
const INSERT_CHUNK: usize = 200;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Not yet answered with a 2xx; attempts remain.
    Pending,
    /// A 2xx answered an attempt.
    Delivered,
    /// Every attempt failed.
    Failed,
}

impl DeliveryStatus {
    /// Every status, for validating a filter.
    pub const ALL: [Self; 3] = [Self::Pending, Self::Delivered, Self::Failed];

    /// As stored and shown.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// The status spelled `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A webhook as the admin API shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Webhook {
    /// Opaque id (UUIDv7).
    pub id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Subscription patterns: event types or `noun.*`.
    pub events: Vec<String>,
    /// Whether new events are fanned out to it and its deliveries sent.
    pub enabled: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// A delivery as `GET /admin/webhooks/{id}/deliveries` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Opaque id of this delivery (a replay makes a new one).
    pub id: String,
    /// The endpoint.
    pub webhook_id: String,
    /// The event's id: the same in every attempt and every replay.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The event's sequence number.
    pub event_sequence: u64,
    /// `pending`, `delivered` or `failed`.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (RFC 3339), while pending.
    pub next_attempt_at: Option<String>,
    /// When the last attempt started.
    pub last_attempt_at: Option<String>,
    /// The HTTP status of the last answer, if there was one.
    pub last_status_code: Option<u16>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// When the delivery was enqueued.
    pub created_at: String,
    /// When a 2xx answered.
    pub delivered_at: Option<String>,
}

/// A claimed attempt: what to send where, signed with what.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The delivery.
    pub delivery_id: String,
    /// The endpoint's id.
    pub webhook_id: String,
    /// This attempt's number (1 for the first); the fence of its outcome.
    pub attempt: u32,
    /// The endpoint.
    pub url: String,
    /// The endpoint's signing secret.
    pub secret: Secret,
    /// The event.
    pub event: StoredEvent,
}

/// How an attempt ended, as [`record`] stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx.
    Delivered {
        /// The status the receiver answered.
        status_code: u16,
    },
    /// Failed; try again at `next_attempt_ms`.
    Retry {
        /// The status, if the receiver answered at all.
        status_code: Option<u16>,
        /// What went wrong.
        error: String,
        /// When (Unix milliseconds).
        next_attempt_ms: i64,
    },
    /// Failed, and that was the last attempt.
    Failed {
        /// The status, if the receiver answered at all.
        status_code: Option<u16>,
        /// What went wrong.
        error: String,
    },
}

/// What a replay enqueued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replayed {
    /// Deliveries enqueued.
    pub enqueued: usize,
    /// The first sequence looked at.
    pub from_sequence: u64,
    /// Where to replay from next if [`MAX_REPLAY`] cut this one short
    /// (`null`: every matching event up to the fan-out's position).
    pub next_sequence: Option<u64>,
}

fn int(n: u64) -> Value {
    Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

fn failed(what: &str) -> impl FnOnce(crate::bindings::db::DbError) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("cannot {what}: {e:?}")
}

const WEBHOOK_COLUMNS: &str = "id, url, events, enabled, created_at, updated_at";

fn webhook_from_row(row: &[Value]) -> anyhow::Result<Webhook> {
    match row {
        [
            Value::Text(id),
            Value::Text(url),
            Value::Text(events),
            enabled,
            Value::Text(created_at),
            Value::Text(updated_at),
        ] => Ok(Webhook {
            id: id.clone(),
            url: url.clone(),
            events: serde_json::from_str(events).context("a webhook's events are not a list")?,
            enabled: is_true(enabled),
            created_at: created_at.clone(),
            updated_at: updated_at.clone(),
        }),
        other => bail!("unexpected webhook row {other:?}"),
    }
}

fn is_true(value: &Value) -> bool {
    matches!(value, Value::Boolean(true) | Value::Integer(1))
}

/// Store a new, enabled webhook; it gets the events numbered after now.
pub async fn create(
    db: &Database,
    url: &str,
    patterns: &[String],
    secret: &Secret,
) -> anyhow::Result<Webhook> {
    let id = uuid::Uuid::now_v7().to_string();
    let now = crate::clock::now_rfc3339();
    let mut tx = db.begin(Intent::Write).await.context("cannot begin")?;
    values::execute(
        &mut tx,
        "INSERT INTO souk_webhooks (id, url, events, secret, enabled, after_seq, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, \
                 (SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM souk_events), $6, $6)",
        &[
            text(&id),
            text(url),
            Value::Text(serde_json::to_string(patterns)?),
            text(secret.expose()),
            Value::Boolean(true),
            text(&now),
        ],
    )
    .await
    .map_err(failed("store the webhook"))?;
    let webhook = select_one(&mut tx, &id).await?;
    tx.commit().await.context("cannot commit the webhook")?;
    webhook.context("the new webhook vanished")
}

async fn select_one(tx: &mut Tx, id: &str) -> anyhow::Result<Option<Webhook>> {
    let rows = values::query(
        tx,
        &format!("SELECT {WEBHOOK_COLUMNS} FROM souk_webhooks WHERE id = $1"),
        &[text(id)],
    )
    .await
    .map_err(failed("read a webhook"))?;
    rows.rows
        .first()
        .map(|row| webhook_from_row(row))
        .transpose()
}

/// The webhook `id`, if it exists.
pub async fn get(db: &Database, id: &str) -> anyhow::Result<Option<Webhook>> {
    let mut tx = db.begin(Intent::Read).await.context("cannot begin")?;
    let webhook = select_one(&mut tx, id).await;
    tx.rollback().await.ok();
    webhook
}

/// A page of webhooks, oldest first, and how many there are.
pub async fn list(db: &Database, limit: u32, offset: u32) -> anyhow::Result<(Vec<Webhook>, u64)> {
    let mut tx = db.begin(Intent::Read).await.context("cannot begin")?;
    let total = count(
        &mut tx,
        "SELECT CAST(count(*) AS BIGINT) FROM souk_webhooks",
        &[],
    )
    .await;
    let rows = values::query(
        &mut tx,
        &format!(
            "SELECT {WEBHOOK_COLUMNS} FROM souk_webhooks ORDER BY created_at, id LIMIT $1 OFFSET $2"
        ),
        &[Value::Integer(limit.into()), Value::Integer(offset.into())],
    )
    .await;
    tx.rollback().await.ok();
    let rows = rows.map_err(failed("read the webhooks"))?;
    let items = rows
        .rows
        .iter()
        .map(|row| webhook_from_row(row))
        .collect::<anyhow::Result<_>>()?;
    Ok((items, total?))
}

async fn count(tx: &mut Tx, sql: &str, params: &[Value]) -> anyhow::Result<u64> {
    let rows = values::query(tx, sql, params)
        .await
        .map_err(failed("count"))?;
    match rows.rows.first().and_then(|row| row.first()) {
        Some(Value::Integer(n)) => Ok(u64::try_from(*n).unwrap_or(0)),
        other => bail!("unexpected count {other:?}"),
    }
}

/// Change a webhook's patterns and/or whether it is enabled; the webhook
/// after the change, or `None` if there is no such webhook.
pub async fn update(
    db: &Database,
    id: &str,
    patterns: Option<&[String]>,
    enabled: Option<bool>,
) -> anyhow::Result<Option<Webhook>> {
    let mut sets = vec!["updated_at = $2".to_owned()];
    let mut params = vec![text(id), text(&crate::clock::now_rfc3339())];
    if let Some(patterns) = patterns {
        params.push(Value::Text(serde_json::to_string(patterns)?));
        sets.push(format!("events = ${}", params.len()));
    }
    if let Some(enabled) = enabled {
        params.push(Value::Boolean(enabled));
        sets.push(format!("enabled = ${}", params.len()));
    }
    let mut tx = db.begin(Intent::Write).await.context("cannot begin")?;
    values::execute(
        &mut tx,
        &format!("UPDATE souk_webhooks SET {} WHERE id = $1", sets.join(", ")),
        &params,
    )
    .await
    .map_err(failed("change the webhook"))?;
    let webhook = select_one(&mut tx, id).await?;
    tx.commit().await.context("cannot commit the webhook")?;
    Ok(webhook)
}

/// Delete a webhook and its deliveries (an attempt in flight finds its row
/// gone and records nothing); whether it existed.
pub async fn delete(db: &Database, id: &str) -> anyhow::Result<bool> {
    let mut tx = db.begin(Intent::Write).await.context("cannot begin")?;
    // Explicitly, not only by the cascade: SQLite enforces it only on
    // connections with foreign keys on, which is ours, but say it here.
    values::execute(
        &mut tx,
        "DELETE FROM souk_webhook_deliveries WHERE webhook_id = $1",
        &[text(id)],
    )
    .await
    .map_err(failed("delete the webhook's deliveries"))?;
    let deleted = values::execute(
        &mut tx,
        "DELETE FROM souk_webhooks WHERE id = $1",
        &[text(id)],
    )
    .await
    .map_err(failed("delete the webhook"))?;
    tx.commit().await.context("cannot commit the deletion")?;
    Ok(deleted == 1)
}

/// One delivery to enqueue.
struct NewDelivery<'a> {
    webhook_id: &'a str,
    event_id: &'a str,
    event_seq: u64,
    event_type: &'a str,
}

async fn enqueue(tx: &mut Tx, deliveries: &[NewDelivery<'_>], now_ms: i64) -> anyhow::Result<()> {
    let now = crate::clock::now_rfc3339();
    for chunk in deliveries.chunks(INSERT_CHUNK) {
        let mut rows = Vec::with_capacity(chunk.len());
        let mut params = Vec::with_capacity(chunk.len() * 7);
        for delivery in chunk {
            let at = params.len();
            rows.push(format!(
                "(${}, ${}, ${}, ${}, ${}, 'pending', 0, ${}, ${})",
                at + 1,
                at + 2,
                at + 3,
                at + 4,
                at + 5,
                at + 6,
                at + 7
            ));
            params.extend([
                Value::Text(uuid::Uuid::now_v7().to_string()),
                text(delivery.webhook_id),
                text(delivery.event_id),
                int(delivery.event_seq),
                text(delivery.event_type),
                Value::Integer(now_ms),
                text(&now),
            ]);
        }
        values::execute(
            tx,
            &format!(
                "INSERT INTO souk_webhook_deliveries \
                 (id, webhook_id, event_id, event_seq, event_type, status, attempts, next_attempt_ms, created_at) \
                 VALUES {}",
                rows.join(", ")
            ),
            &params,
        )
        .await
        .map_err(failed("enqueue deliveries"))?;
    }
    Ok(())
}

/// Fan `events` (numbered after `from`, in order) out to every enabled
/// webhook whose patterns match, and move the fan-out's cursor from
/// `from` to the last of them, in one transaction. `Ok(None)` if another
/// replica moved the cursor first (nothing is written then); else how many
/// deliveries were enqueued.
pub async fn fan_out(
    db: &Database,
    from: u64,
    events: &[StoredEvent],
    now_ms: i64,
) -> anyhow::Result<Option<usize>> {
    let Some(last) = events.last() else {
        return Ok(Some(0));
    };
    let mut tx = db.begin(Intent::Write).await.context("cannot begin")?;
    let rows = values::query(
        &mut tx,
        "SELECT id, events, after_seq FROM souk_webhooks WHERE enabled",
        &[],
    )
    .await
    .map_err(failed("read the enabled webhooks"))?;
    let mut hooks = Vec::new();
    for row in &rows.rows {
        match row.as_slice() {
            [
                Value::Text(id),
                Value::Text(patterns),
                Value::Integer(after),
            ] => {
                let patterns: Vec<String> =
                    serde_json::from_str(patterns).context("a webhook's events are not a list")?;
                hooks.push((id.as_str(), patterns, u64::try_from(*after).unwrap_or(0)));
            }
            other => bail!("unexpected webhook row {other:?}"),
        }
    }
    let deliveries: Vec<NewDelivery<'_>> = events
        .iter()
        .flat_map(|event| {
            hooks
                .iter()
                .filter(|(_, patterns, after)| {
                    event.sequence > *after && covers(patterns, &event.event_type)
                })
                .map(|(id, _, _)| NewDelivery {
                    webhook_id: id,
                    event_id: &event.id,
                    event_seq: event.sequence,
                    event_type: &event.event_type,
                })
        })
        .collect();
    enqueue(&mut tx, &deliveries, now_ms).await?;
    let (sql, params) = events::advance_cursor(CONSUMER, from, last.sequence);
    let moved = values::execute(&mut tx, sql, &params)
        .await
        .map_err(failed("move the webhook cursor"))?;
    if moved != 1 {
        tx.rollback().await.ok();
        return Ok(None);
    }
    tx.commit().await.context("cannot commit the fan-out")?;
    Ok(Some(deliveries.len()))
}

/// Whether any of `patterns` covers `event_type`.
pub fn covers(patterns: &[String], event_type: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| crate::events::matches(pattern, event_type))
}

/// Claim up to `limit` deliveries due at `now_ms` of enabled webhooks:
/// each claim counts the attempt and moves the row's due time to
/// `lease_until_ms`, only if no one else claimed it meanwhile.
pub async fn claim_due(
    db: &Database,
    now_ms: i64,
    lease_until_ms: i64,
    limit: u32,
) -> anyhow::Result<Vec<Claimed>> {
    let mut tx = db.begin(Intent::Write).await.context("cannot begin")?;
    let rows = values::query(
        &mut tx,
        "SELECT d.id, d.attempts, w.id, w.url, w.secret, \
                e.id, e.seq, e.event_type, e.subject, e.data, e.occurred_at, e.request_id, e.actor, e.emitted_by \
         FROM souk_webhook_deliveries d \
         JOIN souk_webhooks w ON w.id = d.webhook_id \
         JOIN souk_events e ON e.id = d.event_id \
         WHERE d.status = 'pending' AND d.next_attempt_ms <= $1 AND w.enabled \
         ORDER BY d.next_attempt_ms LIMIT $2",
        &[Value::Integer(now_ms), Value::Integer(limit.into())],
    )
    .await
    .map_err(failed("look for due deliveries"))?;
    let now = crate::clock::now_rfc3339();
    let mut claimed = Vec::new();
    for row in rows.rows {
        let Some(candidate) = claimed_from_row(row)? else {
            continue;
        };
        let won = values::execute(
            &mut tx,
            "UPDATE souk_webhook_deliveries \
             SET attempts = attempts + 1, next_attempt_ms = $1, last_attempt_at = $2 \
             WHERE id = $3 AND status = 'pending' AND attempts = $4 AND next_attempt_ms <= $5",
            &[
                Value::Integer(lease_until_ms),
                text(&now),
                text(&candidate.delivery_id),
                Value::Integer(i64::from(candidate.attempt) - 1),
                Value::Integer(now_ms),
            ],
        )
        .await
        .map_err(failed("claim a delivery"))?;
        if won == 1 {
            claimed.push(candidate);
        }
    }
    tx.commit().await.context("cannot commit the claims")?;
    Ok(claimed)
}

fn claimed_from_row(row: Vec<Value>) -> anyhow::Result<Option<Claimed>> {
    // The delivery's columns, then the event's in `events::EVENT_COLUMNS`
    // order, decoded by the one event decoder.
    if row.len() < 5 {
        bail!("unexpected due delivery row {row:?}");
    }
    let (delivery, event) = row.split_at(5);
    let event = super::events::event_from_row(event.to_vec())?;
    match delivery {
        [
            Value::Text(delivery_id),
            Value::Integer(attempts),
            Value::Text(webhook_id),
            Value::Text(url),
            Value::Text(secret),
        ] => Ok(u32::try_from(*attempts + 1).ok().map(|attempt| Claimed {
            delivery_id: delivery_id.clone(),
            webhook_id: webhook_id.clone(),
            attempt,
            url: url.clone(),
            secret: Secret::new(secret.clone()),
            event,
        })),
        other => bail!("unexpected due delivery row {other:?}"),
    }
}

/// Record how attempt `attempt` of `delivery_id` ended, unless the
/// delivery changed meanwhile (deleted, replayed over, or its lease
/// expired and another claim made a later attempt).
pub async fn record(
    db: &Database,
    delivery_id: &str,
    attempt: u32,
    outcome: &Outcome,
) -> anyhow::Result<()> {
    let code = |c: Option<u16>| c.map_or(Value::Null, |c| Value::Integer(c.into()));
    let (status, next, status_code, error, delivered_at) = match outcome {
        Outcome::Delivered { status_code } => (
            DeliveryStatus::Delivered,
            Value::Null,
            code(Some(*status_code)),
            Value::Null,
            text(&crate::clock::now_rfc3339()),
        ),
        Outcome::Retry {
            status_code,
            error,
            next_attempt_ms,
        } => (
            DeliveryStatus::Pending,
            Value::Integer(*next_attempt_ms),
            code(*status_code),
            text(error),
            Value::Null,
        ),
        Outcome::Failed { status_code, error } => (
            DeliveryStatus::Failed,
            Value::Null,
            code(*status_code),
            text(error),
            Value::Null,
        ),
    };
    let mut tx = db.begin(Intent::Write).await.context("cannot begin")?;
    values::execute(
        &mut tx,
        "UPDATE souk_webhook_deliveries \
         SET status = $1, next_attempt_ms = $2, last_status_code = $3, last_error = $4, delivered_at = $5 \
         WHERE id = $6 AND attempts = $7 AND status = 'pending'",
        &[
            text(status.as_str()),
            next,
            status_code,
            error,
            delivered_at,
            text(delivery_id),
            Value::Integer(attempt.into()),
        ],
    )
    .await
    .map_err(failed("record a delivery attempt"))?;
    tx.commit()
        .await
        .context("cannot commit a delivery attempt")
}

/// A page of `webhook_id`'s deliveries, newest first, optionally only those
/// with `status`, and how many match.
pub async fn deliveries(
    db: &Database,
    webhook_id: &str,
    status: Option<DeliveryStatus>,
    limit: u32,
    offset: u32,
) -> anyhow::Result<(Vec<Delivery>, u64)> {
    let mut params = vec![text(webhook_id)];
    let mut filter = "WHERE webhook_id = $1".to_owned();
    if let Some(status) = status {
        params.push(text(status.as_str()));
        filter.push_str(" AND status = $2");
    }
    let mut tx = db.begin(Intent::Read).await.context("cannot begin")?;
    let total = count(
        &mut tx,
        &format!("SELECT CAST(count(*) AS BIGINT) FROM souk_webhook_deliveries {filter}"),
        &params,
    )
    .await;
    let (limit_at, offset_at) = (params.len() + 1, params.len() + 2);
    params.extend([Value::Integer(limit.into()), Value::Integer(offset.into())]);
    let rows = values::query(
        &mut tx,
        &format!(
            "SELECT id, webhook_id, event_id, event_seq, event_type, status, attempts, next_attempt_ms, \
                    last_attempt_at, last_status_code, last_error, created_at, delivered_at \
             FROM souk_webhook_deliveries {filter} ORDER BY id DESC LIMIT ${limit_at} OFFSET ${offset_at}"
        ),
        &params,
    )
    .await;
    tx.rollback().await.ok();
    let rows = rows.map_err(failed("read deliveries"))?;
    let items = rows
        .rows
        .into_iter()
        .map(delivery_from_row)
        .collect::<anyhow::Result<_>>()?;
    Ok((items, total?))
}

fn delivery_from_row(row: Vec<Value>) -> anyhow::Result<Delivery> {
    let opt_text = |value: &Value| match value {
        Value::Text(text) => Some(text.clone()),
        _ => None,
    };
    match row.as_slice() {
        [
            Value::Text(id),
            Value::Text(webhook_id),
            Value::Text(event_id),
            Value::Integer(seq),
            Value::Text(event_type),
            Value::Text(status),
            Value::Integer(attempts),
            next_attempt_ms,
            last_attempt_at,
            last_status_code,
            last_error,
            Value::Text(created_at),
            delivered_at,
        ] => {
            let status = DeliveryStatus::parse(status)
                .with_context(|| format!("unknown delivery status {status}"))?;
            Ok(Delivery {
                id: id.clone(),
                webhook_id: webhook_id.clone(),
                event_id: event_id.clone(),
                event_type: event_type.clone(),
                event_sequence: u64::try_from(*seq).unwrap_or(0),
                status,
                attempts: u32::try_from(*attempts).unwrap_or(u32::MAX),
                next_attempt_at: match (status, next_attempt_ms) {
                    (DeliveryStatus::Pending, Value::Integer(ms)) => Some(crate::clock::rfc3339(
                        u64::try_from(ms.div_euclid(1000)).unwrap_or(0),
                    )),
                    _ => None,
                },
                last_attempt_at: opt_text(last_attempt_at),
                last_status_code: match last_status_code {
                    Value::Integer(code) => u16::try_from(*code).ok(),
                    _ => None,
                },
                last_error: opt_text(last_error),
                created_at: created_at.clone(),
                delivered_at: opt_text(delivered_at),
            })
        }
        other => bail!("unexpected delivery row {other:?}"),
    }
}

/// Enqueue a new delivery to `webhook_id` of every event from
/// `from_sequence` on that its patterns match, up to where the fan-out
/// has got (later events reach it through the fan-out), at most
/// [`MAX_REPLAY`]. `None` if there is no such webhook.
pub async fn replay(
    db: &Database,
    webhook_id: &str,
    from_sequence: u64,
    now_ms: i64,
) -> anyhow::Result<Option<Replayed>> {
    /// Events read per query while looking for matches.
    const SCAN: i64 = 1000;
    let mut tx = db.begin(Intent::Write).await.context("cannot begin")?;
    let rows = values::query(
        &mut tx,
        "SELECT events FROM souk_webhooks WHERE id = $1",
        &[text(webhook_id)],
    )
    .await
    .map_err(failed("read the webhook"))?;
    let patterns: Vec<String> = match rows.rows.first().map(Vec::as_slice) {
        Some([Value::Text(patterns)]) => {
            serde_json::from_str(patterns).context("a webhook's events are not a list")?
        }
        Some(other) => bail!("unexpected webhook row {other:?}"),
        None => {
            tx.rollback().await.ok();
            return Ok(None);
        }
    };
    let through = {
        let rows = values::query(
            &mut tx,
            "SELECT last_seq FROM souk_event_cursors WHERE consumer = $1",
            &[text(CONSUMER)],
        )
        .await
        .map_err(failed("read the webhook cursor"))?;
        match rows.rows.first().and_then(|row| row.first()) {
            Some(Value::Integer(seq)) => *seq,
            _ => 0,
        }
    };
    let mut matched: Vec<(String, u64, String)> = Vec::new();
    let mut next = i64::try_from(from_sequence).unwrap_or(i64::MAX);
    let mut cut_at = None;
    'scan: while next <= through {
        let rows = values::query(
            &mut tx,
            "SELECT id, seq, event_type FROM souk_events WHERE seq >= $1 AND seq <= $2 \
             ORDER BY seq LIMIT $3",
            &[
                Value::Integer(next),
                Value::Integer(through),
                Value::Integer(SCAN),
            ],
        )
        .await
        .map_err(failed("read events to replay"))?;
        if rows.rows.is_empty() {
            break;
        }
        for row in rows.rows {
            let [
                Value::Text(id),
                Value::Integer(seq),
                Value::Text(event_type),
            ] = row.as_slice()
            else {
                bail!("unexpected event row {row:?}");
            };
            if !covers(&patterns, event_type) {
                next = seq + 1;
                continue;
            }
            if matched.len() == MAX_REPLAY {
                cut_at = Some(u64::try_from(*seq).unwrap_or(0));
                break 'scan;
            }
            matched.push((
                id.clone(),
                u64::try_from(*seq).unwrap_or(0),
                event_type.clone(),
            ));
            next = seq + 1;
        }
    }
    let deliveries: Vec<NewDelivery<'_>> = matched
        .iter()
        .map(|(event_id, seq, event_type)| NewDelivery {
            webhook_id,
            event_id,
            event_seq: *seq,
            event_type,
        })
        .collect();
    enqueue(&mut tx, &deliveries, now_ms).await?;
    tx.commit().await.context("cannot commit the replay")?;
    Ok(Some(Replayed {
        enqueued: deliveries.len(),
        from_sequence,
        next_sequence: cut_at,
    }))
}
