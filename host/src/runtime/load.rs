//! Loading a component: compile, check its imports against its grant and its
//! exports against its world, read its manifest, apply its migrations. Only
//! a component that passes every step is returned; nothing is installed here,
//! so a failed load leaves the running version untouched.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::{
    CallError, Runtime,
    registry::{Access, LoadedComponent, ServiceExports},
};
use crate::{
    bindings::{event_handler, handler, manifest},
    storage::{migrations, sql_check::StatementCache},
};

/// Why a component was not loaded. Each message says exactly what was
/// wrong, for the operator who deployed it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The name is not a valid component name.
    #[error(
        "invalid component name `{0}`: use 2-32 of a-z, 0-9 and _, starting with a letter, not starting with `souk`"
    )]
    InvalidName(String),
    /// The name would share its schema prefix with another component's.
    #[error(
        "component name `{name}` is taken: `{other}`'s schema objects are named `{other}_...`, \
         so a component may not be named `{other}_...` nor be the prefix of another's name"
    )]
    NameClash {
        /// The name asked for.
        name: String,
        /// The component whose prefix it overlaps.
        other: String,
    },
    /// The name is a core event noun (its events would pass for core ones).
    #[error(
        "component name `{0}` is reserved: core services emit `{0}.*` events, and a component's own events are named after it"
    )]
    ReservedName(String),
    /// The database could not say which components exist.
    #[error("cannot check the component name: {0}")]
    Storage(String),
    /// The bytes are not a WebAssembly component this engine can compile.
    #[error("not a valid WebAssembly component: {0}")]
    NotAComponent(String),
    /// The component imports an interface it was not granted.
    #[error(
        "component `{component}` imports `{import}`, which it was not granted{}",
        if *.named { "; grant it with PUT /admin/grants/{component}" } else {
            "; no grant names this component (is the name right?): grant it with PUT /admin/grants/<name>"
        }
    )]
    UngrantedImport {
        /// Component name.
        component: String,
        /// The import, as the component names it.
        import: String,
        /// Whether any grant names the component (else the name may be a typo).
        named: bool,
    },
    /// The component lacks an export its world requires.
    #[error("component does not export what its world requires: {0}")]
    MissingExport(String),
    /// The manifest is inconsistent.
    #[error("invalid manifest: {0}")]
    Manifest(String),
    /// Reading the manifest failed (trap, deadline, ...).
    #[error("reading the manifest failed: {0}")]
    Describe(#[from] CallError),
    /// A migration was refused or failed.
    #[error("{0}")]
    Migration(String),
}

impl Runtime {
    /// Compile and check `bytes` as the component `name`, and apply its
    /// migrations. The result is ready to install.
    pub async fn load(&self, name: &str, bytes: &[u8]) -> Result<Arc<LoadedComponent>, LoadError> {
        validate_name(name)?;
        self.check_name_is_its_own(name).await?;
        let sha256 = hex::encode(Sha256::digest(bytes));
        let engine = self.engine.clone();
        let owned_bytes = bytes.to_vec();
        let cache_dir = self.cache_dir.clone();
        let key = sha256.clone();
        // Compilation takes tens to hundreds of milliseconds of CPU: keep it
        // off the async workers so serving continues meanwhile.
        let component = tokio::task::spawn_blocking(move || {
            super::cache::compile(&engine, cache_dir.as_deref(), &key, &owned_bytes)
        })
        .await
        .map_err(|e| LoadError::NotAComponent(format!("compilation panicked: {e}")))?
        .map_err(|e| LoadError::NotAComponent(format!("{e:#}")))?;

        let grant = self.grants.for_component(name);
        let component_type = component.component_type();
        for (import, _) in component_type.imports(&self.engine) {
            if !grant.allows(import) {
                return Err(LoadError::UngrantedImport {
                    component: name.to_owned(),
                    import: import.to_owned(),
                    named: self.grants.named().iter().any(|named| named == name),
                });
            }
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::NotAComponent(format!("cannot link: {e:#}")))?;
        let handler = handler::GuestIndices::new(&pre)
            .map_err(|e| LoadError::MissingExport(format!("{e:#}")))?;
        let manifest_indices = manifest::GuestIndices::new(&pre)
            .map_err(|e| LoadError::MissingExport(format!("{e:#}")))?;
        let services = ServiceExports::find(&pre);
        // Optional: a component that exports it is delivered the events
        // its grant subscribes it to (`super::subscribers`).
        let event_handler = event_handler::GuestIndices::new(&pre).ok();
        if let Some(missing) = services.missing_for(name) {
            return Err(LoadError::MissingExport(format!(
                "core service `{name}` must export `{missing}`"
            )));
        }
        let describe_access = Arc::new(Access {
            name: name.to_owned(),
            grant: grant.clone(),
            owned_tables: Default::default(),
            statements: StatementCache::default(),
        });
        let descriptor = self
            .describe(&pre, describe_access, &manifest_indices)
            .await?;
        self.validate_descriptor(name, &descriptor)?;

        let owned_tables = migrations::apply(&self.db, name, &descriptor.migrations)
            .await
            .map_err(|e| LoadError::Migration(format!("{e:#}")))?;
        let loaded = LoadedComponent {
            name: name.to_owned(),
            version: descriptor.version.clone(),
            sha256,
            descriptor,
            services,
            event_handler,
            pre,
            handler,
            slots: Arc::new(Semaphore::new(grant.limits.max_concurrency)),
            access: Arc::new(Access {
                name: name.to_owned(),
                grant,
                owned_tables,
                statements: StatementCache::default(),
            }),
            loaded_at: crate::clock::now_rfc3339(),
        };
        Ok(Arc::new(loaded))
    }

