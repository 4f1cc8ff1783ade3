//! Deploying, rolling back and unloading components at run time.
//!
//! Every change is recorded in the database first and then installed in
//! the registry with one atomic swap: requests already running finish on
//! the version they started with, new ones take the new version, and a
//! failed load leaves the old version serving. A reconcile loop (every
//! second, and at once on a PostgreSQL notification) brings each replica's
//! registry in line with the database, so a deploy on one replica is served
//! by all of them.
//!
//! The background loops here (reconciler, LISTEN connection, `--watch`)
//! stop on the runtime's stop signal, back off on errors and log a
//! persisting failure once, not per tick (see [`super::background`]). A
//! deployed version that fails to load is remembered with its reason (for
//! `/health/status`) and retried with backoff, not on every tick; a new
//! version or a changed grant is tried at once.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use super::{
    LoadError, Runtime,
    background::{Background, Backoff, FailureLog, StopSignal},
    core_services::is_core_service,
    registry::LoadedComponent,
};
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
/// Retry delays of a failing loop (reconcile, LISTEN, watch deploys): from
/// this, doubling...
const RETRY_BASE: Duration = Duration::from_secs(1);
/// ...up to this, which bounds how long recovery takes to be noticed after
/// the database returns.
const RETRY_CAP: Duration = Duration::from_secs(15);
/// Retry delays of a deployed version that failed to load: a load failure
/// (an ungranted import, a bad migration) rarely heals by itself, and a
/// retry compiles and migrates, so start slower and wait longer.
const LOAD_RETRY_BASE: Duration = Duration::from_secs(5);
/// See [`LOAD_RETRY_BASE`].
const LOAD_RETRY_CAP: Duration = Duration::from_secs(300);

/// Health source names of the loops.
const RECONCILER: &str = "reconciler";
const LISTENER: &str = "deployment-listener";
const WATCHER: &str = "watch";

/// Deployed versions (or directory files at start) that failed to load,
/// by component name.
#[derive(Debug, Default)]
pub(crate) struct LoadFailures(Mutex<BTreeMap<String, LoadFailure>>);

#[derive(Debug)]
struct LoadFailure {
    /// The bytes that failed.
    sha256: String,
    /// The grant they failed under (its `Debug` form): a changed grant may
    /// heal the load, so it is tried at once.
    grant: String,
    /// Whether the failure is of a recorded deployment (cleared when it is
    /// no longer current) or of a directory file at start.
    deployed: bool,
    reason: String,
    since: Instant,
    retry_at: Instant,
    backoff: Backoff,
    log: FailureLog,
}

/// A component that should serve but does not (or serves an older
/// version), for `/health/status`.
#[derive(Debug, Clone)]
pub struct FailedComponent {
    /// Component name.
    pub name: String,
    /// SHA-256 of the bytes that failed to load.
    pub sha256: String,
    /// Why it failed.
    pub reason: String,
    /// How long it has been failing.
    pub failing_for: Duration,
}

impl LoadFailures {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, LoadFailure>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a retry of `name` with these bytes and grant is not due yet.
    fn holds_back(&self, name: &str, sha256: &str, grant: &str, now: Instant) -> bool {
        self.lock()
            .get(name)
            .is_some_and(|f| f.sha256 == sha256 && f.grant == grant && now < f.retry_at)
    }

    /// Remember that `name` failed to load; logs when the failure starts
    /// and at most once a minute while it lasts.
    fn failed(&self, name: &str, sha256: &str, grant: String, deployed: bool, reason: String) {
        let now = Instant::now();
        let mut failures = self.lock();
        let entry = failures
            .entry(name.to_owned())
            .or_insert_with(|| LoadFailure {
                sha256: sha256.to_owned(),
                grant: grant.clone(),
                deployed,
                reason: reason.clone(),
                since: now,
                retry_at: now,
                backoff: Backoff::new(LOAD_RETRY_BASE, LOAD_RETRY_CAP),
                log: FailureLog::new(format!("loading component `{name}`")),
            });
        if entry.sha256 != sha256 || entry.grant != grant {
            // Other bytes or another grant: a new failure, not a retry.
            entry.sha256 = sha256.to_owned();
            entry.grant = grant;
            entry.since = now;
            entry.backoff.reset();
            entry.log.succeeded();
        }
        entry.deployed = deployed;
        entry.reason = reason;
        entry.retry_at = now + entry.backoff.next_delay();
        let reason = entry.reason.clone();
        entry.log.failed(&reason);
    }

