//! The HTTP routes of the customers service (API.md, "Authentication" and
//! "Customers"): login, registration, profiles and wallets.
//!
//! Every handler checks who may call it before it looks anything up, so a
//! customer asking about someone else gets 403 whether or not that someone
//! exists; an admin gets 404 for a username nobody has.

use serde::Serialize;
use souk_sdk::error::OnConstraint;
use souk_sdk::{
    Cents, Context, Error, FieldError, Response, Result, Role, Router, accept, created,
    credentials, log, no_content, now_rfc3339, ok, page, tokens,
};

use crate::domain::{Address, Age, FullName, Gender, MaritalStatus, Password, Username};
use crate::events;
use crate::store::{self, Changes, Customer, NewCustomer};

/// Every route this component serves.
pub fn router() -> Router {
    Router::new()
        .post("/api/v1/auth/login", login)
        .post("/api/v1/customers", register)
        .get("/api/v1/customers", list)
        .get("/api/v1/customers/{username}", show)
        .patch("/api/v1/customers/{username}", update)
        .delete("/api/v1/customers/{username}", delete)
        .post("/api/v1/customers/{username}/wallet/charge", charge)
        .post("/api/v1/customers/{username}/wallet/deduct", deduct)
}

/// The 409 for a username someone already has, ignoring case.
pub fn username_taken() -> Error {
    Error::conflict("username-taken", "this username is already taken")
}

/// The body of a successful login (OAuth 2.0 token response style).
#[derive(Debug, Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u32,
}

/// `POST /api/v1/auth/login`: a bearer token for a username and password.
fn login(ctx: &Context) -> Result<Response> {
    let mut form = ctx.form()?;
    let username = form.required("username", accept::<String>);
    let password = form.required("password", accept::<String>);
    let (username, password) = form.finish((username, password))?;

    // Text outside the username pattern belongs to no one: skip the lookup
    // (PostgreSQL refuses some such text, e.g. a NUL) but not the
    // verification below, so the answer and its timing are an unknown user's.
    let account = match Username::parse(username.clone()) {
        Ok(username) => store::find_credentials(username.as_str())?,
        Err(_) => None,
    };
    // Verify even for an unknown username (the host spends the same time
    // on `none`), so the response time does not reveal who exists. The host
    // throttles guesses inside this call.
    let hash = account.as_ref().map(|a| a.password_hash.as_str());
    let verified = credentials::verify_password(&username, &password, hash);
    let Some(account) = account.filter(|_| verified) else {
        return Err(Error::unauthorized("invalid username or password"));
    };
    let identity = account.identity;
    let token = tokens::issue(&identity, account.token_epoch);
    log::info!("customer {} logged in", identity.customer_id);
    Ok(ok(&TokenResponse {
        access_token: token.token,
        token_type: "Bearer",
        expires_in: token.expires_in,
    })?
    .with_header("cache-control", "no-store"))
}

/// `POST /api/v1/customers`: register; anyone may, and always as a customer.
fn register(ctx: &Context) -> Result<Response> {
    let mut form = ctx.form()?;
    form.reject(
        "role",
        "cannot be set at registration: every new account is a customer",
    );
    form.reject("wallet_balance", "cannot be set: every wallet starts at 0");
    let full_name = form.required("full_name", FullName::parse);
    let username = form.required("username", Username::parse);
    let password = form.required("password", Password::parse);
    let age = form.required("age", Age::parse);
    let address = form.required("address", Address::parse);
    let gender = form.required("gender", Gender::parse);
    let marital_status = form.required("marital_status", MaritalStatus::parse);
    let (full_name, username, password, age, address, gender, marital_status) = form.finish((
        full_name,
        username,
        password,
        age,
        address,
        gender,
        marital_status,
    ))?;

    // Hash before the first statement: a write request's transaction (and
    // on SQLite the single write lock) starts with its first statement, and
    // must not be held while Argon2 runs. The check only gives a clear 409
    // early; the unique index decides races.
    let password_hash = credentials::hash_password(password.expose());
    if store::username_exists(username.as_str())? {
        return Err(username_taken());
    }
    let id = souk_sdk::new_id();
    let now = now_rfc3339();
    let customer = store::insert(&NewCustomer {
        id: &id,
        username: &username,
        full_name: full_name.as_str(),
        age: Some(age),
        address: Some(&address),
        gender,
        marital_status,
        role: Role::Customer,
        password_hash: &password_hash,
        now: &now,
    })
    .on_unique(username_taken)?;
    events::registered(&customer)?;
    log::info!("customer {} registered", customer.id);
    created(&customer_path(&customer.username), &customer)
}

