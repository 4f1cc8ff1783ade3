//! Souk: an e-commerce backend whose business services run as WebAssembly
//! components inside this host.
//!
//! The host owns everything that must be trusted — the network edge,
//! authentication, the database connection and transactions, limits, and
//! the lifecycle of components. Components own their business rules and
//! their own tables, and reach nothing else.
//!
//! # Layout
//!
//! - [`config`]: command line and settings (`SOUK_*` variables).
//! - [`startup`]: the one place the application is wired together.
//! - [`http`]: router, request ids, problem+json, dispatch to components;
//!   [`paths`]: the canonical spelling of request methods and paths.
//! - [`runtime`]: wasmtime engine, component registry, calls and limits.
//! - [`capabilities`]: the host interfaces components import (db, log, ...).
//! - [`storage`]: pool, unit of work, migrations, the statement check.
//! - [`auth`]: access tokens; [`login_guard`]: throttling password guesses.
//! - [`bindings`]: the Rust side of `wit/`, generated once.
//! - [`webhooks`]: committed events POSTed, signed, to admins' endpoints;
//!   [`nats`]: and published to NATS JetStream when configured.

pub mod auth;
pub mod bindings;
pub mod capabilities;
pub mod clock;
pub mod config;
pub mod events;
pub mod http;
pub mod login_guard;
pub mod nats;
pub mod paths;
pub mod runtime;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod webhooks;

pub use config::Settings;
pub use startup::Application;
