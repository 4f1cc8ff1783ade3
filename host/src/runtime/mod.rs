//! The WebAssembly runtime: one wasmtime engine (pooling allocator, epoch
//! interruption), one linker holding every host capability, the registry of
//! loaded components, and the calls into them.
//!
//! Every request gets fresh `Store`s instantiated from the components'
//! cached `InstancePre`s, with their memory cap, a wall-clock deadline per
//! call and a concurrency slot; a request's second call to the same
//! component reuses the instance its first left behind ([`instances`]), and
//! no instance outlives its request. Failures of the call itself (trap, deadline, memory,
//! overload) come back as [`CallError`]; the component's own expected
//! failures come back as its WIT `error` value inside `Ok`.

pub mod background;
mod cache;
mod checkpointer;
pub mod core_services;
mod deploy;
pub mod event_pump;
pub mod grants;
pub mod instances;
mod load;
pub mod policy;
pub mod registry;
pub mod state;
pub mod subscribers;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use tokio::sync::Semaphore;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
    UpdateDeadline,
    component::{Instance, InstancePre, Linker},
};

pub use deploy::{DataOnUnload, DeployError};
pub use load::LoadError;
use registry::{Access, LoadedComponent, Registry};
use state::{HostServices, RequestScope, StoreState};

use crate::{
    bindings::{
        accounts::Account,
        manifest,
        types::{Error as WitError, Identity, Request, Response},
    },
    storage::Database,
};

/// How often the epoch advances; the granularity of deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Why a call into a component failed as a call (not as the component's
/// own expected error).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Every slot of the component is busy.
    #[error("component `{0}` is at its concurrency limit")]
    Overloaded(String),
    /// The call ran past its wall-clock deadline.
    #[error("component `{0}` ran past its deadline")]
    Deadline(String),
    /// The call tried to grow memory past the component's cap.
    #[error("component `{0}` exceeded its memory limit")]
    MemoryLimit(String),
    /// The component trapped (a bug in the component, e.g. a panic).
    #[error("component `{component}` trapped: {message}")]
    Trap {
        /// Component name.
        component: String,
        /// The trap, for the log only: never sent to the client.
        message: String,
    },
    /// Too many recent password failures for this username or client: the
    /// request is refused before any password is checked.
    #[error("component `{component}` checked a password too often; retry after {retry_after:?}")]
    Throttled {
        /// Component name.
        component: String,
        /// How long until an attempt may be admitted.
        retry_after: Duration,
    },
    /// The component's grant no longer includes an interface it called
    /// (revoked at run time).
    #[error("component `{component}` is not granted `{interface}`")]
    NotGranted {
        /// Component name.
        component: String,
        /// The interface, unversioned.
        interface: String,
    },
    /// A component the call needs is not loaded.
    #[error("component `{0}` is not loaded")]
    NotLoaded(String),
    /// The host could not set up the call (e.g. the instance pool is full).
    #[error("cannot call component `{component}`: {source:#}")]
    Host {
        /// Component name.
        component: String,
        /// What failed.
        source: anyhow::Error,
    },
}

/// The engine, linker and registry; shared by every request.
pub struct Runtime {
    /// Handed to every store, so capabilities can call other components.
    this: std::sync::Weak<Runtime>,
    engine: Engine,
    linker: Linker<StoreState>,
    registry: Registry,
    services: Arc<HostServices>,
    db: Database,
    cache_dir: Option<std::path::PathBuf>,
    /// What each component may import, and its limits.
    grants: policy::Grants,
    /// Serialises deploys, rollbacks and reconciles on this replica.
    deploy_lock: tokio::sync::Mutex<()>,
    /// The stop signal and handles of the background loops, and their health.
    background: background::Background,
    /// Deployed versions that failed to load, retried with backoff.
    load_failures: deploy::LoadFailures,
    /// The event pump's wake-up and its last number.
    events: event_pump::EventBus,
}

impl Runtime {
    /// Build the engine and linker and start the epoch ticker. `link` adds
    /// the host's imports (`crate::capabilities`, given by `startup`): the
    /// capabilities call into the runtime, never the other way round.
    pub fn new(
        db: Database,
        services: HostServices,
        cache_dir: Option<std::path::PathBuf>,
        grants: policy::Grants,
        link: impl FnOnce(&mut Linker<StoreState>) -> anyhow::Result<()>,
    ) -> anyhow::Result<Arc<Self>> {
        let engine = Engine::new(&engine_config())
            .map_err(anyhow::Error::from)
            .context("cannot create the wasm engine")?;
        start_epoch_ticker(&engine).context("cannot start the epoch ticker")?;
        let mut linker = Linker::new(&engine);
        link(&mut linker)?;
        Ok(Arc::new_cyclic(|this| Self {
            this: this.clone(),
            engine,
            linker,
            registry: Registry::default(),
            services: Arc::new(services),
            db,
            cache_dir,
            grants,
            deploy_lock: tokio::sync::Mutex::new(()),
            background: background::Background::new(),
            load_failures: deploy::LoadFailures::default(),
            events: event_pump::EventBus::default(),
        }))
    }