/// `GET /api/v1/customers`: a page of customers, for admins; `?q=` keeps
/// those whose username or full name contains it, ignoring case.
fn list(ctx: &Context) -> Result<Response> {
    ctx.require_admin()?;
    let search = ctx.query("q").map(str::trim).filter(|q| !q.is_empty());
    // No name contains a control character, and PostgreSQL refuses a NUL.
    let search_error = search
        .filter(|q| q.chars().any(char::is_control))
        .map(|_| FieldError::new("q", "must not contain control characters"));
    let paging = match ctx.page() {
        Ok(paging) if search_error.is_none() => paging,
        Ok(_) => return Err(Error::invalid_fields(search_error.into_iter().collect())),
        Err(Error::InvalidInput(mut errors)) => {
            errors.extend(search_error);
            return Err(Error::invalid_fields(errors));
        }
        Err(other) => return Err(other),
    };
    let (customers, total) = store::list(search, paging)?;
    page(paging, &customers, total)
}

/// `GET /api/v1/customers/{username}`: one customer, for themselves or an admin.
fn show(ctx: &Context) -> Result<Response> {
    let customer = authorized_customer(ctx)?;
    ok(&customer)
}

/// `PATCH /api/v1/customers/{username}`: change some profile fields; only
/// an admin may change `role`, nobody may change `username`.
fn update(ctx: &Context) -> Result<Response> {
    let username = ctx.param("username")?;
    let caller = ctx.require_self_or_admin(username)?;
    let customer = find(username)?;

    let mut form = ctx.form()?;
    if form.contains("role") && !caller.is_admin() {
        return Err(Error::forbidden("only an admin may change a role"));
    }
    if form.is_empty() {
        return Err(Error::bad_request(
            "the body must contain at least one field to change",
        ));
    }
    form.reject("username", "cannot be changed");
    form.reject(
        "wallet_balance",
        "cannot be changed here: use the wallet charge and deduct endpoints",
    );
    let full_name = form.optional("full_name", FullName::parse);
    let password = form.optional("password", Password::parse);
    let age = form.optional("age", Age::parse);
    let address = form.optional("address", Address::parse);
    let gender = form.optional("gender", Gender::parse);
    let marital_status = form.optional("marital_status", MaritalStatus::parse);
    let role = form.optional("role", accept::<Role>);
    let (full_name, password, age, address, gender, marital_status, role) = form.finish((
        full_name,
        password,
        age,
        address,
        gender,
        marital_status,
        role,
    ))?;

    if role == Some(Role::Customer) && customer.role == Role::Admin {
        keep_an_admin(&customer, "demoted")?;
    }
    let changes = Changes {
        full_name,
        password_hash: password.map(|p| credentials::hash_password(p.expose())),
        age,
        address,
        gender,
        marital_status,
        role,
    };
    let updated = store::update(&customer.id, &changes, &now_rfc3339())?.ok_or_else(not_found)?;
    events::updated(&customer, &updated, changes.password_hash.is_some())?;
    if let Some(role) = changes.role.filter(|role| *role != customer.role) {
        log::info!(
            "customer {} is now {} (changed by {})",
            updated.id,
            role.as_str(),
            caller.customer_id
        );
    }
    ok(&updated)
}

