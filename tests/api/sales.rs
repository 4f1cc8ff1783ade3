//! The sales rows of API.md, from the outside: goods for sale, goods by
//! name, purchases (checks in order, atomicity, admins buying for
//! customers, idempotency keys), history, and the invariants under
//! concurrent buyers: no negative stock, no negative balance, and money
//! conserved (charges − balances = sale totals).

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, cents, is_rfc3339_utc, spawn_app};

/// Every field of a sale object, sorted.
const SALE_FIELDS: [&str; 8] = [
    "created_at",
    "good_id",
    "good_name",
    "id",
    "quantity",
    "total",
    "unit_price",
    "username",
];

const SALES: &str = "/api/v1/sales";
const FOR_SALE: &str = "/api/v1/sales/goods";

fn history_path(username: &str) -> String {
    format!("{SALES}/history/{username}")
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

/// Posts a purchase with an optional `Idempotency-Key`.
async fn buy(app: &TestApp, token: Option<&str>, body: Value, key: Option<&str>) -> Reply {
    let mut builder = app.request(Method::POST, SALES, token).json(&body);
    if let Some(key) = key {
        builder = builder.header("Idempotency-Key", key);
    }
    app.send_built(builder).await
}

/// Buys `quantity` of `good` as `token`, asserting 201; returns the body.
async fn bought(app: &TestApp, token: &str, good: &str, quantity: i64) -> Value {
    let reply = buy(
        app,
        Some(token),
        json!({ "good": good, "quantity": quantity }),
        None,
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "buy {good}: {}",
        reply.text
    );
    reply.body
}

/// A customer `username` with `dollars` in their wallet; returns the token.
async fn customer_with(app: &TestApp, username: &str, dollars: Value) -> String {
    let token = app.customer(username).await;
    let reply = app.charge(username, dollars).await;
    assert_eq!(reply.status, StatusCode::OK, "charge: {}", reply.text);
    token
}

/// Customers with these usernames and `dollars` each, made one after the
/// other (registration hashes a password while it holds the database);
/// returns (username, token) pairs.
async fn customers_with(
    app: &TestApp,
    usernames: &[String],
    dollars: Value,
) -> Vec<(String, String)> {
    let admin = app.admin_token().await;
    let mut made = Vec::with_capacity(usernames.len());
    for username in usernames {
        let token = app.customer(username).await;
        let reply = app
            .post(
                &format!("/api/v1/customers/{username}/wallet/charge"),
                Some(&admin),
                json!({ "amount": dollars }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "charge: {}", reply.text);
        made.push((username.clone(), token));
    }
    made
}

/// Asserts a 400 `invalid-input` naming exactly `fields` (any order).
#[track_caller]
fn assert_invalid(reply: &Reply, fields: &[&str], case: &str) {
    reply.assert_problem(400);
    assert_eq!(
        reply.problem_type(),
        "urn:souk:error:invalid-input",
        "{case}: {}",
        reply.text
    );
    let mut expected: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
    expected.sort();
    assert_eq!(reply.error_fields(), expected, "{case}: {}", reply.text);
}

/// Asserts a 409 with problem type `urn:souk:error:<code>`.
#[track_caller]
fn assert_conflict(reply: &Reply, code: &str) {
    reply.assert_problem(409);
    assert_eq!(
        reply.problem_type(),
        format!("urn:souk:error:{code}"),
        "{}",
        reply.text
    );
}

/// The ids of a page's items, in order.
fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect()
}

/// The history of `username` as the admin sees it (first 200).
async fn history(app: &TestApp, username: &str) -> Value {
    let admin = app.admin_token().await;
    let reply = app
        .get(
            &format!("{}?limit=200", history_path(username)),
            Some(&admin),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "history: {}", reply.text);
    reply.body
}

// ---------------------------------------------------------------- goods for sale

#[tokio::test]
async fn goods_for_sale_lists_the_name_and_price_of_goods_in_stock() {
    let app = spawn_app().await;
    app.add_good("Dates", json!(4.5), 3).await;
    app.add_good("apricots", json!(2), 1).await;
    app.add_good("Sold Out", json!(9), 0).await;
    app.add_good("Bananas", json!(0.99), 12).await;

    let reply = app.get(FOR_SALE, None).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({
            "items": [
                { "name": "apricots", "price": 2 },
                { "name": "Bananas", "price": 0.99 },
                { "name": "Dates", "price": 4.5 },
            ],
            "total": 3,
            "limit": 50,
            "offset": 0,
        })
    );
}

