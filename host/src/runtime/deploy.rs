//! Deploying, rolling back and unloading components at run time.
//!
//! Every change is recorded in the database first and then installed in
//! the registry with one atomic swap: requests already running finish on
//! the version they started with, new ones take the new version, and a
//! failed load leaves the old version serving. A reconcile loop (every
//! second, and at once on a PostgreSQL notification) brings each replica's
//! registry in line with the database, so a deploy on one replica is served
//! by all of them.

use std::{collections::BTreeMap, path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::{LoadError, Runtime, policy::is_core_service, registry::LoadedComponent};
use crate::storage::{
    Database,
    deployments::{self, Deployment, Source},
};

/// How often each replica re-reads the deployments (the bound on how long
/// a missed notification delays a deploy elsewhere).
const RECONCILE_EVERY: Duration = Duration::from_secs(1);
/// How often `--watch` looks at the components directory.
const WATCH_EVERY: Duration = Duration::from_millis(500);
/// The PostgreSQL channel deploys are announced on.
const CHANNEL: &str = "souk_deployments";

/// Why a deployment change was not made. The old version keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The component failed to load (compile, grant, world, manifest, migration).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// There is no earlier version to return to.
    #[error("component `{0}` has no previous version to roll back to")]
    NoPrevious(String),
    /// Core services cannot be unloaded.
    #[error("component `{0}` is a core service and cannot be unloaded")]
    CoreService(String),
    /// No such component is loaded.
    #[error("component `{0}` is not loaded")]
    NotLoaded(String),
    /// The database could not record the change.
    #[error("cannot record the change: {0:#}")]
    Storage(anyhow::Error),
}

impl Runtime {
    /// Compile, check and migrate `bytes` as `name`, record the deployment,
    /// then swap it in.
    pub async fn deploy(
        &self,
        name: &str,
        bytes: &[u8],
        source: Source,
        by: &str,
    ) -> Result<(Arc<LoadedComponent>, Deployment), DeployError> {
        let _serialised = self.deploy_lock.lock().await;
        let component = self.load(name, bytes).await?;
        let deployment = deployments::record(
            &self.db,
            name,
            &component.version,
            &component.sha256,
            bytes,
            source,
            by,
        )
        .await
        .map_err(DeployError::Storage)?;
        self.notify().await;
        self.registry.install(component.clone());
        tracing::info!(component = name, version = %component.version, sha256 = %component.sha256, by, source = ?source, "deployed");
        Ok((component, deployment))
    }

    /// Return `name` to its previous version.
    pub async fn roll_back(
        &self,
        name: &str,
        by: &str,
    ) -> Result<Arc<LoadedComponent>, DeployError> {
        let _serialised = self.deploy_lock.lock().await;
        let target = deployments::rollback_target(&self.db, name)
            .await
            .map_err(DeployError::Storage)?
            .ok_or_else(|| DeployError::NoPrevious(name.to_owned()))?;
        let bytes = deployments::bytes(&self.db, &target.sha256)
            .await
            .map_err(DeployError::Storage)?;
        let component = self.load(name, &bytes).await?;
        deployments::roll_back_to(&self.db, &target)
            .await
            .map_err(DeployError::Storage)?;
        self.notify().await;
        self.registry.install(component.clone());
        tracing::info!(component = name, version = %component.version, sha256 = %component.sha256, by, "rolled back");
        Ok(component)
    }

    /// Stop serving extension `name` on every replica.
    pub async fn unload(&self, name: &str, by: &str) -> Result<(), DeployError> {
        if is_core_service(name) {
            return Err(DeployError::CoreService(name.to_owned()));
        }
        let _serialised = self.deploy_lock.lock().await;
        if self.registry.snapshot().get(name).is_none() {
            return Err(DeployError::NotLoaded(name.to_owned()));
        }
        deployments::unload(&self.db, name)
            .await
            .map_err(DeployError::Storage)?;
        self.notify().await;
        self.registry.remove(name);
        tracing::info!(component = name, by, "unloaded");
        Ok(())
    }

    /// At start: deploy components whose file is new or rebuilt, then load
    /// every current deployment from the database. A version deployed
    /// through the API (or rolled back to) wins over the directory's file,
    /// so a restart serves what was deployed.
    pub async fn start(&self, dir: &Path) -> anyhow::Result<()> {
        let current: BTreeMap<String, Deployment> = deployments::current(&self.db)
            .await?
            .into_iter()
            .map(|d| (d.name.clone(), d))
            .collect();
        for (name, bytes) in read_directory(dir)? {
            let sha256 = hex::encode(Sha256::digest(&bytes));
            let deploy_file = match current.get(&name) {
                None => {
                    let latest = deployments::latest(&self.db, &name).await?;
                    latest.is_none_or(|d| d.state != "unloaded")
                }
                Some(deployed) => deployed.source == "directory" && deployed.sha256 != sha256,
            };
            if deploy_file {
                match self.deploy(&name, &bytes, Source::Directory, "build").await {
                    Ok(_) => {}
                    Err(error) if is_core_service(&name) => {
                        return Err(anyhow::anyhow!(
                            "cannot load core service `{name}`: {error}"
                        ));
                    }
                    Err(error) => {
                        tracing::error!(component = %name, "extension not loaded: {error}")
                    }
                }
            }
        }
        self.reconcile().await
    }

