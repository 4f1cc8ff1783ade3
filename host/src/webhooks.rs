//! Webhooks: committed events POSTed to the endpoints admins registered
//! (`/admin/webhooks`), signed, retried with backoff, logged per delivery.
//! Modelled on Stripe's and GitHub's webhooks.
//!
//! Two background loops, both off every request's path:
//! - the fan-out ([`fanout`]) follows the event pump: it reads the events
//!   numbered after its cursor (`souk_event_cursors`, consumer
//!   [`storage::CONSUMER`]) and, in one transaction, enqueues a `pending`
//!   delivery per matching enabled webhook and advances the cursor
//!   conditionally, so two replicas never fan one event out twice;
//! - the sender ([`delivery`]) claims due deliveries (a conditional UPDATE
//!   that doubles as a lease) and POSTs each, at most
//!   [`delivery::MAX_IN_FLIGHT`] at once per replica, each bounded by
//!   [`WebhookSettings::timeout`]. A 2xx is `delivered`; anything else is
//!   retried after a doubling, capped, jittered delay until
//!   [`WebhookSettings::max_attempts`], then `failed`.
//!
//! What a receiver gets: `Content-Type: application/json`, the body
//! [`StoredEvent::to_json`] (`{id, type, sequence, occurred_at, request_id,
//! actor, subject, data}`; `id` is the same in every attempt and replay, so
//! receivers de-duplicate on it), and the headers [`EVENT_ID_HEADER`],
//! [`EVENT_TYPE_HEADER`] and [`SIGNATURE_HEADER`]:
//! `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` — the key
//! is the secret's text as shown at creation. Receivers should check the
//! signature with a constant-time comparison and refuse an old `t` (say,
//! older than five minutes) so a captured request cannot be replayed.
//! Delivery is at least once and in no particular order.
//!
//! `https` URLs are verified against the system's trusted roots (rustls).
//! Redirects are not followed, no proxy from the environment is used, and
//! a receiver's answer is never read beyond its status: the URL is an
//! admin's choice, but the host should not become a tool for reading
//! whatever it can reach.
//!
//! [`StoredEvent::to_json`]: crate::storage::events::StoredEvent::to_json
//! [`WebhookSettings::timeout`]: crate::config::WebhookSettings::timeout
//! [`WebhookSettings::max_attempts`]: crate::config::WebhookSettings::max_attempts

pub mod delivery;
pub mod fanout;

use std::sync::Arc;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Notify;

use crate::{
    config::{Secret, WebhookSettings},
    runtime::Runtime,
    storage::webhooks as storage,
};

/// The signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "Souk-Signature";
/// The event's id, stable across retries and replays.
pub const EVENT_ID_HEADER: &str = "Souk-Event-Id";
/// The event's type, e.g. `customer.registered`.
pub const EVENT_TYPE_HEADER: &str = "Souk-Event-Type";
/// What every secret starts with, so one is recognisable in a config file
/// or a leak scanner.
pub const SECRET_PREFIX: &str = "whsec_";
/// Longest URL a webhook may have.
pub const MAX_URL_BYTES: usize = 2048;
/// Most subscription patterns one webhook may have.
pub const MAX_PATTERNS: usize = 64;

/// A new signing secret: [`SECRET_PREFIX`] and 256 random bits in hex.
pub fn new_secret() -> Secret {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    Secret::new(format!("{SECRET_PREFIX}{}", hex::encode(bytes)))
}

/// The [`SIGNATURE_HEADER`] value for `body` sent at `timestamp` (Unix
/// seconds): `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &Secret, timestamp: u64, body: &[u8]) -> String {
    // HMAC takes a key of any length; the error case cannot happen.
    let digest = match Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) {
        Ok(mut mac) => {
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("t={timestamp},v1={digest}")
}

/// Start the fan-out and the sender; they stop with the host's other
/// background work.
pub fn spawn(runtime: &Arc<Runtime>, settings: WebhookSettings) {
    // The fan-out pokes the sender when it enqueued something, so a new
    // delivery goes out at once rather than at the next poll.
    let enqueued = Arc::new(Notify::new());
    fanout::spawn(runtime, enqueued.clone());
    delivery::spawn(runtime, settings, enqueued);
}

/// Now, in Unix milliseconds (the unit of delivery schedules).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Computed independently:
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        let header = signature(&Secret::new("whsec_test"), 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            header,
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn secrets_are_prefixed_random_and_long() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(a.expose().starts_with(SECRET_PREFIX));
        assert_eq!(a.expose().len(), SECRET_PREFIX.len() + 64);
    }

    #[test]
    fn the_published_webhook_documentation_names_the_signature_header() {
        let document = crate::events::openapi_webhooks().to_string();
        assert!(
            document.contains(&format!("{SIGNATURE_HEADER}: t=<unix seconds>,v1=")),
            "events.rs documents the header differently from what is sent"
        );
    }
}
