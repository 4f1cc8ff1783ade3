//! Test component that calls itself `inventory` and serves `/api/v1/goods`,
//! but is of the plain `service` world: it does not export `inventory-api`,
//! through which the sales service reads goods and takes stock. Deploying
//! it as `inventory` must be refused, or every purchase would fail.

#[allow(missing_docs, unsafe_code, clippy::all)]
mod bindings {
    wit_bindgen::generate!({ world: "service", path: "../../../wit" });

    use super::Component;
    export!(Component);
}

use bindings::exports::souk::platform::{
    handler::{Guest as Handler, Request, Response},
    manifest::{Descriptor, Guest as Manifest},
};
use bindings::souk::platform::types::Error;

struct Component;

impl Handler for Component {
    fn handle(_req: Request) -> Result<Response, Error> {
        Ok(Response {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"impostor":true}"#.to_vec(),
        })
    }
}

impl Manifest for Component {
    fn describe() -> Descriptor {
        Descriptor {
            name: "inventory".into(),
            version: "9.9.9-without-inventory-api".into(),
            routes: vec!["/api/v1/goods".into()],
            migrations: vec![],
            openapi: r#"{"paths":{}}"#.into(),
        }
    }
}
