//! The `log` capability: component log lines into the host's tracing
//! output, tagged with the component and request id, and bounded in size.

use crate::{bindings::log::Level, runtime::state::StoreState};

/// Longest message kept from one log call.
const MAX_MESSAGE_BYTES: usize = 4096;

impl crate::bindings::log::Host for StoreState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let mut message = message;
        if message.len() > MAX_MESSAGE_BYTES {
            let mut cut = MAX_MESSAGE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let component = self.access.name.as_str();
        let request_id = self.request_id();
        match level {
            Level::Trace => tracing::trace!(component, request_id, "{message}"),
            Level::Debug => tracing::debug!(component, request_id, "{message}"),
            Level::Info => tracing::info!(component, request_id, "{message}"),
            Level::Warn => tracing::warn!(component, request_id, "{message}"),
            Level::Error => tracing::error!(component, request_id, "{message}"),
        }
        Ok(())
    }
}
