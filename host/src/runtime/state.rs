//! Per-store state: what a component instance can reach while it runs.
//! A store lives for one call; its state ties the call to the component it
//! runs (for statement checks and logs), the request's unit of work, and the
//! host services behind the capabilities.
//!
//! A scope's unit of work is opened, committed and rolled back in one
//! place, [`RequestScope::run`], by every caller (the edge, event delivery,
//! admin checks, bootstrap), so what ends a request's transaction is
//! decided once.

use std::{
    sync::{Arc, Weak, atomic::Ordering},
    time::Instant,
};

use wasmtime::ResourceLimiter;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use super::{Runtime, event_pump::EventBus, instances::IdleInstances, registry::Access};
use crate::{
    auth::TokenIssuer,
    login_guard::LoginGuard,
    storage::uow::{CommitFailed, Outcome, UnitOfWork},
};

/// One request's shared context: every store created for the request, also
/// for cross-component calls, points at the same scope.
#[derive(Debug)]
pub struct RequestScope {
    /// The request's transaction.
    pub uow: UnitOfWork,
    /// The request id, for logs.
    pub request_id: String,
    /// The client's address (behind a trusted proxy, the address it
    /// forwarded for): the key password guesses are counted under.
    pub client: std::net::IpAddr,
    /// The caller's username once the token was verified: the actor of
    /// the request's events and audit entries.
    pub actor: std::sync::OnceLock<String>,
    /// Events emitted so far in this request (bounded).
    pub events_emitted: std::sync::atomic::AtomicUsize,
    /// This scope delivers an event to a subscriber: it may not emit
    /// events itself, so subscribers can never feed each other (or
    /// themselves) an endless, growing stream.
    pub delivers_event: bool,
    /// Instances of the components this request called, kept for its next
    /// call to the same component until the request ends.
    pub instances: IdleInstances,
}

impl RequestScope {
    /// A scope for one request (or one host task) running in `uow`.
    pub fn new(uow: UnitOfWork, request_id: impl Into<String>, client: std::net::IpAddr) -> Self {
        Self {
            uow,
            request_id: request_id.into(),
            client,
            actor: std::sync::OnceLock::new(),
            events_emitted: std::sync::atomic::AtomicUsize::new(0),
            delivers_event: false,
            instances: IdleInstances::open(),
        }
    }

    /// A scope delivering event `event_id` to a subscriber (see
    /// [`RequestScope::delivers_event`]).
    pub fn for_event(uow: UnitOfWork, event_id: &str) -> Self {
        Self {
            delivers_event: true,
            ..Self::new(
                uow,
                format!("event:{event_id}"),
                std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            )
        }
    }

    /// Run `work` in this scope's unit of work and end it: commit if
    /// `keep` says the work's result may be kept, roll back otherwise
    /// (also when `work` returned early with an error). Work dropped
    /// before it ends (the client went away) rolls back when its
    /// transaction is dropped.
    ///
    /// A commit that fails is the caller's [`CommitFailed`], whatever the
    /// work answered. A rollback that fails is only logged: nothing is kept
    /// either way, so the work's own result stands.
    /// After a commit that carried events, `events` is woken to deliver
    /// them at once rather than at its next tick.
    pub async fn run<T>(
        self,
        events: &EventBus,
        work: impl AsyncFnOnce(&Arc<Self>) -> T,
        keep: impl FnOnce(&T) -> bool,
    ) -> Result<T, CommitFailed> {
        let scope = Arc::new(self);
        // Also when this future is dropped half-way: a kept store points
        // back at the scope, and the scope must not outlive the request.
        let closing = CloseInstances(&scope.instances);
        let result = work(&scope).await;
        // Before the commit: the instances' slots are free for others.
        drop(closing);
        let outcome = if keep(&result) {
            Outcome::Commit
        } else {
            Outcome::Rollback
        };
        match (scope.uow.finish(outcome).await, outcome) {
            (Ok(()), Outcome::Commit) => {
                if scope.events_emitted.load(Ordering::Relaxed) > 0 {
                    events.committed();
                }
                Ok(result)
            }
            (Ok(()), Outcome::Rollback) => Ok(result),
            (Err(error), Outcome::Commit) => Err(error),
            (Err(error), Outcome::Rollback) => {
                tracing::warn!(
                    request_id = %scope.request_id,
                    "cannot roll back a unit of work: {error}"
                );
                Ok(result)
            }
        }
    }
}

