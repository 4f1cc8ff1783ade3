//! Grants an operator set at run time (`PUT /admin/grants/{component}`),
//! kept in the database so every replica applies the same ones and a
//! restart keeps them. Each row holds the grant as the operator wrote it
//! (the grants-file JSON of one component); a revoked grant is a row
//! granting nothing, so it also overrides the shipped defaults.

use anyhow::{Context, bail};

use super::{Database, Intent, Tx, values};
use crate::bindings::db::Value;

/// The table, created with the host's other tables.
pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS souk_grants (
    component TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
)";

/// One operator grant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGrant {
    /// Component name.
    pub component: String,
    /// The grant in the grants-file format (a JSON object).
    pub spec: String,
    /// RFC 3339 time of the change.
    pub updated_at: String,
    /// Username of the admin who made it.
    pub updated_by: String,
}

/// Every operator grant, by component name.
pub async fn all(db: &Database) -> anyhow::Result<Vec<StoredGrant>> {
    let mut tx = db.begin(Intent::Read).await.context("cannot begin")?;
    let rows = values::query(
        &mut tx,
        "SELECT component, spec, updated_at, updated_by FROM souk_grants ORDER BY component",
        &[],
    )
    .await;
    tx.rollback().await.ok();
    let rows = rows.map_err(|e| anyhow::anyhow!("cannot read the grants: {e:?}"))?;
    rows.rows
        .into_iter()
        .map(|row| match row.as_slice() {
            [
                Value::Text(component),
                Value::Text(spec),
                Value::Text(updated_at),
                Value::Text(updated_by),
            ] => Ok(StoredGrant {
                component: component.clone(),
                spec: spec.clone(),
                updated_at: updated_at.clone(),
                updated_by: updated_by.clone(),
            }),
            other => bail!("unexpected grant row {other:?}"),
        })
        .collect()
}

/// Store `spec` as `component`'s grant, replacing any earlier one.
pub async fn put(db: &Database, component: &str, spec: &str, by: &str) -> anyhow::Result<()> {
    let mut tx = db.begin(Intent::Write).await.context("cannot begin")?;
    upsert(&mut tx, component, spec, by).await?;
    tx.commit().await.context("cannot commit the grant")
}

async fn upsert(tx: &mut Tx, component: &str, spec: &str, by: &str) -> anyhow::Result<()> {
    values::execute(
        tx,
        "INSERT INTO souk_grants (component, spec, updated_at, updated_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (component) DO UPDATE SET spec = excluded.spec, \
         updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        &[
            Value::Text(component.into()),
            Value::Text(spec.into()),
            Value::Text(crate::clock::now_rfc3339()),
            Value::Text(by.into()),
        ],
    )
    .await
    .map(drop)
    .map_err(|e| anyhow::anyhow!("cannot store the grant: {e:?}"))
}
