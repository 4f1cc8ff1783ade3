//! The HTTP routes of the inventory service (API.md, "Inventory"): anyone
//! may browse goods; only an admin may add, change, deduct or delete them.
//!
//! Write handlers check the caller before they read the body or look the
//! good up, so an anonymous caller always gets 401 and a customer 403.

use souk_sdk::error::OnConstraint;
use souk_sdk::{
    Context, Error, FieldError, PageRequest, Response, Result, Router, created, log, no_content,
    now_rfc3339, ok, page,
};

use crate::domain::{self, Category, Description, GoodName, Removal, Stock};
use crate::events;
use crate::store::{self, Changes, Filter, Good, NewGood};

/// Every route this component serves.
pub fn router() -> Router {
    Router::new()
        .post("/api/v1/goods", add)
        .get("/api/v1/goods", list)
        .get("/api/v1/goods/{id}", show)
        .patch("/api/v1/goods/{id}", update)
        .delete("/api/v1/goods/{id}", delete)
        .post("/api/v1/goods/{id}/deduct", deduct)
}

/// The 409 for a name another good already has, ignoring case.
pub fn good_name_taken() -> Error {
    Error::conflict(
        "good-name-taken",
        "another good already has this name (ignoring case)",
    )
}

/// The 409 for taking more units than are in stock.
pub fn insufficient_stock(asked: i64, left: i64) -> Error {
    Error::conflict(
        "insufficient-stock",
        format!("only {left} in stock, {asked} asked for"),
    )
}

/// Fields the server assigns, with the message for a client that sends one.
const SERVER_FIELDS: [(&str, &str); 3] = [
    ("id", "is assigned by the server"),
    ("created_at", "is set by the server"),
    ("updated_at", "is set by the server"),
];

/// `POST /api/v1/goods`: add a good (admin). `description` defaults to ""
/// and `count` to 0.
fn add(ctx: &Context) -> Result<Response> {
    let caller = ctx.require_admin()?;
    let mut form = ctx.form()?;
    for (field, message) in SERVER_FIELDS {
        form.reject(field, message);
    }
    let name = form.required("name", GoodName::parse);
    let category = form.required("category", Category::parse);
    let price = form.required("price", domain::price);
    let description = form.optional("description", Description::parse);
    let stock = form.optional("count", Stock::parse);
    let (name, category, price, description, stock) =
        form.finish((name, category, price, description, stock))?;
    let description = description.unwrap_or_default();

    // Checked first for a clear answer; the unique index decides races.
    if store::name_key_exists(&name.key())? {
        return Err(good_name_taken());
    }
    let id = souk_sdk::new_id();
    let good = store::insert(&NewGood {
        id: &id,
        name: &name,
        category,
        price,
        description: &description,
        stock: stock.unwrap_or_default(),
        now: &now_rfc3339(),
    })
    .on_unique(good_name_taken)?;
    events::created(&good)?;
    log::info!("good {} added by {}", good.id, caller.customer_id);
    created(&good_path(&good.id), &good)
}

/// `GET /api/v1/goods`: a page of goods ordered by name (ignoring case);
/// `?category=`, `?in_stock=true|false` and `?q=` (name or description
/// contains, ignoring case) narrow it.
fn list(ctx: &Context) -> Result<Response> {
    // Every bad parameter is reported at once, paging included.
    let mut errors = Vec::new();
    let paging = match ctx.page() {
        Ok(paging) => paging,
        Err(Error::InvalidInput(fields)) => {
            errors.extend(fields);
            PageRequest::default()
        }
        Err(other) => return Err(other),
    };
    let category = query_param(ctx, "category", &mut errors, |text| {
        Category::parse(text.to_owned())
    });
    let in_stock = query_param(ctx, "in_stock", &mut errors, domain::in_stock_filter);
    if !errors.is_empty() {
        return Err(Error::invalid_fields(errors));
    }
    let search = ctx.query("q").map(str::trim).filter(|q| !q.is_empty());
    let filter = Filter {
        category,
        in_stock,
        search,
    };
    let (goods, total) = store::list(&filter, paging)?;
    page(paging, &goods, total)
}

