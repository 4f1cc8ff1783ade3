//! The HTTP routes of the sales service (API.md, "Sales"): goods for sale,
//! purchases, and purchase history.
//!
//! A purchase is one unit of work: the host wraps the request in one
//! transaction that the inventory's and the customers' service calls share,
//! and commits it only if this handler answers with a status below 400. So
//! every failed step returns its error at once, and everything done before
//! it (stock taken, money taken) is rolled back. A completed purchase emits
//! `sale.completed` (the inventory and the customers service emit their
//! own `good.updated` and `wallet.deducted` for it).

use serde::Serialize;
use souk_sdk::{
    Cents, Context, Error, Identity, Response, Result, Router, accept, log, now_rfc3339, ok, page,
};

use crate::bindings::souk::platform::service_types::Good;
use crate::bindings::souk::platform::{customers_api, inventory_api, wallet};
use crate::domain::{self, GoodRef, IDEMPOTENCY_HEADER, IdempotencyKey, Quantity};
use crate::store::{self, Sale};

/// Every route this component serves.
pub fn router() -> Router {
    Router::new()
        .get("/api/v1/sales/goods", goods_for_sale)
        .get("/api/v1/sales/goods/{name}", good_by_name)
        .post("/api/v1/sales", purchase)
        .get("/api/v1/sales/{id}", show)
        .get("/api/v1/sales/history/{username}", history)
}

/// One line of the goods-for-sale listing.
#[derive(Debug, Serialize)]
struct GoodForSale {
    name: String,
    price: Cents,
}

/// A good with every detail, shaped like the inventory's good object.
#[derive(Debug, Serialize)]
struct GoodDetails {
    id: String,
    name: String,
    category: String,
    price: Cents,
    description: String,
    count: i64,
    created_at: String,
    updated_at: String,
}

impl From<Good> for GoodDetails {
    fn from(good: Good) -> Self {
        GoodDetails {
            id: good.id,
            name: good.name,
            category: good.category,
            price: Cents(good.price_cents),
            description: good.description,
            count: good.count,
            created_at: good.created_at,
            updated_at: good.updated_at,
        }
    }
}

/// `GET /api/v1/sales/goods`: name and price of every good in stock, a
/// page at a time; `total` is how many goods are in stock.
fn goods_for_sale(ctx: &Context) -> Result<Response> {
    let paging = ctx.page()?;
    // `in-stock` has no offset, so the page is cut here from the full list.
    let in_stock = inventory_api::in_stock(u32::MAX)?;
    let total = i64::try_from(in_stock.len()).unwrap_or(i64::MAX);
    let items: Vec<GoodForSale> = in_stock
        .into_iter()
        .skip(usize::try_from(paging.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(paging.limit).unwrap_or(usize::MAX))
        .map(|good| GoodForSale {
            name: good.name,
            price: Cents(good.price_cents),
        })
        .collect();
    page(paging, &items, total)
}

/// `GET /api/v1/sales/goods/{name}`: one good by name, ignoring case.
fn good_by_name(ctx: &Context) -> Result<Response> {
    let good = inventory_api::find_by_name(ctx.param("name")?)?.ok_or_else(good_not_found)?;
    ok(&GoodDetails::from(good))
}

/// The body of a successful purchase.
#[derive(Debug, Serialize)]
struct Purchased<'a> {
    sale: &'a Sale,
    wallet_balance: Cents,
}

/// Who pays and receives a purchase.
#[derive(Debug, Clone)]
struct Buyer {
    customer_id: String,
    username: String,
}

/// `POST /api/v1/sales`: buy `quantity` units of the good named `good`,
/// for the caller or (admins only) for the customer named `username`.
fn purchase(ctx: &Context) -> Result<Response> {
    let caller = ctx.require_caller()?;
    let mut form = ctx.form()?;
    let values = ctx
        .request()
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(IDEMPOTENCY_HEADER))
        .map(|(_, value)| value.as_str());
    let key = match IdempotencyKey::from_values(values) {
        Ok(key) => key,
        Err(message) => {
            form.error(IDEMPOTENCY_HEADER, message);
            None
        }
    };
    let good = form.required("good", GoodRef::parse);
    let quantity = form.optional("quantity", Quantity::parse);
    let username = form.optional("username", accept::<String>);
    let (good, quantity, username) = form.finish((good, quantity, username))?;
    let quantity = quantity.unwrap_or_default();
    let buyer = buyer(caller, username.as_deref())?;

    let fingerprint = domain::fingerprint(&buyer.customer_id, &good, quantity);
    if let Some(key) = &key
        && let Some(replay) = replay(caller, key, &fingerprint)?
    {
        return Ok(replay);
    }

    let (sale, balance) = buy(&buyer, &good, quantity)?;
    let body = serde_json::to_string(&Purchased {
        sale: &sale,
        wallet_balance: balance,
    })
    .map_err(|e| {
        log::error!("could not serialize a purchase: {e}");
        Error::internal("internal error")
    })?;
    if let Some(key) = &key {
        store::remember(&caller.customer_id, key.as_str(), &sale.id, &body)?;
    }
    log::info!(
        "sale {}: {} x good {} for customer {} (by {})",
        sale.id,
        sale.quantity,
        sale.good_id,
        buyer.customer_id,
        caller.customer_id
    );
    Ok(purchase_response(&sale.id, body, false))
}

