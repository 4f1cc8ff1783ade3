//! The `customers` table: every statement this component runs, and the
//! mapping between rows and [`Customer`].
//!
//! Usernames are looked up with `lower(username) = lower($1)`, the same
//! expression as the unique index, so lookups and uniqueness agree on both
//! SQLite and PostgreSQL.

use serde::Serialize;
use souk_sdk::db::{self, DbError, Row, Value, params};
use souk_sdk::{Cents, Describe, Identity, PageRequest, Role, Timestamp};

use crate::domain::{Address, Age, FullName, Gender, MaritalStatus, Username};

/// The columns of [`Customer`], in `SELECT` and `RETURNING` clauses.
const COLUMNS: &str = "id, username, full_name, age, address, gender, marital_status, \
                       wallet_cents, role, created_at, updated_at";

/// A customer. A password or its hash never appears.
// There is deliberately no password hash here: it is read only by
// [`find_credentials`].
#[derive(Debug, Clone, Serialize, Describe)]
pub struct Customer {
    /// Opaque, stable id (UUIDv7), never reused.
    pub id: String,
    /// Unique ignoring case; kept in the case it was registered with.
    #[describe(with = Username)]
    pub username: String,
    /// 1 to 100 characters after trimming; no control characters.
    #[describe(with = FullName)]
    pub full_name: String,
    /// Years; null only for an admin created by the operator who has not
    /// set it yet.
    #[describe(with = Age)]
    pub age: Option<i64>,
    /// null only for an admin created by the operator who has not set it
    /// yet.
    #[describe(with = Address)]
    pub address: Option<String>,
    /// Lower case.
    #[describe(with = Gender)]
    pub gender: String,
    /// Lower case.
    #[describe(with = MaritalStatus)]
    pub marital_status: String,
    /// Dollars as a JSON number with at most 2 decimal places.
    #[describe(schema = Cents::schema().minimum(0))]
    pub wallet_balance: Cents,
    /// `customer` or `admin`.
    pub role: Role,
    /// RFC 3339, UTC.
    #[describe(with = Timestamp)]
    pub created_at: String,
    /// RFC 3339, UTC: the last change to the profile, role or wallet.
    #[describe(with = Timestamp)]
    pub updated_at: String,
}

impl Customer {
    fn from_row(row: &Row) -> Result<Customer, DbError> {
        Ok(Customer {
            id: row.text("id")?,
            username: row.text("username")?,
            full_name: row.text("full_name")?,
            age: row.opt_int("age")?,
            address: row.opt_text("address")?,
            gender: row.text("gender")?,
            marital_status: row.text("marital_status")?,
            wallet_balance: row.cents("wallet_cents")?,
            role: role(row)?,
            created_at: row.text("created_at")?,
            updated_at: row.text("updated_at")?,
        })
    }

    /// Who this customer is, as the host passes callers to components.
    pub fn identity(&self) -> Identity {
        Identity {
            customer_id: self.id.clone(),
            username: self.username.clone(),
            role: self.role,
        }
    }
}

fn role(row: &Row) -> Result<Role, DbError> {
    let name = row.text("role")?;
    Role::from_name(&name).ok_or_else(|| DbError::Failed(format!("unknown role `{name}` stored")))
}

fn identity(row: &Row) -> Result<Identity, DbError> {
    Ok(Identity {
        customer_id: row.text("id")?,
        username: row.text("username")?,
        role: role(row)?,
    })
}

/// A registration that passed validation.
#[derive(Debug)]
pub struct NewCustomer<'a> {
    /// Fresh UUIDv7.
    pub id: &'a str,
    /// The requested username.
    pub username: &'a Username,
    /// The full name.
    pub full_name: &'a str,
    /// Age, absent only for operator-created admins.
    pub age: Option<Age>,
    /// Address, absent only for operator-created admins.
    pub address: Option<&'a Address>,
    /// Gender.
    pub gender: Gender,
    /// Marital status.
    pub marital_status: MaritalStatus,
    /// Role: `customer` for every registration.
    pub role: Role,
    /// Argon2id PHC string from the host.
    pub password_hash: &'a str,
    /// Creation time, also the first `updated_at`.
    pub now: &'a str,
}

