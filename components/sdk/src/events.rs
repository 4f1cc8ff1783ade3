//! Emitting domain events: what happened, in the request's own unit of
//! work. The host keeps an event only if the request commits, numbers it in
//! commit order and delivers it to subscribers, webhooks and NATS; events of
//! the core services also enter the audit log.
//!
//! A component may emit only its own types (an extension `<name>.<verb>`).
//! A refused event is this component's bug: [`emit`] turns it into an
//! internal error, so the request fails instead of committing a change
//! nobody heard about.

use serde::Serialize;

use crate::error::{Error, Result};

/// Emit `event_type` about `subject` with `data` (serialised as a JSON
/// object).
pub fn emit(event_type: &str, subject: &str, data: &impl Serialize) -> Result<()> {
    let data = serde_json::to_string(data)
        .map_err(|e| Error::internal(format!("cannot serialise a `{event_type}` event: {e}")))?;
    emit_raw(event_type, subject, &data)
}

#[cfg(target_arch = "wasm32")]
fn emit_raw(event_type: &str, subject: &str, data: &str) -> Result<()> {
    crate::wit::events::emit(event_type, subject, data)
        .map_err(|refusal| Error::internal(format!("event `{event_type}` refused: {refusal}")))
}

/// Natively (unit tests) there is no host: events go nowhere.
#[cfg(not(target_arch = "wasm32"))]
fn emit_raw(_event_type: &str, _subject: &str, _data: &str) -> Result<()> {
    Ok(())
}
