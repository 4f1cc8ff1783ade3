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
    Cents, Context, Error, Response, Result, Router, json, no_content, now_rfc3339, page,
};

use crate::bindings::souk::platform::inventory_api;
use crate::bindings::souk::platform::service_types::Good;

/// Every route this component serves.
pub fn router() -> Router {
    Router::new()
        .get("/api/v1/wishlist", list)
        .post("/api/v1/wishlist", add)
        .delete("/api/v1/wishlist/{good_id}", remove)
}

/// One wishlist entry as the API shows it.
#[derive(Debug, Serialize)]
struct Item {
    good_id: String,
    name: String,
    price: Option<Cents>,
    in_stock: bool,
    available: bool,
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
    let good_id = form.required("good_id", |id: String| match id.len() {
        1..=100 => Ok(id),
        _ => Err("must be the id of a good"),
    });
    let good_id = form.finish(good_id)?;

    let good =
        inventory_api::get(&good_id)?.ok_or_else(|| Error::not_found("no good has this id"))?;
    let added_at = now_rfc3339();
    db::execute(
        "INSERT INTO wishlist_items (customer_id, good_id, good_name, added_at) VALUES ($1, $2, $3, $4)",
        params![&me.customer_id, &good.id, &good.name, &added_at],
    )
    .on_unique(|| Error::conflict("already-in-wishlist", "this good is already in your wishlist"))?;
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
        return Err(Error::not_found("this good is not in your wishlist"));
    }
    no_content()
}