/// Inserts a customer with an empty wallet. A taken username (ignoring case)
/// fails with a unique constraint violation.
pub fn insert(new: &NewCustomer<'_>) -> Result<Customer, DbError> {
    let (sql, params) = insert_statement(new);
    Customer::from_row(&db::query_one(&sql, &params)?)
}

/// The INSERT for `new`. A missing age or address is written as a `NULL`
/// literal rather than a NULL parameter: PostgreSQL types a parameter from
/// the value the host binds, and a NULL bound as text does not fit `age`.
fn insert_statement(new: &NewCustomer<'_>) -> (String, Vec<Value>) {
    let mut params: Vec<Value> = Vec::new();
    let mut slot = |value: Option<Value>| match value {
        Some(value) => {
            params.push(value);
            format!("${}", params.len())
        }
        None => "NULL".to_owned(),
    };
    let values = [
        slot(Some(new.id.into())),
        slot(Some(new.username.as_str().into())),
        slot(Some(new.full_name.into())),
        slot(new.age.map(|age| age.years().into())),
        slot(new.address.map(|address| address.as_str().into())),
        slot(Some(new.gender.as_str().into())),
        slot(Some(new.marital_status.as_str().into())),
        "0".to_owned(),
        slot(Some(new.role.as_str().into())),
        slot(Some(new.password_hash.into())),
        slot(Some(new.now.into())),
    ];
    let now = &values[10];
    let sql = format!(
        "INSERT INTO customers (id, username, full_name, age, address, gender, \
         marital_status, wallet_cents, role, password_hash, created_at, updated_at) \
         VALUES ({}, {now}) RETURNING {COLUMNS}",
        values.join(", ")
    );
    (sql, params)
}

/// Whether a customer has this username, ignoring case.
pub fn username_exists(username: &str) -> Result<bool, DbError> {
    let row = db::query_opt(
        "SELECT id FROM customers WHERE lower(username) = lower($1)",
        params![username],
    )?;
    Ok(row.is_some())
}

/// The customer with this username, ignoring case.
pub fn find_by_username(username: &str) -> Result<Option<Customer>, DbError> {
    db::query_opt(
        &format!("SELECT {COLUMNS} FROM customers WHERE lower(username) = lower($1)"),
        params![username],
    )?
    .map(|row| Customer::from_row(&row))
    .transpose()
}

/// The customer with this id.
pub fn find_by_id(id: &str) -> Result<Option<Customer>, DbError> {
    db::query_opt(
        &format!("SELECT {COLUMNS} FROM customers WHERE id = $1"),
        params![id],
    )?
    .map(|row| Customer::from_row(&row))
    .transpose()
}

/// What login needs of a customer: who they are, the hash to verify and
/// the token epoch to issue the token at.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The customer's current identity.
    pub identity: Identity,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// See [`Account::token_epoch`].
    pub token_epoch: u64,
}

/// The credentials of the customer with this username, ignoring case, for
/// login.
pub fn find_credentials(username: &str) -> Result<Option<Credentials>, DbError> {
    db::query_opt(
        "SELECT id, username, role, password_hash, token_epoch FROM customers \
         WHERE lower(username) = lower($1)",
        params![username],
    )?
    .map(|row| {
        Ok(Credentials {
            identity: identity(&row)?,
            password_hash: row.text("password_hash")?,
            token_epoch: token_epoch(&row)?,
        })
    })
    .transpose()
}

/// A customer as the host admits their tokens.
#[derive(Debug, Clone)]
pub struct Account {
    /// The customer's current identity.
    pub identity: Identity,
    /// Bumped whenever the role or password changes; tokens from an earlier
    /// epoch are refused by the host.
    pub token_epoch: u64,
}

/// The current account of the customer with this id.
pub fn find_account(id: &str) -> Result<Option<Account>, DbError> {
    db::query_opt(
        "SELECT id, username, role, token_epoch FROM customers WHERE id = $1",
        params![id],
    )?
    .map(|row| {
        Ok(Account {
            identity: identity(&row)?,
            token_epoch: token_epoch(&row)?,
        })
    })
    .transpose()
}

