//! The HTTP routes of the customers service (API.md, "Authentication" and
//! "Customers"): login, registration, profiles and wallets.
//!
//! Every handler checks who may call it before it looks anything up, so a
//! customer asking about someone else gets 403 whether or not that someone
//! exists; an admin gets 404 for a username nobody has.

use serde::Serialize;
use serde_json::json;
use souk_sdk::error::OnConstraint;
use souk_sdk::route::service_slugs;
use souk_sdk::{
    Body, Caller, Cents, Context, Describe, Error, ErrorKind, Field, FieldError, Positive,
    Response, Result, Role, Route, Router, Schema, created, credentials, log, no_content,
    now_rfc3339, ok, page, tokens,
};

use crate::domain::{Address, Age, FullName, Gender, MaritalStatus, Password, Username};
use crate::events;
use crate::store::{self, Changes, Customer, NewCustomer};

/// Every route this component serves, with its documentation.
pub fn router() -> Router {
    Router::new("customers")
        .path_param(
            "username",
            "The customer's username, matched ignoring case.",
        )
        .route(
            Route::post("/api/v1/customers", register)
                .operation("registerCustomer", "Register a customer")
                .description(
                    "Anyone may register. Every new account has the role `customer` and an \
                     empty wallet; `role` and `wallet_balance` may not be sent.",
                )
                .body(profile(
                    Body::object(
                        "NewCustomer",
                        "A registration. Every field is required; any other field is rejected.",
                    )
                    .required::<FullName>("full_name")
                    .required::<Username>("username")
                    .required::<Password>("password"),
                    true,
                ))
                .created::<Customer>("The new customer.")
                .header("Location", "`/api/v1/customers/{username}`")
                .error(USERNAME_TAKEN),
        )
        .route(
            Route::get("/api/v1/customers", list)
                .operation("listCustomers", "List customers (admin)")
                .description("A page of customers ordered by username, ignoring case.")
                .caller(Caller::Admin)
                .query::<String>(
                    "q",
                    "Keep only customers whose username or full name contains this text, \
                     ignoring case.",
                )
                .page::<Customer>("CustomerPage", "A page of customers."),
        )
        .route(
            Route::get("/api/v1/customers/{username}", show)
                .operation("getCustomer", "Get a customer (self or admin)")
                .caller(Caller::SelfOrAdmin)
                .ok::<Customer>("The customer.")
                .error(NOT_FOUND),
        )
        .route(
            Route::patch("/api/v1/customers/{username}", update)
                .operation(
                    "updateCustomer",
                    "Change a customer's profile (self or admin)",
                )
                .description(
                    "Changes any subset of `full_name`, `password`, `age`, `address`, `gender` \
                     and `marital_status`, with the registration rules. Only an admin may \
                     change `role` (anyone else sending `role` gets 403). `username` cannot \
                     change (400), an empty object is 400, and unknown fields are 400.",
                )
                .caller(Caller::SelfOrAdmin)
                .body(
                    profile(
                        Body::changes(
                            "CustomerChanges",
                            "The fields to change, at least one. `username` cannot be changed; \
                             `role` only by an admin.",
                        )
                        .optional::<FullName>("full_name")
                        .optional::<Password>("password"),
                        false,
                    )
                    .optional::<Role>("role")
                    .doc("`customer` or `admin` (any case). Admins only."),
                )
                .ok::<Customer>("The customer after the change.")
                .error(ROLE_FORBIDDEN)
                .error(NOT_FOUND)
                .error(LAST_ADMIN),
        )
        .route(
            Route::delete("/api/v1/customers/{username}", delete)
                .operation("deleteCustomer", "Delete a customer (self or admin)")
                .description(
                    "Deletes the account and its personal data. The customer's tokens stop \
                     working at once. Past sales stay in the sales history. Any wallet balance \
                     is forfeited. The username becomes free to register again, by a new \
                     customer with a new id.",
                )
                .caller(Caller::SelfOrAdmin)
                .no_content("Deleted.")
                .error(NOT_FOUND)
                .error(LAST_ADMIN),
        )
        .route(
            Route::post("/api/v1/customers/{username}/wallet/charge", charge)
                .operation("chargeWallet", "Add money to a wallet (self or admin)")
                .tag("wallet")
                .caller(Caller::SelfOrAdmin)
                .body(wallet_amount())
                .ok::<WalletBalance>("The new balance.")
                .error(NOT_FOUND),
        )
        .route(
            Route::post("/api/v1/customers/{username}/wallet/deduct", deduct)
                .operation("deductWallet", "Take money out of a wallet (self or admin)")
                .description(
                    "The balance never goes below zero: an amount above the balance is \
                     refused with 409 and changes nothing.",
                )
                .tag("wallet")
                .caller(Caller::SelfOrAdmin)
                .body(wallet_amount())
                .ok::<WalletBalance>("The new balance.")
                .error(NOT_FOUND)
                .error(INSUFFICIENT_FUNDS),
        )
        .route(
            Route::post("/api/v1/auth/login", login)
                .operation("login", "Log in and get a bearer token")
                .description(
                    "Checks a username (ignoring case) and password. An unknown username and a \
                     wrong password get the same 401. Repeated failures are rate limited (429).",
                )
                .tag("auth")
                .body(
                    Body::object("LoginRequest", "")
                        .required::<String>("username")
                        .doc("Matched ignoring case.")
                        .required::<String>("password")
                        .write_only(),
                )
                .ok::<TokenResponse>("A bearer token for the `Authorization` header.")
                .header("Cache-Control", "`no-store`: tokens must not be cached.")
                .error(BAD_CREDENTIALS)
                .rate_limited(
                    "Too many failed logins for this username or client; see `Retry-After`.",
                ),
        )
}

