//! Password hashing, done natively by the host (Argon2id). Only components
//! granted `credentials` may call these.

/// Hashes `password` with Argon2id and a fresh salt; returns a PHC string
/// to store.
pub fn hash_password(password: &str) -> String {
    crate::wit::credentials::hash_password(password)
}

/// Checks `password` against a stored PHC `hash`. Pass `None` when the user
/// does not exist: the host still spends the time of one verification, so
/// timing does not reveal which usernames exist.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    crate::wit::credentials::verify_password(password, hash)
}
