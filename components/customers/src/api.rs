//! The `customers-api` and `wallet` exports: what other services (through
//! the host, in the same request's transaction) may ask of customers. Amounts are cents;
//! the wallet never goes below zero because debits are one conditional
//! UPDATE. Moving money emits `wallet.deducted` / `wallet.charged` in the
//! caller's request, like the HTTP routes do.

use souk_sdk::{Cents, Error, log, now_rfc3339};

use crate::{bindings::souk::platform::service_types::CustomerSummary, events, store};

/// A customer by id.
pub fn get(customer_id: &str) -> Option<CustomerSummary> {
    lookup(store::find_by_id(customer_id), customer_id)
}

/// A customer by username, ignoring case.
pub fn find_by_username(username: &str) -> Option<CustomerSummary> {
    lookup(store::find_by_username(username), username)
}

/// Take `cents` from the wallet; the new balance.
pub fn debit(customer_id: &str, cents: i64) -> Result<i64, Error> {
    let amount = positive(cents)?;
    match store::debit(customer_id, amount, &now_rfc3339())? {
        Some(wallet) => {
            events::deducted(customer_id, &wallet.username, amount, wallet.balance)?;
            Ok(wallet.balance.0)
        }
        None if store::find_by_id(customer_id)?.is_none() => {
            Err(Error::not_found("no such customer"))
        }
        None => Err(Error::conflict(
            "insufficient-funds",
            format!("the wallet balance is less than the amount ({amount})"),
        )),
    }
}

/// Add `cents` to the wallet; the new balance.
pub fn credit(customer_id: &str, cents: i64) -> Result<i64, Error> {
    let amount = positive(cents)?;
    let wallet = store::credit(customer_id, amount, &now_rfc3339())?
        .ok_or_else(|| Error::not_found("no such customer"))?;
    events::charged(customer_id, &wallet.username, amount, wallet.balance)?;
    Ok(wallet.balance.0)
}

fn positive(cents: i64) -> Result<Cents, Error> {
    Cents(cents)
        .positive()
        .map_err(|e| Error::invalid("amount", e.to_string()))
}

fn lookup(
    found: Result<Option<store::Customer>, souk_sdk::db::DbError>,
    key: &str,
) -> Option<CustomerSummary> {
    match found {
        Ok(customer) => customer.map(|c| CustomerSummary {
            id: c.id,
            username: c.username,
            role: c.role,
            wallet_cents: c.wallet_balance.0,
        }),
        Err(error) => {
            // The interface has no error case: a failed lookup reads as
            // "absent", and the caller answers 404; the cause is logged.
            log::error!("customer lookup {key} failed: {error:?}");
            None
        }
    }
}
