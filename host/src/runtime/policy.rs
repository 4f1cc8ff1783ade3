//! What each component may link and how much it may use: capability grants
//! and resource limits. Deny by default: a component imports only WASI's
//! minimal context (clocks, random, and stdio that goes nowhere), `types`,
//! `log` and `db`, plus what its grant adds. An import outside its grant
//! fails at load, naming the import, never at run time.
//!
//! Core services get their grants out of the box. Extensions get what, in
//! order of precedence, an admin set at run time (`PUT /admin/grants/...`,
//! stored in the database, the same on every replica), the operator's
//! grants file says (`SOUK_GRANTS`, merged over the shipped defaults), or
//! the shipped `host/default-grants.json` says (the bundled wishlist and
//! recommendations extensions). A component none of them names gets the
//! base imports and the strict extension limits. The format, of the file
//! and of one component's grant in the admin API:
//!
//! ```json
//! { "wishlist": { "imports": ["souk:platform/inventory-api"],
//!                 "subscribe": ["customer.deleted", "good.deleted"],
//!                 "memory_mib": 32, "deadline_ms": 250,
//!                 "max_concurrency": 16, "max_response_kib": 256 } }
//! ```
//!
//! `subscribe` lists the event types (or `noun.*`) a component that exports
//! `event-handler` is delivered (see [`crate::runtime::subscribers`]): what
//! happened elsewhere in the shop is information too, so it is granted like
//! an import, never taken.

use std::{collections::BTreeMap, path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::config::GrantsSource;

use super::core_services::{core_imports, core_services, is_core_service, service_interfaces};

/// Host interfaces a component may import without a grant.
const BASE_IMPORTS: &[&str] = &[
    "souk:platform/types",
    "souk:platform/service-types",
    "souk:platform/log",
    "souk:platform/db",
    // Only the component's own event types (see `crate::events`).
    "souk:platform/events",
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
    /// Event types (or `noun.*`) delivered to its `event-handler` export.
    pub subscribe: Vec<String>,
    /// Resource limits.
    pub limits: Limits,
}

impl Grant {
    /// Is the import named `import` (e.g. `souk:platform/db@0.3.0`) allowed?
    pub fn allows(&self, import: &str) -> bool {
        let unversioned = import.split('@').next().unwrap_or(import);
        WASI_IMPORTS.iter().any(|p| unversioned.starts_with(p))
            || BASE_IMPORTS.contains(&unversioned)
            || self.imports.iter().any(|g| g == unversioned)
    }

    /// Is an event of `event_type` delivered to this component?
    pub fn subscribes_to(&self, event_type: &str) -> bool {
        self.subscribe
            .iter()
            .any(|pattern| crate::events::matches(pattern, event_type))
    }
}

/// One component's grant as an operator writes it: an entry of the grants
/// file, or the body of `PUT /admin/grants/{component}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrantSpec {
    /// Grantable interfaces, e.g. `souk:platform/inventory-api`.
    #[serde(default)]
    pub imports: Vec<String>,
    /// Event types, or `noun.*`, delivered to the component's
    /// `event-handler` export.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribe: Vec<String>,
    /// Memory cap of one instance, MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<usize>,
    /// Wall-clock budget of one call, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Instances running at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<usize>,
    /// Largest response (body and headers), KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_response_kib: Option<usize>,
}

/// What is wrong with one field of a [`GrantSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecProblem {
    /// The field, as the operator wrote it.
    pub field: &'static str,
    /// Why it was refused.
    pub message: String,
}