#[tokio::test]
async fn goods_for_sale_are_paged_and_bad_paging_gets_400() {
    let app = spawn_app().await;
    for name in ["a1", "a2", "a3", "a4", "a5"] {
        app.add_good(name, json!(1), 1).await;
    }
    app.add_good("a0 sold out", json!(1), 0).await;

    let page = app.get(&format!("{FOR_SALE}?limit=2&offset=3"), None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let names: Vec<&str> = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a4", "a5"]);
    assert_eq!(page.body["total"], 5);
    assert_eq!(page.body["limit"], 2);
    assert_eq!(page.body["offset"], 3);

    let beyond = app.get(&format!("{FOR_SALE}?offset=99"), None).await;
    assert_eq!(beyond.body["items"], json!([]));
    assert_eq!(beyond.body["total"], 5);

    for (query, fields) in [
        ("limit=0", vec!["limit"]),
        ("limit=500", vec!["limit"]),
        ("offset=-3", vec!["offset"]),
    ] {
        let reply = app.get(&format!("{FOR_SALE}?{query}"), None).await;
        assert_invalid(&reply, &fields, query);
    }
}

#[tokio::test]
async fn a_good_sold_out_by_a_purchase_leaves_the_listing() {
    let app = spawn_app().await;
    app.add_good("Last Loaf", json!(3), 1).await;
    let alice = customer_with(&app, "alice", json!(10)).await;

    bought(&app, &alice, "Last Loaf", 1).await;

    let reply = app.get(FOR_SALE, None).await;
    assert_eq!(reply.body["items"], json!([]));
    assert_eq!(reply.body["total"], 0);
}

#[tokio::test]
async fn a_good_can_be_read_by_name_ignoring_case_and_percent_encoded() {
    let app = spawn_app().await;
    let tea = app.add_good("Green Tea", json!(2.5), 4).await;
    let cafe = app.add_good("Café au lait", json!(3), 0).await;
    let slash = app.add_good("AC/DC T-shirt", json!(20), 1).await;

    for (path, expected) in [
        ("Green%20Tea", &tea),
        ("GREEN%20tea", &tea),
        ("caf%C3%A9%20AU%20LAIT", &cafe),
        ("AC%2FDC%20T-shirt", &slash),
    ] {
        let reply = app.get(&format!("{FOR_SALE}/{path}"), None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
        assert_eq!(&reply.body, expected, "{path}");
    }

    let missing = app.get(&format!("{FOR_SALE}/Black%20Tea"), None).await;
    missing.assert_problem(404);
}

// ---------------------------------------------------------------- purchases

#[tokio::test]
async fn a_purchase_returns_201_with_the_sale_and_the_new_balance() {
    let app = spawn_app().await;
    let good = app.add_good("Green Tea", json!(2.5), 10).await;
    let alice = customer_with(&app, "alice", json!(20)).await;

    let reply = buy(
        &app,
        Some(&alice),
        json!({ "good": "Green Tea", "quantity": 3 }),
        None,
    )
    .await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.content_type(), "application/json");
    let mut top: Vec<&str> = reply
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    top.sort_unstable();
    assert_eq!(top, ["sale", "wallet_balance"]);
    let sale = &reply.body["sale"];
    let mut fields: Vec<&str> = sale
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, SALE_FIELDS);
    assert_eq!(sale["username"], "alice");
    assert_eq!(sale["good_id"], good["id"]);
    assert_eq!(sale["good_name"], "Green Tea");
    assert_eq!(sale["quantity"], 3);
    assert_eq!(sale["unit_price"], json!(2.5));
    assert_eq!(sale["total"], json!(7.5));
    assert!(is_rfc3339_utc(sale["created_at"].as_str().unwrap()));
    assert_eq!(reply.body["wallet_balance"], json!(12.5));

    assert_eq!(app.balance_cents("alice").await, 1250);
    assert_eq!(app.good(&id_of(&good)).await["count"], 7);

    let location = reply.header("location").unwrap();
    assert_eq!(location, format!("{SALES}/{}", id_of(sale)));
    let fetched = app.get(location, Some(&alice)).await;
    assert_eq!(fetched.status, StatusCode::OK, "{}", fetched.text);
    assert_eq!(&fetched.body, sale);

    let history = history(&app, "alice").await;
    assert_eq!(history["items"], json!([sale]));
    assert_eq!(history["total"], 1);
}

