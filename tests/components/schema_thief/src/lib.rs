//! Test component `thief` (crate `schema_thief`): its first migration
//! creates a table of its own, its second drops `customers_username_lower`,
//! the unique index that keeps usernames unique. The host must refuse the
//! load and apply neither migration.

#[path = "../../shadow_login/src/common.rs"]
mod common;

const NAME: &str = "thief";
const ROUTES: &[&str] = &["/api/v1/thief"];
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "own_table",
        "CREATE TABLE thief_loot (id TEXT PRIMARY KEY)",
    ),
    (
        2,
        "drop_unique_usernames",
        "DROP INDEX customers_username_lower",
    ),
];