fn token_epoch(row: &Row) -> Result<u64, DbError> {
    let epoch = row.int("token_epoch")?;
    u64::try_from(epoch)
        .map_err(|_| DbError::Failed(format!("negative token epoch {epoch} stored")))
}

/// Locks every admin's row until the request ends, so two requests that
/// each demote or delete a different admin cannot both see the other as
/// "still an admin" and leave none (on PostgreSQL the second waits and then
/// sees the first's change; SQLite runs writers one at a time anyway).
pub fn lock_admins() -> Result<(), DbError> {
    db::execute(
        "UPDATE customers SET role = role WHERE role = $1",
        params![Role::Admin.as_str()],
    )
    .map(drop)
}

/// How many admins there are besides customer `id`.
pub fn other_admins(id: &str) -> Result<i64, DbError> {
    db::query_one(
        "SELECT count(*) AS admins FROM customers WHERE role = $1 AND id <> $2",
        params![Role::Admin.as_str(), id],
    )?
    .int("admins")
}

/// The `LIKE` pattern matching `text` anywhere, lower-cased, with `!` as the
/// escape character (a backslash means different things to different SQL
/// dialects and parsers).
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '!' | '%' | '_') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// A page of customers ordered by username (ignoring case), optionally only
/// those whose username or full name contains `search` ignoring case, with
/// the total count of matches.
pub fn list(search: Option<&str>, page: PageRequest) -> Result<(Vec<Customer>, i64), DbError> {
    const FILTER: &str =
        "WHERE lower(username) LIKE $1 ESCAPE '!' OR lower(full_name) LIKE $1 ESCAPE '!'";
    let (filter, mut params): (&str, Vec<Value>) = match search {
        Some(text) => (FILTER, vec![contains_pattern(text).into()]),
        None => ("", Vec::new()),
    };
    let total = db::query_one(
        &format!("SELECT count(*) AS total FROM customers {filter}"),
        &params,
    )?
    .int("total")?;
    let (limit, offset) = (params.len() + 1, params.len() + 2);
    params.extend([page.limit.into(), page.offset.into()]);
    let customers = db::query(
        &format!(
            "SELECT {COLUMNS} FROM customers {filter} \
             ORDER BY lower(username) LIMIT ${limit} OFFSET ${offset}"
        ),
        &params,
    )?
    .map(|row| Customer::from_row(&row))?;
    Ok((customers, total))
}

/// A validated partial update; `None` leaves a column as it is.
#[derive(Debug, Default)]
pub struct Changes {
    /// New full name.
    pub full_name: Option<FullName>,
    /// Hash of the new password.
    pub password_hash: Option<String>,
    /// New age.
    pub age: Option<Age>,
    /// New address.
    pub address: Option<Address>,
    /// New gender.
    pub gender: Option<Gender>,
    /// New marital status.
    pub marital_status: Option<MaritalStatus>,
    /// New role (admins only; the handler checks).
    pub role: Option<Role>,
}