    /// Forget `name`'s failure (it loaded, or is no longer wanted).
    fn clear(&self, name: &str) {
        if let Some(mut failure) = self.lock().remove(name) {
            failure.log.succeeded();
        }
    }

    /// Forget failures of deployments that are no longer current.
    fn retain_deployed(&self, current: &[Deployment]) {
        self.lock()
            .retain(|name, f| !f.deployed || current.iter().any(|d| &d.name == name));
    }

    fn contains(&self, name: &str) -> bool {
        self.lock().contains_key(name)
    }

    fn list(&self) -> Vec<FailedComponent> {
        let now = Instant::now();
        self.lock()
            .iter()
            .map(|(name, f)| FailedComponent {
                name: name.clone(),
                sha256: f.sha256.clone(),
                reason: f.reason.clone(),
                failing_for: now.saturating_duration_since(f.since),
            })
            .collect()
    }
}

/// What unloading an extension does to its tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataOnUnload {
    /// Keep tables, rows and migration records: deploying it again later
    /// finds its data as it was (the default).
    Keep,
    /// Drop its tables and indexes and forget its migrations.
    Drop,
}

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
        self.load_failures.clear(name);
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
        self.load_failures.clear(name);
        tracing::info!(component = name, version = %component.version, sha256 = %component.sha256, by, "rolled back");
        Ok(component)
    }

    /// Stop serving extension `name` on every replica. An extension that
    /// should serve but failed to load can be unloaded too: that is how an
    /// operator stops the host from retrying it (and reporting it).
    pub async fn unload(
        &self,
        name: &str,
        by: &str,
        data: DataOnUnload,
    ) -> Result<(), DeployError> {
        if is_core_service(name) {
            return Err(DeployError::CoreService(name.to_owned()));
        }
        let _serialised = self.deploy_lock.lock().await;
        if self.registry.snapshot().get(name).is_none() && !self.load_failures.contains(name) {
            return Err(DeployError::NotLoaded(name.to_owned()));
        }
        deployments::unload(&self.db, name)
            .await
            .map_err(DeployError::Storage)?;
        self.notify().await;
        self.registry.remove(name);
        self.load_failures.clear(name);
        tracing::info!(component = name, by, ?data, "unloaded");
        if data == DataOnUnload::Drop {
            crate::storage::migrations::drop_schema(&self.db, name)
                .await
                .map_err(DeployError::Storage)?;
        }
        Ok(())
    }

    /// At start: load every current deployment from the database (core
    /// services first), then deploy components whose file is new or
    /// rebuilt (core services first again), then reconcile. A version
    /// deployed through the API (or rolled back to) wins over the
    /// directory's file, so a restart serves what was deployed.
    ///
    /// The order matters: an extension's route and schema claims are
    /// checked against what is loaded, so the core services must be in the
    /// registry before any extension is deployed, or an extension could
    /// claim a core route first and keep its owner from loading.
    pub async fn start(&self, dir: &Path) -> anyhow::Result<()> {
        self.reconcile().await?;
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
                        // Remembered (and logged) so that health reports it;
                        // an unload or a fixed deploy clears it.
                        let grant = format!("{:?}", self.grants.for_component(&name));
                        self.load_failures.failed(
                            &name,
                            &sha256,
                            grant,
                            false,
                            format!("extension not loaded: {error}"),
                        );
                    }
                }
            }
        }
        self.reconcile().await
    }

    /// Make the registry match the database's current deployments.
    pub async fn reconcile(&self) -> anyhow::Result<()> {
        let _serialised = self.deploy_lock.lock().await;
        // Grants first: a version held back for want of a grant is retried
        // below once an admin (on any replica) granted it.
        self.refresh_grants().await?;
        let mut current = deployments::current(&self.db).await?;
        // Core services first: an extension's route or schema claims are
        // checked against theirs, so they must be in place before it loads.
        current.sort_by_key(|deployment| !is_core_service(&deployment.name));
        self.load_failures.retain_deployed(&current);
        let snapshot = self.registry.snapshot();
        for deployment in &current {
            let installed = snapshot.get(&deployment.name);
            if installed.is_some_and(|c| c.sha256 == deployment.sha256) {
                self.load_failures.clear(&deployment.name);
                continue;
            }
            let grant = format!("{:?}", self.grants.for_component(&deployment.name));
            if self.load_failures.holds_back(
                &deployment.name,
                &deployment.sha256,
                &grant,
                Instant::now(),
            ) {
                continue;
            }
            let bytes = deployments::bytes(&self.db, &deployment.sha256).await?;
            match self.load(&deployment.name, &bytes).await {
                Ok(component) => {
                    tracing::info!(component = %deployment.name, version = %component.version, "installed the deployed version");
                    self.registry.install(component);
                    self.load_failures.clear(&deployment.name);
                }
                Err(error) if is_core_service(&deployment.name) && installed.is_none() => {
                    self.load_failures.failed(
                        &deployment.name,
                        &deployment.sha256,
                        grant,
                        true,
                        format!("cannot load core service: {error}"),
                    );
                    return Err(anyhow::anyhow!(
                        "cannot load core service `{}`: {error}",
                        deployment.name
                    ));
                }
                Err(error) => {
                    let reason = if installed.is_some() {
                        format!("the deployed version cannot load (an older one serves): {error}")
                    } else {
                        format!("the deployed version cannot load: {error}")
                    };
                    self.load_failures.failed(
                        &deployment.name,
                        &deployment.sha256,
                        grant,
                        true,
                        reason,
                    );
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

    /// The stop signal, task handles and loop health of this runtime.
    pub fn background(&self) -> &Background {
        &self.background
    }

    /// Components that should serve the deployed (or directory) version
    /// but cannot load it.
    pub fn failed_components(&self) -> Vec<FailedComponent> {
        self.load_failures.list()
    }

    /// Keep this replica in line with the database until the host stops:
    /// re-read every second, and at once on a PostgreSQL notification. On
    /// errors, retry with backoff and report the failure for health.
    pub fn spawn_reconciler(self: &Arc<Self>) {
        let wake = Arc::new(Notify::new());
        if let Database::Postgres(pool) = &self.db {
            let listener = listen_loop(
                Arc::downgrade(self),
                pool.clone(),
                wake.clone(),
                self.background.signal(),
            );
            self.background.spawn(LISTENER, listener);
        }
        let runtime = Arc::downgrade(self);
        let stop = self.background.signal();
        self.background.spawn(RECONCILER, async move {
            let mut backoff = Backoff::new(RETRY_BASE, RETRY_CAP);
            let mut failures = FailureLog::new("reconciling deployments");
            let mut delay = RECONCILE_EVERY;
            loop {
                tokio::select! {
                    biased;
                    () = stop.stopped() => return,
                    () = tokio::time::sleep(delay) => {}
                    () = wake.notified() => {}
                }
                let Some(runtime) = runtime.upgrade() else {
                    return;
                };
                // A reconcile waits on the database (up to the pool's
                // acquire timeout) and may be loading a component: the stop
                // signal must not wait for either.
                let result = tokio::select! {
                    biased;
                    () = stop.stopped() => return,
                    result = runtime.reconcile() => result,
                };
                match result {
                    Ok(()) => {
                        backoff.reset();
                        failures.succeeded();
                        runtime.background.report(RECONCILER, None);
                        delay = RECONCILE_EVERY;
                    }
                    Err(error) => {
                        let error = format!("{error:#}");
                        failures.failed(&error);
                        runtime.background.report(
                            RECONCILER,
                            Some(format!("cannot reconcile deployments: {error}")),
                        );
                        delay = backoff.next_delay();
                    }
                }
            }
        });
    }

    /// Development loop (`souk serve --watch`): deploy every `NAME.wasm` in
    /// `dir` whose bytes differ from what is serving, checking twice a
    /// second. A file that fails to load is reported once per change; a
    /// deploy the database could not record is retried with backoff.
    pub fn spawn_watcher(self: &Arc<Self>, dir: std::path::PathBuf) {
        let runtime = Arc::downgrade(self);
        let stop = self.background.signal();
        self.background.spawn(WATCHER, async move {
            let mut seen: BTreeMap<String, std::time::SystemTime> = BTreeMap::new();
            let mut backoff = Backoff::new(RETRY_BASE, RETRY_CAP);
            let mut failures = FailureLog::new("watch: recording deploys");
            let mut delay = WATCH_EVERY;
            loop {
                tokio::select! {
                    biased;
                    () = stop.stopped() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                let Some(runtime) = runtime.upgrade() else {
                    return;
                };
                let mut storage_failed = None;
                for (name, modified) in modified_files(&dir) {
                    if stop.is_stopped() {
                        return;
                    }
                    if seen.get(&name) == Some(&modified) {
                        continue;
                    }
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
                        seen.insert(name, modified);
                        continue;
                    }
                    match runtime.deploy(&name, &bytes, Source::Watch, "watch").await {
                        Ok((component, _)) => {
                            seen.insert(name.clone(), modified);
                            tracing::info!(component = %name, version = %component.version, "watch: deployed a rebuilt component");
                        }
                        Err(DeployError::Storage(error)) => {
                            // Not marked seen: retried once the database answers.
                            storage_failed = Some(format!("{error:#}"));
                        }
                        Err(error) => {
                            seen.insert(name.clone(), modified);
                            tracing::error!(component = %name, "watch: not deployed: {error}");
                        }
                    }
                }
                match storage_failed {
                    None => {
                        backoff.reset();
                        failures.succeeded();
                        runtime.background.report(WATCHER, None);
                        delay = WATCH_EVERY;
                    }
                    Some(error) => {
                        failures.failed(&error);
                        runtime
                            .background
                            .report(WATCHER, Some(format!("cannot record a watch deploy: {error}")));
                        delay = backoff.next_delay();
                    }
                }
            }
        });
    }

    /// Tell other replicas (PostgreSQL only) that deployments changed.
    pub(super) async fn notify(&self) {
        if let Database::Postgres(pool) = &self.db {
            let sql = format!("NOTIFY {CHANNEL}");
            if let Err(error) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(pool).await {
                tracing::warn!("cannot notify other replicas: {error}");
            }
        }
    }
}

/// Hold a LISTEN connection for deployment notifications and wake the
/// reconciler on each, until the host stops. A lost connection is reported
/// (the reconciler keeps polling meanwhile) and reopened with backoff; the
/// reconciler is woken after a reconnect, since notifications sent while
/// the connection was down are lost.
async fn listen_loop(
    runtime: std::sync::Weak<Runtime>,
    pool: sqlx::PgPool,
    wake: Arc<Notify>,
    stop: StopSignal,
) {
    let mut backoff = Backoff::new(RETRY_BASE, RETRY_CAP);
    let mut failures = FailureLog::new("listening for deployments");
    let report = |problem: Option<String>| {
        if let Some(runtime) = runtime.upgrade() {
            runtime.background.report(LISTENER, problem);
        }
    };
    loop {
        let connected = tokio::select! {
            biased;
            () = stop.stopped() => return,
            connected = listen(&pool) => connected,
        };
        let error = match connected {
            Ok(mut listener) => {
                backoff.reset();
                failures.succeeded();
                report(None);
                wake.notify_one();
                loop {
                    let notification = tokio::select! {
                        biased;
                        () = stop.stopped() => return,
                        notification = listener.try_recv() => notification,
                    };
                    match notification {
                        Ok(Some(_)) => wake.notify_one(),
                        // Dropped, not retried through the listener: it
                        // would reconnect at once on every call, with no
                        // backoff.
                        Ok(None) => break "the connection was lost".to_owned(),
                        Err(error) => break error.to_string(),
                    }
                }
            }
            Err(error) => error.to_string(),
        };
        failures.failed(&error);
        report(Some(format!(
            "deployment notifications interrupted (polling every {}s meanwhile): {error}",
            RECONCILE_EVERY.as_secs()
        )));
        tokio::select! {
            biased;
            () = stop.stopped() => return,
            () = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

async fn listen(pool: &sqlx::PgPool) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    // A lost connection comes back from `try_recv` instead of an immediate
    // reconnect inside it: reconnecting is this loop's job, with backoff.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
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
    files.sort_by(|(a, _), (b, _)| (!is_core_service(a), a).cmp(&(!is_core_service(b), b)));
    Ok(files)
}