#[tokio::test]
async fn quantity_defaults_to_one_and_the_good_is_matched_ignoring_case() {
    let app = spawn_app().await;
    app.add_good("Green Tea", json!(2.5), 10).await;
    let alice = customer_with(&app, "alice", json!(5)).await;

    let reply = buy(&app, Some(&alice), json!({ "good": "  green TEA " }), None).await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.body["sale"]["quantity"], 1);
    assert_eq!(reply.body["sale"]["good_name"], "Green Tea");
    assert_eq!(reply.body["sale"]["total"], json!(2.5));
    assert_eq!(reply.body["wallet_balance"], json!(2.5));
}

#[tokio::test]
async fn totals_are_exact_in_cents() {
    let app = spawn_app().await;
    app.add_good("Penny Sweet", json!(0.01), 1000).await;
    app.add_good("Odd Price", json!(0.07), 1000).await;
    let alice = customer_with(&app, "alice", json!(100)).await;

    let sweets = bought(&app, &alice, "Penny Sweet", 1000).await;
    let odd = bought(&app, &alice, "Odd Price", 3).await;

    assert_eq!(sweets["sale"]["total"], json!(10));
    assert_eq!(odd["sale"]["total"], json!(0.21));
    assert_eq!(odd["wallet_balance"], json!(89.79));
    assert_eq!(app.balance_cents("alice").await, 8979);
}

#[tokio::test]
async fn buying_the_exact_balance_and_the_last_unit_succeeds() {
    let app = spawn_app().await;
    let good = app.add_good("Heirloom", json!(12.34), 2).await;
    let alice = customer_with(&app, "alice", json!(24.68)).await;

    let reply = bought(&app, &alice, "Heirloom", 2).await;

    assert_eq!(reply["wallet_balance"], json!(0));
    assert_eq!(app.good(&id_of(&good)).await["count"], 0);
}

#[tokio::test]
async fn purchases_need_a_token() {
    let app = spawn_app().await;
    let good = app.add_good("Tea", json!(1), 5).await;

    let reply = buy(&app, None, json!({ "good": "Tea" }), None).await;

    reply.assert_problem(401);
    assert_eq!(app.good(&id_of(&good)).await["count"], 5);
}

#[tokio::test]
async fn purchases_reject_bad_goods_and_quantities() {
    let app = spawn_app().await;
    let good = app.add_good("Tea", json!(1), 5).await;
    let alice = customer_with(&app, "alice", json!(100)).await;

    for (body, fields) in [
        (json!({}), vec!["good"]),
        (json!({ "good": "" }), vec!["good"]),
        (json!({ "good": "   " }), vec!["good"]),
        (json!({ "good": 7 }), vec!["good"]),
        (json!({ "good": null }), vec!["good"]),
        (json!({ "good": "x".repeat(101) }), vec!["good"]),
        (json!({ "good": "Tea", "quantity": 0 }), vec!["quantity"]),
        (json!({ "good": "Tea", "quantity": -1 }), vec!["quantity"]),
        (json!({ "good": "Tea", "quantity": 1001 }), vec!["quantity"]),
        (json!({ "good": "Tea", "quantity": 1.5 }), vec!["quantity"]),
        (json!({ "good": "Tea", "quantity": "2" }), vec!["quantity"]),
        (json!({ "good": "Tea", "quantity": null }), vec!["quantity"]),
        (json!({ "good": "Tea", "username": 5 }), vec!["username"]),
        (json!({ "good": "Tea", "price": 0.01 }), vec!["price"]),
        (
            json!({ "good": "", "quantity": 0, "colour": "red" }),
            vec!["colour", "good", "quantity"],
        ),
    ] {
        let reply = buy(&app, Some(&alice), body.clone(), None).await;
        assert_invalid(&reply, &fields, &body.to_string());
    }
    assert_eq!(app.balance_cents("alice").await, 10_000);
    assert_eq!(app.good(&id_of(&good)).await["count"], 5);
    assert_eq!(history(&app, "alice").await["total"], 0);
}