impl Changes {
    /// The columns to set and their values, in a fixed order.
    fn assignments(&self) -> Vec<(&'static str, Value)> {
        let mut set: Vec<(&'static str, Value)> = Vec::new();
        if let Some(v) = &self.full_name {
            set.push(("full_name", v.as_str().into()));
        }
        if let Some(v) = &self.password_hash {
            set.push(("password_hash", v.into()));
        }
        if let Some(v) = self.age {
            set.push(("age", v.years().into()));
        }
        if let Some(v) = &self.address {
            set.push(("address", v.as_str().into()));
        }
        if let Some(v) = self.gender {
            set.push(("gender", v.as_str().into()));
        }
        if let Some(v) = self.marital_status {
            set.push(("marital_status", v.as_str().into()));
        }
        if let Some(v) = self.role {
            set.push(("role", v.as_str().into()));
        }
        set
    }
}

/// The UPDATE statement for `changes` to customer `id` at `now`: only the
/// columns that change are named, so no statement relies on how a backend
/// types a NULL parameter.
fn update_statement(changes: &Changes, id: &str, now: &str) -> (String, Vec<Value>) {
    let mut assignments = changes.assignments();
    assignments.push(("updated_at", now.into()));
    let mut sql = String::from("UPDATE customers SET ");
    let mut params = Vec::with_capacity(assignments.len() + 1);
    for (index, (column, value)) in assignments.into_iter().enumerate() {
        if index > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("{column} = ${}", index + 1));
        params.push(value);
    }
    // Tokens carry the privileges of the moment they were issued: a new
    // password or a different role ends every earlier token. (`role` on
    // the right is the value before this update.)
    if changes.password_hash.is_some() {
        sql.push_str(", token_epoch = token_epoch + 1");
    } else if let Some(role) = changes.role {
        sql.push_str(&format!(
            ", token_epoch = token_epoch + CASE WHEN role = ${} THEN 0 ELSE 1 END",
            params.len() + 1
        ));
        params.push(role.as_str().into());
    }
    sql.push_str(&format!(
        " WHERE id = ${} RETURNING {COLUMNS}",
        params.len() + 1
    ));
    params.push(id.into());
    (sql, params)
}

/// Applies `changes` to customer `id`; `None` if the customer is gone.
pub fn update(id: &str, changes: &Changes, now: &str) -> Result<Option<Customer>, DbError> {
    let (sql, params) = update_statement(changes, id, now);
    db::query_opt(&sql, &params)?
        .map(|row| Customer::from_row(&row))
        .transpose()
}

/// Deletes customer `id`: the wallet balance it had when it was deleted
/// (read by the DELETE itself, so no concurrent charge is missed), or
/// `None` if there was no such customer.
pub fn delete(id: &str) -> Result<Option<Cents>, DbError> {
    db::query_opt(
        "DELETE FROM customers WHERE id = $1 RETURNING wallet_cents",
        params![id],
    )?
    .map(|row| row.cents("wallet_cents"))
    .transpose()
}

/// A wallet after a charge or a debit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    /// Whose (for events: the debit export knows only the id).
    pub username: String,
    /// The balance after.
    pub balance: Cents,
}

fn wallet(row: &Row) -> Result<Wallet, DbError> {
    Ok(Wallet {
        username: row.text("username")?,
        balance: row.cents("wallet_cents")?,
    })
}

/// Adds `amount` to the wallet of customer `id`: the wallet after, or
/// `None` if the customer is gone.
pub fn credit(id: &str, amount: Cents, now: &str) -> Result<Option<Wallet>, DbError> {
    db::query_opt(
        "UPDATE customers SET wallet_cents = wallet_cents + $1, updated_at = $2 \
         WHERE id = $3 RETURNING username, wallet_cents",
        params![amount, now, id],
    )?
    .map(|row| wallet(&row))
    .transpose()
}

/// Takes `amount` from the wallet of customer `id` if the balance covers
/// it, in one conditional statement (no read-then-write race): the wallet
/// after, or `None` if the balance is too low or the customer is gone.
pub fn debit(id: &str, amount: Cents, now: &str) -> Result<Option<Wallet>, DbError> {
    db::query_opt(
        "UPDATE customers SET wallet_cents = wallet_cents - $1, updated_at = $2 \
         WHERE id = $3 AND wallet_cents >= $1 RETURNING username, wallet_cents",
        params![amount, now, id],
    )?
    .map(|row| wallet(&row))
    .transpose()
}

