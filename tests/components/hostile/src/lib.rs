//! A hostile test component. It deliberately bypasses the SDK and talks to
//! the raw bindings, trying what a malicious or buggy extension would:
//! reading and writing tables it does not own, smuggling a second statement,
//! PRAGMA/ATTACH, DDL, transaction control, and trapping after a write; it
//! also loops forever (`/spin`), eats memory (`/hog`, and `/bomb`: one
//! vector that doubles), keeps busy for a while (`/busy?ms=N`, for floods),
//! answers too much (`/big?kib=N`), emits far more and larger events than
//! a request may (`/event_flood`) and shows what the host forwarded to it
//! (`/request`). Under `/bounds/NAME` (any method; POST holds SQLite's write
//! lock) it sends statements that cost the host rather than the guest: NUL
//! in statement text and parameters, a parameter numbered 0, runaway
//! statements, string amplification and huge results. The black-box tests call
//! its routes and check that the host refuses every attempt and keeps
//! serving.

#[allow(missing_docs, unsafe_code, clippy::all)]
mod bindings {
    wit_bindgen::generate!({ world: "service", path: "../../../wit" });

    // Inside this module, so the allow above covers the generated exports.
    use super::Component;
    export!(Component);
}

use bindings::{
    exports::souk::platform::{
        handler::Guest as Handler,
        manifest::{Descriptor, Guest as Manifest, Migration},
    },
    souk::platform::{
        db::{self, DbError, Value},
        events,
        types::{Error, Request, Response, Role},
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
    ("quoted", "SELECT * FROM \"customers\""),
    ("quoted_mixed_case", "SELECT * FROM \"Customers\""),
    ("upper_case", "SELECT * FROM CUSTOMERS"),
    ("bracket_quoted", "SELECT * FROM [customers]"),
    ("backtick_quoted", "SELECT * FROM `customers`"),
    (
        "union",
        "SELECT id, body FROM hostile_notes UNION SELECT id, password_hash FROM customers",
    ),
    ("comma_join", "SELECT * FROM hostile_notes, customers"),
    (
        "derived_table",
        "SELECT * FROM (SELECT * FROM customers) AS c",
    ),
    (
        "exists",
        "SELECT 1 FROM hostile_notes WHERE EXISTS (SELECT 1 FROM customers)",
    ),
    (
        "order_by_subquery",
        "SELECT id FROM hostile_notes ORDER BY (SELECT count(*) FROM customers)",
    ),
    (
        "case_subquery",
        "SELECT CASE WHEN (SELECT count(*) FROM customers) > 0 THEN 1 END FROM hostile_notes",
    ),
    (
        "function_argument_subquery",
        "SELECT lower((SELECT password_hash FROM customers LIMIT 1))",
    ),
    (
        "values_subquery",
        "VALUES ((SELECT password_hash FROM customers LIMIT 1))",
    ),
    (
        "update_own_from_foreign",
        "UPDATE hostile_notes SET body = (SELECT password_hash FROM customers LIMIT 1)",
    ),
    (
        "delete_own_where_foreign",
        "DELETE FROM hostile_notes WHERE id IN (SELECT id FROM customers)",
    ),
    (
        "insert_foreign",
        "INSERT INTO customers (id, username) VALUES ('x', 'x')",
    ),
    (
        "replace_foreign",
        "REPLACE INTO customers (id, username) VALUES ('x', 'x')",
    ),
    (
        "returning_subquery",
        "INSERT INTO hostile_notes (id, body) VALUES ('r', 'r') \
         RETURNING (SELECT password_hash FROM customers LIMIT 1)",
    ),
    (
        "upsert_subquery",
        "INSERT INTO hostile_notes (id, body) VALUES ('u', 'u') ON CONFLICT (id) \
         DO UPDATE SET body = (SELECT password_hash FROM customers LIMIT 1)",
    ),
    (
        "writing_cte",
        "WITH gone AS (DELETE FROM customers RETURNING id) SELECT count(*) FROM gone",
    ),
    (
        "comment_smuggling",
        "SELECT id FROM hostile_notes -- harmless\n; DELETE FROM customers",
    ),
    (
        "nul_smuggling",
        "SELECT id FROM hostile_notes\0; DELETE FROM customers",
    ),
    (
        "pragma_function",
        "SELECT * FROM pragma_table_info('customers')",
    ),
    ("sqlite_schema", "SELECT sql FROM sqlite_schema"),
    ("temp_schema", "SELECT * FROM temp.sqlite_master"),
    (
        "information_schema",
        "SELECT * FROM information_schema.tables",
    ),
    ("pg_catalog", "SELECT * FROM pg_catalog.pg_tables"),
    ("pg_read_file", "SELECT pg_read_file('/etc/passwd')"),
    ("load_extension", "SELECT load_extension('/tmp/evil')"),
    ("set_config", "SELECT set_config('role', 'postgres', false)"),
    ("vacuum_into", "VACUUM INTO '/tmp/stolen.db'"),
    ("copy", "COPY customers TO STDOUT"),
    (
        "table_function_subquery",
        "SELECT * FROM json_each((SELECT password_hash FROM customers LIMIT 1))",
    ),
    ("migrations_table", "DELETE FROM souk_migrations"),
    (
        "ownership_table",
        "INSERT INTO souk_tables VALUES ('hostile', 'customers')",
    ),
    ("begin", "BEGIN"),
    ("commit", "COMMIT"),
    ("rollback", "ROLLBACK"),
    ("savepoint", "SAVEPOINT escape"),
];

/// Counts for ever (a recursive CTE without a stop), as one row at the end.
const RUNAWAY_CTE: &str = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) \
                           SELECT count(*) AS n FROM r";

