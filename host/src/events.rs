//! Domain events: the catalogue of event types the core services emit (the
//! one place their names, owners and payloads are written down), and the
//! rules every emitted event must pass.
//!
//! Who may emit what is part of the contract, not a convention: a core
//! service emits only its own types (`customers` never says `sale.completed`)
//! and an extension only `<its name>.<verb>`, so no subscriber, webhook
//! receiver or auditor can be fooled by a component speaking for another.

use serde_json::{Value, json};

/// Largest `data` an event may carry.
pub const MAX_DATA_BYTES: usize = 16 << 10;
/// Most events one request may emit.
pub const MAX_EVENTS_PER_REQUEST: usize = 32;
/// Longest subject id.
const MAX_SUBJECT_BYTES: usize = 128;

/// One core event type: its name, the component that owns it, what it
/// means, and the fields of its payload.
#[derive(Debug, Clone, Copy)]
pub struct EventType {
    /// `noun.verb`.
    pub name: &'static str,
    /// The only component that may emit it.
    pub owner: &'static str,
    /// What happened.
    pub summary: &'static str,
    /// Payload fields: name, JSON type, meaning.
    pub fields: &'static [(&'static str, &'static str, &'static str)],
}

/// Every event type the core services emit.
pub const CATALOGUE: &[EventType] = &[
    EventType {
        name: "customer.registered",
        owner: "customers",
        summary: "A customer registered.",
        fields: &[
            ("username", "string", "the new customer's username"),
            (
                "role",
                "string",
                "`customer` (`admin` for the operator's bootstrap admin)",
            ),
        ],
    },
    EventType {
        name: "customer.updated",
        owner: "customers",
        summary: "A customer's profile or role changed (never the password itself).",
        fields: &[
            ("username", "string", "whose profile"),
            (
                "changes",
                "object",
                "each changed field of full_name, age, address, gender, marital_status and role: {before, after}; a new password shows as `\"password\": \"changed\"`",
            ),
        ],
    },
    EventType {
        name: "customer.deleted",
        owner: "customers",
        summary: "A customer deleted their account (or an admin did).",
        fields: &[
            ("username", "string", "who was deleted"),
            (
                "forfeited_balance",
                "number",
                "the wallet balance that was left, dollars",
            ),
        ],
    },
    EventType {
        name: "wallet.charged",
        owner: "customers",
        summary: "Money was added to a wallet.",
        fields: &[
            ("username", "string", "whose wallet"),
            ("amount", "number", "dollars added"),
            ("balance_before", "number", "dollars"),
            ("balance_after", "number", "dollars"),
        ],
    },
    EventType {
        name: "wallet.deducted",
        owner: "customers",
        summary: "Money was taken from a wallet (a deduction or a purchase).",
        fields: &[
            ("username", "string", "whose wallet"),
            ("amount", "number", "dollars taken"),
            ("balance_before", "number", "dollars"),
            ("balance_after", "number", "dollars"),
        ],
    },
    EventType {
        name: "good.created",
        owner: "inventory",
        summary: "A good was added.",
        fields: &[("good", "object", "the good as the API shows it")],
    },
    EventType {
        name: "good.updated",
        owner: "inventory",
        summary: "A good's fields or stock changed (an edit, a deduction, or a purchase).",
        fields: &[
            ("name", "string", "the good's name after the change"),
            (
                "changes",
                "object",
                "each changed field of name, category, price, description and count: {before, after}",
            ),
        ],
    },
    EventType {
        name: "good.deleted",
        owner: "inventory",
        summary: "A good was removed.",
        fields: &[("good", "object", "the good as it was")],
    },
    EventType {
        name: "stock.depleted",
        owner: "inventory",
        summary: "A good's count reached 0.",
        fields: &[("name", "string", "the good's name")],
    },
    EventType {
        name: "sale.completed",
        owner: "sales",
        summary: "A purchase committed: money taken, stock lowered, sale recorded.",
        fields: &[("sale", "object", "the sale as the API shows it")],
    },
    EventType {
        name: "review.submitted",
        owner: "reviews",
        summary: "A review was submitted (or edited, back to pending).",
        fields: &[("review", "object", "the review as the API shows it")],
    },
    EventType {
        name: "review.moderated",
        owner: "reviews",
        summary: "An admin approved or flagged a review.",
        fields: &[
            ("good_id", "string", "the good reviewed"),
            ("status", "object", "{before, after}"),
            ("note", "string", "the moderator's note (\"\" if none)"),
        ],
    },
];

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The type is not `noun.verb` in lower case.
    #[error("event type `{0}` must be `noun.verb`: lower-case letters, digits and `_`")]
    BadType(String),
    /// The component may not emit this type.
    #[error("`{component}` may not emit `{event_type}`: {why}")]
    NotYours {
        /// Who tried.
        component: String,
        /// What it tried to emit.
        event_type: String,
        /// Whose it is.
        why: String,
    },
    /// The subject is empty, too long or has control characters.
    #[error("the subject must be 1-{MAX_SUBJECT_BYTES} bytes without control characters")]
    BadSubject,
    /// The data is not a JSON object, or too large.
    #[error("the data must be a JSON object of at most {MAX_DATA_BYTES} bytes")]
    BadData,
}