/// Makes customer `id` an admin with a new password hash, ending every
/// token they held.
pub fn promote(id: &str, password_hash: &str, now: &str) -> Result<Option<Identity>, DbError> {
    db::query_opt(
        "UPDATE customers SET role = $1, password_hash = $2, updated_at = $3, \
         token_epoch = token_epoch + 1 WHERE id = $4 RETURNING id, username, role",
        params![Role::Admin.as_str(), password_hash, now, id],
    )?
    .map(|row| identity(&row))
    .transpose()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use souk_sdk::Field;

    #[test]
    fn search_patterns_escape_like_wildcards() {
        assert_eq!(contains_pattern("Ada"), "%ada%");
        assert_eq!(contains_pattern("50%_off!"), "%50!%!_off!!%");
        assert_eq!(contains_pattern("ÉLODIE"), "%élodie%");
    }

    fn registration<'a>(username: &'a Username, address: Option<&'a Address>) -> NewCustomer<'a> {
        NewCustomer {
            id: "c1",
            username,
            full_name: "Ada",
            age: address.map(|_| Age::parse(36).unwrap()),
            address,
            gender: Gender::Female,
            marital_status: MaritalStatus::Single,
            role: Role::Customer,
            password_hash: "hash",
            now: "2026-11-21T10:00:00Z",
        }
    }

    #[test]
    fn inserts_bind_every_given_value() {
        let username = Username::parse("ada".into()).unwrap();
        let address = Address::parse("1 Main St".into()).unwrap();
        let (sql, params) = insert_statement(&registration(&username, Some(&address)));
        assert!(
            sql.contains("VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10, $10) RETURNING"),
            "{sql}"
        );
        assert_eq!(params.len(), 10);
        assert_eq!(params[3], Value::Integer(36));
        assert_eq!(params[4], Value::Text("1 Main St".into()));
    }

    #[test]
    fn inserts_without_age_and_address_use_null_literals() {
        let username = Username::parse("root".into()).unwrap();
        let (sql, params) = insert_statement(&registration(&username, None));
        assert!(
            sql.contains("VALUES ($1, $2, $3, NULL, NULL, $4, $5, 0, $6, $7, $8, $8) RETURNING"),
            "{sql}"
        );
        assert_eq!(params.len(), 8);
        assert!(!params.contains(&Value::Null));
    }

    #[test]
    fn updates_name_only_the_changed_columns() {
        let changes = Changes {
            age: Some(Age::parse(40).unwrap()),
            role: Some(Role::Admin),
            ..Changes::default()
        };
        let (sql, params) = update_statement(&changes, "c1", "2026-11-21T10:00:00Z");
        assert_eq!(
            sql,
            format!(
                "UPDATE customers SET age = $1, role = $2, updated_at = $3, \
                 token_epoch = token_epoch + CASE WHEN role = $4 THEN 0 ELSE 1 END \
                 WHERE id = $5 RETURNING {COLUMNS}"
            )
        );
        assert_eq!(
            params,
            vec![
                Value::Integer(40),
                Value::Text("admin".into()),
                Value::Text("2026-11-21T10:00:00Z".into()),
                Value::Text("admin".into()),
                Value::Text("c1".into()),
            ]
        );
    }

    #[test]
    fn a_new_password_ends_every_earlier_token() {
        let changes = Changes {
            password_hash: Some("$argon2id$...".into()),
            role: Some(Role::Admin),
            ..Changes::default()
        };
        let (sql, params) = update_statement(&changes, "c1", "2026-11-21T10:00:00Z");
        assert!(
            sql.contains(", token_epoch = token_epoch + 1 WHERE id = $4"),
            "{sql}"
        );
        assert_eq!(params.len(), 4);
        let (sql, _) = update_statement(
            &Changes {
                age: Some(Age::parse(40).unwrap()),
                ..Changes::default()
            },
            "c1",
            "2026-11-21T10:00:00Z",
        );
        assert!(!sql.contains("token_epoch"), "{sql}");
    }

    #[test]
    fn every_change_has_its_column() {
        let changes = Changes {
            full_name: Some(FullName::parse("Ada".into()).unwrap()),
            password_hash: Some("$argon2id$...".into()),
            age: Some(Age::parse(36).unwrap()),
            address: Some(Address::parse("1 Main St".into()).unwrap()),
            gender: Some(Gender::Female),
            marital_status: Some(MaritalStatus::Married),
            role: Some(Role::Customer),
        };
        let columns: Vec<_> = changes.assignments().into_iter().map(|(c, _)| c).collect();
        assert_eq!(
            columns,
            vec![
                "full_name",
                "password_hash",
                "age",
                "address",
                "gender",
                "marital_status",
                "role"
            ]
        );
    }
}
