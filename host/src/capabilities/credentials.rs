//! The `credentials` capability: Argon2id hashing and verification done
//! natively, on the blocking pool so the async workers keep serving.

use std::sync::OnceLock;

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};

use crate::runtime::state::StoreState;

impl crate::bindings::credentials::Host for StoreState {
    async fn hash_password(&mut self, password: String) -> wasmtime::Result<String> {
        tokio::task::spawn_blocking(move || hash(&password))
            .await
            .map_err(|e| wasmtime::format_err!("password hashing panicked: {e}"))?
            .map_err(|e| wasmtime::format_err!("cannot hash a password: {e}"))
    }

    async fn verify_password(
        &mut self,
        password: String,
        hash: Option<String>,
    ) -> wasmtime::Result<bool> {
        tokio::task::spawn_blocking(move || verify(&password, hash.as_deref()))
            .await
            .map_err(|e| wasmtime::format_err!("password verification panicked: {e}"))
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
