//! Issuing access tokens (HS256 JWTs signed by the host, which keeps the
//! secret). Only the `customers` component is granted this.

pub use crate::wit::tokens::AccessToken;
use crate::wit::types::Identity;

/// Issues a bearer token for `subject`, whose credentials the caller has
/// just checked, at their current `token_epoch`: the host refuses the token
/// once the customer's epoch has moved on (role or password changed).
pub fn issue(subject: &Identity, token_epoch: u64) -> AccessToken {
    crate::wit::tokens::issue(subject, token_epoch)
}
