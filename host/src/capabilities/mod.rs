//! Host capabilities: the implementations of the host interfaces in `wit/`,
//! one module per interface (the service interfaces share [`services`]), each implementing its generated `Host` trait
//! on [`StoreState`]. Everything is linked into one linker; what a given
//! component may actually import is decided by its grant at load time
//! (see [`crate::runtime::policy`]).

mod credentials;
mod db;
mod events;
mod log;
mod services;
mod tokens;

use wasmtime::component::{HasSelf, Linker};

use crate::{bindings, runtime::state::StoreState};

/// Link WASI's minimal context and every Souk capability.
pub fn add_to_linker(linker: &mut Linker<StoreState>) -> anyhow::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    bindings::types::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    bindings::log::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    bindings::db::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    bindings::credentials::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    bindings::tokens::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    bindings::events::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    bindings::service_types::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    bindings::customers_api::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    bindings::wallet::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    bindings::inventory_api::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    bindings::sales_api::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    bindings::reviews_api::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    Ok(())
}

impl bindings::types::Host for StoreState {}
impl bindings::service_types::Host for StoreState {}
