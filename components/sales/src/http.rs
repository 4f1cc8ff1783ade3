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
use serde_json::json;
use souk_sdk::route::service_slugs;
use souk_sdk::{
    Body, Caller, Cents, Context, Describe, Error, ErrorKind, Identity, Positive, Response, Result,
    Route, Router, Schema, Schemas, log, now_rfc3339, ok, page,
};

use crate::bindings::souk::platform::service_types::Good;
use crate::bindings::souk::platform::{customers_api, inventory_api, wallet};
use crate::domain::{self, GoodRef, IDEMPOTENCY_HEADER, IdempotencyKey, Quantity};
use crate::store::{self, Sale};

/// Every route this component serves, with its documentation.
pub fn router() -> Router {
    Router::new("sales")
        .path_param(
            "name",
            "The good's name, percent-encoded, matched ignoring case.",
        )
        .path_param("id", "The sale's id.")
        .path_param(
            "username",
            "The customer's username, matched ignoring case.",
        )
        .refers_to(GoodDetails::SCHEMA)
        .route(
            Route::get("/api/v1/sales/goods", goods_for_sale)
                .operation("listGoodsForSale", "List goods for sale")
                .description(
                    "Anyone may list. The name and unit price of every good with `count` > 0, \
                     ordered by name ignoring case; `total` is the number of such goods.",
                )
                .page::<GoodForSale>("GoodForSalePage", "A page of goods in stock."),
        )
        .route(
            Route::get("/api/v1/sales/goods/{name}", good_by_name)
                .operation("getGoodForSale", "Get a good by name")
                .description(
                    "Anyone may look. The good's full details, whether or not it is in stock.",
                )
                .ok::<GoodDetails>("The good, as the inventory has it now.")
                .error(GOOD_NOT_FOUND),
        )
        .route(
            Route::post("/api/v1/sales", purchase)
                .operation("purchase", "Buy a good (customer or admin)")
                .description(PURCHASE_DESCRIPTION)
                .caller(Caller::Authenticated)
                .request_header::<IdempotencyKey>(
                    IDEMPOTENCY_HEADER,
                    "1 to 64 visible ASCII characters (`!` to `~`); anything else is 400 naming \
                     `Idempotency-Key`.",
                )
                .body(
                    Body::object("PurchaseRequest", "")
                        .required::<GoodRef>("good")
                        .optional::<Quantity>("quantity")
                        .default(json!(1))
                        .optional::<String>("username")
                        .doc(
                            "The buyer, if not the caller: admins only (a customer may name \
                             only themselves).",
                        ),
                )
                .created::<Purchased<'_>>(
                    "The sale and the buyer's wallet balance after it (on a replay: the first \
                     response's body).",
                )
                .header("Location", "`/api/v1/sales/{id}`")
                .header(
                    "Idempotent-Replayed",
                    "`true` when this answer replays an earlier purchase with the same \
                     `Idempotency-Key`.",
                )
                .error(BUY_FOR_ANOTHER)
                .error(GOOD_NOT_FOUND)
                .error(CUSTOMER_NOT_FOUND)
                .error(INSUFFICIENT_STOCK)
                .error(INSUFFICIENT_FUNDS)
                .error(KEY_REUSED),
        )
        .route(
            Route::get("/api/v1/sales/{id}", show)
                .operation("getSale", "Get a sale (buyer or admin)")
                .description(
                    "The sale the `Location` of a purchase points to. Anyone but its buyer and \
                     admins gets 404, as if it did not exist.",
                )
                .caller(Caller::Authenticated)
                .ok::<Sale>("The sale.")
                .error(SALE_NOT_FOUND),
        )
        .route(
            Route::get("/api/v1/sales/history/{username}", history)
                .operation("salesHistory", "A customer's purchases (self or admin)")
                .description(
                    "A page of the customer's sales, newest first. The history belongs to the \
                     account, not to the name: a new account registered with the username of a \
                     deleted one starts with an empty history.",
                )
                .caller(Caller::SelfOrAdmin)
                .page::<Sale>("SalePage", "A page of sales, newest first.")
                .error(CUSTOMER_NOT_FOUND),
        )
}

