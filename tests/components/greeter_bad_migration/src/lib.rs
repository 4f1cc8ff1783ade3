//! Test component `greeter` (crate `greeter_bad_migration`) whose second
//! migration passes the host's check but fails half-way when run: it creates
//! `greeter_extra`, inserts a row, then inserts the same key again. A deploy
//! of it must be refused with the reason and leave nothing behind: no
//! table, no row, no recorded migration, no deployment.

#[path = "../../greeter/src/common.rs"]
mod common;

/// What `GET /api/v1/greeter` would report, were it ever served.
const VERSION: &str = "3.0.0-bad-migration";
/// The shared first migration, then one that fails on its third statement.
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "create_greetings", common::CREATE_GREETINGS),
    (
        2,
        "create_extra_then_fail",
        "CREATE TABLE greeter_extra (id TEXT PRIMARY KEY);\n\
         INSERT INTO greeter_extra (id) VALUES ('half-applied');\n\
         INSERT INTO greeter_extra (id) VALUES ('half-applied')",
    ),
];
/// Would count `greeter_extra`'s rows.
const SERVES_EXTRA: bool = true;
