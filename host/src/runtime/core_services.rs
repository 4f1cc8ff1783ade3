//! The core services, declared once. The host names them here and nowhere
//! else; everything else it knows about them is read from
//! `wit/worlds.wit` at build time (each core service's world has its name):
//! the imports its world declares are its grant, and the interfaces its
//! world exports are how other components (and the host) reach it, so a
//! version without one of them never replaces a working one.
//!
//! Core services are trusted code the host ships with: they cannot be
//! unloaded, their grants cannot be changed at run time, and they load
//! before every extension.

/// One world of the WIT package: the interfaces (with functions) it imports
/// and exports beyond what every `service` world does, as
/// `souk:platform/<name>` without a version.
#[derive(Debug)]
struct World {
    name: &'static str,
    imports: &'static [&'static str],
    exports: &'static [&'static str],
}

include!(concat!(env!("OUT_DIR"), "/worlds.rs"));

/// The core services, in the order they load.
const CORE_SERVICES: &[&str] = &["customers", "inventory", "sales", "reviews"];

/// The world the host itself is bound to (see `crate::bindings`).
const HOST_WORLD: &str = "host";

fn world(name: &str) -> Option<&'static World> {
    WORLDS.iter().find(|world| world.name == name)
}

/// Is `component` a core service (which cannot be unloaded)?
pub fn is_core_service(component: &str) -> bool {
    CORE_SERVICES.contains(&component)
}

/// The names of the core services.
pub fn core_services() -> impl Iterator<Item = &'static str> {
    CORE_SERVICES.iter().copied()
}

/// What core service `component`'s world imports beyond the base set: its
/// grant. Empty for anything that is not a core service.
pub fn core_imports(component: &str) -> &'static [&'static str] {
    match world(component) {
        Some(world) if is_core_service(component) => world.imports,
        _ => &[],
    }
}

/// What core service `component`'s world exports beyond a handler and a
/// manifest. Empty for anything that is not a core service.
pub fn core_exports(component: &str) -> &'static [&'static str] {
    match world(component) {
        Some(world) if is_core_service(component) => world.exports,
        _ => &[],
    }
}

/// The core service that exports `interface` (e.g.
/// `souk:platform/inventory-api`), the only component that may serve it;
/// `None` (and then nobody serves it) for anything no core world exports.
pub fn owner_of(interface: &str) -> Option<&'static str> {
    core_services().find(|name| core_exports(name).contains(&interface))
}

/// The service interfaces: those the host both imports (it implements them
/// for callers) and exports (it calls the owning core service). An operator
/// may grant these to extensions; nothing else beyond the base set.
pub fn service_interfaces() -> impl Iterator<Item = &'static str> {
    let host = world(HOST_WORLD);
    let imports = host.map_or(&[][..], |world| world.imports);
    let exports = host.map_or(&[][..], |world| world.exports);
    imports
        .iter()
        .copied()
        .filter(move |interface| exports.contains(interface))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_service_has_a_world_and_serves_something() {
        for name in core_services() {
            assert!(world(name).is_some(), "no world `{name}` in wit/worlds.wit");
            assert!(!core_exports(name).is_empty(), "{name} exports nothing");
        }
        assert!(world(HOST_WORLD).is_some());
    }

    #[test]
    fn grants_and_owners_come_from_the_worlds() {
        assert_eq!(
            core_imports("customers"),
            ["souk:platform/credentials", "souk:platform/tokens"]
        );
        assert_eq!(
            core_imports("sales"),
            [
                "souk:platform/customers-api",
                "souk:platform/wallet",
                "souk:platform/inventory-api"
            ]
        );
        assert!(core_imports("inventory").is_empty());
        // An extension's world grants nothing by being named like one.
        assert!(core_imports("wishlist").is_empty());
        assert_eq!(owner_of("souk:platform/wallet"), Some("customers"));
        assert_eq!(owner_of("souk:platform/accounts"), Some("customers"));
        assert_eq!(owner_of("souk:platform/sales-api"), Some("sales"));
        assert_eq!(owner_of("souk:platform/tokens"), None);
    }

    #[test]
    fn service_interfaces_are_what_core_services_serve_to_others() {
        let services: Vec<_> = service_interfaces().collect();
        assert_eq!(
            services,
            [
                "souk:platform/customers-api",
                "souk:platform/wallet",
                "souk:platform/inventory-api",
                "souk:platform/sales-api",
                "souk:platform/reviews-api"
            ]
        );
        // The host alone calls `accounts`; no component may import it.
        assert!(!services.contains(&"souk:platform/accounts"));
        for interface in services {
            assert!(owner_of(interface).is_some(), "{interface} has no owner");
        }
    }
}
