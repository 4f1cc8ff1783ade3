//! The `customers-api` and `wallet` exports: what other services (through
//! the host, in the same request's transaction) may ask of customers. Amounts are cents;
//! the wallet never goes below zero because debits are one conditional
//! UPDATE. Moving money emits `wallet.deducted` / `wallet.charged` in the
//! caller's request, like the HTTP routes do. A read that fails is an
//! error for the caller, never "absent".

use souk_sdk::{Cents, Error, now_rfc3339};

use crate::{
    bindings::souk::platform::service_types::CustomerSummary, events, http::INSUFFICIENT_FUNDS,
    store,
};

/// A customer by id.
pub fn get(customer_id: &str) -> Result<Option<CustomerSummary>, Error> {
    Ok(store::find_by_id(customer_id)?.map(summary))
}

/// A customer by username, ignoring case.
pub fn find_by_username(username: &str) -> Result<Option<CustomerSummary>, Error> {
    Ok(store::find_by_username(username)?.map(summary))
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
        None => Err(INSUFFICIENT_FUNDS.error(format!(
            "the wallet balance is less than the amount ({amount})"
        ))),
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

/// The record other services see.
fn summary(customer: store::Customer) -> CustomerSummary {
    CustomerSummary {
        id: customer.id,
        username: customer.username,
        role: customer.role,
        wallet_cents: customer.wallet_balance.0,
    }
}