/// Statements that cost the host, by name: the host must refuse each one
/// or stop it (at the deadline, at a size limit) and keep serving. `write`
/// statements go through `db::execute`, the rest through `db::query`.
struct BoundAttack {
    name: &'static str,
    sql: &'static str,
    params: fn() -> Vec<Value>,
    write: bool,
}

const fn bound(name: &'static str, sql: &'static str) -> BoundAttack {
    BoundAttack {
        name,
        sql,
        params: Vec::new,
        write: false,
    }
}

const BOUND_ATTACKS: &[BoundAttack] = &[
    // NUL in the statement text: sqlparser reads past it, SQLite stops at it.
    bound("nul_comment", "SELECT 1 -- \0"),
    bound("nul_block_comment", "SELECT 1 /* \0 */"),
    bound("nul_literal", "SELECT '\0' AS s"),
    bound("nul_identifier", "SELECT 1 AS \"a\0b\""),
    bound("nul_trailing", "SELECT count(*) AS n FROM hostile_notes\0"),
    // NUL in a text parameter.
    BoundAttack {
        name: "nul_param",
        sql: "SELECT $1 AS s",
        params: || vec![Value::Text("a\0b".into())],
        write: false,
    },
    BoundAttack {
        name: "nul_param_write",
        sql: "INSERT INTO hostile_notes (id, body) VALUES ($1, $2)",
        params: || vec![Value::Text("nul".into()), Value::Text("x\0y".into())],
        write: true,
    },
    // A parameter numbered 0: sqlx-sqlite looked its argument up at
    // index -1 and panicked on the connection's worker thread.
    BoundAttack {
        name: "zero_param",
        sql: "SELECT $0 AS z FROM hostile_notes",
        params: || vec![Value::Integer(1)],
        write: false,
    },
    BoundAttack {
        name: "zero_param_write",
        sql: "UPDATE hostile_notes SET body = $00 WHERE id = $1",
        params: || vec![Value::Text("x".into())],
        write: true,
    },
    // Runaway statements: only the host's deadline (or the client leaving)
    // can end them.
    bound("runaway_cte", RUNAWAY_CTE),
    bound(
        "runaway_cross_join",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000) \
         SELECT count(*) AS n FROM r a, r b",
    ),
    BoundAttack {
        name: "runaway_insert",
        sql: "INSERT INTO hostile_notes (id, body) \
              WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) \
              SELECT CAST(n AS TEXT), 'x' FROM r",
        params: Vec::new,
        write: true,
    },
    // String amplification with functions the checker allows; the results
    // are small, the values built on the way are not.
    bound(
        "nested_replace",
        "SELECT length(replace(replace(replace(replace(replace(replace(replace(replace(\
         replace(replace('x', 'x', 'xxxxxxxxxx'), 'x', 'xxxxxxxxxx'), 'x', 'xxxxxxxxxx'), \
         'x', 'xxxxxxxxxx'), 'x', 'xxxxxxxxxx'), 'x', 'xxxxxxxxxx'), 'x', 'xxxxxxxxxx'), \
         'x', 'xxxxxxxxxx'), 'x', 'xxxxxxxxxx'), 'x', 'xxxxxxxxxx')) AS n",
    ),
    bound(
        "concat_doubling",
        "WITH RECURSIVE r(n, s) AS (SELECT 1, 'xxxxxxxxxxxxxxxx' \
         UNION ALL SELECT n + 1, s || s FROM r WHERE n < 40) \
         SELECT max(length(s)) AS n FROM r",
    ),
    bound(
        "aggregate_value",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5000000) \
         SELECT length(group_concat('xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', '')) AS n FROM r",
    ),
    bound(
        // 1.6 GB: past PostgreSQL's 1 GB value limit, so the statement
        // fails on its own even on a machine fast enough to get there
        // before the deadline (5M rows, 160 MB, once finished in time).
        "aggregate_value_pg",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 50000000) \
         SELECT length(string_agg('xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', '')) AS n FROM r",
    ),
    // Results the host would have to hold: by rows, by bytes, one value.
    bound(
        "many_rows",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3000000) \
         SELECT n FROM r",
    ),
    bound(
        "many_bytes",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 100000) \
         SELECT n, replace(replace(replace('x', 'x', 'xxxxxxxxxx'), 'x', 'xxxxxxxxxx'), \
         'x', 'xxxxxxxxxx') AS s FROM r",
    ),
    bound(
        "huge_value",
        "SELECT replace(replace(replace(replace(replace(replace(replace('x', \
         'x', 'xxxxxxxxxx'), 'x', 'xxxxxxxxxx'), 'x', 'xxxxxxxxxx'), 'x', 'xxxxxxxxxx'), \
         'x', 'xxxxxxxxxx'), 'x', 'xxxxxxxxxx'), 'x', 'xxxxxxxxxx') AS s",
    ),
];