/// The buyer a purchase names: the caller, unless an admin names someone
/// else with `username`. A customer may name only themselves (403).
fn buyer(caller: &Identity, username: Option<&str>) -> Result<Buyer> {
    let myself = || Buyer {
        customer_id: caller.customer_id.clone(),
        username: caller.username.clone(),
    };
    match username {
        None => Ok(myself()),
        Some(name) if caller.is(name) => Ok(myself()),
        Some(name) if caller.is_admin() => {
            let customer = customers_api::find_by_username(name)?.ok_or_else(customer_not_found)?;
            Ok(Buyer {
                customer_id: customer.id,
                username: customer.username,
            })
        }
        Some(_) => Err(Error::forbidden(
            "only an admin may buy for another customer",
        )),
    }
}

/// Claims `key` for the caller, or answers with what it was first used for:
/// the same response again for the same purchase, 409 for another one.
fn replay(caller: &Identity, key: &IdempotencyKey, fingerprint: &str) -> Result<Option<Response>> {
    let now = now_rfc3339();
    if store::claim_key(&caller.customer_id, key.as_str(), fingerprint, &now)? {
        return Ok(None);
    }
    let remembered = store::remembered(&caller.customer_id, key.as_str())?.ok_or_else(|| {
        // Claimed by a request that then rolled back between our two
        // statements: rare, and safe to retry.
        Error::unavailable("a request with the same Idempotency-Key was in flight; retry")
    })?;
    if remembered.fingerprint != fingerprint {
        return Err(Error::conflict(
            "idempotency-key-reused",
            "this Idempotency-Key was already used for a different purchase",
        ));
    }
    match (remembered.sale_id, remembered.response) {
        (Some(sale_id), Some(body)) => Ok(Some(purchase_response(&sale_id, body, true))),
        _ => {
            log::error!("idempotency key of {} has no response", caller.customer_id);
            Err(Error::internal("internal error"))
        }
    }
}

/// The checks and the three writes of a purchase, in API.md's order: the
/// good exists (404), the stock suffices (409), the wallet suffices (409);
/// then stock and money are taken and the sale recorded. Any error returns
/// at once, so the host rolls back whatever was done before it.
fn buy(buyer: &Buyer, good: &GoodRef, quantity: Quantity) -> Result<(Sale, Cents)> {
    let found = inventory_api::find_by_name(good.as_str())?.ok_or_else(good_not_found)?;
    if found.count < quantity.units() {
        return Err(Error::conflict(
            "insufficient-stock",
            format!(
                "only {} in stock, {} asked for",
                found.count,
                quantity.units()
            ),
        ));
    }

    // The conditional update locks the good's row, so its price and name
    // cannot change before this transaction ends: charge what it returns.
    let taken =
        inventory_api::take_stock(&found.id, quantity.units()).map_err(|error| match error {
            Error::NotFound(_) => good_not_found(),
            other => other,
        })?;
    let unit_price = Cents(taken.price_cents);
    let total = domain::total(unit_price, quantity).ok_or_else(|| {
        log::error!("total of {unit_price} x {} overflows", quantity.units());
        Error::internal("internal error")
    })?;

    let balance = wallet::debit(&buyer.customer_id, total.0).map_err(|error| match error {
        Error::Conflict(info) if info.code == "insufficient-funds" => Error::conflict(
            "insufficient-funds",
            format!("the wallet balance does not cover the total of {total}"),
        ),
        Error::NotFound(_) => customer_not_found(),
        other => other,
    })?;

    let sale = store::insert(&Sale {
        id: souk_sdk::new_id(),
        customer_id: buyer.customer_id.clone(),
        username: buyer.username.clone(),
        good_id: taken.id,
        good_name: taken.name,
        quantity: quantity.units(),
        unit_price,
        total,
        created_at: now_rfc3339(),
    })?;
    // Last, once money, stock and the sale are all in place: the event
    // commits with them or not at all. A replayed purchase returns before
    // `buy`, so it never says this twice.
    souk_sdk::events::emit(
        "sale.completed",
        &sale.id,
        &serde_json::json!({ "sale": &sale }),
    )?;
    Ok((sale, Cents(balance)))
}

/// 201 with a purchase's body, pointing at the sale.
fn purchase_response(sale_id: &str, body: String, replayed: bool) -> Response {
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("location".to_owned(), sale_path(sale_id)),
    ];
    if replayed {
        headers.push(("idempotent-replayed".to_owned(), "true".to_owned()));
    }
    Response {
        status: 201,
        headers,
        body: body.into_bytes(),
    }
}

/// `GET /api/v1/sales/{id}`: one sale, for its buyer or an admin; anyone
/// else gets 404, as if it did not exist.
fn show(ctx: &Context) -> Result<Response> {
    let caller = ctx.require_caller()?;
    let sale = store::find(ctx.param("id")?)?
        .filter(|sale| caller.is_admin() || sale.customer_id == caller.customer_id)
        .ok_or_else(|| Error::not_found("no sale has this id"))?;
    ok(&sale)
}

/// `GET /api/v1/sales/history/{username}`: a page of the customer's sales,
/// newest first, for themselves or an admin.
fn history(ctx: &Context) -> Result<Response> {
    let username = ctx.param("username")?;
    ctx.require_self_or_admin(username)?;
    let paging = ctx.page()?;
    let customer = customers_api::find_by_username(username)?.ok_or_else(customer_not_found)?;
    let (sales, total) = store::history(&customer.id, paging)?;
    page(paging, &sales, total)
}

fn good_not_found() -> Error {
    Error::not_found("no good has this name")
}

fn customer_not_found() -> Error {
    Error::not_found("no customer has this username")
}

/// Where a sale lives in the API. Ids are UUIDs: no percent-encoding needed.
fn sale_path(id: &str) -> String {
    format!("/api/v1/sales/{id}")
}
