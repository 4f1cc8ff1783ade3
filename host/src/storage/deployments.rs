//! Deployed components and their history, kept in the database so a
//! restart serves the last deployed version and every replica converges on
//! the same versions. Bytes are stored once per SHA-256.
//!
//! A name's deployments form a stack: deploying pushes a new `current`
//! (the old one becomes `previous`); rolling back marks the current one
//! `rolled-back` and makes the newest `previous` current again; unloading
//! marks it `unloaded`.

use anyhow::{Context, bail};

use super::{Database, Dialect, Intent, Tx, values};
use crate::bindings::db::Value;

/// Where a deployment came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The components directory at start (a new build).
    Directory,
    /// `PUT /admin/components/{name}`.
    Api,
    /// `souk serve --watch` saw a rebuilt file.
    Watch,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::Directory => "directory",
            Self::Api => "api",
            Self::Watch => "watch",
        }
    }
}

/// One deployment of a component.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Deployment {
    /// Component name.
    pub name: String,
    /// Version from its manifest.
    pub version: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// `directory`, `api`, `watch`.
    pub source: String,
    /// `current`, `previous`, `rolled-back` or `unloaded`.
    pub state: String,
    /// RFC 3339 time of the deployment.
    pub deployed_at: String,
    /// Username of the admin, or `build`/`watch`.
    pub deployed_by: String,
    #[serde(skip)]
    seq: i64,
}

/// SQLite and PostgreSQL name the bytes type differently.
const BLOBS_SQLITE: &str = "CREATE TABLE IF NOT EXISTS souk_component_blobs (sha256 TEXT PRIMARY KEY, bytes BLOB NOT NULL)";
const BLOBS_POSTGRES: &str = "CREATE TABLE IF NOT EXISTS souk_component_blobs (sha256 TEXT PRIMARY KEY, bytes BYTEA NOT NULL)";
const DEPLOYMENTS: &str = "
CREATE TABLE IF NOT EXISTS souk_deployments (
    seq BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    source TEXT NOT NULL,
    state TEXT NOT NULL,
    deployed_at TEXT NOT NULL,
    deployed_by TEXT NOT NULL
)";

/// The schema of this module, for [`super::migrations::prepare_host_schema`].
pub fn schema(dialect: Dialect) -> [&'static str; 2] {
    match dialect {
        Dialect::Sqlite => [BLOBS_SQLITE, DEPLOYMENTS],
        Dialect::Postgres => [BLOBS_POSTGRES, DEPLOYMENTS],
    }
}

const COLUMNS: &str = "name, version, sha256, source, state, deployed_at, deployed_by, seq";

/// The current deployment of every component that has one.
pub async fn current(db: &Database) -> anyhow::Result<Vec<Deployment>> {
    let mut tx = db.begin(Intent::Read).await.context("cannot begin")?;
    let rows = select(
        &mut tx,
        &format!("SELECT {COLUMNS} FROM souk_deployments WHERE state = 'current' ORDER BY name"),
        vec![],
    )
    .await;
    tx.rollback().await.ok();
    rows
}

/// Every deployment of `name`, newest first.
pub async fn history(db: &Database, name: &str) -> anyhow::Result<Vec<Deployment>> {
    let mut tx = db.begin(Intent::Read).await.context("cannot begin")?;
    let rows = select(
        &mut tx,
        &format!("SELECT {COLUMNS} FROM souk_deployments WHERE name = $1 ORDER BY seq DESC"),
        vec![Value::Text(name.into())],
    )
    .await;
    tx.rollback().await.ok();
    rows
}

/// The latest deployment of `name` in any state.
pub async fn latest(db: &Database, name: &str) -> anyhow::Result<Option<Deployment>> {
    Ok(history(db, name).await?.into_iter().next())
}

/// The stored bytes with this SHA-256.
pub async fn bytes(db: &Database, sha256: &str) -> anyhow::Result<Vec<u8>> {
    let mut tx = db.begin(Intent::Read).await.context("cannot begin")?;
    let rows = values::query(
        &mut tx,
        "SELECT bytes FROM souk_component_blobs WHERE sha256 = $1",
        &[Value::Text(sha256.into())],
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot read component bytes: {e:?}"))?;
    tx.rollback().await.ok();
    match rows
        .rows
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next())
    {
        Some(Value::Blob(bytes)) => Ok(bytes),
        _ => bail!("no stored bytes for component {sha256}"),
    }
}