impl GrantSpec {
    /// The grant this spec gives `component`, or every problem with it.
    pub fn to_grant(&self, component: &str) -> Result<Grant, Vec<SpecProblem>> {
        let mut problems = Vec::new();
        for import in &self.imports {
            // Only the service interfaces; `wallet` moves money, and the
            // shipped grants give it to no extension.
            if !service_interfaces().any(|grantable| grantable == import) {
                let grantable: Vec<_> = service_interfaces().collect();
                problems.push(SpecProblem {
                    field: "imports",
                    message: format!(
                        "`{import}` is not a grantable interface (grantable: {})",
                        grantable.join(", ")
                    ),
                });
            }
        }
        for pattern in &self.subscribe {
            if !crate::events::is_subscription(pattern) {
                problems.push(SpecProblem {
                    field: "subscribe",
                    message: format!("`{pattern}` is not an event type (`noun.verb`) nor `noun.*`"),
                });
            }
        }
        if self.subscribe.len() > MAX_SUBSCRIPTIONS {
            problems.push(SpecProblem {
                field: "subscribe",
                message: format!("at most {MAX_SUBSCRIPTIONS} patterns"),
            });
        }
        let mut bounded = |field, value: Option<u64>, range: std::ops::RangeInclusive<u64>| {
            if value.is_some_and(|v| !range.contains(&v)) {
                problems.push(SpecProblem {
                    field,
                    message: format!("must be {} to {}", range.start(), range.end()),
                });
            }
        };
        let to_u64 = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        bounded(
            "memory_mib",
            self.memory_mib.map(to_u64),
            1..=to_u64(MAX_MEMORY_BYTES >> 20),
        );
        bounded("deadline_ms", self.deadline_ms, 1..=MAX_DEADLINE_MS);
        bounded(
            "max_concurrency",
            self.max_concurrency.map(to_u64),
            1..=MAX_CONCURRENCY,
        );
        bounded(
            "max_response_kib",
            self.max_response_kib.map(to_u64),
            1..=MAX_RESPONSE_KIB,
        );
        if !problems.is_empty() {
            return Err(problems);
        }
        let base = Grants::builtin(component);
        let limits = Limits {
            memory_bytes: self
                .memory_mib
                .map_or(base.limits.memory_bytes, |m| m << 20),
            deadline: self
                .deadline_ms
                .map_or(base.limits.deadline, Duration::from_millis),
            max_concurrency: self.max_concurrency.unwrap_or(base.limits.max_concurrency),
            max_response_bytes: self
                .max_response_kib
                .map_or(base.limits.max_response_bytes, |k| k << 10),
        };
        let mut imports = base.imports;
        imports.extend(self.imports.iter().cloned());
        let mut subscribe = base.subscribe;
        subscribe.extend(self.subscribe.iter().cloned());
        subscribe.sort();
        subscribe.dedup();
        Ok(Grant {
            imports,
            subscribe,
            limits,
        })
    }
}

/// Most subscription patterns one grant may list.
const MAX_SUBSCRIPTIONS: usize = 64;
/// Longest deadline a grant may set.
const MAX_DEADLINE_MS: u64 = 60_000;
/// Most instances a grant may let run at once.
const MAX_CONCURRENCY: u64 = 1024;
/// Largest response a grant may allow, KiB.
const MAX_RESPONSE_KIB: u64 = 64 << 10;

/// Where a component's grant comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantSource {
    /// Built into the host (core services, and extensions nobody named).
    Builtin,
    /// The shipped defaults or the operator's grants file.
    Configured,
    /// Set at run time through the admin API.
    Operator,
}

/// Every component's grant: built in for core services; for extensions
/// from the admin API, else the configured file over the shipped defaults.
#[derive(Debug)]
pub struct Grants {
    configured: BTreeMap<String, Grant>,
    /// Set at run time, stored in the database; swapped as a whole when an
    /// admin changes one (on any replica).
    operator: ArcSwap<BTreeMap<String, Grant>>,
}

impl Clone for Grants {
    fn clone(&self) -> Self {
        Self {
            configured: self.configured.clone(),
            operator: ArcSwap::new(self.operator.load_full()),
        }
    }
}

/// The grants shipped with Souk for its bundled extensions.
const DEFAULT_GRANTS: &str = include_str!("../../default-grants.json");

impl Grants {
    /// The grants `source` names (see [`GrantsSource`]).
    pub fn load(source: &GrantsSource) -> anyhow::Result<Self> {
        match source {
            GrantsSource::Shipped => Self::shipped(),
            GrantsSource::File(path) => Self::from_file(path),
            GrantsSource::Given(json) => Self::parse(json).context("invalid grants"),
        }
    }

