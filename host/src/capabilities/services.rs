//! The service interfaces (`customers-api`, `wallet`, `inventory-api`,
//! `sales-api`, `reviews-api`) as imports: the host implements each function by
//! instantiating the current version of the component that owns the
//! interface and calling its export, inside the caller's request scope, so
//! both run in one transaction. A failed callee (trap, deadline, overload)
//! fails the caller with the same error, so nothing half-done can commit.

use std::sync::Arc;

use crate::{
    bindings::{
        customers_api, inventory_api, reviews_api, sales_api,
        service_types::{CustomerSummary, Good, Purchase, Rating},
        types::Error,
        wallet,
    },
    runtime::{
        CallError, Runtime,
        core_services::owner_of,
        registry::interfaces,
        state::{RequestScope, StoreState},
    },
};

/// What a service read or write answers: the callee's own error (e.g.
/// `unavailable` when it cannot read its data), or its value.
type Answer<T> = wasmtime::Result<Result<T, Error>>;

impl StoreState {
    /// The runtime and the request a service call runs in.
    fn service_context(&self) -> wasmtime::Result<(Arc<Runtime>, Arc<RequestScope>)> {
        let runtime = self
            .runtime
            .upgrade()
            .ok_or_else(|| wasmtime::format_err!("the runtime is shutting down"))?;
        let scope = self
            .scope
            .clone()
            .ok_or_else(|| wasmtime::format_err!("service calls are only possible in a request"))?;
        Ok((runtime, scope))
    }
}

/// Call `$method` of `$interface` (whose lookups are the `$exports` field of
/// `ServiceExports`) on the core service that owns it, if the caller's grant (as it is now: an admin may revoke it at
/// run time) still includes the interface.
macro_rules! forward {
    ($state:expr, $interface:ident => $exports:ident, $method:ident ( $($arg:expr),* )) => {{
        let interface = interfaces::$interface;
        if !$state.access.grant.allows(interface) {
            return Err(wasmtime::Error::new(CallError::NotGranted {
                component: $state.access.name.clone(),
                interface: interface.to_owned(),
            }));
        }
        let (runtime, scope) = $state.service_context()?;
        // Fail closed: only the core service whose world exports the
        // interface serves it.
        let owner = owner_of(interface).ok_or_else(|| {
            wasmtime::Error::new(CallError::NotLoaded(interface.into()))
        })?;
        let not_loaded = || wasmtime::Error::new(CallError::NotLoaded(owner.into()));
        let snapshot = runtime.registry().snapshot();
        let callee = snapshot.get(owner).cloned().ok_or_else(not_loaded)?;
        let indices = callee.services.$exports.clone().ok_or_else(not_loaded)?;
        drop(snapshot);
        runtime
            .call_in(&callee, &scope, async |store, instance| {
                indices.load(&mut *store, instance)?.$method(store, $($arg),*).await
            })
            .await
            .map_err(wasmtime::Error::new)
    }};
}

impl customers_api::Host for StoreState {
    async fn get(&mut self, customer_id: String) -> Answer<Option<CustomerSummary>> {
        forward!(self, CUSTOMERS_API => customers, call_get(&customer_id))
    }

    async fn find_by_username(&mut self, username: String) -> Answer<Option<CustomerSummary>> {
        forward!(self, CUSTOMERS_API => customers, call_find_by_username(&username))
    }
}

impl wallet::Host for StoreState {
    async fn debit(&mut self, customer_id: String, cents: i64) -> Answer<i64> {
        forward!(self, WALLET => wallet, call_debit(&customer_id, cents))
    }

    async fn credit(&mut self, customer_id: String, cents: i64) -> Answer<i64> {
        forward!(self, WALLET => wallet, call_credit(&customer_id, cents))
    }
}

impl inventory_api::Host for StoreState {
    async fn get(&mut self, good_id: String) -> Answer<Option<Good>> {
        forward!(self, INVENTORY_API => inventory, call_get(&good_id))
    }

    async fn find_by_name(&mut self, name: String) -> Answer<Option<Good>> {
        forward!(self, INVENTORY_API => inventory, call_find_by_name(&name))
    }

    async fn get_many(&mut self, good_ids: Vec<String>) -> Answer<Vec<Good>> {
        forward!(self, INVENTORY_API => inventory, call_get_many(&good_ids))
    }

    async fn in_stock(&mut self, limit: u32) -> Answer<Vec<Good>> {
        forward!(self, INVENTORY_API => inventory, call_in_stock(limit))
    }

    async fn take_stock(&mut self, good_id: String, quantity: i64) -> Answer<Good> {
        forward!(self, INVENTORY_API => inventory, call_take_stock(&good_id, quantity))
    }
}

impl sales_api::Host for StoreState {
    async fn has_purchased(&mut self, customer_id: String, good_id: String) -> Answer<bool> {
        forward!(self, SALES_API => sales, call_has_purchased(&customer_id, &good_id))
    }

    async fn purchases_of(&mut self, customer_id: String, limit: u32) -> Answer<Vec<Purchase>> {
        forward!(self, SALES_API => sales, call_purchases_of(&customer_id, limit))
    }

    async fn all_purchases(&mut self, limit: u32) -> Answer<Vec<Purchase>> {
        forward!(self, SALES_API => sales, call_all_purchases(limit))
    }
}

impl reviews_api::Host for StoreState {
    async fn approved_ratings(&mut self, limit: u32) -> Answer<Vec<Rating>> {
        forward!(self, REVIEWS_API => reviews, call_approved_ratings(limit))
    }
}