/// Record a new current deployment (the old current becomes previous).
pub async fn record(
    db: &Database,
    name: &str,
    version: &str,
    sha256: &str,
    bytes: &[u8],
    source: Source,
    by: &str,
) -> anyhow::Result<Deployment> {
    let mut tx = begin_locked(db).await?;
    exec(
        &mut tx,
        "INSERT INTO souk_component_blobs (sha256, bytes) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
        vec![Value::Text(sha256.into()), Value::Blob(bytes.to_vec())],
    )
    .await?;
    exec(
        &mut tx,
        "UPDATE souk_deployments SET state = 'previous' WHERE name = $1 AND state = 'current'",
        vec![Value::Text(name.into())],
    )
    .await?;
    let seq = next_seq(&mut tx).await?;
    let deployed_at = crate::clock::now_rfc3339();
    exec(
        &mut tx,
        "INSERT INTO souk_deployments (seq, name, version, sha256, source, state, deployed_at, deployed_by) \
         VALUES ($1, $2, $3, $4, $5, 'current', $6, $7)",
        vec![
            Value::Integer(seq),
            Value::Text(name.into()),
            Value::Text(version.into()),
            Value::Text(sha256.into()),
            Value::Text(source.as_str().into()),
            Value::Text(deployed_at.clone()),
            Value::Text(by.into()),
        ],
    )
    .await?;
    tx.commit().await.context("cannot commit the deployment")?;
    Ok(Deployment {
        name: name.into(),
        version: version.into(),
        sha256: sha256.into(),
        source: source.as_str().into(),
        state: "current".into(),
        deployed_at,
        deployed_by: by.into(),
        seq,
    })
}

/// The deployment a rollback of `name` would return to, if any.
pub async fn rollback_target(db: &Database, name: &str) -> anyhow::Result<Option<Deployment>> {
    Ok(history(db, name)
        .await?
        .into_iter()
        .find(|d| d.state == "previous"))
}

/// Make `target` current again and mark the current one rolled back.
pub async fn roll_back_to(db: &Database, target: &Deployment) -> anyhow::Result<()> {
    let mut tx = begin_locked(db).await?;
    exec(
        &mut tx,
        "UPDATE souk_deployments SET state = 'rolled-back' WHERE name = $1 AND state = 'current'",
        vec![Value::Text(target.name.clone())],
    )
    .await?;
    exec(
        &mut tx,
        "UPDATE souk_deployments SET state = 'current' WHERE seq = $1",
        vec![Value::Integer(target.seq)],
    )
    .await?;
    tx.commit().await.context("cannot commit the rollback")
}

/// Mark `name` unloaded: no replica serves it, and a restart does not
/// load it from the components directory again.
pub async fn unload(db: &Database, name: &str) -> anyhow::Result<()> {
    let mut tx = begin_locked(db).await?;
    exec(
        &mut tx,
        "UPDATE souk_deployments SET state = 'unloaded' WHERE name = $1 AND state = 'current'",
        vec![Value::Text(name.into())],
    )
    .await?;
    tx.commit().await.context("cannot commit the unload")
}

async fn begin_locked(db: &Database) -> anyhow::Result<Tx> {
    let mut tx = db.begin(Intent::Write).await.context("cannot begin")?;
    if db.dialect() == Dialect::Postgres {
        Database::run_script(&mut tx, "SELECT pg_advisory_xact_lock(7290452)")
            .await
            .context("cannot take the deployment lock")?;
    }
    Ok(tx)
}

async fn next_seq(tx: &mut Tx) -> anyhow::Result<i64> {
    let rows = values::query(
        tx,
        "SELECT CAST(COALESCE(MAX(seq), 0) + 1 AS BIGINT) FROM souk_deployments",
        &[],
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot number the deployment: {e:?}"))?;
    match rows.rows.first().and_then(|row| row.first()) {
        Some(Value::Integer(seq)) => Ok(*seq),
        other => bail!("unexpected deployment number {other:?}"),
    }
}

async fn exec(tx: &mut Tx, sql: &str, params: Vec<Value>) -> anyhow::Result<()> {
    values::execute(tx, sql, &params)
        .await
        .map(drop)
        .map_err(|e| anyhow::anyhow!("deployment statement failed: {e:?}"))
}

async fn select(tx: &mut Tx, sql: &str, params: Vec<Value>) -> anyhow::Result<Vec<Deployment>> {
    let rows = values::query(tx, sql, &params)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read deployments: {e:?}"))?;
    rows.rows
        .into_iter()
        .map(|row| match row.as_slice() {
            [
                Value::Text(name),
                Value::Text(version),
                Value::Text(sha256),
                Value::Text(source),
                Value::Text(state),
                Value::Text(deployed_at),
                Value::Text(deployed_by),
                Value::Integer(seq),
            ] => Ok(Deployment {
                name: name.clone(),
                version: version.clone(),
                sha256: sha256.clone(),
                source: source.clone(),
                state: state.clone(),
                deployed_at: deployed_at.clone(),
                deployed_by: deployed_by.clone(),
                seq: *seq,
            }),
            other => bail!("unexpected deployment row {other:?}"),
        })
        .collect()
}
