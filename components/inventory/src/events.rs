//! The events the inventory emits (the catalogue in `host/src/events.rs`
//! documents each payload), after the change succeeded and inside the same
//! request. The subject is always the good's id.
//!
//! Stock taken for a purchase (`inventory-api.take-stock`) or by an admin
//! (`/deduct`) is a `good.updated` with the `count` change like any other
//! edit, and a count that reaches 0 also says `stock.depleted`.

use serde_json::{Map, Value, json};
use souk_sdk::{Result, events::emit};

use crate::store::Good;

/// The fields of a good whose changes `good.updated` reports.
const FIELDS: [&str; 5] = ["name", "category", "price", "description", "count"];

/// `good.created`.
pub fn created(good: &Good) -> Result<()> {
    emit("good.created", &good.id, &json!({ "good": good }))
}

/// `good.updated` when anything changed, and `stock.depleted` when the
/// count went down to 0.
pub fn updated(before: &Good, after: &Good) -> Result<()> {
    let changes = changes(before, after);
    if !changes.is_empty() {
        emit(
            "good.updated",
            &after.id,
            &json!({ "name": after.name, "changes": changes }),
        )?;
    }
    if before.count > 0 && after.count == 0 {
        emit("stock.depleted", &after.id, &json!({ "name": after.name }))?;
    }
    Ok(())
}

/// After `units` were taken from stock, leaving `after`.
pub fn stock_taken(after: &Good, units: i64) -> Result<()> {
    let before = Good {
        count: after.count.saturating_add(units),
        ..after.clone()
    };
    updated(&before, after)
}

/// `good.deleted`, with the good as it was.
pub fn deleted(good: &Good) -> Result<()> {
    emit("good.deleted", &good.id, &json!({ "good": good }))
}

/// The changed fields between two versions of a good, as the API names
/// them: `{field: {before, after}}`.
fn changes(before: &Good, after: &Good) -> Map<String, Value> {
    let (old, new) = (as_object(before), as_object(after));
    let mut changes = Map::new();
    for field in FIELDS {
        let (was, is) = (
            old.get(field).cloned().unwrap_or(Value::Null),
            new.get(field).cloned().unwrap_or(Value::Null),
        );
        if was != is {
            changes.insert(field.to_owned(), json!({ "before": was, "after": is }));
        }
    }
    changes
}

fn as_object(good: &Good) -> Map<String, Value> {
    match serde_json::to_value(good) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use souk_sdk::Cents;

    fn good() -> Good {
        Good {
            id: "g1".into(),
            name: "Tea".into(),
            category: "food".into(),
            price: Cents(250),
            description: String::new(),
            count: 3,
            created_at: "2026-11-21T10:00:00Z".into(),
            updated_at: "2026-11-21T10:00:00Z".into(),
        }
    }

    #[test]
    fn changes_name_each_changed_field_with_before_and_after() {
        let mut after = good();
        after.price = Cents(199);
        after.count = 0;
        after.updated_at = "2026-11-22T10:00:00Z".into();
        assert_eq!(
            Value::Object(changes(&good(), &after)),
            json!({
                "price": {"before": 2.5, "after": 1.99},
                "count": {"before": 3, "after": 0},
            })
        );
        assert!(changes(&good(), &good()).is_empty());
    }
}