    /// The shipped defaults.
    pub fn shipped() -> anyhow::Result<Self> {
        Self::parse(DEFAULT_GRANTS).context("the shipped default-grants.json is invalid")
    }

    /// The shipped defaults with an operator's file merged over them: a
    /// component the file names gets the file's grant, every other keeps
    /// its shipped one (a file never silently drops the bundled grants).
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the grants file {}", path.display()))?;
        let file = Self::parse(&text)
            .with_context(|| format!("invalid grants file {}", path.display()))?;
        let mut grants = Self::shipped()?;
        grants.configured.extend(file.configured);
        Ok(grants)
    }

    /// Parse the JSON format described in the module docs.
    pub fn parse(json: &str) -> anyhow::Result<Self> {
        let specs: BTreeMap<String, GrantSpec> = serde_json::from_str(json)?;
        let mut configured = BTreeMap::new();
        for (name, spec) in specs {
            let grant = spec.to_grant(&name).map_err(|problems| {
                let problems: Vec<String> = problems
                    .iter()
                    .map(|p| format!("{}: {}", p.field, p.message))
                    .collect();
                anyhow::anyhow!("`{name}`: {}", problems.join("; "))
            })?;
            configured.insert(name, grant);
        }
        Ok(Self {
            configured,
            operator: ArcSwap::default(),
        })
    }

    /// The grant of `component`.
    pub fn for_component(&self, component: &str) -> Grant {
        self.source_of(component).0
    }

    /// The grant of `component` and where it comes from. The admin API
    /// cannot change a core service's grant (only the operator's file may
    /// tune its limits), so no admin can cut the shop off from itself.
    pub fn source_of(&self, component: &str) -> (Grant, GrantSource) {
        if !is_core_service(component)
            && let Some(grant) = self.operator.load().get(component)
        {
            return (grant.clone(), GrantSource::Operator);
        }
        match self.configured.get(component) {
            Some(grant) => (grant.clone(), GrantSource::Configured),
            None => (Self::builtin(component), GrantSource::Builtin),
        }
    }

    /// Every component some grant names, core services included.
    pub fn named(&self) -> Vec<String> {
        let mut names: Vec<String> = core_services().map(str::to_owned).collect();
        names.extend(self.configured.keys().cloned());
        names.extend(self.operator.load().keys().cloned());
        names.sort();
        names.dedup();
        names
    }

    /// Replace the grants set at run time; whether anything changed.
    pub fn set_operator_grants(&self, grants: BTreeMap<String, Grant>) -> bool {
        if **self.operator.load() == grants {
            return false;
        }
        self.operator.store(Arc::new(grants));
        true
    }

    /// Add or replace one component's grant (tests, embedding).
    pub fn with(mut self, component: &str, grant: Grant) -> Self {
        self.configured.insert(component.to_owned(), grant);
        self
    }

    /// What a component gets without configuration: core services what
    /// their worlds import and generous limits; anything else the base
    /// imports and strict limits.
    pub fn builtin(component: &str) -> Grant {
        let imports = core_imports(component);
        let limits = if is_core_service(component) {
            Limits::CORE
        } else {
            Limits::EXTENSION
        };
        Grant {
            imports: imports.iter().map(|s| (*s).to_owned()).collect(),
            subscribe: Vec::new(),
            limits,
        }
    }
}

