//! What each component may link and how much it may use: capability grants
//! and resource limits. Deny by default: a component imports only WASI's
//! minimal context (clocks, random, and stdio that goes nowhere), `types`,
//! `log` and `db`, plus what its grant adds. An import outside its grant
//! fails at load, naming the import, never at run time.

use std::time::Duration;

/// Host interfaces a component may import without a grant.
const BASE_IMPORTS: &[&str] = &[
    "souk:platform/types",
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
    /// The built-in grant for `component`: core services get what their
    /// worlds need and generous limits; anything else is an extension and
    /// gets the base set and strict limits.
    pub fn builtin(component: &str) -> Self {
        let imports: &[&str] = match component {
            "customers" => &["souk:platform/credentials", "souk:platform/tokens"],
            "sales" => &[CUSTOMERS_API, INVENTORY_API],
            "reviews" => &[INVENTORY_API, SALES_API],
            "wishlist" => &[INVENTORY_API],
            "recommendations" => &[INVENTORY_API, SALES_API, REVIEWS_API],
            _ => &[],
        };
        let limits = if CORE_SERVICES.contains(&component) {
            Limits {
                memory_bytes: 128 << 20,
                deadline: Duration::from_secs(5),
                max_concurrency: 128,
            }
        } else {
            Limits {
                memory_bytes: 32 << 20,
                deadline: Duration::from_millis(250),
                max_concurrency: 16,
            }
        };
        Self {
            imports: imports.iter().map(|s| (*s).to_owned()).collect(),
            limits,
        }
    }

    /// Is the import named `import` (e.g. `souk:platform/db@0.1.0`) allowed?
    pub fn allows(&self, import: &str) -> bool {
        let unversioned = import.split('@').next().unwrap_or(import);
        WASI_IMPORTS.iter().any(|p| unversioned.starts_with(p))
            || BASE_IMPORTS.contains(&unversioned)
            || self.imports.iter().any(|g| g == unversioned)
    }
}

/// Is `component` a core service (which cannot be unloaded)?
pub fn is_core_service(component: &str) -> bool {
    CORE_SERVICES.contains(&component)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_get_only_the_base_imports() {
        let grant = Grant::builtin("wishlist");
        assert!(grant.allows("souk:platform/db@0.1.0"));
        assert!(grant.allows("wasi:random/random@0.2.6"));
        assert!(!grant.allows("souk:platform/tokens@0.1.0"));
        assert!(!grant.allows("souk:platform/credentials@0.1.0"));
        assert!(!grant.allows("wasi:sockets/tcp@0.2.6"));
        assert!(!grant.allows("wasi:http/outgoing-handler@0.2.6"));
    }

    #[test]
    fn customers_may_issue_tokens_and_hash_passwords() {
        let grant = Grant::builtin("customers");
        assert!(grant.allows("souk:platform/tokens@0.1.0"));
        assert!(grant.allows("souk:platform/credentials@0.1.0"));
    }

    #[test]
    fn extensions_have_stricter_limits_than_core_services() {
        let core = Grant::builtin("sales").limits;
        let extension = Grant::builtin("wishlist").limits;
        assert!(extension.memory_bytes < core.memory_bytes);
        assert!(extension.deadline < core.deadline);
    }
}
