//! The `accounts` export, called by the host only: resolving a token's
//! subject to the customer's current identity, and creating or promoting
//! the operator's admin.

use souk_sdk::db::{ConstraintKind, DbError};
use souk_sdk::{Error, Field, FieldError, Identity, Role, credentials, log, now_rfc3339};

use crate::domain::{Gender, MaritalStatus, Password, Username};
use crate::events;
use crate::store::{self, Account, Customer, NewCustomer};

/// The current account of customer `customer_id`, or `None` when it no
/// longer exists (its tokens must stop working). A database failure is an
/// error, so the host answers 503 rather than a wrong 401.
pub fn resolve(customer_id: &str) -> Result<Option<Account>, Error> {
    Ok(store::find_account(customer_id)?)
}

/// Makes sure an admin called `username` exists (see the WIT docs of
/// `accounts.ensure-admin`): creates one if the username is free; with
/// `promote`, makes an existing customer an admin with this password (and
/// ends their tokens); without it, leaves an existing admin alone and
/// refuses to touch an existing customer. Both values are validated with the
/// registration rules.
///
/// A new admin has `full_name` = username, no age and no address (the only
/// rows where those columns are NULL), and `undisclosed` gender and marital
/// status; they can fill in their profile with PATCH later.
pub fn ensure_admin(username: String, password: String, promote: bool) -> Result<Identity, Error> {
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
    if let Some(existing) = store::find_by_username(username.as_str())? {
        return adopt(existing, &password, promote);
    }
    let password_hash = credentials::hash_password(password.expose());
    let id = souk_sdk::new_id();
    let inserted = store::insert(&NewCustomer {
        id: &id,
        username: &username,
        full_name: username.as_str(),
        age: None,
        address: None,
        gender: Gender::Undisclosed,
        marital_status: MaritalStatus::Undisclosed,
        role: Role::Admin,
        password_hash: &password_hash,
        now: &now_rfc3339(),
    });
    match inserted {
        Ok(customer) => {
            events::registered(&customer)?;
            log::info!("admin {} created (operator)", customer.id);
            Ok(customer.identity())
        }
        // Another replica bootstrapping the same admin got there first: take
        // what it created, so replicas starting together all come up.
        Err(DbError::Constraint(ConstraintKind::Unique)) => {
            let existing = store::find_by_username(username.as_str())?.ok_or_else(|| {
                Error::internal("the username was taken and then vanished during bootstrap")
            })?;
            adopt(existing, &password, promote)
        }
        Err(other) => Err(other.into()),
    }
}

/// An existing customer met while ensuring an admin.
fn adopt(existing: Customer, password: &Password, promote: bool) -> Result<Identity, Error> {
    if promote {
        let password_hash = credentials::hash_password(password.expose());
        let identity = store::promote(&existing.id, &password_hash, &now_rfc3339())?
            .ok_or_else(|| Error::internal("the customer disappeared while being promoted"))?;
        let promoted = Customer {
            role: identity.role,
            ..existing.clone()
        };
        events::updated(&existing, &promoted, true)?;
        log::info!(
            "customer {} is now an admin (operator)",
            identity.customer_id
        );
        return Ok(identity);
    }
    if existing.role == Role::Admin {
        return Ok(existing.identity());
    }
    Err(Error::conflict(
        "not-an-admin",
        format!(
            "customer `{}` exists and is not an admin; promote them explicitly with \
             `souk admin create`",
            existing.username
        ),
    ))
}
