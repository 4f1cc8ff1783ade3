//! Test component of another world: it describes itself like a service but
//! exports no `handler`, so it cannot serve a request. The host must refuse
//! to deploy it, saying which export is missing.
//!
//! Its world is declared inline (package `souk:tests`) so the shared WIT
//! needs no test-only world.

#[allow(missing_docs, unsafe_code, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        inline: "
            package souk:tests;

            world not-a-service {
                import souk:platform/log@0.3.0;
                export souk:platform/manifest@0.3.0;
            }
        ",
        generate_all,
        world: "souk:tests/not-a-service",
    });

    use super::Component;
    export!(Component);
}

use bindings::{
    exports::souk::platform::manifest::{Descriptor, Guest as Manifest},
    souk::platform::log::{Level, log},
};

struct Component;

impl Manifest for Component {
    fn describe() -> Descriptor {
        log(Level::Info, "describing a component that serves nothing");
        Descriptor {
            name: "not_a_service".into(),
            version: "0.0.1".into(),
            routes: vec!["/api/v1/not_a_service".into()],
            migrations: vec![],
            openapi: r#"{"paths":{}}"#.into(),
        }
    }
}
