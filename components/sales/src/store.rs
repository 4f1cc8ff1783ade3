//! Every SQL statement of the sales service, on its tables `sales` and
//! `sales_idempotency_keys`, and rows to [`Sale`].

use serde::Serialize;
use souk_sdk::db::{self, DbError, Row, params};
use souk_sdk::{Cents, Describe, PageRequest, Positive, Timestamp};

use crate::domain::Quantity;

/// The columns of a sale, in the order [`Sale::from_row`] reads them.
const COLUMNS: &str = "id, customer_id, username, good_id, good_name, quantity, unit_price_cents, total_cents, created_at";

/// One purchase. Name and unit price are copied at the time of the sale,
/// so the record outlives changes to the good and its deletion.
// As stored, and (without `customer_id`) as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Describe)]
pub struct Sale {
    /// Opaque, stable id (UUIDv7).
    pub id: String,
    /// The buyer's account: history and permissions follow the account.
    #[serde(skip)]
    pub customer_id: String,
    /// The buyer's username.
    pub username: String,
    /// The good's id (the good may since have been deleted).
    pub good_id: String,
    /// The good's name at the time of the sale.
    pub good_name: String,
    /// Units bought.
    #[describe(with = Quantity)]
    pub quantity: i64,
    /// Dollars per unit at the time of the sale.
    #[describe(with = Positive)]
    pub unit_price: Cents,
    /// unit_price × quantity, computed in integer cents.
    #[describe(schema = Cents::schema().exclusive_minimum(0))]
    pub total: Cents,
    /// RFC 3339, UTC.
    #[describe(with = Timestamp)]
    pub created_at: String,
}

impl Sale {
    fn from_row(row: &Row) -> Result<Sale, DbError> {
        Ok(Sale {
            id: row.text("id")?,
            customer_id: row.text("customer_id")?,
            username: row.text("username")?,
            good_id: row.text("good_id")?,
            good_name: row.text("good_name")?,
            quantity: row.int("quantity")?,
            unit_price: row.cents("unit_price_cents")?,
            total: row.cents("total_cents")?,
            created_at: row.text("created_at")?,
        })
    }
}

fn sales(rows: db::Rows) -> Result<Vec<Sale>, DbError> {
    rows.map(|row| Sale::from_row(&row))
}

/// Records `sale` as given.
pub fn insert(sale: &Sale) -> Result<Sale, DbError> {
    let row = db::query_one(
        &format!(
            "INSERT INTO sales ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             RETURNING {COLUMNS}"
        ),
        params![
            &sale.id,
            &sale.customer_id,
            &sale.username,
            &sale.good_id,
            &sale.good_name,
            sale.quantity,
            sale.unit_price,
            sale.total,
            &sale.created_at,
        ],
    )?;
    Sale::from_row(&row)
}

/// The sale with this id.
pub fn find(id: &str) -> Result<Option<Sale>, DbError> {
    db::query_opt(
        &format!("SELECT {COLUMNS} FROM sales WHERE id = $1"),
        params![id],
    )?
    .map(|row| Sale::from_row(&row))
    .transpose()
}

/// A page of the sales of customer `customer_id`, newest first, with how
/// many they have in all.
pub fn history(customer_id: &str, page: PageRequest) -> Result<(Vec<Sale>, i64), DbError> {
    let total = db::query_one(
        "SELECT count(*) AS total FROM sales WHERE customer_id = $1",
        params![customer_id],
    )?
    .int("total")?;
    let items = sales(db::query(
        &format!(
            "SELECT {COLUMNS} FROM sales WHERE customer_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        ),
        params![customer_id, page.limit, page.offset],
    )?)?;
    Ok((items, total))
}

/// At most `limit` sales of customer `customer_id`, newest first.
pub fn recent_of(customer_id: &str, limit: i64) -> Result<Vec<Sale>, DbError> {
    sales(db::query(
        &format!(
            "SELECT {COLUMNS} FROM sales WHERE customer_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        ),
        params![customer_id, limit],
    )?)
}

/// At most `limit` sales of anyone, newest first.
pub fn recent(limit: i64) -> Result<Vec<Sale>, DbError> {
    sales(db::query(
        &format!("SELECT {COLUMNS} FROM sales ORDER BY created_at DESC, id DESC LIMIT $1"),
        params![limit],
    )?)
}

/// Whether customer `customer_id` has bought good `good_id` at least once.
pub fn has_purchased(customer_id: &str, good_id: &str) -> Result<bool, DbError> {
    Ok(db::query_opt(
        "SELECT id FROM sales WHERE customer_id = $1 AND good_id = $2 LIMIT 1",
        params![customer_id, good_id],
    )?
    .is_some())
}

/// What was remembered for an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    /// The purchase the key was first used for.
    pub fingerprint: String,
    /// The sale it made.
    pub sale_id: Option<String>,
    /// The body of the first answer.
    pub response: Option<String>,
}

/// Claims `key` for `customer_id` (the caller): `true` if this request is
/// the first to use it, `false` if it was used before.
///
/// One statement that never fails on a duplicate: on PostgreSQL a
/// concurrent request holding the same key makes this wait until that
/// request ends, and then either claim the key (it rolled back) or see it
/// taken (it committed), without aborting this transaction.
pub fn claim_key(
    customer_id: &str,
    key: &str,
    fingerprint: &str,
    now: &str,
) -> Result<bool, DbError> {
    let rows = db::query(
        "INSERT INTO sales_idempotency_keys (customer_id, idempotency_key, fingerprint, created_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (customer_id, idempotency_key) DO NOTHING \
         RETURNING customer_id",
        params![customer_id, key, fingerprint, now],
    )?;
    Ok(!rows.is_empty())
}

/// What `key` of `customer_id` was used for, if anything.
pub fn remembered(customer_id: &str, key: &str) -> Result<Option<Remembered>, DbError> {
    db::query_opt(
        "SELECT fingerprint, sale_id, response FROM sales_idempotency_keys \
         WHERE customer_id = $1 AND idempotency_key = $2",
        params![customer_id, key],
    )?
    .map(|row| {
        Ok(Remembered {
            fingerprint: row.text("fingerprint")?,
            sale_id: row.opt_text("sale_id")?,
            response: row.opt_text("response")?,
        })
    })
    .transpose()
}

/// Stores the sale and the answer of the purchase that claimed `key`.
pub fn remember(
    customer_id: &str,
    key: &str,
    sale_id: &str,
    response: &str,
) -> Result<(), DbError> {
    let changed = db::execute(
        "UPDATE sales_idempotency_keys SET sale_id = $1, response = $2 \
         WHERE customer_id = $3 AND idempotency_key = $4",
        params![sale_id, response, customer_id, key],
    )?;
    if changed == 1 {
        Ok(())
    } else {
        Err(DbError::Failed(format!(
            "the claimed idempotency key matched {changed} rows"
        )))
    }
}
