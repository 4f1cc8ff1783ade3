//! The component kit: what every Souk component has in common, written
//! once. [`component!`](crate::component) generates the bindings of the
//! component's world (its shared interfaces mapped to this crate's types),
//! the `Component` type and its `handler` and `manifest` exports;
//! [`conformance_tests!`](crate::conformance_tests) generates the tests
//! every component must pass (its manifest, its routes, its migrations, its
//! route declarations). The pure checks behind those tests live here, so
//! they are tested once.

use crate::Router;

/// What the conformance tests need of a component's manifest, whatever
/// bindings type it was built from.
#[derive(Debug)]
pub struct Manifest<'a> {
    /// `describe().name`.
    pub name: &'a str,
    /// Route prefixes the manifest claims.
    pub routes: &'a [String],
    /// `(version, sql)` of each migration, oldest first.
    pub migrations: Vec<(u32, &'a str)>,
    /// The OpenAPI fragment.
    pub openapi: &'a str,
}

/// Everything that keeps `manifest` (served by `router`) from conforming;
/// empty when it conforms: its prefixes and its fragment are not the
/// router's, its migrations are misnumbered or create objects named after
/// someone else, or its route declarations are incomplete (see
/// [`crate::openapi::declaration_problems`]).
pub fn conformance_problems(manifest: &Manifest<'_>, router: &Router) -> Vec<String> {
    let mut problems = Vec::new();
    if manifest.routes != router.prefixes().as_slice() {
        problems.push(format!(
            "the manifest claims {:?}, its routes are under {:?}: use `router().prefixes()`",
            manifest.routes,
            router.prefixes()
        ));
    }
    for route in router.routes_outside(manifest.routes) {
        problems.push(format!("route {route} is under no declared prefix"));
    }
    if manifest.openapi != router.openapi() {
        problems.push("the manifest's OpenAPI fragment is not `router().openapi()`".to_owned());
    }
    for (index, (version, sql)) in manifest.migrations.iter().enumerate() {
        if usize::try_from(*version).ok() != Some(index + 1) {
            problems.push(format!(
                "migration {} has version {version}: number them 1, 2, ...",
                index + 1
            ));
        }
        if sql.trim().is_empty() {
            problems.push(format!("migration {version} is empty"));
        }
        for object in created_objects(sql) {
            if !is_own_name(manifest.name, &object) {
                problems.push(format!(
                    "migration {version} creates `{object}`, not named `{}` or `{}_...`",
                    manifest.name, manifest.name
                ));
            }
        }
    }
    problems.extend(crate::openapi::declaration_problems(router));
    problems
}

/// The names of the tables and indexes `sql` creates (lower case).
fn created_objects(sql: &str) -> Vec<String> {
    let mut objects = Vec::new();
    let words: Vec<String> = sql
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut rest = words.as_slice();
    while let Some(at) = rest.iter().position(|word| word == "create") {
        let mut after = &rest[at + 1..];
        if after.first().is_some_and(|word| word == "unique") {
            after = &after[1..];
        }
        if after
            .first()
            .is_some_and(|word| word == "table" || word == "index")
        {
            after = &after[1..];
            if after.starts_with(&["if".into(), "not".into(), "exists".into()]) {
                after = &after[3..];
            }
            if let Some(name) = after.first() {
                objects.push(name.trim_matches('"').to_owned());
            }
        }
        rest = after;
    }
    objects
}

/// Is `object` one of `component`'s names (`component` or `component_...`)?
/// The host enforces the same rule at load.
fn is_own_name(component: &str, object: &str) -> bool {
    object == component
        || object
            .strip_prefix(component)
            .is_some_and(|rest| rest.starts_with('_'))
}

