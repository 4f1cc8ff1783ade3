//! The HTTP routes of the inventory service (API.md, "Inventory"): anyone
//! may browse goods; only an admin may add, change, deduct or delete them.
//!
//! Write handlers check the caller before they read the body or look the
//! good up, so an anonymous caller always gets 401 and a customer 403.

use serde_json::json;
use souk_sdk::error::OnConstraint;
use souk_sdk::route::service_slugs;
use souk_sdk::{
    Body, Caller, Context, Error, ErrorKind, Field, FieldError, PageRequest, Positive, Response,
    Result, Route, Router, created, log, no_content, now_rfc3339, ok, page,
};

use crate::domain::{Category, Description, GoodName, InStock, Removal, Stock};
use crate::events;
use crate::store::{self, Changes, Filter, Good, NewGood};

/// Every route this component serves, with its documentation.
pub fn router() -> Router {
    Router::new("inventory")
        .path_param("id", "The good's id.")
        .route(
            Route::post("/api/v1/goods", add)
                .operation("addGood", "Add a good (admin)")
                .description(
                    "`name`, `category` and `price` are required. `description` defaults to an \
                     empty string and `count` (units in stock) to 0. `id`, `created_at` and \
                     `updated_at` are set by the server and may not be sent.",
                )
                .caller(Caller::Admin)
                .body(
                    good_fields(Body::object("NewGood", ""), true)
                        .optional::<Description>("description")
                        .default(json!(""))
                        .optional::<Stock>("count")
                        .doc("Units in stock at the start; 0 if left out.")
                        .default(json!(0)),
                )
                .created::<Good>("The new good.")
                .header("Location", "`/api/v1/goods/{id}`")
                .error(GOOD_NAME_TAKEN),
        )
        .route(
            Route::get("/api/v1/goods", list)
                .operation("listGoods", "List goods")
                .description(
                    "Anyone may list. A page of goods ordered by name, ignoring case. The \
                     filters combine.",
                )
                .query::<Category>(
                    "category",
                    "Only goods of this category (case-insensitive); any other value is 400.",
                )
                .query::<InStock>(
                    "in_stock",
                    "`true`: only goods with `count` > 0; `false`: only goods with `count` = 0. \
                     Any other value is 400.",
                )
                .query::<String>(
                    "q",
                    "Only goods whose name or description contains this text (trimmed), \
                     ignoring case. `%`, `_` and `!` are plain characters.",
                )
                .page::<Good>("GoodPage", "A page of goods."),
        )
        .route(
            Route::get("/api/v1/goods/{id}", show)
                .operation("getGood", "Get a good")
                .description("Anyone may look.")
                .ok::<Good>("The good.")
                .error(NOT_FOUND),
        )
        .route(
            Route::patch("/api/v1/goods/{id}", update)
                .operation("updateGood", "Change a good (admin)")
                .description(
                    "Changes any subset of `name`, `category`, `price`, `description` and \
                     `count` with the rules of adding a good; `count` sets the stock (it does \
                     not add to it). An empty object is 400, unknown fields are 400, and `id`, \
                     `created_at` and `updated_at` cannot be changed (400).",
                )
                .caller(Caller::Admin)
                .body(
                    good_fields(Body::changes("GoodChanges", ""), false)
                        .optional::<Description>("description")
                        .optional::<Stock>("count")
                        .doc("The new number of units in stock."),
                )
                .ok::<Good>("The good after the change.")
                .error(NOT_FOUND)
                .error(GOOD_NAME_TAKEN),
        )
        .route(
            Route::delete("/api/v1/goods/{id}", delete)
                .operation("deleteGood", "Delete a good (admin)")
                .description(
                    "Removes the good. Past sales keep their own record of its name and unit \
                     price.",
                )
                .caller(Caller::Admin)
                .no_content("Deleted.")
                .error(NOT_FOUND),
        )
        .route(
            Route::post("/api/v1/goods/{id}/deduct", deduct)
                .operation("deductStock", "Take units out of stock (admin)")
                .description(
                    "Removes `count` units (an integer of 1 or more) in one conditional \
                     update, so the stock never goes below zero, also under concurrent buyers.",
                )
                .caller(Caller::Admin)
                .body(Body::object("StockDeduction", "").required::<Removal>("count"))
                .ok::<Good>("The good after the deduction.")
                .error(NOT_FOUND)
                .error(INSUFFICIENT_STOCK),
        )
}

/// The name, category and price fields of a new good (`required`) or of
/// a change.
fn good_fields(body: Body, required: bool) -> Body {
    let price_doc =
        "Unit price in dollars: more than 0, at most 1000000, at most 2 decimal places.";
    if required {
        body.required::<GoodName>("name")
            .required::<Category>("category")
            .required::<Positive>("price")
            .doc(price_doc)
    } else {
        body.optional::<GoodName>("name")
            .optional::<Category>("category")
            .optional::<Positive>("price")
            .doc(price_doc)
    }
}

/// The 404 for an id no good has.
const NOT_FOUND: ErrorKind = ErrorKind::not_found("No good has this id.");

/// The 409 for a name another good already has, ignoring case.
const GOOD_NAME_TAKEN: ErrorKind = ErrorKind::conflict(
    "good-name-taken",
    "Another good already has this name, ignoring case.",
);

/// The 409 for taking more units than are in stock.
const INSUFFICIENT_STOCK: ErrorKind = ErrorKind::conflict(
    service_slugs::INSUFFICIENT_STOCK,
    "Fewer units are in stock than asked for; nothing was taken.",
);

/// The 409 for a name another good already has, ignoring case.
pub fn good_name_taken() -> Error {
    GOOD_NAME_TAKEN.error("another good already has this name (ignoring case)")
}

/// The 409 for taking more units than are in stock.
pub fn insufficient_stock(asked: i64, left: i64) -> Error {
    INSUFFICIENT_STOCK.error(format!("only {left} in stock, {asked} asked for"))
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
    let name = form.required::<GoodName>("name");
    let category = form.required::<Category>("category");
    let price = form.required::<Positive>("price");
    let description = form.optional::<Description>("description");
    let stock = form.optional::<Stock>("count");
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
    let category = query_param::<Category>(ctx, "category", &mut errors);
    let in_stock = query_param::<InStock>(ctx, "in_stock", &mut errors);
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
    let name = form.optional::<GoodName>("name");
    let category = form.optional::<Category>("category");
    let price = form.optional::<Positive>("price");
    let description = form.optional::<Description>("description");
    let stock = form.optional::<Stock>("count");
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
    let removal = form.required::<Removal>("count");
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

/// Query parameter `name` read with rule `T`: `None` when absent, and
/// also when bad, after recording why in `errors`.
fn query_param<T: Field<Input = String, Error = &'static str>>(
    ctx: &Context,
    name: &str,
    errors: &mut Vec<FieldError>,
) -> Option<T::Output> {
    match T::parse(ctx.query(name)?.to_owned()) {
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
    NOT_FOUND.error("no good has this id")
}

/// Where a good lives in the API. Ids are UUIDs: no percent-encoding needed.
fn good_path(id: &str) -> String {
    format!("/api/v1/goods/{id}")
}
