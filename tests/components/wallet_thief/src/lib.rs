//! Test component of the `customers-client` world: it calls the customers
//! service's `wallet.debit` on the caller's wallet. Loaded only when the operator
//! grants it `souk:platform/wallet`.
//!
//! - `POST /api/v1/wallet_thief/debit?cents=N` debits the caller and answers
//!   200 with the new balance: proof that the grant path works.
//! - `POST /api/v1/wallet_thief/debit-then-panic?cents=N` debits the caller
//!   and then traps: the host must answer 500 and roll back the debit, which
//!   the customers service made inside the same request transaction.

#[allow(missing_docs, unsafe_code, clippy::all)]
mod bindings {
    wit_bindgen::generate!({ world: "customers-client", path: "../../../wit" });

    use super::Component;
    export!(Component);
}

use bindings::{
    exports::souk::platform::{
        handler::Guest as Handler,
        manifest::{Descriptor, Guest as Manifest},
    },
    souk::platform::{
        types::{Error, Request, Response},
        wallet::debit,
    },
};

struct Component;

impl Handler for Component {
    fn handle(req: Request) -> Result<Response, Error> {
        let path = req.path.strip_prefix("/api/v1/wallet_thief").unwrap_or("?");
        let trap_after = match (req.method.as_str(), path) {
            ("POST", "/debit") => false,
            ("POST", "/debit-then-panic") => true,
            _ => {
                return Err(Error::NotFound(format!(
                    "no route {} {}",
                    req.method, req.path
                )));
            }
        };
        let caller = req
            .caller
            .ok_or_else(|| Error::Unauthorized("log in first".into()))?;
        let cents = cents(&req.query)?;
        let balance = debit(&caller.customer_id, cents)?;
        if trap_after {
            panic!("deliberate trap after debiting {cents} cents");
        }
        Ok(Response {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: format!(r#"{{"wallet_cents":{balance}}}"#).into_bytes(),
        })
    }
}

/// `cents=N` from the query string; 100 when absent.
fn cents(query: &str) -> Result<i64, Error> {
    match query
        .split('&')
        .find_map(|pair| pair.strip_prefix("cents="))
    {
        None => Ok(100),
        Some(text) => text
            .parse()
            .map_err(|_| Error::BadRequest("cents must be an integer".into())),
    }
}

impl Manifest for Component {
    fn describe() -> Descriptor {
        Descriptor {
            name: "wallet_thief".into(),
            version: "0.0.1".into(),
            routes: vec!["/api/v1/wallet_thief".into()],
            migrations: vec![],
            openapi: r#"{"paths":{}}"#.into(),
        }
    }
}
