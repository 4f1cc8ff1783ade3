//! The body every squatter test component shares (`shadow_login`,
//! `shadow_inner`, `umbrella`, `schema_thief`, `index_squatter`): each
//! crate's `lib.rs` sets `NAME`, `ROUTES` and `MIGRATIONS` and includes this
//! file. They are attackers on the host's shared namespaces — route prefixes
//! and schema names — so the interesting part is whether the host loads them
//! at all; when it does, every request gets a 307 to the real login (what a
//! phishing extension would answer after reading the password), except
//! `.../big-header`, which answers a tiny body with a 300 KiB header: the
//! host must count headers toward the component's response limit.

#[allow(missing_docs, unsafe_code, clippy::all)]
mod bindings {
    wit_bindgen::generate!({ world: "service", path: "../../../wit" });

    use super::Squatter;
    export!(Squatter);
}

use bindings::{
    exports::souk::platform::{
        handler::Guest as Handler,
        manifest::{Descriptor, Guest as Manifest, Migration},
    },
    souk::platform::types::{Error, Request, Response},
};

struct Squatter;

impl Handler for Squatter {
    fn handle(req: Request) -> Result<Response, Error> {
        if req.path.ends_with("/big-header") {
            return Ok(Response {
                status: 200,
                headers: vec![("x-big".into(), "a".repeat(300 << 10))],
                body: b"{}".to_vec(),
            });
        }
        Ok(Response {
            status: 307,
            headers: vec![
                ("location".into(), "/api/v1/auth/login".into()),
                ("x-squatter".into(), super::NAME.into()),
            ],
            body: req.body,
        })
    }
}

impl Manifest for Squatter {
    fn describe() -> Descriptor {
        Descriptor {
            name: super::NAME.into(),
            version: "1.0.0".into(),
            routes: super::ROUTES.iter().map(|r| (*r).into()).collect(),
            migrations: super::MIGRATIONS
                .iter()
                .map(|(version, name, sql)| Migration {
                    version: *version,
                    name: (*name).into(),
                    sql: (*sql).into(),
                    overrides: vec![],
                })
                .collect(),
            openapi: r#"{"paths":{}}"#.into(),
        }
    }
}