#[tokio::test]
async fn a_purchase_without_a_json_body_gets_400() {
    let app = spawn_app().await;
    app.add_good("Tea", json!(1), 5).await;
    let alice = customer_with(&app, "alice", json!(10)).await;
    let valid = json!({ "good": "Tea" }).to_string().into_bytes();

    for (content_type, body) in [
        (None, valid.clone()),
        (Some("text/plain"), valid),
        (Some("application/json"), b"{\"good\":".to_vec()),
        (Some("application/json"), b"\"Tea\"".to_vec()),
    ] {
        let reply = app
            .send_raw(Method::POST, SALES, Some(&alice), content_type, body)
            .await;
        let status = reply.status.as_u16();
        assert!(
            status == 400 || status == 415,
            "{content_type:?}: {}",
            reply.text
        );
        reply.assert_problem(status);
    }
    assert_eq!(app.balance_cents("alice").await, 1000);
}

#[tokio::test]
async fn buying_a_good_that_does_not_exist_gets_404_and_charges_nothing() {
    let app = spawn_app().await;
    let alice = customer_with(&app, "alice", json!(10)).await;

    let reply = buy(&app, Some(&alice), json!({ "good": "Unicorn" }), None).await;

    let problem = reply.assert_problem(404);
    assert_eq!(problem["type"], "urn:souk:error:not-found");
    assert_eq!(app.balance_cents("alice").await, 1000);
}

#[tokio::test]
async fn buying_more_than_the_stock_gets_409_and_changes_nothing() {
    let app = spawn_app().await;
    let good = app.add_good("Tea", json!(1), 2).await;
    let alice = customer_with(&app, "alice", json!(10)).await;

    let reply = buy(
        &app,
        Some(&alice),
        json!({ "good": "Tea", "quantity": 3 }),
        None,
    )
    .await;

    assert_conflict(&reply, "insufficient-stock");
    assert_eq!(app.balance_cents("alice").await, 1000);
    assert_eq!(app.good(&id_of(&good)).await["count"], 2);
    assert_eq!(history(&app, "alice").await["total"], 0);
}

#[tokio::test]
async fn buying_more_than_the_wallet_covers_gets_409_and_changes_nothing() {
    let app = spawn_app().await;
    let good = app.add_good("Tea", json!(4), 10).await;
    let alice = customer_with(&app, "alice", json!(10)).await;

    let reply = buy(
        &app,
        Some(&alice),
        json!({ "good": "Tea", "quantity": 3 }),
        None,
    )
    .await;

    assert_conflict(&reply, "insufficient-funds");
    assert_eq!(app.balance_cents("alice").await, 1000);
    assert_eq!(app.good(&id_of(&good)).await["count"], 10);
    assert_eq!(history(&app, "alice").await["total"], 0);

    let broke = app.customer("bob").await;
    let reply = buy(&app, Some(&broke), json!({ "good": "Tea" }), None).await;
    assert_conflict(&reply, "insufficient-funds");
}

#[tokio::test]
async fn the_stock_is_checked_before_the_wallet() {
    let app = spawn_app().await;
    app.add_good("Tea", json!(4), 1).await;
    let broke = app.customer("bob").await;

    let reply = buy(
        &app,
        Some(&broke),
        json!({ "good": "Tea", "quantity": 2 }),
        None,
    )
    .await;

    assert_conflict(&reply, "insufficient-stock");
}

#[tokio::test]
async fn an_admin_can_buy_for_a_customer_with_the_customers_money() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let good = app.add_good("Tea", json!(3), 10).await;
    customer_with(&app, "alice", json!(10)).await;
    let admin_before = app.balance_cents(crate::helpers::ADMIN_USERNAME).await;

    let reply = buy(
        &app,
        Some(&admin),
        json!({ "good": "tea", "quantity": 2, "username": "ALICE" }),
        None,
    )
    .await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.body["sale"]["username"], "alice");
    assert_eq!(reply.body["wallet_balance"], json!(4));
    assert_eq!(app.balance_cents("alice").await, 400);
    assert_eq!(
        app.balance_cents(crate::helpers::ADMIN_USERNAME).await,
        admin_before
    );
    assert_eq!(app.good(&id_of(&good)).await["count"], 8);
    assert_eq!(
        ids(&history(&app, "alice").await),
        [id_of(&reply.body["sale"])]
    );
}

#[tokio::test]
async fn an_admin_buying_for_an_unknown_customer_gets_404() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let good = app.add_good("Tea", json!(3), 10).await;

    let reply = buy(
        &app,
        Some(&admin),
        json!({ "good": "Tea", "username": "nobody" }),
        None,
    )
    .await;

    reply.assert_problem(404);
    assert_eq!(app.good(&id_of(&good)).await["count"], 10);
}

