//! The black-box suite: every test spawns the real host with the real
//! components on a random port and a fresh database, and talks HTTP.
//!
//! Backend: SQLite (a temp file) by default; with `SOUK_TEST_BACKEND=postgres`
//! every test gets a fresh PostgreSQL database on `SOUK_TEST_POSTGRES_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod boundaries;
mod customers;
mod edge_errors;
mod events;
mod extensions;
mod grants;
mod health;
mod helpers;
mod hot_swap;
mod inventory;
mod lifecycle;
mod limits;
mod malformed_text;
mod openapi;
mod platform;
mod replicas;
mod reviews;
mod sales;
mod sandbox;
mod service_failures;
mod statement_bounds;
mod story;
mod webhooks;