/// `DELETE /api/v1/customers/{username}`: remove the account. The row is
/// deleted, so the customer's tokens stop resolving at once and the
/// username can be registered again (by a new customer with a new id).
fn delete(ctx: &Context) -> Result<Response> {
    let customer = authorized_customer(ctx)?;
    if customer.role == Role::Admin {
        keep_an_admin(&customer, "deleted")?;
    }
    let forfeited = store::delete(&customer.id)?.ok_or_else(not_found)?;
    events::deleted(&customer, forfeited)?;
    log::info!(
        "customer {} deleted; forfeited wallet balance {forfeited}",
        customer.id
    );
    no_content()
}

/// Refuses (409 `last-admin`) to let `admin` stop being one when no other
/// admin would remain: nobody could then administer the shop. The admins'
/// rows stay locked until the request ends, so concurrent demotions of two
/// different admins cannot both pass.
fn keep_an_admin(admin: &Customer, what: &str) -> Result<()> {
    store::lock_admins()?;
    if store::other_admins(&admin.id)? == 0 {
        return Err(Error::conflict(
            "last-admin",
            format!(
                "`{}` is the last admin and cannot be {what}: make another customer an admin first",
                admin.username
            ),
        ));
    }
    Ok(())
}

/// The body of a wallet operation's response.
#[derive(Debug, Serialize)]
struct WalletBalance {
    username: String,
    wallet_balance: Cents,
}

/// `POST /api/v1/customers/{username}/wallet/charge`: add money.
fn charge(ctx: &Context) -> Result<Response> {
    let (customer, amount) = wallet_request(ctx)?;
    let wallet = store::credit(&customer.id, amount, &now_rfc3339())?.ok_or_else(not_found)?;
    events::charged(&customer.id, &wallet.username, amount, wallet.balance)?;
    ok(&WalletBalance {
        username: wallet.username,
        wallet_balance: wallet.balance,
    })
}

/// `POST /api/v1/customers/{username}/wallet/deduct`: take money out, never
/// below zero.
fn deduct(ctx: &Context) -> Result<Response> {
    let (customer, amount) = wallet_request(ctx)?;
    let Some(wallet) = store::debit(&customer.id, amount, &now_rfc3339())? else {
        return Err(Error::conflict(
            "insufficient-funds",
            format!(
                "the wallet balance ({}) is less than the amount ({amount})",
                customer.wallet_balance
            ),
        ));
    };
    events::deducted(&customer.id, &wallet.username, amount, wallet.balance)?;
    ok(&WalletBalance {
        username: wallet.username,
        wallet_balance: wallet.balance,
    })
}

/// The customer a wallet request names and its validated `{amount}`.
fn wallet_request(ctx: &Context) -> Result<(Customer, Cents)> {
    let customer = authorized_customer(ctx)?;
    let mut form = ctx.form()?;
    let amount = form.required("amount", Cents::positive);
    let amount = form.finish(amount)?;
    Ok((customer, amount))
}

/// The customer named in the path, if the caller is that customer or an admin.
fn authorized_customer(ctx: &Context) -> Result<Customer> {
    let username = ctx.param("username")?;
    ctx.require_self_or_admin(username)?;
    find(username)
}

/// The customer with this username, ignoring case. Text outside the
/// username pattern names no one, so it is not looked up (PostgreSQL
/// refuses some such text, e.g. a NUL).
fn find(username: &str) -> Result<Customer> {
    if Username::parse(username.to_owned()).is_err() {
        return Err(not_found());
    }
    store::find_by_username(username)?.ok_or_else(not_found)
}

fn not_found() -> Error {
    Error::not_found("no customer has this username")
}

/// Where a customer lives in the API. Usernames are `[A-Za-z0-9_]`, so no
/// percent-encoding is needed.
fn customer_path(username: &str) -> String {
    format!("/api/v1/customers/{username}")
}