/// The largest memory cap a grant may set (the pooling allocator's slot).
pub const MAX_MEMORY_BYTES: usize = 512 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unconfigured_extensions_get_only_the_base_imports() {
        let grant = Grants::parse("{}")
            .unwrap_or_else(|e| panic!("{e}"))
            .for_component("wishlist");
        assert!(grant.allows("souk:platform/db@0.3.0"));
        assert!(grant.allows("souk:platform/service-types@0.3.0"));
        assert!(grant.allows("wasi:random/random@0.2.6"));
        assert!(!grant.allows("souk:platform/inventory-api@0.3.0"));
        assert!(!grant.allows("souk:platform/tokens@0.3.0"));
        assert!(!grant.allows("souk:platform/credentials@0.3.0"));
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
                .allows("souk:platform/inventory-api@0.3.0")
        );
        assert!(
            !grants
                .for_component("wishlist")
                .allows("souk:platform/sales-api@0.3.0")
        );
        assert!(
            grants
                .for_component("recommendations")
                .allows("souk:platform/reviews-api@0.3.0")
        );
    }

    #[test]
    fn core_services_keep_their_grants_and_limits() {
        let grants = Grants::parse("{}").unwrap_or_else(|e| panic!("{e}"));
        let customers = grants.for_component("customers");
        assert!(customers.allows("souk:platform/tokens@0.3.0"));
        assert_eq!(customers.limits, Limits::CORE);
        assert!(
            grants
                .for_component("sales")
                .allows("souk:platform/customers-api@0.3.0")
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
    fn operator_grants_win_over_configured_ones_but_never_over_core_services() {
        let grants = Grants::shipped().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(grants.source_of("wishlist").1, GrantSource::Configured);
        let revoked = GrantSpec::default()
            .to_grant("wishlist")
            .unwrap_or_else(|e| panic!("{e:?}"));
        let customers = GrantSpec::default()
            .to_grant("customers")
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(grants.set_operator_grants(BTreeMap::from([
            ("wishlist".to_owned(), revoked),
            ("customers".to_owned(), customers),
        ])));
        let (wishlist, source) = grants.source_of("wishlist");
        assert_eq!(source, GrantSource::Operator);
        assert!(!wishlist.allows("souk:platform/inventory-api@0.3.0"));
        assert!(
            grants
                .for_component("customers")
                .allows("souk:platform/tokens@0.3.0")
        );
        let same = grants.operator.load_full();
        assert!(!grants.set_operator_grants((*same).clone()));
    }

    #[test]
    fn a_spec_names_every_bad_field() {
        let spec = GrantSpec {
            imports: vec!["souk:platform/tokens".into(), "wasi:sockets/tcp".into()],
            subscribe: vec!["good.deleted".into(), "*".into(), "Good.Deleted".into()],
            memory_mib: Some(0),
            deadline_ms: Some(600_000),
            max_concurrency: Some(0),
            max_response_kib: Some(1 << 30),
        };
        let problems = spec.to_grant("x").err().unwrap_or_default();
        let fields: Vec<&str> = problems.iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "imports",
                "imports",
                "subscribe",
                "subscribe",
                "memory_mib",
                "deadline_ms",
                "max_concurrency",
                "max_response_kib"
            ]
        );
    }

    #[test]
    fn the_shipped_wishlist_hears_of_deleted_customers_and_goods_only() {
        let grants = Grants::shipped().unwrap_or_else(|e| panic!("{e}"));
        let wishlist = grants.for_component("wishlist");
        assert!(wishlist.subscribes_to("customer.deleted"));
        assert!(wishlist.subscribes_to("good.deleted"));
        assert!(!wishlist.subscribes_to("sale.completed"));
        assert!(
            !grants
                .for_component("customers")
                .subscribes_to("good.deleted")
        );
        let nouns = Grants::parse(r#"{"x": {"subscribe": ["good.*"]}}"#)
            .unwrap_or_else(|e| panic!("{e}"))
            .for_component("x");
        assert!(nouns.subscribes_to("good.updated"));
        assert!(!nouns.subscribes_to("goods.updated"));
    }

    #[test]
    fn host_only_interfaces_cannot_be_granted() {
        for bad in [
            r#"{"x": {"imports": ["souk:platform/tokens"]}}"#,
            r#"{"x": {"imports": ["wasi:sockets/tcp"]}}"#,
            r#"{"x": {"typo": 1}}"#,
            r#"{"x": {"memory_mib": 100000}}"#,
            r#"{"x": {"max_concurrency": 0}}"#,
            r#"{"x": {"subscribe": ["everything"]}}"#,
            r#"{"x": {"subscribe": "good.deleted"}}"#,
        ] {
            assert!(Grants::parse(bad).is_err(), "{bad}");
        }
    }
}
