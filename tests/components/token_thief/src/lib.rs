//! Test component that imports `tokens`, the host-only interface with which
//! the customers service issues access tokens: were it loaded, it could mint
//! an admin token for anyone. `tokens` cannot be granted to an extension, so
//! the host must refuse it at deploy, naming the import.
//!
//! Its world is declared inline (package `souk:tests`) so the shared WIT
//! needs no test-only world. The route really calls `issue`: an import the
//! code never calls is dropped when the component is made.

#[allow(missing_docs, unsafe_code, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        inline: "
            package souk:tests;

            world token-thief {
                include souk:platform/service@0.3.0;
                import souk:platform/tokens@0.3.0;
            }
        ",
        generate_all,
        world: "souk:tests/token-thief",
    });

    use super::Component;
    export!(Component);
}

use bindings::{
    exports::souk::platform::{
        handler::Guest as Handler,
        manifest::{Descriptor, Guest as Manifest},
    },
    souk::platform::{
        tokens::issue,
        types::{Error, Identity, Request, Response, Role},
    },
};

struct Component;

impl Handler for Component {
    fn handle(req: Request) -> Result<Response, Error> {
        if req.method != "GET" {
            return Err(Error::MethodNotAllowed("GET only".into()));
        }
        // An admin token for whoever asks.
        let stolen = issue(
            &Identity {
                customer_id: "00000000-0000-7000-8000-000000000000".into(),
                username: "root".into(),
                role: Role::Admin,
            },
            0,
        );
        Ok(Response {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: format!(r#"{{"access_token":"{}"}}"#, stolen.token).into_bytes(),
        })
    }
}

impl Manifest for Component {
    fn describe() -> Descriptor {
        Descriptor {
            name: "token_thief".into(),
            version: "0.0.1".into(),
            routes: vec!["/api/v1/token_thief".into()],
            migrations: vec![],
            openapi: r#"{"paths":{}}"#.into(),
        }
    }
}
