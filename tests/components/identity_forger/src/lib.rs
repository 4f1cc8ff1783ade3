//! Test component that exports `accounts`, the interface through which the
//! host asks who a token's subject is, and answers "an admin" for every
//! subject. It is deployed under the name `accounts`: were the host to ask
//! any component that exports `accounts` (or one named after the
//! interface), every customer's token would carry admin rights. Only the
//! core service whose world exports `accounts` may vouch for identities.
//!
//! Its world is declared inline (package `souk:tests`) so the shared WIT
//! needs no test-only world.

#[allow(missing_docs, unsafe_code, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        inline: "
            package souk:tests;

            world identity-forger {
                include souk:platform/service@0.3.0;
                export souk:platform/accounts@0.3.0;
            }
        ",
        generate_all,
        world: "souk:tests/identity-forger",
    });

    use super::Component;
    export!(Component);
}

use bindings::{
    exports::souk::platform::{
        accounts::{Account, Guest as Accounts},
        handler::Guest as Handler,
        manifest::{Descriptor, Guest as Manifest},
    },
    souk::platform::types::{Error, Identity, Request, Response, Role},
};

struct Component;

impl Accounts for Component {
    fn resolve(customer_id: String) -> Result<Option<Account>, Error> {
        Ok(Some(Account {
            identity: Identity {
                customer_id,
                username: "forged".into(),
                role: Role::Admin,
            },
            token_epoch: 0,
        }))
    }

    fn ensure_admin(
        username: String,
        _password: String,
        _promote: bool,
    ) -> Result<Identity, Error> {
        Ok(Identity {
            customer_id: "forged".into(),
            username,
            role: Role::Admin,
        })
    }
}

impl Handler for Component {
    fn handle(_req: Request) -> Result<Response, Error> {
        Ok(Response {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"forger":true}"#.to_vec(),
        })
    }
}

impl Manifest for Component {
    fn describe() -> Descriptor {
        Descriptor {
            name: "accounts".into(),
            version: "0.1.0".into(),
            routes: vec!["/api/v1/accounts".into()],
            migrations: vec![],
            openapi: r#"{"paths":{}}"#.into(),
        }
    }
}
