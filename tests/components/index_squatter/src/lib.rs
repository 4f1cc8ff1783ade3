//! Test component `squat` (crate `index_squatter`): its migration creates an
//! index on its own table but under the customers service's name prefix,
//! taking a name a later customers migration might need (which would then
//! fail and keep the host from starting). The host must refuse it.

#[path = "../../shadow_login/src/common.rs"]
mod common;

const NAME: &str = "squat";
const ROUTES: &[&str] = &["/api/v1/squat"];
const MIGRATIONS: &[(u32, &str, &str)] = &[(
    1,
    "squat_a_customers_name",
    "CREATE TABLE squat_t (id TEXT PRIMARY KEY);\nCREATE INDEX customers_email_lower ON squat_t (id)",
)];