/// The profile fields every registration has and a change may have
/// (`required` for a registration), after name and password.
fn profile(body: Body, required: bool) -> Body {
    if required {
        body.required::<Age>("age")
            .required::<Address>("address")
            .required::<Gender>("gender")
            .required::<MaritalStatus>("marital_status")
    } else {
        body.optional::<Age>("age")
            .optional::<Address>("address")
            .optional::<Gender>("gender")
            .optional::<MaritalStatus>("marital_status")
    }
}

/// `{amount}` of a wallet operation.
fn wallet_amount() -> Body {
    Body::object("WalletAmount", "").required::<Positive>("amount")
}

/// The 404 for a username no one has.
const NOT_FOUND: ErrorKind = ErrorKind::not_found("No customer has this username, ignoring case.");

/// The 409 for a username someone already has, ignoring case.
const USERNAME_TAKEN: ErrorKind =
    ErrorKind::conflict("username-taken", "The username is taken, ignoring case.");

/// The 409 for leaving the shop without an admin.
const LAST_ADMIN: ErrorKind = ErrorKind::conflict(
    "last-admin",
    "The change would leave no admin (the customer is the last one): make another customer an \
     admin first.",
);

/// The 409 for deducting more than the balance.
pub(crate) const INSUFFICIENT_FUNDS: ErrorKind = ErrorKind::conflict(
    service_slugs::INSUFFICIENT_FUNDS,
    "The balance is less than the amount.",
);

/// The 403 for a role change by someone who is not an admin.
const ROLE_FORBIDDEN: ErrorKind = ErrorKind::forbidden("A non-admin sent `role`.");

/// The 401 for a login that fails.
const BAD_CREDENTIALS: ErrorKind = ErrorKind::unauthorized("Unknown username or wrong password.");

/// The 409 for a username someone already has, ignoring case.
pub fn username_taken() -> Error {
    USERNAME_TAKEN.error("this username is already taken")
}

/// A bearer token (an OAuth 2.0 token response).
#[derive(Debug, Serialize, Describe)]
#[describe(name = "AccessToken")]
struct TokenResponse {
    /// HS256 JWT to send as `Authorization: Bearer <token>`.
    access_token: String,
    /// Always `Bearer`.
    #[describe(schema = Schema::string().with("const", json!(TokenResponse::TYPE)))]
    token_type: &'static str,
    /// Seconds until the token expires.
    expires_in: u32,
}

impl TokenResponse {
    /// The only token type issued.
    const TYPE: &'static str = "Bearer";
}

/// `POST /api/v1/auth/login`: a bearer token for a username and password.
fn login(ctx: &Context) -> Result<Response> {
    let mut form = ctx.form()?;
    let username = form.required::<String>("username");
    let password = form.required::<String>("password");
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
        return Err(BAD_CREDENTIALS.error("invalid username or password"));
    };
    let identity = account.identity;
    let token = tokens::issue(&identity, account.token_epoch);
    log::info!("customer {} logged in", identity.customer_id);
    Ok(ok(&TokenResponse {
        access_token: token.token,
        token_type: TokenResponse::TYPE,
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
    let full_name = form.required::<FullName>("full_name");
    let username = form.required::<Username>("username");
    let password = form.required::<Password>("password");
    let age = form.required::<Age>("age");
    let address = form.required::<Address>("address");
    let gender = form.required::<Gender>("gender");
    let marital_status = form.required::<MaritalStatus>("marital_status");
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
        return Err(ROLE_FORBIDDEN.error("only an admin may change a role"));
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
    let full_name = form.optional::<FullName>("full_name");
    let password = form.optional::<Password>("password");
    let age = form.optional::<Age>("age");
    let address = form.optional::<Address>("address");
    let gender = form.optional::<Gender>("gender");
    let marital_status = form.optional::<MaritalStatus>("marital_status");
    let role = form.optional::<Role>("role");
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
        return Err(LAST_ADMIN.error(format!(
            "`{}` is the last admin and cannot be {what}: make another customer an admin first",
            admin.username
        )));
    }
    Ok(())
}

/// A wallet's balance after an operation.
#[derive(Debug, Serialize, Describe)]
struct WalletBalance {
    /// The customer's username as registered.
    username: String,
    /// Dollars as a JSON number with at most 2 decimal places.
    #[describe(schema = Cents::schema().minimum(0))]
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
        return Err(INSUFFICIENT_FUNDS.error(format!(
            "the wallet balance ({}) is less than the amount ({amount})",
            customer.wallet_balance
        )));
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
    let amount = form.required::<Positive>("amount");
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
    NOT_FOUND.error("no customer has this username")
}

/// Where a customer lives in the API. Usernames are `[A-Za-z0-9_]`, so no
/// percent-encoding is needed.
fn customer_path(username: &str) -> String {
    format!("/api/v1/customers/{username}")
}