    /// Every table and index a component creates is named `<name>_...`, so
    /// two components own disjoint names only if neither name is the
    /// other's followed by `_` (`customers_username` could otherwise reach
    /// `customers_username_lower`, customers' unique index, or squat a name
    /// a later customers migration needs).
    async fn check_name_is_its_own(&self, name: &str) -> Result<(), LoadError> {
        let mut known = migrations::known_components(&self.db)
            .await
            .map_err(|e| LoadError::Storage(format!("{e:#}")))?;
        known.extend(
            self.registry
                .snapshot()
                .components()
                .map(|c| c.name.clone()),
        );
        known.extend(super::core_services::core_services().map(str::to_owned));
        if crate::events::reserved_nouns().any(|noun| noun == name) {
            return Err(LoadError::ReservedName(name.to_owned()));
        }
        match known.into_iter().find(|other| names_clash(name, other)) {
            Some(other) => Err(LoadError::NameClash {
                name: name.to_owned(),
                other,
            }),
            None => Ok(()),
        }
    }

    fn validate_descriptor(
        &self,
        name: &str,
        descriptor: &manifest::Descriptor,
    ) -> Result<(), LoadError> {
        if descriptor.name != name {
            return Err(LoadError::Manifest(format!(
                "the component calls itself `{}`, but was loaded as `{name}`",
                descriptor.name
            )));
        }
        if descriptor.version.trim().is_empty() {
            return Err(LoadError::Manifest("the version is empty".into()));
        }
        let snapshot = self.registry.snapshot();
        for route in &descriptor.routes {
            // Requests are routed on their canonical path, so a prefix in any
            // other spelling would never match what it seems to claim.
            let canonical = crate::paths::canonical_path(route).ok();
            if !route.starts_with("/api/v1/")
                || route.trim_end_matches('/') == "/api/v1"
                || canonical.as_deref() != Some(route.as_str())
                || route.contains(['?', '#'])
            {
                return Err(LoadError::Manifest(format!(
                    "route prefix `{route}` must be a canonical path under /api/v1/"
                )));
            }
            if let Some((other, owner)) = snapshot.overlapping_route(name, route) {
                return Err(LoadError::Manifest(format!(
                    "route prefix `{route}` overlaps `{other}`, which `{owner}` serves: \
                     a component may not claim a path inside or above another's"
                )));
            }
        }
        if descriptor.openapi.len() > MAX_OPENAPI_BYTES {
            return Err(LoadError::Manifest(format!(
                "the OpenAPI fragment is larger than {} KiB",
                MAX_OPENAPI_BYTES >> 10
            )));
        }
        let openapi: serde_json::Value = serde_json::from_str(&descriptor.openapi)
            .map_err(|e| LoadError::Manifest(format!("the OpenAPI fragment is not JSON: {e}")))?;
        if !openapi.is_object() {
            return Err(LoadError::Manifest(
                "the OpenAPI fragment must be a JSON object".into(),
            ));
        }
        Ok(())
    }
}

/// A component name: 2-32 of `a-z0-9_`, starting with a letter; `souk*` is
/// reserved for the host's own tables.
pub(super) fn validate_name(name: &str) -> Result<(), LoadError> {
    let valid = (2..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with("souk");
    if valid {
        Ok(())
    } else {
        Err(LoadError::InvalidName(name.to_owned()))
    }
}

/// Largest OpenAPI fragment a component may ship: it is merged into the
/// document every `GET /openapi.json` serves.
const MAX_OPENAPI_BYTES: usize = 256 << 10;

/// Would components `a` and `b` share a schema name prefix?
fn names_clash(a: &str, b: &str) -> bool {
    let extends = |long: &str, short: &str| {
        long.strip_prefix(short)
            .is_some_and(|rest| rest.starts_with('_'))
    };
    a != b && (extends(a, b) || extends(b, a))
}

#[cfg(test)]
mod tests {
    use super::{names_clash, validate_name};

    #[test]
    fn names_clash_when_one_extends_the_other_with_an_underscore() {
        assert!(names_clash("customers_username", "customers"));
        assert!(names_clash("customers", "customers_x"));
        assert!(!names_clash("customers", "customers"));
        assert!(!names_clash("customersx", "customers"));
        assert!(!names_clash("wish", "wishlist"));
        assert!(!names_clash("inventory", "inv"));
    }

    #[test]
    fn component_names_are_restricted() {
        for good in ["customers", "wishlist", "my_ext2"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "x", "Customers", "2fast", "souk_meta", "a-b", "a b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
