//! The `accounts` export, called by the host only: resolving a token's
//! subject to the customer's current identity, and creating or promoting
//! the operator's admin.

use souk_sdk::error::OnConstraint;
use souk_sdk::{Error, FieldError, Identity, Role, credentials, log, now_rfc3339};

use crate::domain::{Gender, MaritalStatus, Password, Username};
use crate::http::username_taken;
use crate::store::{self, NewCustomer};

/// The current identity of customer `customer_id`, or `None` when it no
/// longer exists (its tokens must stop working).
///
/// The interface has no error case, so a database failure also gives `None`:
/// refusing a valid token for a moment is safer than accepting any token.
/// The failure is logged.
pub fn resolve(customer_id: &str) -> Option<Identity> {
    match store::find_identity(customer_id) {
        Ok(identity) => identity,
        Err(error) => {
            log::error!("could not resolve customer {customer_id}: {error:?}");
            None
        }
    }
}

/// Creates an admin with this username and password, or makes the existing
/// customer with this username (ignoring case) an admin with this password.
/// Both are validated with the registration rules.
///
/// A new admin has `full_name` = username, no age and no address (the only
/// rows where those columns are NULL), and `undisclosed` gender and marital
/// status; they can fill in their profile with PATCH later.
pub fn ensure_admin(username: String, password: String) -> Result<Identity, Error> {
    let (username, password) = match (Username::parse(username), Password::parse(password)) {
        (Ok(username), Ok(password)) => (username, password),
        (username, password) => {
            let errors = [("username", username.err()), ("password", password.err())]
                .into_iter()
                .filter_map(|(field, error)| error.map(|message| FieldError::new(field, message)))
                .collect();
            return Err(Error::invalid_fields(errors));
        }
    };

    let password_hash = credentials::hash_password(password.expose());
    let now = now_rfc3339();
    if let Some(existing) = store::find_by_username(username.as_str())? {
        let identity = store::promote(&existing.id, &password_hash, &now)?
            .ok_or_else(|| Error::internal("the customer disappeared while being promoted"))?;
        log::info!(
            "customer {} is now an admin (operator)",
            identity.customer_id
        );
        return Ok(identity);
    }

    let id = souk_sdk::new_id();
    let customer = store::insert(&NewCustomer {
        id: &id,
        username: &username,
        full_name: username.as_str(),
        age: None,
        address: None,
        gender: Gender::Undisclosed,
        marital_status: MaritalStatus::Undisclosed,
        role: Role::Admin,
        password_hash: &password_hash,
        now: &now,
    })
    .on_unique(username_taken)?;
    log::info!("admin {} created (operator)", customer.id);
    Ok(customer.identity())
}
