//! The events the customers service emits (the catalogue in
//! `host/src/events.rs` documents each payload), always after the change
//! succeeded and inside the same request, so an event exists exactly when
//! its change committed. The subject is always the customer's id.
//!
//! A payload never carries a password or its hash: a new password shows as
//! `"password": "changed"`.

use serde::Serialize;
use serde_json::{Map, Value, json};
use souk_sdk::{Cents, Result, events::emit};

use crate::store::Customer;

/// Profile fields whose changes `customer.updated` reports, as the API
/// names them.
const PROFILE_FIELDS: [&str; 6] = [
    "full_name",
    "age",
    "address",
    "gender",
    "marital_status",
    "role",
];

/// `customer.registered`.
pub fn registered(customer: &Customer) -> Result<()> {
    emit(
        "customer.registered",
        &customer.id,
        &json!({ "username": customer.username, "role": customer.role }),
    )
}

/// `customer.updated`, when anything changed: each changed profile field
/// `{before, after}`, and `"password": "changed"` for a new password.
pub fn updated(before: &Customer, after: &Customer, new_password: bool) -> Result<()> {
    let changes = changes(before, after, new_password);
    if changes.is_empty() {
        return Ok(());
    }
    emit(
        "customer.updated",
        &after.id,
        &json!({ "username": after.username, "changes": changes }),
    )
}

/// The changed fields between two versions of a customer.
fn changes(before: &Customer, after: &Customer, new_password: bool) -> Map<String, Value> {
    let (old, new) = (as_object(before), as_object(after));
    let mut changes = Map::new();
    for field in PROFILE_FIELDS {
        let (was, is) = (
            old.get(field).cloned().unwrap_or(Value::Null),
            new.get(field).cloned().unwrap_or(Value::Null),
        );
        if was != is {
            changes.insert(field.to_owned(), json!({ "before": was, "after": is }));
        }
    }
    if new_password {
        changes.insert("password".to_owned(), json!("changed"));
    }
    changes
}

fn as_object(value: &impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    }
}

/// `customer.deleted`, with the balance the customer left behind.
pub fn deleted(customer: &Customer, forfeited: Cents) -> Result<()> {
    emit(
        "customer.deleted",
        &customer.id,
        &json!({ "username": customer.username, "forfeited_balance": forfeited }),
    )
}

/// `wallet.charged`: `amount` added, leaving `after`.
pub fn charged(customer_id: &str, username: &str, amount: Cents, after: Cents) -> Result<()> {
    emit(
        "wallet.charged",
        customer_id,
        &json!({
            "username": username,
            "amount": amount,
            "balance_before": Cents(after.0 - amount.0),
            "balance_after": after,
        }),
    )
}

/// `wallet.deducted`: `amount` taken (a deduction, or a purchase through
/// `wallet.debit`), leaving `after`.
pub fn deducted(customer_id: &str, username: &str, amount: Cents, after: Cents) -> Result<()> {
    emit(
        "wallet.deducted",
        customer_id,
        &json!({
            "username": username,
            "amount": amount,
            "balance_before": Cents(after.0 + amount.0),
            "balance_after": after,
        }),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use souk_sdk::Role;

    fn customer() -> Customer {
        Customer {
            id: "c1".into(),
            username: "ada".into(),
            full_name: "Ada".into(),
            age: Some(36),
            address: Some("1 Main St".into()),
            gender: "female".into(),
            marital_status: "single".into(),
            wallet_balance: Cents(1250),
            role: Role::Customer,
            created_at: "2026-11-21T10:00:00Z".into(),
            updated_at: "2026-11-21T10:00:00Z".into(),
        }
    }

    #[test]
    fn only_changed_fields_are_reported_and_never_a_password() {
        let before = customer();
        let mut after = customer();
        after.full_name = "Ada L.".into();
        after.role = Role::Admin;
        after.wallet_balance = Cents(0);
        after.updated_at = "2026-11-22T10:00:00Z".into();
        let reported = Value::Object(changes(&before, &after, true));
        assert_eq!(
            reported,
            json!({
                "full_name": {"before": "Ada", "after": "Ada L."},
                "role": {"before": "customer", "after": "admin"},
                "password": "changed",
            })
        );
        assert!(changes(&before, &customer(), false).is_empty());
    }

    #[test]
    fn a_cleared_field_shows_as_null() {
        let before = customer();
        let mut after = customer();
        after.age = None;
        assert_eq!(
            Value::Object(changes(&before, &after, false)),
            json!({"age": {"before": 36, "after": null}})
        );
    }
}
