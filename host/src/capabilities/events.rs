//! The `events` capability: a component emits a domain event inside its
//! request; the host checks it ([`crate::events::check`]: the component's
//! own types only, bounded size and count) and writes it to the outbox in
//! the request's unit of work, so it exists exactly when the request
//! commits. A core service's event is also written to the audit log, in the
//! same unit of work, with the request's caller as the actor.
//!
//! A refusal is returned to the component as an error string (its bug to
//! fix, not a trap). The rows are written when the unit of work commits,
//! just before the commit ([`crate::storage::uow::UnitOfWork::append_at_commit`]):
//! if they cannot be written, nothing of the request is committed, so a
//! change never commits without its event.

use std::sync::atomic::Ordering;

use crate::{
    events::{self, CATALOGUE, MAX_EVENTS_PER_REQUEST},
    runtime::state::StoreState,
    storage::events::{AuditEntry, audit_row, event_row},
};

impl crate::bindings::events::Host for StoreState {
    async fn emit(
        &mut self,
        event_type: String,
        subject: String,
        data: String,
    ) -> wasmtime::Result<Result<(), String>> {
        let Some(scope) = self.scope.clone() else {
            return Ok(Err(
                "events can be emitted only while handling a request".into()
            ));
        };
        if scope.delivers_event {
            return Ok(Err(
                "events cannot be emitted while handling an event (subscribers must not feed each other)"
                    .into(),
            ));
        }
        let component = self.access.name.clone();
        let data_value = match events::check(&component, &event_type, &subject, &data) {
            Ok(value) => value,
            Err(refusal) => {
                tracing::warn!(%component, request_id = %scope.request_id, %refusal, "refused an event");
                return Ok(Err(refusal.to_string()));
            }
        };
        if scope.events_emitted.fetch_add(1, Ordering::Relaxed) >= MAX_EVENTS_PER_REQUEST {
            return Ok(Err(format!(
                "a request may emit at most {MAX_EVENTS_PER_REQUEST} events"
            )));
        }
        let actor = scope.actor.get().map(String::as_str);
        let id = uuid::Uuid::now_v7().to_string();
        scope.uow.append_at_commit(event_row(
            &id,
            &event_type,
            &subject,
            &data,
            &scope.request_id,
            actor,
            &component,
        ));
        if CATALOGUE.iter().any(|known| known.name == event_type) {
            scope.uow.append_at_commit(audit_row(&AuditEntry {
                actor,
                action: &event_type,
                subject: &subject,
                request_id: &scope.request_id,
                changes: data_value,
            }));
        }
        Ok(Ok(()))
    }
}