const PURCHASE_DESCRIPTION: &str = "Buys `quantity` units of the good named `good` (ignoring \
    case) for the caller, or, when an admin sends `username`, for that customer. A customer may \
    send their own `username` but no one else's (403). The checks run in this order: the good \
    exists (404), the stock suffices (409 `insufficient-stock`), the wallet covers unit price × \
    quantity (409 `insufficient-funds`). Taking the money, lowering the stock and recording the \
    sale are one atomic unit: all happen or none does, also under concurrent buyers.\n\n\
    With an `Idempotency-Key` header, the first successful purchase under a key is remembered \
    for the caller (the key is scoped to the caller, not to the buyer): retrying it with the \
    same key and the same purchase (same good ignoring case, quantity and buyer) answers 201 \
    with the first body (same sale id) and charges nothing; reusing the key for a different \
    purchase is 409 `idempotency-key-reused`. A purchase that failed is not remembered, so it \
    may be retried with the same key.";

const GOOD_NOT_FOUND: ErrorKind = ErrorKind::not_found("No good has this name, ignoring case.");
const CUSTOMER_NOT_FOUND: ErrorKind =
    ErrorKind::not_found("No customer has this username, ignoring case.");
const SALE_NOT_FOUND: ErrorKind =
    ErrorKind::not_found("No sale has this id that the caller may see.");
const BUY_FOR_ANOTHER: ErrorKind =
    ErrorKind::forbidden("A customer sent another customer's `username`.");
const INSUFFICIENT_STOCK: ErrorKind = ErrorKind::conflict(
    service_slugs::INSUFFICIENT_STOCK,
    "Fewer units in stock than asked for; nothing was charged or taken.",
);
/// The wallet's own slug for a debit it refuses (the customers service's).
const INSUFFICIENT_FUNDS: ErrorKind = ErrorKind::conflict(
    service_slugs::INSUFFICIENT_FUNDS,
    "The wallet does not cover the total; nothing was charged or taken.",
);
const KEY_REUSED: ErrorKind = ErrorKind::conflict(
    "idempotency-key-reused",
    "The `Idempotency-Key` was used for a different purchase.",
);

/// One line of the goods-for-sale listing.
#[derive(Debug, Serialize, Describe)]
struct GoodForSale {
    /// The good's name.
    name: String,
    /// Unit price in dollars.
    #[describe(with = Positive)]
    price: Cents,
}

/// A good with every detail: the inventory's good object, which the
/// inventory's fragment documents (as `Good`).
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

impl GoodDetails {
    /// The name the inventory documents its good object under.
    const SCHEMA: &'static str = "Good";
}

impl Describe for GoodDetails {
    fn describe(_: &mut Schemas) -> Schema {
        Schema::reference(GoodDetails::SCHEMA)
    }
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

/// A completed purchase.
#[derive(Debug, Serialize, Describe)]
#[describe(name = "PurchaseResult")]
struct Purchased<'a> {
    /// The sale recorded.
    sale: &'a Sale,
    /// The buyer's wallet balance right after the sale, in dollars.
    #[describe(schema = Cents::schema().minimum(0))]
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
    let good = form.required::<GoodRef>("good");
    let quantity = form.optional::<Quantity>("quantity");
    let username = form.optional::<String>("username");
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
        Some(_) => Err(BUY_FOR_ANOTHER.error("only an admin may buy for another customer")),
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
        return Err(
            KEY_REUSED.error("this Idempotency-Key was already used for a different purchase")
        );
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
        return Err(INSUFFICIENT_STOCK.error(format!(
            "only {} in stock, {} asked for",
            found.count,
            quantity.units()
        )));
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
        Error::Conflict(info) if info.code == INSUFFICIENT_FUNDS.slug() => INSUFFICIENT_FUNDS
            .error(format!(
                "the wallet balance does not cover the total of {total}"
            )),
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
        .ok_or_else(|| SALE_NOT_FOUND.error("no sale has this id"))?;
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
    GOOD_NOT_FOUND.error("no good has this name")
}

fn customer_not_found() -> Error {
    CUSTOMER_NOT_FOUND.error("no customer has this username")
}

/// Where a sale lives in the API. Ids are UUIDs: no percent-encoding needed.
fn sale_path(id: &str) -> String {
    format!("/api/v1/sales/{id}")
}
