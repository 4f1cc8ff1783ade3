//! Test component `greeter`, version 2 (crate `greeter_v2`): deployed over
//! version 1 with `PUT /admin/components/greeter`. It adds a migration that
//! creates `greeter_extra` and a route that counts its rows, so a test can
//! see that no earlier, failed deploy left that table behind.

#[path = "../../greeter/src/common.rs"]
mod common;

/// What `GET /api/v1/greeter` reports.
const VERSION: &str = "2.0.0";
/// The shared first migration, then the table only version 2 has.
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "create_greetings", common::CREATE_GREETINGS),
    (
        2,
        "create_extra",
        "CREATE TABLE greeter_extra (id TEXT PRIMARY KEY)",
    ),
];
/// `GET /api/v1/greeter/extra` counts the rows of `greeter_extra`.
const SERVES_EXTRA: bool = true;