#[tokio::test]
async fn an_admin_without_a_username_buys_with_their_own_wallet() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.add_good("Tea", json!(3), 10).await;
    let reply = app.charge(crate::helpers::ADMIN_USERNAME, json!(5)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);

    let reply = bought(&app, &admin, "Tea", 1).await;

    assert_eq!(reply["sale"]["username"], crate::helpers::ADMIN_USERNAME);
    assert_eq!(reply["wallet_balance"], json!(2));
}

#[tokio::test]
async fn a_customer_may_name_only_themselves_as_the_buyer() {
    let app = spawn_app().await;
    let good = app.add_good("Tea", json!(1), 10).await;
    let alice = customer_with(&app, "alice", json!(10)).await;
    customer_with(&app, "bob", json!(10)).await;

    for other in ["bob", "nobody", crate::helpers::ADMIN_USERNAME] {
        let reply = buy(
            &app,
            Some(&alice),
            json!({ "good": "Tea", "username": other }),
            None,
        )
        .await;
        let problem = reply.assert_problem(403);
        assert_eq!(problem["type"], "urn:souk:error:forbidden");
    }
    assert_eq!(app.balance_cents("bob").await, 1000);
    assert_eq!(app.balance_cents("alice").await, 1000);
    assert_eq!(app.good(&id_of(&good)).await["count"], 10);

    let reply = buy(
        &app,
        Some(&alice),
        json!({ "good": "Tea", "username": "ALICE" }),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.body["sale"]["username"], "alice");
}

#[tokio::test]
async fn a_sale_keeps_the_name_and_price_it_was_made_with() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let good = app.add_good("Tea", json!(2), 10).await;
    let alice = customer_with(&app, "alice", json!(10)).await;
    let sale = bought(&app, &alice, "Tea", 2).await["sale"].clone();

    let path = format!("/api/v1/goods/{}", id_of(&good));
    let reply = app
        .patch(
            &path,
            Some(&admin),
            json!({ "name": "Old Tea", "price": 9 }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(history(&app, "alice").await["items"], json!([sale]));

    let reply = app.delete(&path, Some(&admin)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    let after = history(&app, "alice").await;
    assert_eq!(after["items"], json!([sale]));
    assert_eq!(after["items"][0]["good_name"], "Tea");
    assert_eq!(after["items"][0]["unit_price"], json!(2));

    let reply = buy(&app, Some(&alice), json!({ "good": "Old Tea" }), None).await;
    reply.assert_problem(404);
}

// ---------------------------------------------------------------- reading sales

#[tokio::test]
async fn a_sale_is_visible_to_its_buyer_and_admins_only() {
    let app = spawn_app().await;
    app.add_good("Tea", json!(1), 10).await;
    let alice = customer_with(&app, "alice", json!(10)).await;
    let bob = app.customer("bob").await;
    let admin = app.admin_token().await;
    let sale = bought(&app, &alice, "Tea", 1).await["sale"].clone();
    let path = format!("{SALES}/{}", id_of(&sale));

    assert_eq!(app.get(&path, Some(&admin)).await.body, sale);
    app.get(&path, None).await.assert_problem(401);
    app.get(&path, Some(&bob)).await.assert_problem(404);
    app.get(&format!("{SALES}/nope"), Some(&admin))
        .await
        .assert_problem(404);
}

#[tokio::test]
async fn history_is_newest_first_and_paged() {
    let app = spawn_app().await;
    app.add_good("Tea", json!(1), 100).await;
    let alice = customer_with(&app, "alice", json!(100)).await;
    let mut made = Vec::new();
    for quantity in 1..=5 {
        made.push(id_of(&bought(&app, &alice, "Tea", quantity).await["sale"]));
    }
    made.reverse();

    let all = app.get(&history_path("alice"), Some(&alice)).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert_eq!(ids(&all.body), made);
    assert_eq!(all.body["total"], 5);
    let quantities: Vec<i64> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["quantity"].as_i64().unwrap())
        .collect();
    assert_eq!(quantities, [5, 4, 3, 2, 1]);

    let page = app
        .get(
            &format!("{}?limit=2&offset=1", history_path("ALICE")),
            Some(&alice),
        )
        .await;
    assert_eq!(ids(&page.body), made[1..3]);
    assert_eq!(page.body["total"], 5);
    assert_eq!(page.body["limit"], 2);
    assert_eq!(page.body["offset"], 1);

    let bad = app
        .get(
            &format!("{}?limit=0&offset=-1", history_path("alice")),
            Some(&alice),
        )
        .await;
    assert_invalid(&bad, &["limit", "offset"], "bad paging");
}

#[tokio::test]
async fn history_is_for_the_customer_themselves_or_an_admin() {
    let app = spawn_app().await;
    app.add_good("Tea", json!(1), 10).await;
    let alice = customer_with(&app, "alice", json!(10)).await;
    let bob = app.customer("bob").await;
    let admin = app.admin_token().await;
    bought(&app, &alice, "Tea", 1).await;

    app.get(&history_path("alice"), None)
        .await
        .assert_problem(401);
    app.get(&history_path("alice"), Some(&bob))
        .await
        .assert_problem(403);
    app.get(&history_path("nobody"), Some(&bob))
        .await
        .assert_problem(403);
    let reply = app.get(&history_path("alice"), Some(&admin)).await;
    assert_eq!(reply.body["total"], 1, "{}", reply.text);
    let empty = app.get(&history_path("bob"), Some(&bob)).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.text);
    assert_eq!(empty.body["items"], json!([]));
    assert_eq!(empty.body["total"], 0);
    app.get(&history_path("nobody"), Some(&admin))
        .await
        .assert_problem(404);
}

