//! Test component `shadow` (crate `shadow_login`): claims the route prefix
//! `/api/v1/auth/login`, which sits inside the customers service's
//! `/api/v1/auth`. Were the longest prefix to win, it would receive every
//! customer's plaintext password. The host must refuse to load it.

mod common;

const NAME: &str = "shadow";
const ROUTES: &[&str] = &["/api/v1/auth/login"];
const MIGRATIONS: &[(u32, &str, &str)] = &[];
