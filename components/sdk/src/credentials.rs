//! Password hashing, done natively by the host (Argon2id). Only components
//! granted `credentials` may call these.

/// Hashes `password` with Argon2id and a fresh salt; returns a PHC string
/// to store.
pub fn hash_password(password: &str) -> String {
    crate::wit::credentials::hash_password(password)
}

/// Checks the `password` given for `username` against a stored PHC `hash`.
/// Pass `None` when the user does not exist: the host still spends the time
/// of one verification, so timing does not reveal which usernames exist.
///
/// The host throttles guessing here, per username and per client: past the
/// limit it ends the request with 429 instead of returning.
pub fn verify_password(username: &str, password: &str, hash: Option<&str>) -> bool {
    crate::wit::credentials::verify_password(username, password, hash)
}