    /// The loaded components.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The database the runtime migrates components on.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Call a component's HTTP handler within `scope`.
    pub async fn handle(
        &self,
        component: &Arc<LoadedComponent>,
        scope: Arc<RequestScope>,
        request: &Request,
    ) -> Result<Result<Response, WitError>, CallError> {
        let handler = &component.handler;
        self.call_in(component, &scope, async |store, instance| {
            handler
                .load(&mut *store, instance)?
                .call_handle(store, request)
                .await
        })
        .await
    }

    /// The current account of `customer_id` (identity and token epoch),
    /// asked of the component that exports `accounts` (customers), within
    /// `scope`.
    pub async fn resolve_account(
        &self,
        scope: Arc<RequestScope>,
        customer_id: &str,
    ) -> Result<Result<Option<Account>, WitError>, CallError> {
        let (component, accounts) = self.accounts_component()?;
        self.call_in(&component, &scope, async |store, instance| {
            accounts
                .load(&mut *store, instance)?
                .call_resolve(store, customer_id)
                .await
        })
        .await
    }

    /// Ensure an admin exists through the accounts component; `promote`
    /// also makes an existing customer one (see `accounts.ensure-admin`).
    pub async fn ensure_admin(
        &self,
        scope: Arc<RequestScope>,
        username: &str,
        password: &str,
        promote: bool,
    ) -> Result<Result<Identity, WitError>, CallError> {
        let (component, accounts) = self.accounts_component()?;
        self.call_in(&component, &scope, async |store, instance| {
            accounts
                .load(&mut *store, instance)?
                .call_ensure_admin(store, username, password, promote)
                .await
        })
        .await
    }

    /// Run `work` (one call into `component`) within `scope`, on the
    /// instance this request already made of `component` if it is idle,
    /// else on a fresh one; the instance is kept for the request's next
    /// call only if `work` returned normally (see [`instances`]).
    pub(crate) async fn call_in<T>(
        &self,
        component: &Arc<LoadedComponent>,
        scope: &Arc<RequestScope>,
        work: impl AsyncFnOnce(&mut Store<StoreState>, &Instance) -> wasmtime::Result<T>,
    ) -> Result<T, CallError> {
        let mut call = match scope.instances.take(component) {
            Some(mut call) => {
                call.rearm();
                call
            }
            None => self.instantiate(component, Some(scope.clone())).await?,
        };
        match work(&mut call.store, &call.instance).await {
            // A refused memory growth the guest survived still ends the
            // instance: its next failure would be reported as the cap's.
            Ok(value) if !call.store.data().limiter.exceeded => {
                scope.instances.keep(component, call);
                Ok(value)
            }
            Ok(value) => Ok(value),
            Err(error) => Err(call.fail(error)),
        }
    }

    fn accounts_component(
        &self,
    ) -> Result<
        (
            Arc<LoadedComponent>,
            crate::bindings::accounts::GuestIndices,
        ),
        CallError,
    > {
        // Fail closed: only a core service whose world exports `accounts`
        // vouches for identities, never a component that happens to be
        // named like one.
        let accounts = registry::interfaces::ACCOUNTS;
        let owner = core_services::owner_of(accounts)
            .ok_or_else(|| CallError::NotLoaded(accounts.into()))?;
        let snapshot = self.registry.snapshot();
        snapshot
            .get(owner)
            .and_then(|c| c.services.accounts.clone().map(|a| (c.clone(), a)))
            .ok_or_else(|| CallError::NotLoaded(owner.into()))
    }

    /// Read a freshly compiled component's manifest (outside any request).
    async fn describe(
        &self,
        pre: &InstancePre<StoreState>,
        access: Arc<Access>,
        indices: &manifest::GuestIndices,
    ) -> Result<manifest::Descriptor, CallError> {
        let slots = Arc::new(Semaphore::new(1));
        let mut call = self.instantiate_parts(pre, access, &slots, None).await?;
        let guest = indices
            .load(&mut call.store, &call.instance)
            .map_err(|e| call.fail(e))?;
        let result = guest.call_describe(&mut call.store).await;
        result.map_err(|e| call.fail(e))
    }