/// Drops a request's kept instances when the request's work ends or is
/// abandoned.
struct CloseInstances<'a>(&'a IdleInstances);

impl Drop for CloseInstances<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Services the capabilities need from the host.
#[derive(Debug)]
pub struct HostServices {
    /// Signs access tokens for the `tokens` capability.
    pub tokens: TokenIssuer,
    /// Throttles password guesses in the `credentials` capability.
    pub login_guard: Arc<LoginGuard>,
}

/// The data of every `Store` the host creates.
pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// Enforces the component's memory cap and records a breach.
    pub limiter: MemoryLimiter,
    /// What the component this store runs may do.
    pub access: Arc<Access>,
    /// The request, or `None` for calls outside one (reading a manifest).
    pub scope: Option<Arc<RequestScope>>,
    /// Host services behind the capabilities.
    pub services: Arc<HostServices>,
    /// The runtime, for calls into other components.
    pub runtime: Weak<Runtime>,
    /// When this call's deadline passes. The epoch deadline stops only the
    /// guest's own code; work the host does on the call's behalf (its
    /// statements) is bounded by this instant too.
    pub deadline: Instant,
}

impl StoreState {
    /// State for one call into a component with `access`, due by `deadline`.
    pub fn new(
        access: Arc<Access>,
        scope: Option<Arc<RequestScope>>,
        services: Arc<HostServices>,
        runtime: Weak<Runtime>,
        deadline: Instant,
    ) -> Self {
        Self {
            // Minimal WASI: no preopens, environment, arguments, or network;
            // stdio goes nowhere. Clocks and randomness only.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(access.grant.limits.memory_bytes),
            access,
            scope,
            services,
            runtime,
            deadline,
        }
    }

    /// Request id for logs, or `-` outside a request.
    pub fn request_id(&self) -> &str {
        self.scope.as_ref().map_or("-", |s| s.request_id.as_str())
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps linear memory growth and remembers whether the cap was hit, so a
/// failed call can be reported as "memory limit" rather than a generic trap.
#[derive(Debug)]
pub struct MemoryLimiter {
    max_bytes: usize,
    /// Bytes of every linear memory of the store together: a component
    /// made of many core modules has a memory each, and the cap is on the
    /// instance, not on each of them.
    total_bytes: usize,
    /// Set when a growth beyond the cap was refused.
    pub exceeded: bool,
}

impl MemoryLimiter {
    fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            total_bytes: 0,
            exceeded: false,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .total_bytes
            .saturating_add(desired.saturating_sub(current));
        if total > self.max_bytes {
            self.exceeded = true;
            return Err(wasmtime::format_err!(
                "memory limit of {} bytes exceeded",
                self.max_bytes
            ));
        }
        self.total_bytes = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; 100k entries is far beyond any
        // honest component and bounds what a hostile one can take.
        Ok(desired <= 100_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_cap_counts_every_memory_of_the_instance() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).is_ok());
        // A second memory of 60 would be within the cap on its own.
        assert!(limiter.memory_growing(0, 60, None).is_err());
        assert!(limiter.exceeded);
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 40, None).is_ok());
        assert!(limiter.memory_growing(40, 70, None).is_ok());
        assert!(limiter.memory_growing(0, 30, None).is_ok());
        assert!(limiter.memory_growing(30, 31, None).is_err());
    }
}
