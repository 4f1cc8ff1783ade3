//! The route `GET /api/v1/recommendations/{username}?limit=5` (API.md,
//! "Extensions"): who may ask, the `limit`, and gathering the facts the
//! ranking in [`crate::scoring`] runs on.
//!
//! The facts are read through the service interfaces, in the request's
//! transaction: the newest [`PURCHASE_WINDOW`] purchases of everyone plus
//! the customer's own newest [`OWN_PURCHASES`] (so that nothing the customer
//! bought is recommended back even when the shop is busy), the newest
//! [`RATING_WINDOW`] approved ratings, and the goods those name, as the
//! inventory has them now.
//!
//! Purchases are keyed by customer id and this component may not look
//! customers up, so it can only work out recommendations for the caller's
//! own account: an admin asking about someone else gets 404 until the
//! component is granted `customers-api`.

use std::collections::BTreeSet;

use serde::Serialize;
use souk_sdk::{Cents, Context, Error, Identity, Response, Result, Router, ok};

use crate::bindings::souk::platform::{customers_api, inventory_api, reviews_api, sales_api};
use crate::scoring::{self, Catalog, Listing};

/// How many of everyone's purchases the similarities are computed over.
pub const PURCHASE_WINDOW: u32 = 5_000;
/// How many of the customer's own purchases are read.
pub const OWN_PURCHASES: u32 = 1_000;
/// How many approved ratings the similarities are computed over.
pub const RATING_WINDOW: u32 = 5_000;
/// `limit` when the client gives none.
const DEFAULT_LIMIT: usize = 5;
/// The largest `limit` a client may ask for.
const MAX_LIMIT: usize = 50;

/// Every route this component serves.
pub fn router() -> Router {
    Router::new().get("/api/v1/recommendations/{username}", recommendations)
}

/// The response body.
#[derive(Debug, Serialize)]
struct Recommendations {
    items: Vec<Item>,
}

/// One recommended good.
#[derive(Debug, Serialize)]
struct Item {
    good_id: String,
    name: String,
    price: Cents,
    score: f64,
    reason: String,
}

/// `GET /api/v1/recommendations/{username}`: for the customer themselves
/// or an admin.
fn recommendations(ctx: &Context) -> Result<Response> {
    let username = ctx.param("username")?;
    let caller = ctx.require_self_or_admin(username)?;
    let limit = limit(ctx)?;
    let customer = customer_id(caller, username)?;
    let customer = customer.as_str();

    let recent = sales_api::all_purchases(PURCHASE_WINDOW)?;
    let own = sales_api::purchases_of(customer, OWN_PURCHASES)?;
    let approved = reviews_api::approved_ratings(RATING_WINDOW)?;

    let in_window: BTreeSet<&str> = recent.iter().map(|p| p.sale_id.as_str()).collect();
    let purchases: Vec<scoring::Purchase<'_>> = recent
        .iter()
        .chain(
            own.iter()
                .filter(|p| !in_window.contains(p.sale_id.as_str())),
        )
        .map(|p| scoring::Purchase {
            customer: &p.customer_id,
            good: &p.good_id,
            quantity: p.quantity,
        })
        .collect();
    let ratings: Vec<scoring::Rating<'_>> = approved
        .iter()
        .map(|r| scoring::Rating {
            customer: &r.customer_id,
            good: &r.good_id,
            stars: r.stars,
        })
        .collect();

    let named: BTreeSet<&str> = purchases
        .iter()
        .map(|p| p.good)
        .chain(ratings.iter().map(|r| r.good))
        .collect();
    let ids: Vec<String> = named.into_iter().map(str::to_owned).collect();
    let goods = inventory_api::get_many(&ids)?;
    let catalog: Catalog<'_> = goods
        .iter()
        .map(|good| {
            let listing = Listing {
                name: &good.name,
                in_stock: good.count > 0,
            };
            (good.id.as_str(), listing)
        })
        .collect();

    let items = scoring::recommend(customer, &purchases, &ratings, &catalog, limit)
        .into_iter()
        .filter_map(|pick| {
            let good = goods.iter().find(|good| good.id == pick.good)?;
            Some(Item {
                good_id: good.id.clone(),
                name: good.name.clone(),
                price: Cents(good.price_cents),
                score: pick.score,
                reason: pick.reason.to_string(),
            })
        })
        .collect();
    ok(&Recommendations { items })
}

/// `?limit=`: 1..=50, default 5.
fn limit(ctx: &Context) -> Result<usize> {
    let Some(text) = ctx.query("limit") else {
        return Ok(DEFAULT_LIMIT);
    };
    text.parse::<usize>()
        .ok()
        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
        .ok_or_else(|| Error::invalid("limit", format!("must be an integer from 1 to {MAX_LIMIT}")))
}

/// The customer id of `username`, whom `caller` may ask about: the caller
/// themselves, or (for an admin) a customer looked up by username.
fn customer_id(caller: &Identity, username: &str) -> Result<String> {
    if caller.is(username) {
        return Ok(caller.customer_id.clone());
    }
    customers_api::find_by_username(username)?
        .map(|customer| customer.id)
        .ok_or_else(|| Error::not_found("no such customer"))
}