    pub(crate) async fn instantiate(
        &self,
        component: &LoadedComponent,
        scope: Option<Arc<RequestScope>>,
    ) -> Result<Call, CallError> {
        let access = component.access.clone();
        self.instantiate_parts(&component.pre, access, &component.slots, scope)
            .await
    }

    async fn instantiate_parts(
        &self,
        pre: &InstancePre<StoreState>,
        access: Arc<Access>,
        slots: &Arc<Semaphore>,
        scope: Option<Arc<RequestScope>>,
    ) -> Result<Call, CallError> {
        let name = access.name.clone();
        let permit = slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| CallError::Overloaded(name.clone()))?;
        let deadline = access.grant.limits.deadline;
        let started = Instant::now();
        let state = StoreState::new(
            access,
            scope,
            self.services.clone(),
            self.this.clone(),
            started + deadline,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(1);
        // The deadline is read from the state: a kept instance's next call
        // gets a new one ([`Call::rearm`]).
        store.epoch_deadline_callback(|store| {
            if Instant::now() < store.data().deadline {
                // Yield at every tick so a busy component cannot starve
                // the other requests sharing this worker thread.
                Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(tokio::task::yield_now()),
                ))
            } else {
                Err(Trap::Interrupt.into())
            }
        });
        let instance = match pre.instantiate_async(&mut store).await {
            Ok(instance) => instance,
            Err(error) => {
                let exceeded = store.data().limiter.exceeded;
                return Err(classify(&name, exceeded, error));
            }
        };
        // What a request costs in instances shows here: a call that reused
        // its request's instance ([`instances`]) does not count.
        metrics::counter!("souk_component_instances_total", "component" => name.clone())
            .increment(1);
        Ok(Call {
            store,
            instance,
            component: name,
            slot: Some(permit),
        })
    }
}

/// A store with an instantiated component, holding a concurrency slot
/// until it is dropped.
pub(crate) struct Call {
    pub(crate) store: Store<StoreState>,
    pub(crate) instance: Instance,
    component: String,
    /// The component's concurrency slot while a call runs on the instance
    /// (`None` while a request keeps it idle, see [`instances`]).
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Call {
    /// Ready a kept instance for its next call: a deadline of its own,
    /// from now, as a fresh instance would get.
    fn rearm(&mut self) {
        let deadline = self.store.data().access.grant.limits.deadline;
        self.store.data_mut().deadline = Instant::now() + deadline;
        self.store.set_epoch_deadline(1);
    }

    /// Classify a failure of this call.
    pub(crate) fn fail(&self, error: wasmtime::Error) -> CallError {
        classify(&self.component, self.store.data().limiter.exceeded, error)
    }
}

fn classify(component: &str, memory_exceeded: bool, error: wasmtime::Error) -> CallError {
    let component = component.to_owned();
    // A failed call into another component fails its caller with the
    // callee's failure, so a callee's deadline still answers 503.
    let error = match error.downcast::<CallError>() {
        Ok(nested) => return nested,
        Err(error) => error,
    };
    if memory_exceeded {
        return CallError::MemoryLimit(component);
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::Deadline(component),
        Some(trap) => CallError::Trap {
            component,
            message: format!("{trap}: {error:?}"),
        },
        None => CallError::Host {
            component,
            source: anyhow::anyhow!("{error:?}"),
        },
    }
}

/// Per-instance shares of the pooling allocator (see [`engine_config`]).
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 16;
const MAX_MEMORIES_PER_COMPONENT: u32 = 2;
const MAX_TABLES_PER_COMPONENT: u32 = 8;

fn engine_config() -> Config {
    let mut pool = PoolingAllocationConfig::default();
    // Measured (RUNTIME-NOTES): keeping a little memory resident between
    // instances halves the cost of a fresh instance per call.
    pool.linear_memory_keep_resident(4 << 20)
        .table_keep_resident(64 << 10)
        .async_stack_keep_resident(256 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto)
        // One component instance may not take a large share of the shared
        // pool: a hostile component built from many core modules, each
        // with a memory, would otherwise use up the slots every other
        // component instantiates into. Components built from Rust with
        // wit-bindgen use one memory and a handful of core instances; one
        // over these limits fails at load (reading its manifest).
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
        .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
        .total_component_instances(1000)
        .total_core_instances(2000)
        .total_memories(1000)
        .total_tables(2000)
        .total_stacks(1000)
        .max_memory_size(512 << 20);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Advance the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
fn start_epoch_ticker(engine: &Engine) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("souk-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map(drop)
}
