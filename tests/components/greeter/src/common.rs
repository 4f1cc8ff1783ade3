//! The body every greeter test component shares (`greeter`, `greeter_v2`,
//! `greeter_bad_migration`, `greeter_refused_migration`). Each crate's
//! `lib.rs` sets its `VERSION`, `MIGRATIONS` and `SERVES_EXTRA` and includes
//! this file, so the versions differ only where a test needs them to.
//!
//! All of them call themselves `greeter` and serve `/api/v1/greeter`:
//! `GET /api/v1/greeter` answers `{"component": "greeter", "version": V}`
//! without touching the database, so the hot-swap test can tell which
//! version answered each request; `GET /api/v1/greeter/extra` (versions
//! that set `SERVES_EXTRA`) counts the rows of `greeter_extra`, the table
//! only version 2's migration creates.

#[allow(missing_docs, unsafe_code, clippy::all)]
mod bindings {
    wit_bindgen::generate!({ world: "service", path: "../../../wit" });

    // Inside this module, so the allow above covers the generated exports.
    use super::Greeter;
    export!(Greeter);
}

use bindings::{
    exports::souk::platform::{
        handler::Guest as Handler,
        manifest::{Descriptor, Guest as Manifest, Migration},
    },
    souk::platform::{
        db::{self, Value},
        types::{Error, Request, Response},
    },
};

/// Migration 1 of every greeter. The text must be identical in every
/// version: the host refuses a version whose applied migration changed.
pub const CREATE_GREETINGS: &str =
    "CREATE TABLE greeter_greetings (id TEXT PRIMARY KEY, greeting TEXT NOT NULL)";

struct Greeter;

impl Handler for Greeter {
    fn handle(req: Request) -> Result<Response, Error> {
        let path = req.path.strip_prefix("/api/v1/greeter").unwrap_or("?");
        match (req.method.as_str(), path) {
            ("GET", "" | "/") => Ok(json(format!(
                r#"{{"component":"greeter","version":"{}"}}"#,
                super::VERSION
            ))),
            ("GET", "/extra") if super::SERVES_EXTRA => {
                let rows = db::query(
                    "SELECT CAST(count(*) AS BIGINT) AS n FROM greeter_extra",
                    &[],
                )
                .map_err(|e| Error::Internal(format!("{e:?}")))?;
                match rows.rows.first().and_then(|row| row.first()) {
                    Some(Value::Integer(n)) => Ok(json(format!(r#"{{"rows":{n}}}"#))),
                    other => Err(Error::Internal(format!("unexpected count {other:?}"))),
                }
            }
            _ => Err(Error::NotFound(format!(
                "greeter {} has no route {} {}",
                super::VERSION,
                req.method,
                req.path
            ))),
        }
    }
}

fn json(body: String) -> Response {
    Response {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.into_bytes(),
    }
}

impl Manifest for Greeter {
    fn describe() -> Descriptor {
        Descriptor {
            name: "greeter".into(),
            version: super::VERSION.into(),
            routes: vec!["/api/v1/greeter".into()],
            migrations: super::MIGRATIONS
                .iter()
                .map(|(version, name, sql)| Migration {
                    version: *version,
                    name: (*name).into(),
                    sql: (*sql).into(),
                    overrides: vec![],
                })
                .collect(),
            openapi: r#"{"paths":{}}"#.into(),
        }
    }
}
