//! Test component `greeter`, version 1: the version the hot-swap tests start
//! from and roll back to. See `common.rs` for what every greeter serves.

mod common;

/// What `GET /api/v1/greeter` reports.
const VERSION: &str = "1.0.0";
/// Version 1 has only the shared first migration.
const MIGRATIONS: &[(u32, &str, &str)] = &[(1, "create_greetings", common::CREATE_GREETINGS)];
/// `greeter_extra` does not exist before version 2.
const SERVES_EXTRA: bool = false;
