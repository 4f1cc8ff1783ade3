//! A hostile test component. It deliberately bypasses the SDK and talks to
//! the raw bindings, trying what a malicious or buggy extension would:
//! reading and writing tables it does not own, smuggling a second statement,
//! PRAGMA/ATTACH, DDL, and trapping after a write. The black-box tests call
//! its routes and check that the host refuses every attempt and keeps
//! serving.

#[allow(missing_docs, unsafe_code, clippy::all)]
mod bindings {
    wit_bindgen::generate!({ world: "service", path: "../../../wit" });
}

use bindings::{
    exports::souk::platform::{
        handler::Guest as Handler,
        manifest::{Descriptor, Guest as Manifest, Migration},
    },
    souk::platform::{
        db::{self, DbError, Value},
        types::{Error, Request, Response},
    },
};

/// The attacks, by name: each is one statement the host must refuse.
const ATTACKS: &[(&str, &str)] = &[
    ("plain", "SELECT * FROM customers"),
    ("qualified", "SELECT * FROM main.customers"),
    ("qualified_public", "SELECT * FROM public.customers"),
    (
        "subquery",
        "SELECT id FROM hostile_notes WHERE id IN (SELECT id FROM customers)",
    ),
    (
        "scalar_subquery",
        "SELECT (SELECT password_hash FROM customers LIMIT 1) AS h FROM hostile_notes",
    ),
    ("cte", "WITH c AS (SELECT * FROM customers) SELECT * FROM c"),
    (
        "join",
        "SELECT n.id FROM hostile_notes n JOIN customers c ON c.id = n.id",
    ),
    (
        "two_statements",
        "SELECT id FROM hostile_notes; DELETE FROM customers",
    ),
    ("pragma", "PRAGMA table_info(customers)"),
    ("attach", "ATTACH DATABASE 'stolen.db' AS stolen"),
    (
        "write_foreign",
        "UPDATE customers SET wallet_cents = 100000000",
    ),
    ("delete_foreign", "DELETE FROM customers"),
    (
        "insert_select",
        "INSERT INTO hostile_notes (id, body) SELECT id, password_hash FROM customers",
    ),
    ("ddl", "DROP TABLE customers"),
    ("create", "CREATE TABLE hostile_extra (id TEXT)"),
    ("host_table", "SELECT * FROM souk_settings"),
    ("sqlite_master", "SELECT name FROM sqlite_master"),
    ("set_role", "SET ROLE postgres"),
    ("reset_role", "RESET ROLE"),
    (
        "function_read",
        "SELECT query_to_xml('select * from customers', true, true, '')",
    ),
];

struct Component;

impl Handler for Component {
    fn handle(req: Request) -> Result<Response, Error> {
        let path = req.path.trim_start_matches("/api/v1/hostile");
        match (req.method.as_str(), path) {
            ("GET", "/attacks") => {
                let names: Vec<_> = ATTACKS.iter().map(|(name, _)| *name).collect();
                Ok(json(200, serde_json::json!(names)))
            }
            ("GET", p) if p.starts_with("/attack/") => {
                let name = &p["/attack/".len()..];
                let Some((_, sql)) = ATTACKS.iter().find(|(n, _)| *n == name) else {
                    return Err(Error::NotFound(format!("no attack {name}")));
                };
                let outcome = match db::query(sql, &[]) {
                    Ok(rows) => serde_json::json!({ "outcome": "ran", "rows": rows.rows.len() }),
                    Err(DbError::Refused(reason)) => {
                        serde_json::json!({ "outcome": "refused", "reason": reason })
                    }
                    Err(other) => {
                        serde_json::json!({ "outcome": "failed", "reason": format!("{other:?}") })
                    }
                };
                Ok(json(200, outcome))
            }
            ("POST", "/notes") => {
                insert_note()?;
                Ok(json(201, serde_json::json!({ "inserted": 1 })))
            }
            ("POST", "/notes-then-trap") => {
                insert_note()?;
                panic!("deliberate trap after a write");
            }
            ("GET", "/notes") => {
                let rows = db::query("SELECT count(*) AS n FROM hostile_notes", &[])
                    .map_err(|e| Error::Internal(format!("{e:?}")))?;
                let count = match rows.rows.first().and_then(|r| r.first()) {
                    Some(Value::Integer(n)) => *n,
                    _ => -1,
                };
                Ok(json(200, serde_json::json!({ "count": count })))
            }
            _ => Err(Error::NotFound(format!(
                "no route {} {}",
                req.method, req.path
            ))),
        }
    }
}

fn insert_note() -> Result<(), Error> {
    let id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    db::execute(
        "INSERT INTO hostile_notes (id, body) VALUES ($1, $2)",
        &[Value::Text(id), Value::Text("note".into())],
    )
    .map(drop)
    .map_err(|e| Error::Internal(format!("{e:?}")))
}

fn json(status: u16, body: serde_json::Value) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

impl Manifest for Component {
    fn describe() -> Descriptor {
        Descriptor {
            name: "hostile".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            routes: vec!["/api/v1/hostile".into()],
            migrations: vec![Migration {
                version: 1,
                name: "create_notes".into(),
                sql: "CREATE TABLE hostile_notes (id TEXT PRIMARY KEY, body TEXT NOT NULL)".into(),
                overrides: vec![],
            }],
            openapi: r#"{"paths":{}}"#.into(),
        }
    }
}

bindings::export!(Component with_types_in bindings);