    /// Make the registry match the database's current deployments.
    pub async fn reconcile(&self) -> anyhow::Result<()> {
        let _serialised = self.deploy_lock.lock().await;
        let current = deployments::current(&self.db).await?;
        let snapshot = self.registry.snapshot();
        for deployment in &current {
            let installed = snapshot.get(&deployment.name);
            if installed.is_some_and(|c| c.sha256 == deployment.sha256) {
                continue;
            }
            let bytes = deployments::bytes(&self.db, &deployment.sha256).await?;
            match self.load(&deployment.name, &bytes).await {
                Ok(component) => {
                    tracing::info!(component = %deployment.name, version = %component.version, "installed the deployed version");
                    self.registry.install(component);
                }
                Err(error) if is_core_service(&deployment.name) && installed.is_none() => {
                    return Err(anyhow::anyhow!(
                        "cannot load core service `{}`: {error}",
                        deployment.name
                    ));
                }
                Err(error) => {
                    tracing::error!(component = %deployment.name, "cannot install the deployed version: {error}");
                }
            }
        }
        for component in snapshot.components() {
            if !current.iter().any(|d| d.name == component.name) {
                tracing::info!(component = %component.name, "unloading: no longer deployed");
                self.registry.remove(&component.name);
            }
        }
        Ok(())
    }

    /// Keep this replica in line with the database until the runtime is
    /// dropped: re-read every second, and at once on a PostgreSQL
    /// notification.
    pub fn spawn_reconciler(self: &Arc<Self>) {
        let runtime = Arc::downgrade(self);
        let db = self.db.clone();
        tokio::spawn(async move {
            let mut listener = listen(&db).await;
            let mut tick = tokio::time::interval(RECONCILE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                match &mut listener {
                    Some(listener) => {
                        tokio::select! {
                            _ = tick.tick() => {}
                            notification = listener.recv() => {
                                if let Err(error) = notification {
                                    tracing::warn!("deployment notifications interrupted: {error}");
                                }
                            }
                        }
                    }
                    None => {
                        tick.tick().await;
                    }
                }
                let Some(runtime) = runtime.upgrade() else {
                    return;
                };
                if let Err(error) = runtime.reconcile().await {
                    tracing::warn!("cannot reconcile deployments: {error:#}");
                }
            }
        });
    }

    /// Development loop (`souk serve --watch`): deploy every `NAME.wasm` in
    /// `dir` whose bytes differ from what is serving, checking twice a second.
    pub fn spawn_watcher(self: &Arc<Self>, dir: std::path::PathBuf) {
        let runtime = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut seen: BTreeMap<String, std::time::SystemTime> = BTreeMap::new();
            let mut tick = tokio::time::interval(WATCH_EVERY);
            loop {
                tick.tick().await;
                let Some(runtime) = runtime.upgrade() else {
                    return;
                };
                for (name, modified) in modified_files(&dir) {
                    if seen.get(&name) == Some(&modified) {
                        continue;
                    }
                    seen.insert(name.clone(), modified);
                    let Ok(bytes) = std::fs::read(dir.join(format!("{name}.wasm"))) else {
                        continue;
                    };
                    let sha256 = hex::encode(Sha256::digest(&bytes));
                    let serving = runtime
                        .registry
                        .snapshot()
                        .get(&name)
                        .map(|c| c.sha256.clone());
                    if serving.as_deref() == Some(sha256.as_str()) {
                        continue;
                    }
                    match runtime.deploy(&name, &bytes, Source::Watch, "watch").await {
                        Ok((component, _)) => {
                            tracing::info!(component = %name, version = %component.version, "watch: deployed a rebuilt component");
                        }
                        Err(error) => {
                            tracing::error!(component = %name, "watch: not deployed: {error}")
                        }
                    }
                }
            }
        });
    }

    /// Tell other replicas (PostgreSQL only) that deployments changed.
    async fn notify(&self) {
        if let Database::Postgres(pool) = &self.db {
            let sql = format!("NOTIFY {CHANNEL}");
            if let Err(error) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(pool).await {
                tracing::warn!("cannot notify other replicas: {error}");
            }
        }
    }
}

async fn listen(db: &Database) -> Option<sqlx::postgres::PgListener> {
    let Database::Postgres(pool) = db else {
        return None;
    };
    let mut listener = match sqlx::postgres::PgListener::connect_with(pool).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!("cannot listen for deployments; polling only: {error}");
            return None;
        }
    };
    match listener.listen(CHANNEL).await {
        Ok(()) => Some(listener),
        Err(error) => {
            tracing::warn!("cannot listen for deployments; polling only: {error}");
            None
        }
    }
}

/// `NAME.wasm` files in `dir` with their modification times.
fn modified_files(dir: &Path) -> Vec<(String, std::time::SystemTime)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let path = entry.path();
            if path.extension().is_none_or(|ext| ext != "wasm") {
                return None;
            }
            let name = path.file_stem()?.to_str()?.to_owned();
            let modified = entry.metadata().ok()?.modified().ok()?;
            Some((name, modified))
        })
        .collect()
}

/// `NAME.wasm` files in `dir`, by name, with their bytes.
fn read_directory(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the components directory {}", dir.display()))?;
    for path in entries.filter_map(Result::ok).map(|e| e.path()) {
        if path.extension().is_none_or(|ext| ext != "wasm") {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        files.push((name.to_owned(), bytes));
    }
    files.sort();
    Ok(files)
}