#[tokio::test]
async fn history_belongs_to_the_account_not_to_the_username() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.add_good("Tea", json!(1), 10).await;
    let alice = customer_with(&app, "alice", json!(10)).await;
    bought(&app, &alice, "Tea", 1).await;

    let reply = app.delete("/api/v1/customers/alice", Some(&admin)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    app.get(&history_path("alice"), Some(&admin))
        .await
        .assert_problem(404);

    app.customer("alice").await;
    assert_eq!(history(&app, "alice").await["total"], 0);
}

// ---------------------------------------------------------------- idempotency

#[tokio::test]
async fn a_retried_purchase_with_the_same_key_returns_the_first_result_and_charges_once() {
    let app = spawn_app().await;
    let good = app.add_good("Tea", json!(2), 10).await;
    let alice = customer_with(&app, "alice", json!(10)).await;
    let body = json!({ "good": "Tea", "quantity": 2 });

    let first = buy(&app, Some(&alice), body.clone(), Some("order-42")).await;
    let retry = buy(&app, Some(&alice), body, Some("order-42")).await;

    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.text);
    assert_eq!(retry.text, first.text, "the same body");
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.header("idempotent-replayed"), None);
    assert_eq!(app.balance_cents("alice").await, 600);
    assert_eq!(app.good(&id_of(&good)).await["count"], 8);
    assert_eq!(history(&app, "alice").await["total"], 1);
}

#[tokio::test]
async fn the_same_purchase_spelled_differently_is_still_a_retry() {
    let app = spawn_app().await;
    app.add_good("Tea", json!(2), 10).await;
    let alice = customer_with(&app, "alice", json!(10)).await;

    let first = buy(&app, Some(&alice), json!({ "good": "Tea" }), Some("k")).await;
    let retry = buy(
        &app,
        Some(&alice),
        json!({ "quantity": 1, "good": "TEA", "username": "alice" }),
        Some("k"),
    )
    .await;

    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.text);
    assert_eq!(retry.body, first.body);
    assert_eq!(app.balance_cents("alice").await, 800);
}

#[tokio::test]
async fn reusing_a_key_for_a_different_purchase_gets_409() {
    let app = spawn_app().await;
    let good = app.add_good("Tea", json!(2), 10).await;
    app.add_good("Coffee", json!(3), 10).await;
    let alice = customer_with(&app, "alice", json!(20)).await;
    let first = buy(&app, Some(&alice), json!({ "good": "Tea" }), Some("k1")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);

    for body in [
        json!({ "good": "Tea", "quantity": 2 }),
        json!({ "good": "Coffee" }),
    ] {
        let reply = buy(&app, Some(&alice), body, Some("k1")).await;
        assert_conflict(&reply, "idempotency-key-reused");
    }
    assert_eq!(app.balance_cents("alice").await, 1800);
    assert_eq!(app.good(&id_of(&good)).await["count"], 9);
}