/// Check an event `component` wants to emit; returns the data as parsed.
pub fn check(
    component: &str,
    event_type: &str,
    subject: &str,
    data: &str,
) -> Result<Value, Refusal> {
    let (noun, _verb) = event_type
        .split_once('.')
        .filter(|(noun, verb)| is_word(noun) && verb.split('.').all(is_word))
        .ok_or_else(|| Refusal::BadType(event_type.to_owned()))?;
    match CATALOGUE.iter().find(|t| t.name == event_type) {
        Some(known) if known.owner != component => {
            return Err(Refusal::NotYours {
                component: component.to_owned(),
                event_type: event_type.to_owned(),
                why: format!("it is `{}`'s", known.owner),
            });
        }
        Some(_) => {}
        None if noun != component => {
            return Err(Refusal::NotYours {
                component: component.to_owned(),
                event_type: event_type.to_owned(),
                why: format!(
                    "a component may emit only `{component}.<verb>` besides the core types it owns"
                ),
            });
        }
        None => {}
    }
    if subject.is_empty()
        || subject.len() > MAX_SUBJECT_BYTES
        || subject.chars().any(char::is_control)
    {
        return Err(Refusal::BadSubject);
    }
    if data.len() > MAX_DATA_BYTES {
        return Err(Refusal::BadData);
    }
    match serde_json::from_str::<Value>(data) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(Refusal::BadData),
    }
}

/// The nouns of the core event types (`customer`, `wallet`, ...): no
/// component may be named after one, or its own `<name>.<verb>` events
/// would pass for the core services' (`wallet.credited` from an extension
/// called `wallet`, signed by the shop and sent to every webhook on
/// `wallet.*`).
pub fn reserved_nouns() -> impl Iterator<Item = &'static str> {
    CATALOGUE
        .iter()
        .filter_map(|event| event.name.split_once('.').map(|(noun, _)| noun))
}

/// Is `pattern` a valid subscription: an event type, or `noun.*`?
pub fn is_subscription(pattern: &str) -> bool {
    match pattern.split_once('.') {
        Some((noun, "*")) => is_word(noun),
        Some((noun, verb)) => is_word(noun) && verb.split('.').all(is_word),
        None => false,
    }
}

/// Does subscription `pattern` cover `event_type`?
pub fn matches(pattern: &str, event_type: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(noun) => event_type
            .strip_prefix(noun)
            .is_some_and(|rest| rest.starts_with('.')),
        None => pattern == event_type,
    }
}

