//! The registry of loaded components: each name maps to its current
//! version, swapped atomically. A request takes the current version once
//! (`Arc`) and finishes on it even if a newer one is swapped in meanwhile.

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
};

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;
use wasmtime::component::InstancePre;

use super::{core_services::core_exports, policy::Grant, state::StoreState};
use crate::{
    bindings::{
        accounts, event_handler, handler,
        manifest::Descriptor,
        service_exports::{customers_api, inventory_api, reviews_api, sales_api, wallet},
    },
    storage::{
        Dialect,
        sql_check::{StatementCache, StatementKind},
    },
};

/// A compiled, checked, ready-to-instantiate version of a component.
pub struct LoadedComponent {
    /// Name from its manifest; also the owner name of its tables.
    pub name: String,
    /// Version from its manifest.
    pub version: String,
    /// SHA-256 of the component's bytes (hex).
    pub sha256: String,
    /// Its self-description (routes, migrations, OpenAPI fragment).
    pub descriptor: Descriptor,
    /// Linked and type-checked: instantiating is just allocation.
    pub pre: InstancePre<StoreState>,
    /// Export lookups for `handler`, resolved once at load.
    pub handler: handler::GuestIndices,
    /// Export lookups for the service interfaces it exports (used only on
    /// the core service that owns each interface).
    pub services: ServiceExports,
    /// Export lookups for `event-handler`, if it subscribes to events.
    pub event_handler: Option<event_handler::GuestIndices>,
    /// What its running instances may do.
    pub access: Arc<Access>,
    /// Bounds the instances running at once.
    pub slots: Arc<Semaphore>,
    /// When this version was loaded (RFC 3339).
    pub loaded_at: String,
}

impl LoadedComponent {
    /// The same version under another grant (changed at run time): new
    /// calls get its limits and may use only its imports; calls already
    /// running finish under the old one.
    pub fn with_grant(&self, grant: Grant) -> Self {
        let slots = if grant.limits.max_concurrency == self.access.grant.limits.max_concurrency {
            self.slots.clone()
        } else {
            Arc::new(Semaphore::new(grant.limits.max_concurrency))
        };
        Self {
            name: self.name.clone(),
            version: self.version.clone(),
            sha256: self.sha256.clone(),
            descriptor: self.descriptor.clone(),
            pre: self.pre.clone(),
            handler: self.handler.clone(),
            services: self.services.clone(),
            event_handler: self.event_handler.clone(),
            access: Arc::new(Access {
                name: self.name.clone(),
                grant,
                owned_tables: self.access.owned_tables.clone(),
                statements: StatementCache::default(),
            }),
            slots,
            loaded_at: self.loaded_at.clone(),
        }
    }
}

impl std::fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// Export lookups for the interfaces a component may serve. The host calls
/// an interface only on the core service whose world exports it
/// ([`owner_of`](super::core_services::owner_of)), resolving the current version at call time: a component
/// that merely exports `accounts` vouches for no one.
#[derive(Clone, Default)]
pub struct ServiceExports {
    /// `accounts`: who a token's subject is, and bootstrapping admins.
    pub accounts: Option<accounts::GuestIndices>,
    /// `customers-api`.
    pub customers: Option<customers_api::GuestIndices>,
    /// `wallet`.
    pub wallet: Option<wallet::GuestIndices>,
    /// `inventory-api`.
    pub inventory: Option<inventory_api::GuestIndices>,
    /// `sales-api`.
    pub sales: Option<sales_api::GuestIndices>,
    /// `reviews-api`.
    pub reviews: Option<reviews_api::GuestIndices>,
}

impl ServiceExports {
    /// Look up every service interface `pre` exports.
    pub fn find(pre: &InstancePre<StoreState>) -> Self {
        Self {
            accounts: accounts::GuestIndices::new(pre).ok(),
            customers: customers_api::GuestIndices::new(pre).ok(),
            wallet: wallet::GuestIndices::new(pre).ok(),
            inventory: inventory_api::GuestIndices::new(pre).ok(),
            sales: sales_api::GuestIndices::new(pre).ok(),
            reviews: reviews_api::GuestIndices::new(pre).ok(),
        }
    }

    /// Does the component export `interface` (`souk:platform/<name>`)?
    fn exports(&self, interface: &str) -> bool {
        match interface {
            interfaces::ACCOUNTS => self.accounts.is_some(),
            interfaces::CUSTOMERS_API => self.customers.is_some(),
            interfaces::WALLET => self.wallet.is_some(),
            interfaces::INVENTORY_API => self.inventory.is_some(),
            interfaces::SALES_API => self.sales.is_some(),
            interfaces::REVIEWS_API => self.reviews.is_some(),
            _ => false,
        }
    }

    /// An interface core service `name`'s world exports that this version
    /// does not. Others reach a core service only through those, so a
    /// version without one must never replace a working one.
    pub fn missing_for(&self, name: &str) -> Option<&'static str> {
        core_exports(name)
            .iter()
            .copied()
            .find(|interface| !self.exports(interface))
    }
}

/// The WIT names of the interfaces behind the [`ServiceExports`] fields, as
/// grants, worlds and [`owner_of`](super::core_services::owner_of) spell
/// them.
pub mod interfaces {
    /// Who a token's subject is (the host's own question).
    pub const ACCOUNTS: &str = "souk:platform/accounts";
    /// Customer lookups.
    pub const CUSTOMERS_API: &str = "souk:platform/customers-api";
    /// Moving money.
    pub const WALLET: &str = "souk:platform/wallet";
    /// Goods and stock.
    pub const INVENTORY_API: &str = "souk:platform/inventory-api";
    /// Purchase facts.
    pub const SALES_API: &str = "souk:platform/sales-api";
    /// Rating facts.
    pub const REVIEWS_API: &str = "souk:platform/reviews-api";
}

