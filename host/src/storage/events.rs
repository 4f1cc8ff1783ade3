//! The event outbox and the audit log, in the host's own tables.
//!
//! - `souk_events`: every event a request emitted, written in the request's
//!   unit of work (so it exists exactly when the request committed). Its
//!   `seq` is NULL until the sequencer numbers committed events in the order
//!   it first sees them; a number, once given, is never given again, and no
//!   later event gets a smaller one, so a consumer's cursor never skips.
//! - `souk_event_cursors`: how far each subscriber (a component, a webhook,
//!   the NATS publisher) has consumed.
//! - `souk_audit`: append-only; written by the host only, in the unit of
//!   work of the change it records. No component statement can reach a
//!   `souk_*` table (the statement check reserves the prefix).

use anyhow::{Context, bail};
use serde::Serialize;

use super::{Database, Dialect, Intent, uow::HostRow, values};
use crate::bindings::db::Value;

/// The tables of this module, for [`super::migrations::prepare_host_schema`].
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS souk_events (
    id TEXT PRIMARY KEY,
    seq BIGINT UNIQUE,
    event_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    data TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    request_id TEXT NOT NULL,
    actor TEXT,
    emitted_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS souk_events_unsequenced ON souk_events (id) WHERE seq IS NULL;
CREATE TABLE IF NOT EXISTS souk_event_cursors (
    consumer TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS souk_audit (
    id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    request_id TEXT NOT NULL,
    changes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS souk_audit_at ON souk_audit (at, id);
";

/// An event as stored and delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredEvent {
    /// Stable id (UUIDv7).
    pub id: String,
    /// Position in commit order.
    pub sequence: u64,
    /// `noun.verb`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// What it is about.
    pub subject: String,
    /// The payload, a JSON object as text.
    #[serde(skip)]
    pub data: String,
    /// RFC 3339.
    pub occurred_at: String,
    /// The request that caused it.
    pub request_id: String,
    /// Username of the caller, if any.
    pub actor: Option<String>,
    /// The component that emitted it.
    #[serde(skip)]
    pub emitted_by: String,
}

impl StoredEvent {
    /// The JSON that webhooks and NATS carry: `{id, type, sequence,
    /// occurred_at, request_id, actor, subject, data}`.
    pub fn to_json(&self) -> serde_json::Value {
        let data = serde_json::from_str(&self.data).unwrap_or(serde_json::Value::Null);
        serde_json::json!({
            "id": self.id,
            "type": self.event_type,
            "sequence": self.sequence,
            "occurred_at": self.occurred_at,
            "request_id": self.request_id,
            "actor": self.actor,
            "subject": self.subject,
            "data": data,
        })
    }
}

/// The outbox row of a new event.
pub fn event_row(
    id: &str,
    event_type: &str,
    subject: &str,
    data: &str,
    request_id: &str,
    actor: Option<&str>,
    emitted_by: &str,
) -> HostRow {
    HostRow {
        into: "souk_events (id, event_type, subject, data, occurred_at, request_id, actor, emitted_by)",
        values: vec![
            Value::Text(id.into()),
            Value::Text(event_type.into()),
            Value::Text(subject.into()),
            Value::Text(data.into()),
            Value::Text(crate::clock::now_rfc3339()),
            Value::Text(request_id.into()),
            actor.map_or(Value::Null, |a| Value::Text(a.into())),
            Value::Text(emitted_by.into()),
        ],
    }
}

/// One audit entry to record.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// Username of who acted (`None`: anonymous, or the system).
    pub actor: Option<&'a str>,
    /// What was done, e.g. `wallet.charged`, `component.deployed`.
    pub action: &'a str,
    /// What it was done to.
    pub subject: &'a str,
    /// The request it was part of.
    pub request_id: &'a str,
    /// What changed (a JSON object), never a password or a hash.
    pub changes: serde_json::Value,
}

/// The audit log row that records `entry`.
pub fn audit_row(entry: &AuditEntry<'_>) -> HostRow {
    HostRow {
        into: "souk_audit (id, at, actor, action, subject, request_id, changes)",
        values: vec![
            Value::Text(uuid::Uuid::now_v7().to_string()),
            Value::Text(crate::clock::now_rfc3339()),
            entry.actor.map_or(Value::Null, |a| Value::Text(a.into())),
            Value::Text(entry.action.into()),
            Value::Text(entry.subject.into()),
            Value::Text(entry.request_id.into()),
            Value::Text(redacted(entry.changes.clone()).to_string()),
        ],
    }
}

/// Record `entry` in a transaction of its own (admin actions that are not
/// part of a request's unit of work, such as a deploy).
pub async fn audit(db: &Database, entry: &AuditEntry<'_>) -> anyhow::Result<()> {
    let mut tx = db.begin(Intent::Write).await.context("cannot begin")?;
    for (sql, params) in HostRow::inserts(&[audit_row(entry)]) {
        values::execute(&mut tx, &sql, &params)
            .await
            .map_err(|e| anyhow::anyhow!("cannot record the audit entry: {e:?}"))?;
    }
    tx.commit().await.context("cannot commit the audit entry")
}

/// `value` without anything that looks like a credential, at any depth:
/// the audit log must never hold a password or its hash, whoever wrote it.
fn redacted(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        Json::Object(fields) => Json::Object(
            fields
                .into_iter()
                .map(|(key, value)| {
                    let lower = key.to_ascii_lowercase();
                    if ["password", "secret", "token", "hash"]
                        .iter()
                        .any(|word| lower.contains(word))
                    {
                        (key, Json::String("[redacted]".into()))
                    } else {
                        (key, redacted(value))
                    }
                })
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.into_iter().map(redacted).collect()),
        other => other,
    }
}

