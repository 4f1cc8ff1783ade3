//! What each component may link and how much it may use: capability grants
//! and resource limits. Deny by default: a component imports only WASI's
//! minimal context (clocks, random, and stdio that goes nowhere), `types`,
//! `log` and `db`, plus what its grant adds. An import outside its grant
//! fails at load, naming the import, never at run time.
//!
//! Core services get their grants out of the box. Extensions get only what
//! the operator's grants file says (`SOUK_GRANTS`, JSON; without one, the
//! shipped `host/default-grants.json` grants the bundled wishlist and
//! recommendations extensions). A component the file does not name gets the
//! base imports and the strict extension limits. The file's format:
//!
//! ```json
//! { "wishlist": { "imports": ["souk:platform/inventory-api"],
//!                 "memory_mib": 32, "deadline_ms": 250,
//!                 "max_concurrency": 16, "max_response_kib": 256 } }
//! ```

use std::{collections::BTreeMap, path::Path, time::Duration};

use anyhow::Context;
use serde::Deserialize;

/// Host interfaces a component may import without a grant.
const BASE_IMPORTS: &[&str] = &[
    "souk:platform/types",
    "souk:platform/service-types",
    "souk:platform/log",
    "souk:platform/db",
];

/// WASI interfaces Rust's standard library links on wasm32-wasip2. The
/// store's WASI context has no preopens, environment, arguments or network,
/// so linking these grants nothing beyond clocks and randomness.
const WASI_IMPORTS: &[&str] = &[
    "wasi:io/",
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
];

const CUSTOMERS_API: &str = "souk:platform/customers-api";
/// Moving money: its own interface, so that a grant of customer lookups
/// never carries it.
const WALLET: &str = "souk:platform/wallet";
const INVENTORY_API: &str = "souk:platform/inventory-api";
const SALES_API: &str = "souk:platform/sales-api";
const REVIEWS_API: &str = "souk:platform/reviews-api";

/// Core services: trusted code the host ships with.
const CORE_SERVICES: &[&str] = &["customers", "inventory", "sales", "reviews"];

/// Resource limits applied to every call into a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory a single instance may grow to.
    pub memory_bytes: usize,
    /// Wall-clock budget of one call, enforced by epoch interruption.
    pub deadline: Duration,
    /// Instances of this component running at once; excess calls get 503.
    pub max_concurrency: usize,
    /// Largest response body the component may return.
    pub max_response_bytes: usize,
}

impl Limits {
    /// Generous limits for trusted core services.
    pub const CORE: Limits = Limits {
        memory_bytes: 128 << 20,
        deadline: Duration::from_secs(5),
        max_concurrency: 128,
        max_response_bytes: 4 << 20,
    };

    /// Strict defaults for extensions.
    pub const EXTENSION: Limits = Limits {
        memory_bytes: 32 << 20,
        deadline: Duration::from_millis(250),
        max_concurrency: 16,
        max_response_bytes: 256 << 10,
    };
}

/// A component's grant: extra imports and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Interfaces beyond the base set, e.g. `souk:platform/tokens`.
    pub imports: Vec<String>,
    /// Resource limits.
    pub limits: Limits,
}

impl Grant {
    /// Is the import named `import` (e.g. `souk:platform/db@0.2.0`) allowed?
    pub fn allows(&self, import: &str) -> bool {
        let unversioned = import.split('@').next().unwrap_or(import);
        WASI_IMPORTS.iter().any(|p| unversioned.starts_with(p))
            || BASE_IMPORTS.contains(&unversioned)
            || self.imports.iter().any(|g| g == unversioned)
    }
}

/// One entry of the grants file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantSpec {
    #[serde(default)]
    imports: Vec<String>,
    memory_mib: Option<usize>,
    deadline_ms: Option<u64>,
    max_concurrency: Option<usize>,
    max_response_kib: Option<usize>,
}

/// Every component's grant: built in for core services, from the
/// operator's file for extensions.
#[derive(Debug, Clone)]
pub struct Grants {
    configured: BTreeMap<String, Grant>,
}

/// The grants shipped with Souk for its bundled extensions.
const DEFAULT_GRANTS: &str = include_str!("../../default-grants.json");

impl Grants {
    /// The shipped defaults.
    pub fn shipped() -> anyhow::Result<Self> {
        Self::parse(DEFAULT_GRANTS).context("the shipped default-grants.json is invalid")
    }