/// Runs the bound attack `name`. The answer is 503 when the host reports
/// the database unavailable (as a real component would answer), 200
/// otherwise; the body says what happened either way.
fn bound_attack(name: &str) -> Result<Response, Error> {
    let Some(attack) = BOUND_ATTACKS.iter().find(|a| a.name == name) else {
        return Err(Error::NotFound(format!("no bound attack {name}")));
    };
    let params = (attack.params)();
    let result = if attack.write {
        db::execute(attack.sql, &params).map(|changed| changed as usize)
    } else {
        db::query(attack.sql, &params).map(|rows| rows.rows.len())
    };
    let (status, outcome) = match result {
        Ok(rows) => (200, serde_json::json!({ "outcome": "ran", "rows": rows })),
        Err(DbError::Refused(reason)) => (
            200,
            serde_json::json!({ "outcome": "refused", "reason": reason }),
        ),
        Err(DbError::Unavailable(reason)) => (
            503,
            serde_json::json!({ "outcome": "unavailable", "reason": reason }),
        ),
        Err(other) => (
            200,
            serde_json::json!({ "outcome": "failed", "reason": format!("{other:?}") }),
        ),
    };
    Ok(json(status, outcome))
}

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
            (_, p) if p.starts_with("/bounds/") => bound_attack(&p["/bounds/".len()..]),
            // The same, after a write: on SQLite the attack then runs in
            // the request's write transaction, on the writer connection.
            (_, p) if p.starts_with("/bounds-after-write/") => {
                insert_note()?;
                bound_attack(&p["/bounds-after-write/".len()..])
            }
            ("POST", "/event_flood") => Ok(event_flood()),
            ("POST", "/notes") => {
                insert_note()?;
                Ok(json(201, serde_json::json!({ "inserted": 1 })))
            }
            // Writes, then answers a status no HTTP response may have
            // (`?status=99` or a 1xx): a bug the host must not commit.
            ("POST", "/notes-then-bad-status") => {
                insert_note()?;
                let status = query_number(&req.query, "status")
                    .and_then(|status| u16::try_from(status).ok())
                    .unwrap_or(99);
                Ok(json(status, serde_json::json!({ "inserted": 1 })))
            }
            ("POST", "/notes-then-trap") => {
                insert_note()?;
                panic!("deliberate trap after a write");
            }
            ("GET", "/request") => {
                let headers: Vec<_> = req.headers.iter().map(|(name, _)| name.clone()).collect();
                let caller = req.caller.as_ref().map(|caller| {
                    serde_json::json!({
                        "customer_id": caller.customer_id,
                        "username": caller.username,
                        "role": match caller.role {
                            Role::Customer => "customer",
                            Role::Admin => "admin",
                        },
                    })
                });
                Ok(json(
                    200,
                    serde_json::json!({
                        "headers": headers,
                        "caller": caller,
                        "request_id": req.request_id,
                    }),
                ))
            }
            ("GET", "/spin") => {
                // Never returns: only the host's deadline can stop it.
                let mut turns: u64 = 0;
                loop {
                    turns = std::hint::black_box(turns.wrapping_add(1));
                }
            }
            ("GET", "/hog") => {
                // Grows memory 1 MiB at a time until the host's cap stops it.
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![0xA5; 1 << 20]));
                    std::hint::black_box(&hoard);
                }
            }
            ("GET", "/busy") => {
                // Busy for `ms` milliseconds of wall time (150 by default),
                // holding one of the component's concurrency slots: the
                // flood test sends more of these at once than it has slots.
                let ms = query_number(&req.query, "ms").unwrap_or(150);
                let started = std::time::Instant::now();
                let mut turns: u64 = 0;
                while started.elapsed() < std::time::Duration::from_millis(ms) {
                    turns = std::hint::black_box(turns.wrapping_add(1));
                }
                Ok(json(200, serde_json::json!({ "busy_ms": ms })))
            }
            ("GET", "/bomb") => {
                // One vector that doubles until an allocation fails: unlike
                // `/hog`, the last request asks for a huge block at once.
                let mut bomb: Vec<u8> = vec![0x5A; 1 << 16];
                loop {
                    let more = bomb.len();
                    bomb.extend(std::iter::repeat_n(0x5A, more));
                    std::hint::black_box(&bomb);
                }
            }
            ("GET", "/big") => {
                // A response of `kib` KiB (1024 by default), to meet the
                // host's response size cap.
                let kib = query_number(&req.query, "kib").unwrap_or(1024);
                let size = usize::try_from(kib)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(1024);
                Ok(Response {
                    status: 200,
                    headers: vec![("content-type".into(), "text/plain".into())],
                    body: vec![b'x'; size],
                })
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

/// The unsigned number `name=N` in a query string, if present and valid.
fn query_number(query: &str, name: &str) -> Option<u64> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        if key == name {
            value.parse().ok()
        } else {
            None
        }
    })
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

/// Tries to emit 1,000 events of almost 16 KiB each (16 MiB the host
/// would hold until the commit) and answers how many the host took.
fn event_flood() -> Response {
    let data = serde_json::json!({ "pad": "x".repeat(16_000) }).to_string();
    let mut accepted = 0;
    let mut first_refusal = None;
    for _ in 0..1000 {
        match events::emit("hostile.flooded", "flood", &data) {
            Ok(()) => accepted += 1,
            Err(reason) => {
                first_refusal.get_or_insert(reason);
            }
        }
    }
    json(
        201,
        serde_json::json!({ "accepted": accepted, "refused": first_refusal }),
    )
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
