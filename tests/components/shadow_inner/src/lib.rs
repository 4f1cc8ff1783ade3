//! Test component `shadow` (crate `shadow_inner`): an extension with an
//! honest prefix of its own, `/api/v1/shadow/inner`, so that `umbrella` has
//! something to claim a path above.

#[path = "../../shadow_login/src/common.rs"]
mod common;

const NAME: &str = "shadow";
const ROUTES: &[&str] = &["/api/v1/shadow/inner"];
const MIGRATIONS: &[(u32, &str, &str)] = &[];