/// What a running instance of a component may do: the part of a loaded
/// component that every store of it carries.
#[derive(Debug)]
pub struct Access {
    /// Component name, for checks and logs.
    pub name: String,
    /// What it may import, and its limits.
    pub grant: Grant,
    /// Tables its migrations created (lower case): all it may touch.
    pub owned_tables: HashSet<String>,
    /// Statement verdicts, keyed by SQL text.
    pub statements: StatementCache,
}

impl Access {
    /// Check one statement of this component: `Err` carries the reason.
    pub fn check_statement(&self, dialect: Dialect, sql: &str) -> Result<StatementKind, String> {
        self.statements
            .check(dialect, sql, &self.owned_tables)
            .map_err(|refusal| refusal.to_string())
    }
}

/// Current versions by name, plus the route table derived from them.
#[derive(Default)]
pub struct Registry {
    current: ArcSwap<Snapshot>,
}

/// An immutable view of the registry at one moment.
#[derive(Default)]
pub struct Snapshot {
    components: BTreeMap<String, Arc<LoadedComponent>>,
    /// `(prefix, component)`, longest prefix first.
    routes: Vec<(String, String)>,
}

impl Registry {
    /// The registry as it is now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Make `component` the current version of its name.
    pub fn install(&self, component: Arc<LoadedComponent>) {
        self.current.rcu(|current| {
            let mut components = current.components.clone();
            components.insert(component.name.clone(), component.clone());
            Snapshot::new(components)
        });
    }
}

impl Registry {
    /// Stop routing to `name`; calls already running finish.
    pub fn remove(&self, name: &str) {
        self.current.rcu(|current| {
            let mut components = current.components.clone();
            components.remove(name);
            Snapshot::new(components)
        });
    }
}

impl Snapshot {
    fn new(components: BTreeMap<String, Arc<LoadedComponent>>) -> Self {
        let mut routes: Vec<(String, String)> = components
            .values()
            .flat_map(|c| {
                c.descriptor
                    .routes
                    .iter()
                    .map(|prefix| (prefix.trim_end_matches('/').to_owned(), c.name.clone()))
            })
            .collect();
        routes.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Self { components, routes }
    }

    /// The current version of `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<LoadedComponent>> {
        self.components.get(name)
    }

    /// Every loaded component, by name.
    pub fn components(&self) -> impl Iterator<Item = &Arc<LoadedComponent>> {
        self.components.values()
    }

    /// The component serving `path`: the longest declared prefix that
    /// matches whole path segments.
    pub fn route(&self, path: &str) -> Option<&Arc<LoadedComponent>> {
        self.routes
            .iter()
            .find(|(prefix, _)| prefix_matches(prefix, path))
            .and_then(|(_, name)| self.components.get(name))
    }

    /// A prefix of another component that `prefix`, claimed by `claimant`,
    /// would overlap: route ownership is a tree with one owner per subtree,
    /// so a claim may neither equal, contain nor sit inside another
    /// component's prefix (else the longest match would let an extension
    /// shadow `/api/v1/auth/login` under customers' `/api/v1/auth`).
    pub fn overlapping_route(&self, claimant: &str, prefix: &str) -> Option<(&str, &str)> {
        let prefix = prefix.trim_end_matches('/');
        self.routes
            .iter()
            .filter(|(_, owner)| owner != claimant)
            .find(|(other, _)| prefix_matches(other, prefix) || prefix_matches(prefix, other))
            .map(|(other, owner)| (other.as_str(), owner.as_str()))
    }
}

/// `/api/v1/customers` matches `/api/v1/customers` and `/api/v1/customers/x`
/// but not `/api/v1/customersx`.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments_only() {
        assert!(prefix_matches("/api/v1/customers", "/api/v1/customers"));
        assert!(prefix_matches(
            "/api/v1/customers",
            "/api/v1/customers/alice"
        ));
        assert!(!prefix_matches("/api/v1/customers", "/api/v1/customersx"));
        assert!(!prefix_matches("/api/v1/customers", "/api/v1"));
    }

    #[test]
    fn route_claims_overlap_when_one_contains_the_other() {
        let routes = [
            ("/api/v1/auth", "customers"),
            ("/api/v1/customers", "customers"),
        ];
        let snapshot = Snapshot {
            components: BTreeMap::new(),
            routes: routes
                .iter()
                .map(|(p, o)| ((*p).to_owned(), (*o).to_owned()))
                .collect(),
        };
        for claim in [
            "/api/v1/auth/login",
            "/api/v1/auth",
            "/api/v1/auth/",
            "/api/v1",
        ] {
            assert_eq!(
                snapshot.overlapping_route("shadow", claim).map(|(_, o)| o),
                Some("customers"),
                "{claim}"
            );
        }
        for claim in ["/api/v1/authx", "/api/v1/wishlist", "/api/v1/customers_x"] {
            assert_eq!(snapshot.overlapping_route("shadow", claim), None, "{claim}");
        }
        // A component's own new version may keep (or nest) its prefixes.
        assert_eq!(
            snapshot.overlapping_route("customers", "/api/v1/auth/x"),
            None
        );
    }
}
