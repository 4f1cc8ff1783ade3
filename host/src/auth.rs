//! Access tokens: HS256 JWTs signed by the host. The secret stays here;
//! components ask the `tokens` capability to issue one and receive the
//! verified identity on each request, never the token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::bindings::types::{Identity, Role};

/// The claims of a Souk access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Customer id.
    pub sub: String,
    /// Username at issue time (informational: the current one is resolved).
    pub name: String,
    /// Role at issue time (informational: the current one is resolved).
    pub role: String,
    /// Issued at (seconds since the epoch).
    pub iat: u64,
    /// Expires at (seconds since the epoch).
    pub exp: u64,
    /// Unique token id.
    pub jti: String,
}

/// Signs tokens.
pub struct TokenIssuer {
    key: EncodingKey,
    ttl: Duration,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Verifies tokens.
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").finish_non_exhaustive()
    }
}

/// An issued token and its lifetime in seconds.
#[derive(Debug)]
pub struct IssuedToken {
    /// The JWT.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u32,
}

/// The issuer and verifier for `secret`.
pub fn keys(secret: &[u8], ttl: Duration) -> (TokenIssuer, TokenVerifier) {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "sub"]);
    (
        TokenIssuer {
            key: EncodingKey::from_secret(secret),
            ttl,
        },
        TokenVerifier {
            key: DecodingKey::from_secret(secret),
            validation,
        },
    )
}

impl TokenIssuer {
    /// Sign a token for `subject`.
    pub fn issue(&self, subject: &Identity) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let now = unix_now();
        let claims = Claims {
            sub: subject.customer_id.clone(),
            name: subject.username.clone(),
            role: role_name(subject.role).to_owned(),
            iat: now,
            exp: now + self.ttl.as_secs(),
            jti: uuid::Uuid::now_v7().to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)?;
        Ok(IssuedToken {
            token,
            expires_in: u32::try_from(self.ttl.as_secs()).unwrap_or(u32::MAX),
        })
    }
}

impl TokenVerifier {
    /// The customer id a valid token names; `None` for a malformed,
    /// expired or foreign-signed token.
    pub fn subject(&self, token: &str) -> Option<String> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .ok()
            .map(|data| data.claims.sub)
    }
}

/// The wire name of a role.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Customer => "customer",
        Role::Admin => "admin",
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity {
            customer_id: "c-1".into(),
            username: "alice".into(),
            role: Role::Customer,
        }
    }

    #[test]
    fn an_issued_token_verifies_to_its_subject() {
        let (issuer, verifier) = keys(b"secret-one", Duration::from_secs(60));
        let token = issuer.issue(&alice()).map(|t| t.token).unwrap_or_default();
        assert_eq!(verifier.subject(&token).as_deref(), Some("c-1"));
    }

    #[test]
    fn a_token_signed_with_another_key_is_rejected() {
        let (issuer, _) = keys(b"secret-one", Duration::from_secs(60));
        let (_, verifier) = keys(b"secret-two", Duration::from_secs(60));
        let token = issuer.issue(&alice()).map(|t| t.token).unwrap_or_default();
        assert_eq!(verifier.subject(&token), None);
    }

    #[test]
    fn an_expired_token_is_rejected() {
        let (issuer, verifier) = keys(b"secret-one", Duration::ZERO);
        let token = issuer.issue(&alice()).map(|t| t.token).unwrap_or_default();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(verifier.subject(&token), None);
    }

    #[test]
    fn garbage_is_rejected() {
        let (_, verifier) = keys(b"secret-one", Duration::from_secs(60));
        assert_eq!(verifier.subject("not.a.token"), None);
        assert_eq!(verifier.subject(""), None);
    }
}
