//! Test component of the `event-counter` world: a subscriber that records
//! every delivery it acknowledges in its own table, so the tests can see
//! that each event arrived once, in order, across restarts and replicas.
//!
//! - `GET /api/v1/event_counter`: `{deliveries, distinct, items: [{sequence,
//!   event_type, subject, data}]}` in the order they were handled.
//! - `POST /api/v1/event_counter/emit?verb=V`: emits `event_counter.V`
//!   (default `x`) and answers 200.
//! - `POST /api/v1/event_counter/emit-then-trap`: emits `event_counter.x`,
//!   then traps: the event must vanish with the request.
//! - `POST /api/v1/event_counter/emit-foreign`: emits `sale.completed`,
//!   which belongs to `sales`; answers 403 with the host's refusal (200
//!   would mean the host let it through).
//! - `POST /api/v1/event_counter/refuse` and `/accept`: while refusing, the
//!   handler answers every delivery with an error (the host retries it).
//! - Handling `event_counter.echo`, the handler tries to emit
//!   `event_counter.echoed` (a subscriber feeding itself) and records the
//!   host's answer as that delivery's `data`.

#[allow(unsafe_code, missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        world: "event-counter",
        path: "../../../wit",
        with: {
            "souk:platform/types@0.3.0": souk_sdk::wit::types,
            "souk:platform/log@0.3.0": souk_sdk::wit::log,
            "souk:platform/db@0.3.0": souk_sdk::wit::db,
            "souk:platform/events@0.3.0": souk_sdk::wit::events,
        },
    });

    use super::Component;
    export!(Component);
}

use bindings::exports::souk::platform::{event_handler, handler, manifest};
use serde_json::json;
use souk_sdk::db::{self, params};
use souk_sdk::{Context, Error, Request, Response, Result, Route, Router, json, ok};

const MIGRATION: &str = "
CREATE TABLE event_counter_deliveries (
    received BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE event_counter_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

struct Component;

/// Its routes, undocumented: a test component serves no one's API.
fn router() -> Router {
    Router::new("event_counter")
        .route(Route::get("/api/v1/event_counter", deliveries))
        .route(Route::post("/api/v1/event_counter/emit", emit))
        .route(Route::post(
            "/api/v1/event_counter/emit-then-trap",
            emit_then_trap,
        ))
        .route(Route::post(
            "/api/v1/event_counter/emit-foreign",
            emit_foreign,
        ))
        .route(Route::post("/api/v1/event_counter/refuse", refuse))
        .route(Route::post("/api/v1/event_counter/accept", accept))
}

fn deliveries(_ctx: &Context) -> Result<Response> {
    let items = db::query(
        "SELECT sequence, event_type, subject, event_id, data FROM event_counter_deliveries \
         ORDER BY received",
        params![],
    )?
    .map(|row| {
        Ok::<_, db::DbError>((
            row.int("sequence")?,
            row.text("event_type")?,
            row.text("subject")?,
            row.text("event_id")?,
            row.text("data")?,
        ))
    })?;
    let mut ids: Vec<&str> = items.iter().map(|(_, _, _, id, _)| id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    ok(&json!({
        "deliveries": items.len(),
        "distinct": ids.len(),
        "items": items
            .iter()
            .map(|(sequence, event_type, subject, _, data)| json!({
                "sequence": sequence, "event_type": event_type, "subject": subject,
                "data": serde_json::from_str::<serde_json::Value>(data).unwrap_or_default(),
            }))
            .collect::<Vec<_>>(),
    }))
}

fn emit(ctx: &Context) -> Result<Response> {
    let verb = ctx.query("verb").unwrap_or("x");
    souk_sdk::events::emit(
        &format!("event_counter.{verb}"),
        "test",
        &json!({ "verb": verb }),
    )?;
    ok(&json!({ "emitted": format!("event_counter.{verb}") }))
}

fn emit_then_trap(_ctx: &Context) -> Result<Response> {
    souk_sdk::events::emit("event_counter.x", "test", &json!({ "doomed": true }))?;
    panic!("deliberate trap after emitting an event");
}

fn emit_foreign(_ctx: &Context) -> Result<Response> {
    match souk_sdk::wit::events::emit("sale.completed", "forged", r#"{"sale":{}}"#) {
        Ok(()) => ok(&json!({ "emitted": "sale.completed" })),
        Err(refusal) => json(403, &json!({ "refused": refusal })),
    }
}

fn refuse(_ctx: &Context) -> Result<Response> {
    set_refusing(true)
}

fn accept(_ctx: &Context) -> Result<Response> {
    set_refusing(false)
}

fn set_refusing(on: bool) -> Result<Response> {
    db::execute(
        "DELETE FROM event_counter_settings WHERE name = $1",
        params!["refuse"],
    )?;
    if on {
        db::execute(
            "INSERT INTO event_counter_settings (name, value) VALUES ($1, $2)",
            params!["refuse", "yes"],
        )?;
    }
    ok(&json!({ "refusing": on }))
}

impl handler::Guest for Component {
    fn handle(req: Request) -> std::result::Result<Response, Error> {
        router().handle(req)
    }
}

impl event_handler::Guest for Component {
    fn handle(event: event_handler::Event) -> std::result::Result<(), Error> {
        let refusing = db::query_opt(
            "SELECT value FROM event_counter_settings WHERE name = $1",
            params!["refuse"],
        )?
        .is_some();
        if refusing {
            return Err(Error::unavailable("refusing deliveries, as a test asked"));
        }
        let data = if event.event_type == "event_counter.echo" {
            match souk_sdk::wit::events::emit("event_counter.echoed", "test", "{}") {
                Ok(()) => json!({ "echo": "emitted" }).to_string(),
                Err(refusal) => json!({ "echo": "refused", "reason": refusal }).to_string(),
            }
        } else {
            event.data.clone()
        };
        db::execute(
            "INSERT INTO event_counter_deliveries (received, event_id, sequence, event_type, subject, data) \
             VALUES ((SELECT COALESCE(MAX(received), 0) + 1 FROM event_counter_deliveries), $1, $2, $3, $4, $5)",
            params![
                &event.id,
                i64::try_from(event.sequence).unwrap_or(i64::MAX),
                &event.event_type,
                &event.subject,
                &data
            ],
        )?;
        Ok(())
    }
}

impl manifest::Guest for Component {
    fn describe() -> manifest::Descriptor {
        manifest::Descriptor {
            name: "event_counter".into(),
            version: "0.0.1".into(),
            routes: vec!["/api/v1/event_counter".into()],
            migrations: souk_sdk::migrations![manifest::Migration;
                (1, "create_deliveries", MIGRATION),
            ],
            openapi: r#"{"paths":{}}"#.into(),
        }
    }
}