/// Most events one sequencer pass numbers.
pub const SEQUENCE_BATCH: u64 = 5000;

/// What one sequencer pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequenced {
    /// How many events it numbered (at most [`SEQUENCE_BATCH`]).
    pub numbered: u64,
    /// The highest number given so far, by anyone (0 before the first
    /// event).
    pub last: u64,
}

/// Number the committed events nobody has numbered yet, in id (time)
/// order, at most [`SEQUENCE_BATCH`], and read the last number given, in
/// one transaction. One sequencer at a time: on PostgreSQL an advisory
/// lock, on SQLite the write lock.
pub async fn sequence(db: &Database) -> anyhow::Result<Sequenced> {
    let mut tx = db.begin(Intent::Write).await.context("cannot begin")?;
    if db.dialect() == Dialect::Postgres {
        Database::run_script(&mut tx, "SELECT pg_advisory_xact_lock(7290453)")
            .await
            .context("cannot take the sequencer lock")?;
    }
    let numbered = values::execute(
        &mut tx,
        &format!(
            "UPDATE souk_events SET seq = (SELECT COALESCE(MAX(seq), 0) FROM souk_events) + r.rn \
             FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS rn FROM souk_events \
                   WHERE seq IS NULL ORDER BY id LIMIT {SEQUENCE_BATCH}) AS r \
             WHERE souk_events.id = r.id"
        ),
        &[],
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot number events: {e:?}"))?;
    let last = values::query(
        &mut tx,
        "SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM souk_events",
        &[],
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot read the last event number: {e:?}"))?;
    tx.commit().await.context("cannot commit event numbers")?;
    let last = match last.rows.first().and_then(|row| row.first()) {
        Some(Value::Integer(seq)) => u64::try_from(*seq).unwrap_or(0),
        other => bail!("unexpected last event number {other:?}"),
    };
    Ok(Sequenced { numbered, last })
}

pub(super) const EVENT_COLUMNS: &str =
    "id, seq, event_type, subject, data, occurred_at, request_id, actor, emitted_by";

/// Numbered events after `seq`, oldest first, at most `limit`.
pub async fn events_after(db: &Database, seq: u64, limit: u32) -> anyhow::Result<Vec<StoredEvent>> {
    let mut tx = db.begin(Intent::Read).await.context("cannot begin")?;
    let rows = values::query(
        &mut tx,
        &format!("SELECT {EVENT_COLUMNS} FROM souk_events WHERE seq > $1 ORDER BY seq LIMIT $2"),
        &[
            Value::Integer(i64::try_from(seq).unwrap_or(i64::MAX)),
            Value::Integer(limit.into()),
        ],
    )
    .await;
    tx.rollback().await.ok();
    let rows = rows.map_err(|e| anyhow::anyhow!("cannot read events: {e:?}"))?;
    rows.rows.into_iter().map(event_from_row).collect()
}

/// An event from a row of [`EVENT_COLUMNS`], in that order.
pub(super) fn event_from_row(row: Vec<Value>) -> anyhow::Result<StoredEvent> {
    match row.as_slice() {
        [
            Value::Text(id),
            Value::Integer(seq),
            Value::Text(event_type),
            Value::Text(subject),
            Value::Text(data),
            Value::Text(occurred_at),
            Value::Text(request_id),
            actor,
            Value::Text(emitted_by),
        ] => Ok(StoredEvent {
            id: id.clone(),
            sequence: u64::try_from(*seq).unwrap_or(0),
            event_type: event_type.clone(),
            subject: subject.clone(),
            data: data.clone(),
            occurred_at: occurred_at.clone(),
            request_id: request_id.clone(),
            actor: match actor {
                Value::Text(actor) => Some(actor.clone()),
                _ => None,
            },
            emitted_by: emitted_by.clone(),
        }),
        other => bail!("unexpected event row {other:?}"),
    }
}

/// How far `consumer` has consumed (0 if it never has).
pub async fn cursor(db: &Database, consumer: &str) -> anyhow::Result<u64> {
    let mut tx = db.begin(Intent::Read).await.context("cannot begin")?;
    let rows = values::query(
        &mut tx,
        "SELECT last_seq FROM souk_event_cursors WHERE consumer = $1",
        &[Value::Text(consumer.into())],
    )
    .await;
    tx.rollback().await.ok();
    let rows = rows.map_err(|e| anyhow::anyhow!("cannot read a cursor: {e:?}"))?;
    Ok(match rows.rows.first().and_then(|row| row.first()) {
        Some(Value::Integer(seq)) => u64::try_from(*seq).unwrap_or(0),
        _ => 0,
    })
}

/// The statement that moves `consumer`'s cursor from `from` to `to`, only
/// if nobody moved it meanwhile (so two replicas never both consume one
/// event): it changes one row exactly when this replica won.
pub fn advance_cursor(consumer: &str, from: u64, to: u64) -> (&'static str, Vec<Value>) {
    let int = |n: u64| Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    if from == 0 {
        (
            "INSERT INTO souk_event_cursors (consumer, last_seq) VALUES ($1, $2) \
             ON CONFLICT (consumer) DO UPDATE SET last_seq = excluded.last_seq \
             WHERE souk_event_cursors.last_seq = 0",
            vec![Value::Text(consumer.into()), int(to)],
        )
    } else {
        (
            "UPDATE souk_event_cursors SET last_seq = $1 WHERE consumer = $2 AND last_seq = $3",
            vec![int(to), Value::Text(consumer.into()), int(from)],
        )
    }
}

/// Run `(sql, params)` from [`advance_cursor`] in a transaction of its own;
/// whether this caller moved the cursor.
pub async fn advance(db: &Database, consumer: &str, from: u64, to: u64) -> anyhow::Result<bool> {
    let mut tx = db.begin(Intent::Write).await.context("cannot begin")?;
    let (sql, params) = advance_cursor(consumer, from, to);
    let moved = values::execute(&mut tx, sql, &params)
        .await
        .map_err(|e| anyhow::anyhow!("cannot move a cursor: {e:?}"))?;
    tx.commit().await.context("cannot commit a cursor")?;
    Ok(moved == 1)
}

/// An audit entry as `GET /admin/audit` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    /// Entry id.
    pub id: String,
    /// RFC 3339.
    pub at: String,
    /// Username of who acted, or `null`.
    pub actor: Option<String>,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// The request it was part of.
    pub request_id: String,
    /// What changed.
    pub changes: serde_json::Value,
}

/// Filters of `GET /admin/audit`; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exact actor username.
    pub actor: Option<String>,
    /// Exact action.
    pub action: Option<String>,
    /// Exact subject.
    pub subject: Option<String>,
    /// At or after (RFC 3339).
    pub since: Option<String>,
    /// At or before (RFC 3339).
    pub until: Option<String>,
}

