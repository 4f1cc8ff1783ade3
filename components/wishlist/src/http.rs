//! The wishlist's routes (API.md, "Extensions"): every route acts on the
//! caller's own wishlist, so each handler starts with `require_caller` (401
//! for anonymous requests) and every statement is scoped to the caller's id.
//!
//! Goods belong to the inventory: a wishlist row keeps only the good's id,
//! and each read asks `inventory-api` for the good's current name, price and
//! stock. A deleted good's rows are forgotten when the wishlist hears of
//! the deletion (`good.deleted`, see [`crate::events`]), moments later;
//! until then the item is listed with `available: false`, its name as it
//! was then and no price.

use serde::Serialize;
use souk_sdk::db::{self, DbError, params};
use souk_sdk::error::OnConstraint;
use souk_sdk::{
    Body, Caller, Cents, Context, Describe, ErrorKind, Field, Response, Result, Route, Router,
    Schema, Schemas, Timestamp, json, no_content, now_rfc3339, page,
};

use crate::bindings::souk::platform::inventory_api;
use crate::bindings::souk::platform::service_types::Good;

/// Every route this component serves, with its documentation.
pub fn router() -> Router {
    Router::new("wishlist")
        .describe_tag("Extension: each customer's saved goods.")
        .path_param("good_id", "The id of the good to remove.")
        .route(
            Route::get("/api/v1/wishlist", list)
                .operation("listWishlist", "The caller's wishlist, newest first")
                .description(
                    "Each item shows the good's current name, price and whether it is in \
                     stock. A deleted good leaves the wishlist moments after its deletion (the \
                     wishlist subscribes to `good.deleted`); until then it is listed with \
                     `available: false`, its last known name and `price: null`.",
                )
                .caller(Caller::Authenticated)
                .page::<Item>("WishlistPage", "A page of wishlist items."),
        )
        .route(
            Route::post("/api/v1/wishlist", add)
                .operation("addToWishlist", "Add a good to the caller's wishlist")
                .caller(Caller::Authenticated)
                .body(Body::object("WishlistAddition", "").required::<GoodId>("good_id"))
                .created::<Item>("The new item.")
                .error(GOOD_NOT_FOUND)
                .error(ALREADY_THERE),
        )
        .route(
            Route::delete("/api/v1/wishlist/{good_id}", remove)
                .operation(
                    "removeFromWishlist",
                    "Remove a good from the caller's wishlist",
                )
                .caller(Caller::Authenticated)
                .no_content("Removed.")
                .error(NOT_IN_WISHLIST),
        )
}

const GOOD_NOT_FOUND: ErrorKind = ErrorKind::not_found("No good has this id.");
const NOT_IN_WISHLIST: ErrorKind =
    ErrorKind::not_found("The good is not in the caller's wishlist.");
const ALREADY_THERE: ErrorKind = ErrorKind::conflict(
    "already-in-wishlist",
    "The good is already in the wishlist.",
);

/// The id of a good to add: 1 to 100 characters (no id is longer).
struct GoodId;

impl GoodId {
    /// The longest id accepted.
    const MAX_CHARS: usize = 100;
}

impl Describe for GoodId {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::string()
            .length(1, GoodId::MAX_CHARS)
            .doc("The id of an existing good.")
    }
}

impl Field for GoodId {
    type Input = String;
    type Output = String;
    type Error = &'static str;

    fn parse(id: String) -> std::result::Result<String, &'static str> {
        // Characters, as the schema's maxLength counts them.
        if (1..=GoodId::MAX_CHARS).contains(&id.chars().count()) {
            Ok(id)
        } else {
            Err("must be the id of a good")
        }
    }
}

/// One wishlist entry.
#[derive(Debug, Serialize, Describe)]
#[describe(name = "WishlistItem")]
struct Item {
    /// The good's id.
    good_id: String,
    /// The good's current name; its name when added once it is gone.
    name: String,
    /// Current price in dollars (at most 2 decimals); null once the good
    /// is gone.
    price: Option<Cents>,
    /// Whether at least one unit is in stock now.
    in_stock: bool,
    /// False once the good has been deleted from the inventory.
    available: bool,
    /// RFC 3339, UTC.
    #[describe(with = Timestamp)]
    added_at: String,
}

impl Item {
    /// The entry for `good_id`, saved under `name`, as `good` (the
    /// inventory's current record, `None` once deleted) shows it now.
    fn new(good_id: String, name: String, added_at: String, good: Option<&Good>) -> Item {
        Item {
            good_id,
            name: good.map_or(name, |good| good.name.clone()),
            price: good.map(|good| Cents(good.price_cents)),
            in_stock: good.is_some_and(|good| good.count > 0),
            available: good.is_some(),
            added_at,
        }
    }
}

/// `GET /api/v1/wishlist`: a page of the caller's items, newest first.
fn list(ctx: &Context) -> Result<Response> {
    let me = ctx.require_caller()?;
    let paging = ctx.page()?;
    let total = db::query_one(
        "SELECT count(*) AS total FROM wishlist_items WHERE customer_id = $1",
        params![&me.customer_id],
    )?
    .int("total")?;
    let rows = db::query(
        "SELECT good_id, good_name, added_at FROM wishlist_items WHERE customer_id = $1 \
         ORDER BY added_at DESC, good_id LIMIT $2 OFFSET $3",
        params![&me.customer_id, paging.limit, paging.offset],
    )?;

    let ids = rows.clone().map(|row| row.text("good_id"))?;
    let goods = inventory_api::get_many(&ids)?;
    let items = rows.map(|row| {
        let good_id = row.text("good_id")?;
        let good = goods.iter().find(|good| good.id == good_id);
        Ok::<_, DbError>(Item::new(
            good_id,
            row.text("good_name")?,
            row.text("added_at")?,
            good,
        ))
    })?;
    page(paging, &items, total)
}

/// `POST /api/v1/wishlist` `{good_id}`: add a good that exists (404
/// otherwise), once (409 `already-in-wishlist`).
fn add(ctx: &Context) -> Result<Response> {
    let me = ctx.require_caller()?;
    let mut form = ctx.form()?;
    let good_id = form.required::<GoodId>("good_id");
    let good_id = form.finish(good_id)?;

    let good =
        inventory_api::get(&good_id)?.ok_or_else(|| GOOD_NOT_FOUND.error("no good has this id"))?;
    let added_at = now_rfc3339();
    db::execute(
        "INSERT INTO wishlist_items (customer_id, good_id, good_name, added_at) VALUES ($1, $2, $3, $4)",
        params![&me.customer_id, &good.id, &good.name, &added_at],
    )
    .on_unique(|| ALREADY_THERE.error("this good is already in your wishlist"))?;
    let item = Item::new(good_id, good.name.clone(), added_at, Some(&good));
    json(201, &item)
}

/// `DELETE /api/v1/wishlist/{good_id}`: remove a good from the wishlist.
fn remove(ctx: &Context) -> Result<Response> {
    let me = ctx.require_caller()?;
    let removed = db::execute(
        "DELETE FROM wishlist_items WHERE customer_id = $1 AND good_id = $2",
        params![&me.customer_id, ctx.param("good_id")?],
    )?;
    if removed == 0 {
        return Err(NOT_IN_WISHLIST.error("this good is not in your wishlist"));
    }
    no_content()
}