#[tokio::test]
async fn keys_are_per_caller() {
    let app = spawn_app().await;
    app.add_good("Tea", json!(2), 10).await;
    let alice = customer_with(&app, "alice", json!(10)).await;
    let bob = customer_with(&app, "bob", json!(10)).await;

    let a = buy(&app, Some(&alice), json!({ "good": "Tea" }), Some("same")).await;
    let b = buy(&app, Some(&bob), json!({ "good": "Tea" }), Some("same")).await;

    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.text);
    assert_ne!(a.body["sale"]["id"], b.body["sale"]["id"]);
    assert_eq!(app.balance_cents("alice").await, 800);
    assert_eq!(app.balance_cents("bob").await, 800);
}

#[tokio::test]
async fn a_failed_purchase_does_not_use_up_its_key() {
    let app = spawn_app().await;
    app.add_good("Tea", json!(5), 10).await;
    let alice = customer_with(&app, "alice", json!(3)).await;
    let body = json!({ "good": "Tea" });

    let failed = buy(&app, Some(&alice), body.clone(), Some("retry-me")).await;
    assert_conflict(&failed, "insufficient-funds");

    app.charge("alice", json!(2)).await;
    let retried = buy(&app, Some(&alice), body, Some("retry-me")).await;
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.text);
    assert_eq!(retried.body["wallet_balance"], json!(0));
}

#[tokio::test]
async fn a_replay_answers_the_first_result_even_after_the_stock_ran_out() {
    let app = spawn_app().await;
    app.add_good("Last One", json!(1), 1).await;
    let alice = customer_with(&app, "alice", json!(10)).await;
    let body = json!({ "good": "Last One" });

    let first = buy(&app, Some(&alice), body.clone(), Some("k")).await;
    let retry = buy(&app, Some(&alice), body.clone(), Some("k")).await;
    let fresh = buy(&app, Some(&alice), body, Some("another")).await;

    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.text);
    assert_eq!(retry.text, first.text);
    assert_conflict(&fresh, "insufficient-stock");
}

#[tokio::test]
async fn bad_idempotency_keys_get_400_naming_the_header() {
    let app = spawn_app().await;
    let good = app.add_good("Tea", json!(1), 10).await;
    let alice = customer_with(&app, "alice", json!(10)).await;

    for key in ["", "a b", &"k".repeat(65), "tab\tinside"] {
        let reply = buy(&app, Some(&alice), json!({ "good": "Tea" }), Some(key)).await;
        assert_invalid(&reply, &["Idempotency-Key"], &format!("{key:?}"));
    }

    let twice = app
        .request(Method::POST, SALES, Some(&alice))
        .json(&json!({ "good": "Tea" }))
        .header("Idempotency-Key", "one")
        .header("Idempotency-Key", "two");
    let reply = app.send_built(twice).await;
    assert_invalid(&reply, &["Idempotency-Key"], "two values");

    let with_body_error = buy(&app, Some(&alice), json!({ "good": "" }), Some("")).await;
    assert_invalid(&with_body_error, &["Idempotency-Key", "good"], "both");

    let longest = buy(
        &app,
        Some(&alice),
        json!({ "good": "Tea" }),
        Some(&"k".repeat(64)),
    )
    .await;
    assert_eq!(longest.status, StatusCode::CREATED, "{}", longest.text);
    assert_eq!(app.good(&id_of(&good)).await["count"], 9);
}

/// A key that is not visible ASCII (here `ключ`) must reach the sales
/// component (the host forwards header values lossily, never drops them)
/// and be refused with 400, not ignored.
#[tokio::test]
async fn a_non_ascii_idempotency_key_gets_400() {
    let app = spawn_app().await;
    app.add_good("Tea", json!(1), 10).await;
    let alice = customer_with(&app, "alice", json!(10)).await;
    let key = reqwest::header::HeaderValue::from_bytes("ключ".as_bytes()).unwrap();

    let builder = app
        .request(Method::POST, SALES, Some(&alice))
        .json(&json!({ "good": "Tea" }))
        .header("Idempotency-Key", key);
    let reply = app.send_built(builder).await;

    assert_invalid(&reply, &["Idempotency-Key"], "non-ASCII key");
    assert_eq!(app.balance_cents("alice").await, 1000);
}

