//! The `credentials` capability: Argon2id hashing and verification done
//! natively, on the blocking pool so the async workers keep serving.
//!
//! Verification is also where password guessing is throttled: every call
//! takes its place in the [`LoginGuard`]'s budgets for the username and the
//! client before the hash is checked, and settles with the outcome. A refused
//! attempt aborts the whole call with [`CallError::Throttled`], which the edge
//! answers with 429 and `Retry-After`; the component cannot catch it.
//!
//! Argon2 runs at most [`ARGON2_PER_CORE`] per core at once (each takes
//! ~19 MiB); a call waits for a turn until its deadline.
//!
//! Before hashing, the request's unit of work gives up a write lock it holds
//! but has not used yet, so Argon2's tens of milliseconds never block other
//! writers (see [`crate::storage::uow::UnitOfWork::release_unwritten`]).
//!
//! [`LoginGuard`]: crate::login_guard::LoginGuard

use std::sync::{Arc, OnceLock};

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};

use crate::{
    login_guard::AttemptKeys,
    runtime::{
        CallError,
        state::{RequestScope, StoreState},
    },
};

impl crate::bindings::credentials::Host for StoreState {
    async fn hash_password(&mut self, password: String) -> wasmtime::Result<String> {
        release_unwritten_lock(self.scope.clone()).await;
        let _turn = argon2_turn(self.deadline, self.access.name.clone()).await?;
        tokio::task::spawn_blocking(move || hash(&password))
            .await
            .map_err(|e| wasmtime::format_err!("password hashing panicked: {e}"))?
            .map_err(|e| wasmtime::format_err!("cannot hash a password: {e}"))
    }

    async fn verify_password(
        &mut self,
        username: String,
        password: String,
        hash: Option<String>,
    ) -> wasmtime::Result<bool> {
        let client = self
            .scope
            .as_ref()
            .map_or_else(|| "-".to_owned(), |scope| client_key(scope.client));
        let guard = self.services.login_guard.clone();
        let attempt = guard
            .admit(AttemptKeys::new(Some(&username), &client))
            .await
            .map_err(|retry_after| {
                wasmtime::Error::new(CallError::Throttled {
                    component: self.access.name.clone(),
                    retry_after,
                })
            })?;
        release_unwritten_lock(self.scope.clone()).await;
        let _turn = argon2_turn(self.deadline, self.access.name.clone()).await?;
        let verified = tokio::task::spawn_blocking(move || verify(&password, hash.as_deref()))
            .await
            .map_err(|e| wasmtime::format_err!("password verification panicked: {e}"))?;
        if verified {
            attempt.succeeded();
        } else {
            attempt.failed(std::time::Instant::now());
        }
        Ok(verified)
    }
}

/// The key a client's guesses are counted under: its IPv4 address, or the
/// /64 network of its IPv6 address — one subscriber usually holds a whole
/// /64, and counting per /128 would let it rotate addresses for free.
fn client_key(client: std::net::IpAddr) -> String {
    match client {
        std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let [a, b, c, d, ..] = v6.segments();
            format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
        }
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or_else(|| v6.to_string(), |v4| v4.to_string()),
        std::net::IpAddr::V4(v4) => v4.to_string(),
    }
}

/// Argon2 computations running at once, per core: each takes ~19 MiB and a
/// core for tens of milliseconds, so more at once only adds memory (and
/// keeps it: the allocator holds on to freed buffers), not throughput. An
/// anonymous registration flood therefore queues here instead of growing
/// the host.
const ARGON2_PER_CORE: usize = 2;

/// Wait for a turn to run Argon2, at most until the calling component's
/// `deadline` (then the call fails as overloaded, 503).
async fn argon2_turn(
    deadline: std::time::Instant,
    component: String,
) -> wasmtime::Result<tokio::sync::SemaphorePermit<'static>> {
    static TURNS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    let turns = TURNS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        tokio::sync::Semaphore::new(cores * ARGON2_PER_CORE)
    });
    let deadline = tokio::time::Instant::from_std(deadline);
    match tokio::time::timeout_at(deadline, turns.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(wasmtime::Error::new(CallError::Overloaded(component))),
    }
}

/// See the module docs: nothing written yet means nothing to keep.
async fn release_unwritten_lock(scope: Option<Arc<RequestScope>>) {
    if let Some(scope) = scope {
        scope.uow.release_unwritten().await;
    }
}

/// Argon2id with the crate's recommended parameters and a fresh salt.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
}

/// Check `password` against `stored`. With no stored hash, verify against a
/// dummy so an unknown username costs the same time as a wrong password.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let (stored, known) = match stored {
        Some(stored) => (stored, true),
        None => (
            DUMMY
                .get_or_init(|| hash("dummy password 0").unwrap_or_default())
                .as_str(),
            false,
        ),
    };
    let Ok(parsed) = PasswordHash::new(stored) else {
        tracing::warn!("a stored password hash is not a valid PHC string");
        return false;
    };
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    matches && known
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let ip = |s: &str| {
            s.parse::<std::net::IpAddr>()
                .unwrap_or(std::net::IpAddr::from([0; 4]))
        };
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa::1")),
            client_key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), "192.0.2.7");
        assert_eq!(client_key(ip("192.0.2.7")), "192.0.2.7");
    }

    #[test]
    fn a_hash_verifies_only_its_password() {
        let stored = hash("correct horse 1").unwrap_or_default();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse 1", Some(&stored)));
        assert!(!verify("wrong horse 1", Some(&stored)));
    }

    #[test]
    fn an_unknown_user_never_verifies() {
        assert!(!verify("dummy password 0", None));
    }

    #[test]
    fn a_corrupt_hash_does_not_verify() {
        assert!(!verify("anything", Some("not-a-hash")));
    }
}
