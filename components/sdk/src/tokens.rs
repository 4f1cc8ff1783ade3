//! Issuing access tokens (HS256 JWTs signed by the host, which keeps the
//! secret). Only the `customers` component is granted this.

pub use crate::wit::tokens::AccessToken;
use crate::wit::types::Identity;

/// Issues a bearer token for `subject`, whose credentials the caller has
/// just checked.
pub fn issue(subject: &Identity) -> AccessToken {
    crate::wit::tokens::issue(subject)
}
