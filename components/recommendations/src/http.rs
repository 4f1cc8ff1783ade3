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
use souk_sdk::{
    Caller, Cents, Context, Describe, ErrorKind, Identity, Response, Result, Route, Router, Schema,
    Schemas, ok,
};

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

/// Every route this component serves, with its documentation.
pub fn router() -> Router {
    Router::new("recommendations")
        .describe_tag("Extension: goods a customer may like.")
        .path_param(
            "username",
            "The customer's username, matched ignoring case.",
        )
        .route(
            Route::get("/api/v1/recommendations/{username}", recommendations)
                .operation(
                    "recommendGoods",
                    "Goods the customer has not bought, best first (self or admin)",
                )
                .description(DESCRIPTION)
                .caller(Caller::SelfOrAdmin)
                .query::<Limit>("limit", "How many goods at most, 1..50.")
                .ok::<Recommendations>(
                    "The recommended goods, best first; fewer than `limit` (possibly none) when \
                     the shop has too little data.",
                )
                .error(CUSTOMER_NOT_FOUND),
        )
}

const DESCRIPTION: &str = "Item-based collaborative filtering over everyone's purchases \
    (cosine over the binary customer x good matrix) and approved ratings (cosine over stars - \
    3), scored against the goods the customer bought and rated: score(j) = sum over bought i of \
    sim_p(i, j) + sum over rated i of (stars - 3) / 2 * sim_r(i, j), rounded to 6 decimals. \
    Goods the customer bought or rated, sold-out and deleted goods are never listed. Goods \
    scoring above 0 come first (ties by name ignoring case, then id); the rest is filled up, \
    with score 0, alternately from best sellers (units sold) and top rated goods (damped mean \
    (sum of stars + 3) / (n + 1) above 3). The exact rules are in the component's `scoring` \
    module documentation.";

const CUSTOMER_NOT_FOUND: ErrorKind = ErrorKind::not_found(
    "An admin asked about another customer: this extension is not granted customer lookups \
     yet, so it cannot resolve the username.",
);

/// `?limit=`: 1..=[`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
struct Limit;

impl Describe for Limit {
    fn describe(_: &mut Schemas) -> Schema {
        let (default, max) = (DEFAULT_LIMIT as i64, MAX_LIMIT as i64);
        Schema::integer()
            .range(1, max)
            .default_value(default.into())
    }
}

/// The recommendations for one customer.
#[derive(Debug, Serialize, Describe)]
#[describe(name = "RecommendationList")]
struct Recommendations {
    /// Best first.
    items: Vec<Item>,
}

/// One recommended good.
#[derive(Debug, Serialize, Describe)]
#[describe(name = "Recommendation")]
struct Item {
    /// The good's id.
    good_id: String,
    /// The good's current name.
    name: String,
    /// Current price in dollars (at most 2 decimals).
    price: Cents,
    /// Collaborative-filtering score with at most 6 decimals; 0 for best
    /// sellers and top rated fill-ups.
    #[describe(schema = Schema::number().minimum(0))]
    score: f64,
    /// Why: `bought together with NAME`, `liked by customers who liked
    /// NAME`, `liked by customers who disliked NAME`, `similar to what you
    /// bought or rated`, `best seller` or `top rated`.
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
        .ok_or_else(|| {
            souk_sdk::Error::invalid("limit", format!("must be an integer from 1 to {MAX_LIMIT}"))
        })
}

/// The customer id of `username`, whom `caller` may ask about: the caller
/// themselves, or (for an admin) a customer looked up by username.
fn customer_id(caller: &Identity, username: &str) -> Result<String> {
    if caller.is(username) {
        return Ok(caller.customer_id.clone());
    }
    customers_api::find_by_username(username)?
        .map(|customer| customer.id)
        .ok_or_else(|| CUSTOMER_NOT_FOUND.error("no such customer"))
}
