//! Schema management: the host's own tables, and each component's
//! migrations, applied once each, in order, inside one transaction per
//! component, recording which tables and indexes the component created.
//! Those records are what the checks trust: a component owns exactly the
//! schema objects its own migrations created, and only it may alter or
//! drop them.

use std::collections::HashSet;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use super::{Database, Dialect, Intent, Tx, sql_check, uow::component_role, values};
use crate::bindings::{
    db::Value,
    manifest::{self, Migration},
};

/// The host's own tables, all prefixed `souk_` (a prefix no component may use).
const HOST_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS souk_migrations (
    component TEXT NOT NULL,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (component, version)
);
CREATE TABLE IF NOT EXISTS souk_tables (
    table_name TEXT PRIMARY KEY,
    component TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS souk_indexes (
    index_name TEXT PRIMARY KEY,
    component TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS souk_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// Create the host's tables if they are missing.
pub async fn prepare_host_schema(db: &Database) -> anyhow::Result<()> {
    let mut tx = begin_schema_change(db).await?;
    Database::run_script(&mut tx, HOST_SCHEMA)
        .await
        .context("cannot create the host's tables")?;
    Database::run_script(&mut tx, super::events::SCHEMA)
        .await
        .context("cannot create the event and audit tables")?;
    Database::run_script(&mut tx, super::grants::SCHEMA)
        .await
        .context("cannot create the grants table")?;
    Database::run_script(&mut tx, super::webhooks::SCHEMA)
        .await
        .context("cannot create the webhook tables")?;
    for statement in super::deployments::schema(db.dialect()) {
        Database::run_script(&mut tx, statement)
            .await
            .context("cannot create the deployment tables")?;
    }
    // Databases migrated before indexes were recorded: an index belongs to
    // whoever owns its table. Idempotent, so every start may run it.
    Database::run_script(&mut tx, adopt_unrecorded_indexes(db.dialect()))
        .await
        .context("cannot record the owners of existing indexes")?;
    tx.commit()
        .await
        .context("cannot commit the host's tables")?;
    Ok(())
}

/// Begin a transaction that changes the schema. On PostgreSQL it takes an
/// advisory lock first, so replicas starting together migrate one at a time.
async fn begin_schema_change(db: &Database) -> anyhow::Result<Tx> {
    let mut tx = db
        .begin(Intent::Write)
        .await
        .context("cannot begin a schema transaction")?;
    if db.dialect() == Dialect::Postgres {
        Database::run_script(&mut tx, "SELECT pg_advisory_xact_lock(7290451)")
            .await
            .context("cannot take the migration lock")?;
    }
    Ok(tx)
}

/// Apply `component`'s pending migrations and return the tables it owns.
///
/// Fails, changing nothing, if an applied migration's SQL changed, a version
/// is out of order, or a migration does anything but manage the component's
/// own tables.
pub async fn apply(
    db: &Database,
    component: &str,
    migrations: &[Migration],
) -> anyhow::Result<HashSet<String>> {
    let dialect = db.dialect();
    let mut tx = begin_schema_change(db).await?;
    let applied = applied_checksums(&mut tx, component).await?;
    let mut owned = owned_tables_in(&mut tx, component).await?;
    let mut indexes = owned_names(&mut tx, OWNED_INDEXES, component).await?;
    let mut others = owned_names(&mut tx, TABLES_OF_OTHERS, component).await?;
    others.extend(owned_names(&mut tx, INDEXES_OF_OTHERS, component).await?);

    let mut last_version = 0;
    for migration in migrations {
        if migration.version <= last_version {
            bail!(
                "migration {} ({}) is out of order: versions must strictly increase",
                migration.version,
                migration.name
            );
        }
        last_version = migration.version;
        let sql = sql_for(migration, dialect);
        let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
        if let Some(previous) = applied.iter().find(|(v, _)| *v == migration.version) {
            if previous.1 != checksum {
                bail!(
                    "migration {} ({}) was changed after it was applied",
                    migration.version,
                    migration.name
                );
            }
            continue;
        }
        let effects =
            sql_check::check_migration(dialect, sql, component, &owned, &indexes, &|name: &str| {
                others.contains(name)
            })
            .map_err(|refusal| {
                anyhow::anyhow!(
                    "migration {} ({}) refused: {refusal}",
                    migration.version,
                    migration.name
                )
            })?;
        Database::run_script(&mut tx, sql).await.with_context(|| {
            format!(
                "migration {} ({}) failed",
                migration.version, migration.name
            )
        })?;
        for table in &effects.created_tables {
            exec(
                &mut tx,
                "INSERT INTO souk_tables (table_name, component) VALUES ($1, $2)",
                vec![Value::Text(table.clone()), Value::Text(component.into())],
            )
            .await?;
            owned.insert(table.clone());
        }
        for table in &effects.dropped_tables {
            exec(
                &mut tx,
                "DELETE FROM souk_tables WHERE table_name = $1 AND component = $2",
                vec![Value::Text(table.clone()), Value::Text(component.into())],
            )
            .await?;
            owned.remove(table);
        }
        for index in &effects.created_indexes {
            exec(
                &mut tx,
                "INSERT INTO souk_indexes (index_name, component) VALUES ($1, $2) \
                 ON CONFLICT (index_name) DO NOTHING",
                vec![Value::Text(index.clone()), Value::Text(component.into())],
            )
            .await?;
            indexes.insert(index.clone());
        }
        for index in &effects.dropped_indexes {
            exec(
                &mut tx,
                "DELETE FROM souk_indexes WHERE index_name = $1 AND component = $2",
                vec![Value::Text(index.clone()), Value::Text(component.into())],
            )
            .await?;
            indexes.remove(index);
        }
        exec(
            &mut tx,
            "INSERT INTO souk_migrations (component, version, name, checksum, applied_at) \
             VALUES ($1, $2, $3, $4, $5)",
            vec![
                Value::Text(component.into()),
                Value::Integer(migration.version.into()),
                Value::Text(migration.name.clone()),
                Value::Text(checksum),
                Value::Text(crate::clock::now_rfc3339()),
            ],
        )
        .await?;
        tracing::info!(component, version = migration.version, name = %migration.name, "applied migration");
    }
    if dialect == Dialect::Postgres {
        grant_component_role(&mut tx, component, &owned).await?;
    }
    tx.commit().await.context("cannot commit migrations")?;
    Ok(owned)
}

/// On PostgreSQL, statements of a component run as its own role (`SET
/// LOCAL ROLE`, see [`super::uow`]), which may use only the component's
/// tables: a second line of defence behind the statement check. Creating
/// the role needs the CREATEROLE privilege (or a pre-created role).
async fn grant_component_role(
    tx: &mut Tx,
    component: &str,
    owned: &HashSet<String>,
) -> anyhow::Result<()> {
    let role = component_role(component);
    // Roles are global to the cluster: creating one that another database
    // (or replica) created meanwhile is fine.
    let create = format!(
        "DO $$ BEGIN CREATE ROLE {role} NOLOGIN; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
         DO $$ BEGIN EXECUTE 'GRANT {role} TO ' || quote_ident(current_user); \
         EXCEPTION WHEN others THEN NULL; END $$;"
    );
    Database::run_script(tx, &create)
        .await
        .with_context(|| format!("cannot create the PostgreSQL role {role}"))?;
    let mut tables: Vec<&String> = owned.iter().collect();
    tables.sort();
    if !tables.is_empty() {
        let list = tables
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let grant = format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {list} TO {role}");
        Database::run_script(tx, &grant)
            .await
            .with_context(|| format!("cannot grant {role} its tables"))?;
    }
    Ok(())
}

/// Drop every table and index `component`'s migrations created, and forget
/// its migrations, so a later deploy starts from an empty schema. Used when
/// an extension is unloaded with its data (`DELETE ...?data=drop`); never
/// for core services. The statement check already refuses foreign keys to
/// another component's tables, so nothing outside the component depends on
/// what is dropped.
pub async fn drop_schema(db: &Database, component: &str) -> anyhow::Result<Vec<String>> {
    let mut tx = begin_schema_change(db).await?;
    let mut tables: Vec<String> = owned_tables_in(&mut tx, component)
        .await?
        .into_iter()
        .collect();
    tables.sort();
    for table in &tables {
        // Names come from the host's own records of checked migrations
        // (canonical, `[a-z0-9_]`), never from the request.
        Database::run_script(&mut tx, &format!("DROP TABLE IF EXISTS \"{table}\""))
            .await
            .with_context(|| format!("cannot drop table {table}"))?;
    }
    // Its grant and its event cursor go too: a component deployed later
    // under the same name starts with nothing, not with what this one was
    // trusted with.
    for sql in [
        "DELETE FROM souk_tables WHERE component = $1",
        "DELETE FROM souk_indexes WHERE component = $1",
        "DELETE FROM souk_migrations WHERE component = $1",
        "DELETE FROM souk_grants WHERE component = $1",
        "DELETE FROM souk_event_cursors WHERE consumer = 'component:' || $1",
    ] {
        exec(&mut tx, sql, vec![Value::Text(component.into())]).await?;
    }
    tx.commit()
        .await
        .context("cannot commit dropping the schema")?;
    tracing::info!(
        component,
        ?tables,
        "dropped the component's tables and migrations"
    );
    Ok(tables)
}

/// The tables `component` owns now.
pub async fn owned_tables(db: &Database, component: &str) -> anyhow::Result<HashSet<String>> {
    let mut tx = db.begin(Intent::Read).await.context("cannot begin")?;
    let owned = owned_tables_in(&mut tx, component).await?;
    tx.rollback().await.context("cannot end a read")?;
    Ok(owned)
}

/// Read a host setting, or store `make()` under `name` if there is none.
/// Replicas starting together agree: the first insert wins.
pub async fn get_or_init_setting(
    db: &Database,
    name: &str,
    make: impl FnOnce() -> String,
) -> anyhow::Result<String> {
    let mut tx = db.begin(Intent::Write).await.context("cannot begin")?;
    exec(
        &mut tx,
        "INSERT INTO souk_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        vec![Value::Text(name.into()), Value::Text(make())],
    )
    .await?;
    let rows = values::query(
        &mut tx,
        "SELECT value FROM souk_settings WHERE name = $1",
        &[Value::Text(name.into())],
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot read setting {name}: {e:?}"))?;
    tx.commit().await.context("cannot commit setting")?;
    match rows.rows.first().and_then(|row| row.first()) {
        Some(Value::Text(value)) => Ok(value.clone()),
        _ => bail!("setting {name} is missing after it was stored"),
    }
}

fn sql_for(migration: &Migration, dialect: Dialect) -> &str {
    let wanted = match dialect {
        Dialect::Sqlite => manifest::Dialect::Sqlite,
        Dialect::Postgres => manifest::Dialect::Postgres,
    };
    migration
        .overrides
        .iter()
        .find(|o| o.dialect == wanted)
        .map_or(migration.sql.as_str(), |o| o.sql.as_str())
}

async fn exec(tx: &mut Tx, sql: &str, params: Vec<Value>) -> anyhow::Result<()> {
    values::execute(tx, sql, &params)
        .await
        .map(drop)
        .map_err(|e| anyhow::anyhow!("host statement failed: {e:?}"))
}

async fn text_column(tx: &mut Tx, sql: &str, params: Vec<Value>) -> anyhow::Result<Vec<String>> {
    let rows = values::query(tx, sql, &params)
        .await
        .map_err(|e| anyhow::anyhow!("host query failed: {e:?}"))?;
    Ok(rows
        .rows
        .into_iter()
        .filter_map(|row| match row.into_iter().next() {
            Some(Value::Text(text)) => Some(text),
            _ => None,
        })
        .collect())
}

async fn owned_tables_in(tx: &mut Tx, component: &str) -> anyhow::Result<HashSet<String>> {
    owned_names(tx, OWNED_TABLES, component).await
}

const OWNED_TABLES: &str = "SELECT table_name FROM souk_tables WHERE component = $1";
const TABLES_OF_OTHERS: &str = "SELECT table_name FROM souk_tables WHERE component <> $1";
const OWNED_INDEXES: &str = "SELECT index_name FROM souk_indexes WHERE component = $1";
const INDEXES_OF_OTHERS: &str = "SELECT index_name FROM souk_indexes WHERE component <> $1";

/// The names one of the ownership queries above finds for `component`.
async fn owned_names(tx: &mut Tx, sql: &str, component: &str) -> anyhow::Result<HashSet<String>> {
    let names = text_column(tx, sql, vec![Value::Text(component.into())]).await?;
    Ok(names.into_iter().collect())
}

/// Records, for every index in the database that no one has recorded yet
/// and whose table a component owns, that component as its owner.
fn adopt_unrecorded_indexes(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "INSERT INTO souk_indexes (index_name, component) \
             SELECT lower(m.name), t.component FROM sqlite_master m \
             JOIN souk_tables t ON t.table_name = lower(m.tbl_name) \
             WHERE m.type = 'index' AND m.name NOT LIKE 'sqlite_%' \
             ON CONFLICT (index_name) DO NOTHING"
        }
        Dialect::Postgres => {
            "INSERT INTO souk_indexes (index_name, component) \
             SELECT lower(i.indexname), t.component FROM pg_indexes i \
             JOIN souk_tables t ON t.table_name = lower(i.tablename) \
             WHERE i.schemaname = current_schema() \
             ON CONFLICT (index_name) DO NOTHING"
        }
    }
}

/// Every component name the database knows: whatever has migrations or
/// deployments, loaded or not.
pub async fn known_components(db: &Database) -> anyhow::Result<HashSet<String>> {
    let mut tx = db.begin(Intent::Read).await.context("cannot begin")?;
    let names = text_column(
        &mut tx,
        "SELECT component FROM souk_migrations UNION SELECT name FROM souk_deployments",
        vec![],
    )
    .await;
    tx.rollback().await.ok();
    Ok(names?.into_iter().collect())
}

async fn applied_checksums(tx: &mut Tx, component: &str) -> anyhow::Result<Vec<(u32, String)>> {
    let rows = values::query(
        tx,
        "SELECT version, checksum FROM souk_migrations WHERE component = $1",
        &[Value::Text(component.into())],
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot read applied migrations: {e:?}"))?;
    Ok(rows
        .rows
        .into_iter()
        .filter_map(|row| match row.as_slice() {
            [Value::Integer(version), Value::Text(checksum)] => {
                Some((u32::try_from(*version).ok()?, checksum.clone()))
            }
            _ => None,
        })
        .collect())
}