/// A page of audit entries matching `filter`, newest first, and the total.
pub async fn audit_page(
    db: &Database,
    filter: &AuditFilter,
    limit: u32,
    offset: u32,
) -> anyhow::Result<(Vec<AuditRecord>, u64)> {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    for (column, op, value) in [
        ("actor", "=", &filter.actor),
        ("action", "=", &filter.action),
        ("subject", "=", &filter.subject),
        ("at", ">=", &filter.since),
        ("at", "<=", &filter.until),
    ] {
        if let Some(value) = value {
            params.push(Value::Text(value.clone()));
            conditions.push(format!("{column} {op} ${}", params.len()));
        }
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let mut tx = db.begin(Intent::Read).await.context("cannot begin")?;
    let total = values::query(
        &mut tx,
        &format!("SELECT CAST(count(*) AS BIGINT) FROM souk_audit {filter}"),
        &params,
    )
    .await;
    let (limit_at, offset_at) = (params.len() + 1, params.len() + 2);
    params.extend([Value::Integer(limit.into()), Value::Integer(offset.into())]);
    let rows = values::query(
        &mut tx,
        &format!(
            "SELECT id, at, actor, action, subject, request_id, changes FROM souk_audit {filter} \
             ORDER BY at DESC, id DESC LIMIT ${limit_at} OFFSET ${offset_at}"
        ),
        &params,
    )
    .await;
    tx.rollback().await.ok();
    let total = match total
        .map_err(|e| anyhow::anyhow!("cannot count audit entries: {e:?}"))?
        .rows
        .first()
        .and_then(|row| row.first())
    {
        Some(Value::Integer(n)) => u64::try_from(*n).unwrap_or(0),
        other => bail!("unexpected audit count {other:?}"),
    };
    let rows = rows.map_err(|e| anyhow::anyhow!("cannot read the audit log: {e:?}"))?;
    let records = rows
        .rows
        .into_iter()
        .map(|row| match row.as_slice() {
            [
                Value::Text(id),
                Value::Text(at),
                actor,
                Value::Text(action),
                Value::Text(subject),
                Value::Text(request_id),
                Value::Text(changes),
            ] => Ok(AuditRecord {
                id: id.clone(),
                at: at.clone(),
                actor: match actor {
                    Value::Text(actor) => Some(actor.clone()),
                    _ => None,
                },
                action: action.clone(),
                subject: subject.clone(),
                request_id: request_id.clone(),
                changes: serde_json::from_str(changes).unwrap_or(serde_json::Value::Null),
            }),
            other => bail!("unexpected audit row {other:?}"),
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((records, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_the_audit_log() {
        let changes = serde_json::json!({
            "full_name": {"before": "A", "after": "B"},
            "password": "changed",
            "nested": [{"password_hash": "$argon2id$..."}, {"api_token": "x"}],
        });
        let clean = redacted(changes);
        let text = clean.to_string();
        assert!(!text.contains("argon2"), "{text}");
        assert_eq!(clean["password"], "[redacted]");
        assert_eq!(clean["full_name"]["after"], "B");
        assert_eq!(clean["nested"][1]["api_token"], "[redacted]");
    }
}