#[tokio::test]
async fn concurrent_duplicates_with_one_key_make_one_sale() {
    let app = Arc::new(spawn_app().await);
    let good = app.add_good("Tea", json!(1), 100).await;
    let alice = customer_with(&app, "alice", json!(50)).await;

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (app, alice) = (app.clone(), alice.clone());
        tasks.spawn(async move {
            buy(
                &app,
                Some(&alice),
                json!({ "good": "Tea", "quantity": 3 }),
                Some("double-click"),
            )
            .await
        });
    }
    let mut sale_ids = Vec::new();
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        sale_ids.push(id_of(&reply.body["sale"]));
    }
    sale_ids.dedup();
    assert_eq!(sale_ids.len(), 1, "{sale_ids:?}");
    assert_eq!(app.balance_cents("alice").await, 4700);
    assert_eq!(app.good(&id_of(&good)).await["count"], 97);
    assert_eq!(history(&app, "alice").await["total"], 1);
}

// ---------------------------------------------------------------- concurrency

#[tokio::test]
async fn forty_buyers_racing_for_ten_units_get_exactly_ten_and_money_is_conserved() {
    const BUYERS: usize = 40;
    const STOCK: i64 = 10;
    let app = Arc::new(spawn_app().await);
    let good = app.add_good("Limited Edition", json!(7.25), STOCK).await;

    let names: Vec<String> = (0..BUYERS).map(|i| format!("buyer_{i:02}")).collect();
    let buyers = customers_with(&app, &names, json!(20)).await;
    let charged: i64 = 2000 * i64::try_from(BUYERS).unwrap();

    let mut purchases = tokio::task::JoinSet::new();
    for (_, token) in &buyers {
        let (app, token) = (app.clone(), token.clone());
        purchases.spawn(async move {
            buy(
                &app,
                Some(&token),
                json!({ "good": "Limited Edition" }),
                None,
            )
            .await
        });
    }
    let mut totals = 0;
    let (mut sold, mut refused) = (0, 0);
    while let Some(reply) = purchases.join_next().await {
        let reply = reply.unwrap();
        if reply.status == StatusCode::CREATED {
            sold += 1;
            totals += cents(&reply.body["sale"]["total"]);
        } else {
            assert_conflict(&reply, "insufficient-stock");
            refused += 1;
        }
    }

    assert_eq!((sold, refused), (10, 30));
    assert_eq!(app.good(&id_of(&good)).await["count"], 0);
    let mut balances = 0;
    let mut recorded = 0;
    for (username, _) in &buyers {
        let balance = app.balance_cents(username).await;
        assert!(
            balance == 2000 || balance == 2000 - 725,
            "{username}: {balance}"
        );
        balances += balance;
        for sale in history(&app, username).await["items"].as_array().unwrap() {
            recorded += cents(&sale["total"]);
        }
    }
    assert_eq!(totals, 10 * 725);
    assert_eq!(recorded, totals);
    assert_eq!(charged - balances, totals, "money taken = sale totals");
}

#[tokio::test]
async fn concurrent_purchases_for_the_last_dollars_of_one_wallet_let_exactly_one_through() {
    const ATTEMPTS: usize = 8;
    let app = Arc::new(spawn_app().await);
    for index in 0..ATTEMPTS {
        app.add_good(&format!("Good {index}"), json!(6), 5).await;
    }
    let alice = customer_with(&app, "alice", json!(10)).await;

    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..ATTEMPTS {
        let (app, alice) = (app.clone(), alice.clone());
        tasks.spawn(async move {
            buy(
                &app,
                Some(&alice),
                json!({ "good": format!("Good {index}") }),
                None,
            )
            .await
        });
    }
    let mut sold = 0;
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        if reply.status == StatusCode::CREATED {
            sold += 1;
            assert_eq!(reply.body["wallet_balance"], json!(4));
        } else {
            assert_conflict(&reply, "insufficient-funds");
        }
    }

    assert_eq!(sold, 1);
    assert_eq!(app.balance_cents("alice").await, 400);
    let history = history(&app, "alice").await;
    assert_eq!(history["total"], 1);
    let goods = app.get("/api/v1/goods?in_stock=true", None).await;
    let stock: i64 = goods.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["count"].as_i64().unwrap())
        .sum();
    assert_eq!(stock, 5 * i64::try_from(ATTEMPTS).unwrap() - 1);
}

#[tokio::test]
async fn a_wrong_method_on_a_sales_path_gets_405() {
    let app = spawn_app().await;
    let alice = app.customer("alice").await;

    app.get(SALES, Some(&alice)).await.assert_problem(405);
    app.post(FOR_SALE, Some(&alice), json!({}))
        .await
        .assert_problem(405);
    app.delete(&history_path("alice"), Some(&alice))
        .await
        .assert_problem(405);
}
