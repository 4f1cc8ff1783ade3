//! Test component `greeter` (crate `greeter_refused_migration`) whose second
//! migration creates its own table and then deletes every customer. The
//! host's migration check must refuse it before running any of it.

#[path = "../../greeter/src/common.rs"]
mod common;

/// What `GET /api/v1/greeter` would report, were it ever served.
const VERSION: &str = "3.0.0-refused-migration";
/// The shared first migration, then one that reaches into `customers`.
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "create_greetings", common::CREATE_GREETINGS),
    (
        2,
        "create_extra_and_wipe_customers",
        "CREATE TABLE greeter_extra (id TEXT PRIMARY KEY);\nDELETE FROM customers",
    ),
];
/// Would count `greeter_extra`'s rows.
const SERVES_EXTRA: bool = true;