/// `GET /api/v1/goods/{id}`: one good; anyone may look.
fn show(ctx: &Context) -> Result<Response> {
    ok(&find(ctx.param("id")?)?)
}

/// `PATCH /api/v1/goods/{id}`: change any subset of `name`, `category`,
/// `price`, `description` and `count` (admin).
fn update(ctx: &Context) -> Result<Response> {
    let caller = ctx.require_admin()?;
    let good = find(ctx.param("id")?)?;
    let mut form = ctx.form()?;
    if form.is_empty() {
        return Err(Error::bad_request(
            "the body must contain at least one field to change",
        ));
    }
    for (field, _) in SERVER_FIELDS {
        form.reject(field, "cannot be changed");
    }
    let name = form.optional("name", GoodName::parse);
    let category = form.optional("category", Category::parse);
    let price = form.optional("price", domain::price);
    let description = form.optional("description", Description::parse);
    let stock = form.optional("count", Stock::parse);
    let (name, category, price, description, stock) =
        form.finish((name, category, price, description, stock))?;

    let changes = Changes {
        name,
        category,
        price,
        description,
        stock,
    };
    let updated = store::update(&good.id, &changes, &now_rfc3339())
        .on_unique(good_name_taken)?
        .ok_or_else(not_found)?;
    events::updated(&good, &updated)?;
    log::info!("good {} changed by {}", updated.id, caller.customer_id);
    ok(&updated)
}

/// `POST /api/v1/goods/{id}/deduct`: take `{count}` units out of stock
/// (admin), never below zero.
fn deduct(ctx: &Context) -> Result<Response> {
    let caller = ctx.require_admin()?;
    let good = find(ctx.param("id")?)?;
    let mut form = ctx.form()?;
    let removal = form.required("count", Removal::parse);
    let removal = form.finish(removal)?;
    let Some(after) = store::take(&good.id, removal.units(), &now_rfc3339())? else {
        let left = store::find(&good.id)?.ok_or_else(not_found)?.count;
        return Err(insufficient_stock(removal.units(), left));
    };
    events::stock_taken(&after, removal.units())?;
    log::info!(
        "{} units of good {} deducted by {}",
        removal.units(),
        after.id,
        caller.customer_id
    );
    ok(&after)
}

/// `DELETE /api/v1/goods/{id}`: remove a good (admin). Past sales keep
/// their own copy of its name and price.
fn delete(ctx: &Context) -> Result<Response> {
    let caller = ctx.require_admin()?;
    let id = ctx.param("id")?;
    let deleted = store::delete(id)?.ok_or_else(not_found)?;
    events::deleted(&deleted)?;
    log::info!("good {id} deleted by {}", caller.customer_id);
    no_content()
}

/// Query parameter `name` parsed with `parse`: `None` when absent, and
/// also when bad, after recording why in `errors`.
fn query_param<T>(
    ctx: &Context,
    name: &str,
    errors: &mut Vec<FieldError>,
    parse: impl FnOnce(&str) -> std::result::Result<T, &'static str>,
) -> Option<T> {
    match parse(ctx.query(name)?) {
        Ok(value) => Some(value),
        Err(message) => {
            errors.push(FieldError::new(name, message));
            None
        }
    }
}

fn find(id: &str) -> Result<Good> {
    store::find(id)?.ok_or_else(not_found)
}

/// The 404 for an id no good has.
pub fn not_found() -> Error {
    Error::not_found("no good has this id")
}

/// Where a good lives in the API. Ids are UUIDs: no percent-encoding needed.
fn good_path(id: &str) -> String {
    format!("/api/v1/goods/{id}")
}