    /// Grants from an operator's file (replacing the shipped defaults).
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the grants file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid grants file {}", path.display()))
    }

    /// Parse the JSON format described in the module docs.
    pub fn parse(json: &str) -> anyhow::Result<Self> {
        let specs: BTreeMap<String, GrantSpec> = serde_json::from_str(json)?;
        let mut configured = BTreeMap::new();
        for (name, spec) in specs {
            for import in &spec.imports {
                anyhow::ensure!(
                    GRANTABLE.contains(&import.as_str()),
                    "`{name}` is granted `{import}`, which is not a grantable interface \
                     (grantable: {})",
                    GRANTABLE.join(", ")
                );
            }
            let base = Self::builtin(&name);
            let limits = Limits {
                memory_bytes: spec
                    .memory_mib
                    .map_or(base.limits.memory_bytes, |m| m << 20),
                deadline: spec
                    .deadline_ms
                    .map_or(base.limits.deadline, Duration::from_millis),
                max_concurrency: spec.max_concurrency.unwrap_or(base.limits.max_concurrency),
                max_response_bytes: spec
                    .max_response_kib
                    .map_or(base.limits.max_response_bytes, |k| k << 10),
            };
            anyhow::ensure!(
                limits.memory_bytes <= MAX_MEMORY_BYTES && limits.max_concurrency >= 1,
                "`{name}`: memory_mib must be at most {} and max_concurrency at least 1",
                MAX_MEMORY_BYTES >> 20
            );
            let mut imports = base.imports;
            imports.extend(spec.imports);
            configured.insert(name, Grant { imports, limits });
        }
        Ok(Self { configured })
    }

    /// The grant of `component`.
    pub fn for_component(&self, component: &str) -> Grant {
        self.configured
            .get(component)
            .cloned()
            .unwrap_or_else(|| Self::builtin(component))
    }

    /// Add or replace one component's grant (tests, embedding).
    pub fn with(mut self, component: &str, grant: Grant) -> Self {
        self.configured.insert(component.to_owned(), grant);
        self
    }

    /// What a component gets without configuration: core services what
    /// their worlds need and generous limits; anything else the base
    /// imports and strict limits.
    fn builtin(component: &str) -> Grant {
        let imports: &[&str] = match component {
            "customers" => &["souk:platform/credentials", "souk:platform/tokens"],
            "sales" => &[CUSTOMERS_API, WALLET, INVENTORY_API],
            "reviews" => &[INVENTORY_API, SALES_API],
            _ => &[],
        };
        let limits = if is_core_service(component) {
            Limits::CORE
        } else {
            Limits::EXTENSION
        };
        Grant {
            imports: imports.iter().map(|s| (*s).to_owned()).collect(),
            limits,
        }
    }
}

/// The largest memory cap a grant may set (the pooling allocator's slot).
pub const MAX_MEMORY_BYTES: usize = 512 << 20;

/// Interfaces an operator may grant to an extension. `wallet` moves money:
/// the shipped grants give it to no extension.
const GRANTABLE: &[&str] = &[CUSTOMERS_API, WALLET, INVENTORY_API, SALES_API, REVIEWS_API];

/// Is `component` a core service (which cannot be unloaded)?
pub fn is_core_service(component: &str) -> bool {
    CORE_SERVICES.contains(&component)
}

/// The names of the core services.
pub fn core_services() -> impl Iterator<Item = &'static str> {
    CORE_SERVICES.iter().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unconfigured_extensions_get_only_the_base_imports() {
        let grant = Grants::parse("{}")
            .unwrap_or_else(|e| panic!("{e}"))
            .for_component("wishlist");
        assert!(grant.allows("souk:platform/db@0.2.0"));
        assert!(grant.allows("souk:platform/service-types@0.2.0"));
        assert!(grant.allows("wasi:random/random@0.2.6"));
        assert!(!grant.allows("souk:platform/inventory-api@0.2.0"));
        assert!(!grant.allows("souk:platform/tokens@0.2.0"));
        assert!(!grant.allows("souk:platform/credentials@0.2.0"));
        assert!(!grant.allows("wasi:sockets/tcp@0.2.6"));
        assert!(!grant.allows("wasi:http/outgoing-handler@0.2.6"));
        assert_eq!(grant.limits, Limits::EXTENSION);
    }

    #[test]
    fn the_shipped_file_grants_the_bundled_extensions() {
        let grants = Grants::shipped().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            grants
                .for_component("wishlist")
                .allows("souk:platform/inventory-api@0.2.0")
        );
        assert!(
            !grants
                .for_component("wishlist")
                .allows("souk:platform/sales-api@0.2.0")
        );
        assert!(
            grants
                .for_component("recommendations")
                .allows("souk:platform/reviews-api@0.2.0")
        );
    }

    #[test]
    fn core_services_keep_their_grants_and_limits() {
        let grants = Grants::parse("{}").unwrap_or_else(|e| panic!("{e}"));
        let customers = grants.for_component("customers");
        assert!(customers.allows("souk:platform/tokens@0.2.0"));
        assert_eq!(customers.limits, Limits::CORE);
        assert!(
            grants
                .for_component("sales")
                .allows("souk:platform/customers-api@0.2.0")
        );
    }

    #[test]
    fn the_file_sets_limits() {
        let grants =
            Grants::parse(r#"{"x": {"memory_mib": 8, "deadline_ms": 50, "max_concurrency": 2}}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        let limits = grants.for_component("x").limits;
        assert_eq!(limits.memory_bytes, 8 << 20);
        assert_eq!(limits.deadline, Duration::from_millis(50));
        assert_eq!(limits.max_concurrency, 2);
    }

    #[test]
    fn host_only_interfaces_cannot_be_granted() {
        for bad in [
            r#"{"x": {"imports": ["souk:platform/tokens"]}}"#,
            r#"{"x": {"imports": ["wasi:sockets/tcp"]}}"#,
            r#"{"x": {"typo": 1}}"#,
            r#"{"x": {"memory_mib": 100000}}"#,
        ] {
            assert!(Grants::parse(bad).is_err(), "{bad}");
        }
    }
}
