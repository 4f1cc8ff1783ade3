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
    /// The customer's token epoch at issue time: the host refuses the token
    /// once the customer's epoch has moved on (password or role changed).
    /// Tokens from before epochs existed count as epoch 0.
    #[serde(default)]
    pub ep: u64,
}

/// What a valid token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bearer {
    /// The customer id the token names.
    pub subject: String,
    /// The token epoch it was issued at.
    pub token_epoch: u64,
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

/// The shortest signing secret accepted: HS256 is only as strong as its key,
/// and RFC 7518 §3.2 asks for at least the hash's 256 bits.
pub const MIN_SECRET_BYTES: usize = 32;

/// The issuer and verifier for `secret`; refuses a secret shorter than
/// [`MIN_SECRET_BYTES`].
pub fn keys(secret: &[u8], ttl: Duration) -> anyhow::Result<(TokenIssuer, TokenVerifier)> {
    anyhow::ensure!(
        secret.len() >= MIN_SECRET_BYTES,
        "the JWT secret (SOUK_JWT_SECRET) must be at least {MIN_SECRET_BYTES} bytes; \
         it is {}. Leave it unset to have one generated and kept in the database",
        secret.len()
    );
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "sub"]);
    Ok((
        TokenIssuer {
            key: EncodingKey::from_secret(secret),
            ttl,
        },
        TokenVerifier {
            key: DecodingKey::from_secret(secret),
            validation,
        },
    ))
}

impl TokenIssuer {
    /// Sign a token for `subject` at its `token_epoch`.
    pub fn issue(
        &self,
        subject: &Identity,
        token_epoch: u64,
    ) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let now = unix_now();
        let claims = Claims {
            sub: subject.customer_id.clone(),
            name: subject.username.clone(),
            role: role_name(subject.role).to_owned(),
            iat: now,
            exp: now + self.ttl.as_secs(),
            jti: uuid::Uuid::now_v7().to_string(),
            ep: token_epoch,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)?;
        Ok(IssuedToken {
            token,
            expires_in: u32::try_from(self.ttl.as_secs()).unwrap_or(u32::MAX),
        })
    }
}

impl TokenVerifier {
    /// Who a valid token names; `None` for a malformed, expired or
    /// foreign-signed token.
    pub fn bearer(&self, token: &str) -> Option<Bearer> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .ok()
            .map(|data| Bearer {
                subject: data.claims.sub,
                token_epoch: data.claims.ep,
            })
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SECRET_ONE: &[u8] = b"secret-one-secret-one-secret-one";
    const SECRET_TWO: &[u8] = b"secret-two-secret-two-secret-two";

    #[test]
    fn a_short_secret_is_refused() {
        assert!(keys(b"short", Duration::from_secs(60)).is_err());
        assert!(keys(&[7; 31], Duration::from_secs(60)).is_err());
        assert!(keys(&[7; 32], Duration::from_secs(60)).is_ok());
    }

    fn alice() -> Identity {
        Identity {
            customer_id: "c-1".into(),
            username: "alice".into(),
            role: Role::Customer,
        }
    }

    #[test]
    fn an_issued_token_verifies_to_its_subject() {
        let (issuer, verifier) = keys(SECRET_ONE, Duration::from_secs(60)).unwrap();
        let token = issuer
            .issue(&alice(), 3)
            .map(|t| t.token)
            .unwrap_or_default();
        assert_eq!(
            verifier.bearer(&token),
            Some(Bearer {
                subject: "c-1".into(),
                token_epoch: 3
            })
        );
    }

    #[test]
    fn a_token_signed_with_another_key_is_rejected() {
        let (issuer, _) = keys(SECRET_ONE, Duration::from_secs(60)).unwrap();
        let (_, verifier) = keys(SECRET_TWO, Duration::from_secs(60)).unwrap();
        let token = issuer
            .issue(&alice(), 3)
            .map(|t| t.token)
            .unwrap_or_default();
        assert_eq!(verifier.bearer(&token), None);
    }

    #[test]
    fn an_expired_token_is_rejected() {
        let (issuer, verifier) = keys(SECRET_ONE, Duration::ZERO).unwrap();
        let token = issuer
            .issue(&alice(), 3)
            .map(|t| t.token)
            .unwrap_or_default();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(verifier.bearer(&token), None);
    }

    #[test]
    fn garbage_is_rejected() {
        let (_, verifier) = keys(SECRET_ONE, Duration::from_secs(60)).unwrap();
        assert_eq!(verifier.bearer("not.a.token"), None);
        assert_eq!(verifier.bearer(""), None);
    }
}
