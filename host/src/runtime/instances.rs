//! The instances one request has made, kept for its next call to the same
//! component and dropped when the request ends.
//!
//! An authenticated request calls the accounts component to resolve its
//! caller and then, often, the same component again (its handler, or the
//! wallet a purchase debits); a purchase calls the inventory twice. Each of
//! those calls used to build a fresh instance. Within one request they all
//! act for the same caller in the same unit of work, so the second call may
//! run on the instance the first left behind: isolation between requests
//! (and between customers) is untouched, because no instance outlives its
//! request.
//!
//! What is kept is exactly what a later call may reuse: an instance whose
//! last call returned normally. One that trapped, ran out of time, hit its
//! memory cap or was abandoned half-way (its future dropped) is dropped,
//! never kept, since wasmtime forbids re-entering a trapped instance and a
//! call cut short leaves the guest's state half-changed. An instance is
//! reused only for the very same [`LoadedComponent`] (same version, same
//! grant): after a hot swap or a grant change mid-request the next call
//! gets a fresh instance of the new one.
//!
//! A kept instance gives its concurrency slot back while it is idle and
//! takes one again for its next call (if none is free, the instance is
//! dropped and the call is refused as overloaded, as a fresh one would
//! be): a request that waits (for an extension, for the writer's turn)
//! does not hold slots of components it is not calling. It keeps its
//! memory until the request ends; at most one instance per component is
//! kept, so a request holds no more instances than the components it
//! called.
//!
//! A core service must therefore not assume that each call starts on a
//! fresh instance within a request: the host's calls (resolving the
//! caller) and an extension's (through a service interface) may share one.
//! The core services keep no state between calls (no statics); a new one
//! must not either.

use std::sync::{Arc, Mutex};

use super::{Call, registry::LoadedComponent};

/// A request's idle instances (see the module documentation).
pub struct IdleInstances {
    /// `None` once the request has ended: nothing more is kept, so that a
    /// store (which points back at its request) never keeps the request
    /// alive.
    kept: Mutex<Option<Vec<Idle>>>,
}

struct Idle {
    component: Arc<LoadedComponent>,
    call: Call,
}

impl IdleInstances {
    /// A request's list, open for instances to be kept.
    pub fn open() -> Self {
        Self {
            kept: Mutex::new(Some(Vec::new())),
        }
    }

    /// The idle instance of exactly `component`, taken out (a call that
    /// re-enters the component while it runs gets a fresh one).
    pub(super) fn take(&self, component: &Arc<LoadedComponent>) -> Option<Call> {
        let mut kept = self.kept.lock().ok()?;
        let idle = kept.as_mut()?;
        let at = idle
            .iter()
            .position(|idle| Arc::ptr_eq(&idle.component, component))?;
        let mut call = idle.swap_remove(at).call;
        drop(kept);
        // No free slot: the instance is dropped here, and the fresh one the
        // caller then asks for is refused as overloaded.
        call.slot = Some(component.slots.clone().try_acquire_owned().ok()?);
        Some(call)
    }

    /// Keep `call`, whose last call into `component` returned normally, for
    /// the request's next call to it. Dropped instead when the request has
    /// ended or an instance of `component` is already kept (a re-entrant
    /// call made a second one).
    pub(super) fn keep(&self, component: &Arc<LoadedComponent>, mut call: Call) {
        call.slot = None;
        let refused = match self.kept.lock() {
            Ok(mut kept) => match kept.as_mut() {
                Some(idle) if !idle.iter().any(|i| Arc::ptr_eq(&i.component, component)) => {
                    idle.push(Idle {
                        component: component.clone(),
                        call,
                    });
                    None
                }
                _ => Some(call),
            },
            Err(_) => Some(call),
        };
        // Outside the lock: dropping a store returns its instance to the
        // pool, which is not free.
        drop(refused);
    }

    /// The request has ended: drop every kept instance (releasing their
    /// slots) and keep no more.
    pub fn close(&self) {
        let dropped = match self.kept.lock() {
            Ok(mut kept) => kept.take(),
            Err(mut poisoned) => poisoned.get_mut().take(),
        };
        drop(dropped);
    }
}

impl std::fmt::Debug for IdleInstances {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self
            .kept
            .lock()
            .ok()
            .and_then(|kept| kept.as_ref().map(Vec::len));
        f.debug_struct("IdleInstances")
            .field("kept", &kept)
            .finish()
    }
}
