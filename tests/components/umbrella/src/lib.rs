//! Test component `umbrella`: claims `/api/v1/shadow`, which contains the
//! prefix `/api/v1/shadow/inner` another extension serves. The host must
//! refuse it: route ownership is a tree with one owner per subtree.

#[path = "../../shadow_login/src/common.rs"]
mod common;

const NAME: &str = "umbrella";
const ROUTES: &[&str] = &["/api/v1/shadow"];
const MIGRATIONS: &[(u32, &str, &str)] = &[];