fn is_word(word: &str) -> bool {
    (1..=48).contains(&word.len())
        && word.starts_with(|c: char| c.is_ascii_lowercase())
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The catalogue as OpenAPI 3.1 `webhooks`: one entry per event type, the
/// request body a receiver gets. The same document describes subscribers'
/// `event.data`.
pub fn openapi_webhooks() -> Value {
    let mut webhooks = serde_json::Map::new();
    for event in CATALOGUE {
        let properties: serde_json::Map<String, Value> = event
            .fields
            .iter()
            .map(|(name, kind, about)| {
                (
                    (*name).to_owned(),
                    json!({ "type": kind, "description": about }),
                )
            })
            .collect();
        webhooks.insert(
            event.name.to_owned(),
            json!({
                "post": {
                    "summary": event.summary,
                    "description": format!(
                        "Emitted by `{}`. Signed with `{}: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\" with the endpoint's secret>`.",
                        event.owner,
                        crate::webhooks::SIGNATURE_HEADER
                    ),
                    "requestBody": { "content": { "application/json": { "schema": {
                        "type": "object",
                        "required": ["id", "type", "sequence", "occurred_at", "request_id", "actor", "subject", "data"],
                        "properties": {
                            "id": { "type": "string", "description": "stable across retries" },
                            "type": { "const": event.name },
                            "sequence": { "type": "integer" },
                            "occurred_at": { "type": "string", "format": "date-time" },
                            "request_id": { "type": "string" },
                            "actor": { "type": ["string", "null"] },
                            "subject": { "type": "string" },
                            "data": { "type": "object", "properties": properties }
                        }
                    } } } },
                    "responses": { "2XX": { "description": "Received; any other answer is retried with backoff." } }
                }
            }),
        );
    }
    Value::Object(webhooks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_emits_only_its_own_types() {
        assert!(check("customers", "customer.deleted", "c1", "{}").is_ok());
        assert!(check("wishlist", "wishlist.item_added", "w1", r#"{"x":1}"#).is_ok());
        for (component, event_type) in [
            ("customers", "sale.completed"),
            ("wishlist", "sale.completed"),
            ("wishlist", "customer.deleted"),
            ("wishlist", "inventory.restocked"),
            ("wishlist", "wishlist_x.added"),
        ] {
            assert!(
                matches!(
                    check(component, event_type, "s", "{}"),
                    Err(Refusal::NotYours { .. })
                ),
                "{component}: {event_type}"
            );
        }
    }

    #[test]
    fn types_subjects_and_data_are_bounded() {
        for bad in [
            "",
            "sale",
            "Sale.completed",
            "sale.",
            ".x",
            "sale.compl eted",
            "a.b\0",
        ] {
            assert_eq!(
                check("sales", bad, "s", "{}"),
                Err(Refusal::BadType(bad.to_owned())),
                "{bad}"
            );
        }
        assert_eq!(
            check("sales", "sale.completed", "", "{}"),
            Err(Refusal::BadSubject)
        );
        assert_eq!(
            check("sales", "sale.completed", "a\nb", "{}"),
            Err(Refusal::BadSubject)
        );
        assert_eq!(
            check("sales", "sale.completed", "s", "[1]"),
            Err(Refusal::BadData)
        );
        assert_eq!(
            check("sales", "sale.completed", "s", "nope"),
            Err(Refusal::BadData)
        );
        let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(MAX_DATA_BYTES));
        assert_eq!(
            check("sales", "sale.completed", "s", &big),
            Err(Refusal::BadData)
        );
    }

    #[test]
    fn subscriptions_name_a_type_or_a_noun() {
        assert!(is_subscription("customer.deleted"));
        assert!(is_subscription("good.*"));
        assert!(!is_subscription("*"));
        assert!(!is_subscription("good"));
        assert!(matches("good.*", "good.deleted"));
        assert!(!matches("good.*", "goods.deleted"));
        assert!(matches("customer.deleted", "customer.deleted"));
        assert!(!matches("customer.deleted", "customer.updated"));
    }

    #[test]
    fn every_core_type_is_documented_once() {
        let mut names: Vec<_> = CATALOGUE.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len());
        assert_eq!(
            openapi_webhooks().as_object().map(|o| o.len()),
            Some(CATALOGUE.len())
        );
    }
}