/// The bindings of a component's world and the exports every component has.
/// `router` is a function returning the component's [`Router`]; `describe`
/// one returning its `manifest::Descriptor` (whose `routes` and `openapi`
/// are the router's [`Router::prefixes`] and [`Router::openapi`]); `wit` the WIT package's
/// directory relative to the crate (default `../../wit`, a component of
/// this repository). `with` adds mappings for the
/// shared interfaces the world imports beyond the base four (for example
/// `credentials` and `tokens`). Other exports are implemented on
/// `Component` by the component itself:
///
/// ```ignore
/// souk_sdk::component! {
///     world: "inventory",
///     router: http::router,
///     describe: describe,
/// }
///
/// impl bindings::exports::souk::platform::inventory_api::Guest for Component { ... }
/// ```
///
/// The `souk:platform` version the components are built against is named
/// here and nowhere else in a component.
#[macro_export]
macro_rules! component {
    // In this repository, components live in `components/<name>/`.
    (
        world: $world:literal,
        router: $router:path,
        describe: $describe:path
        $(, with: { $($key:literal: $value:path),* $(,)? })?
        $(,)?
    ) => {
        $crate::component! {
            world: $world,
            wit: "../../wit",
            router: $router,
            describe: $describe
            $(, with: { $($key: $value),* })?
        }
    };
    (
        world: $world:literal,
        wit: $wit:literal,
        router: $router:path,
        describe: $describe:path
        $(, with: { $($key:literal: $value:path),* $(,)? })?
        $(,)?
    ) => {
        /// The generated bindings of this component's world. The shared
        /// interfaces are the SDK's, so requests, responses and errors are
        /// `souk_sdk` types.
        #[allow(
            unsafe_code,
            missing_docs,
            clippy::all,
            clippy::unwrap_used,
            clippy::expect_used
        )]
        pub(crate) mod bindings {
            ::wit_bindgen::generate!({
                world: $world,
                path: $wit,
                with: {
                    "souk:platform/types@0.3.0": souk_sdk::wit::types,
                    "souk:platform/log@0.3.0": souk_sdk::wit::log,
                    "souk:platform/db@0.3.0": souk_sdk::wit::db,
                    "souk:platform/events@0.3.0": souk_sdk::wit::events,
                    $($($key: $value,)*)?
                },
            });

            use super::Component;
            export!(Component);
        }

        /// The component: one type implementing every export.
        pub(crate) struct Component;

        impl bindings::exports::souk::platform::handler::Guest for Component {
            fn handle(
                request: $crate::Request,
            ) -> ::std::result::Result<$crate::Response, $crate::Error> {
                $router().handle(request)
            }
        }

        impl bindings::exports::souk::platform::manifest::Guest for Component {
            fn describe() -> bindings::exports::souk::platform::manifest::Descriptor {
                $describe()
            }
        }
    };
}

/// The tests every component must pass, generated into the calling crate:
/// its manifest names it (`name`), carries its crate's version, and claims
/// the prefixes and carries the OpenAPI fragment its router declares; its
/// migrations are numbered from one and create only objects named after
/// it; every route is documented (operation id, summary, answers, path
/// parameters) and every body field's rule agrees with its schema at the
/// edges the schema states.
///
/// ```ignore
/// #[cfg(test)]
/// souk_sdk::conformance_tests!(name: "inventory", router: http::router);
/// ```
///
/// It expects `describe()` in the crate root, as
/// [`component!`](crate::component) components have it.
#[macro_export]
macro_rules! conformance_tests {
    (
        name: $name:literal,
        router: $($router:ident)::+ $(,)?
    ) => {
        /// The component kit's conformance tests (`souk_sdk::conformance_tests!`).
        mod conformance {
            #[test]
            fn the_manifest_names_the_component_and_its_version() {
                let descriptor = super::describe();
                assert_eq!(descriptor.name, $name);
                assert_eq!(descriptor.version, env!("CARGO_PKG_VERSION"));
            }

            #[test]
            fn routes_migrations_and_openapi_conform() {
                let descriptor = super::describe();
                let manifest = $crate::kit::Manifest {
                    name: &descriptor.name,
                    routes: &descriptor.routes,
                    migrations: descriptor
                        .migrations
                        .iter()
                        .map(|migration| (migration.version, migration.sql.as_str()))
                        .collect(),
                    openapi: &descriptor.openapi,
                };
                let problems = $crate::kit::conformance_problems(&manifest, &super::$($router)::+());
                assert!(problems.is_empty(), "{problems:#?}");
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_objects_are_read_from_every_create_statement() {
        let sql = "CREATE TABLE shop_items (id TEXT);\n\
                   create unique index IF NOT EXISTS shop_items_key ON shop_items (id);\n\
                   CREATE INDEX \"other_x\" ON shop_items(id);\n\
                   INSERT INTO created (x) VALUES (1);";
        assert_eq!(
            created_objects(sql),
            ["shop_items", "shop_items_key", "other_x"]
        );
    }

    #[test]
    fn own_names_are_the_component_or_its_prefix_with_an_underscore() {
        assert!(is_own_name("customers", "customers"));
        assert!(is_own_name("customers", "customers_by_name"));
        assert!(!is_own_name("customers", "customersx"));
        assert!(!is_own_name("shop", "sales"));
    }

    #[test]
    fn a_foreign_table_and_a_gap_in_versions_are_named() {
        let routes = ["/api/v1/shop".to_owned()];
        let manifest = Manifest {
            name: "shop",
            routes: &routes,
            migrations: vec![
                (1, "CREATE TABLE shop_items (id TEXT)"),
                (3, "CREATE TABLE sales (id TEXT)"),
            ],
            openapi: r#"{"paths":{}}"#,
        };
        let problems = conformance_problems(&manifest, &Router::new("shop"));
        assert!(
            problems
                .iter()
                .any(|p| p.contains("migration 2 has version 3")),
            "{problems:#?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("creates `sales`")),
            "{problems:#?}"
        );
    }
}
