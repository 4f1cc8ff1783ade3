//! The served `/openapi.json` tells the truth about the components, whose
//! fragments are generated from their route declarations: it assembles
//! without a clash into valid OpenAPI 3.1, and every status a component's
//! operation documents is produced by an example request in [`examples`],
//! answered with a body that matches the documented schema exactly (every
//! required field present, no undocumented field, types and bounds kept).
//!
//! The other direction, that a handler answers nothing its route does not
//! declare, is checked by the SDK's router on every answer in the
//! components' own tests; here every example's status must be documented
//! too.
//!
//! One host serves every example, in table order (reads before the writes
//! that would change them; the login throttling last, since it throttles
//! this client).

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, Reply, TestApp, customer_body, good_body, is_rfc3339_utc, spawn_app,
};

/// Statuses documented on every operation that no single request can be
/// made to produce without breaking the host: 503 is the platform's
/// answer when the database or a component is unavailable, overloaded or
/// past its deadline, proven in `service_failures.rs` and `limits.rs`.
const PLATFORM_ONLY: &[u16] = &[503];

/// One request expected to produce `status` from operation `operation`.
struct Example {
    operation: &'static str,
    status: u16,
    method: Method,
    path: String,
    token: Option<String>,
    body: Option<Value>,
}

fn example(
    operation: &'static str,
    status: u16,
    method: Method,
    path: impl Into<String>,
    token: Option<&str>,
    body: Option<Value>,
) -> Example {
    Example {
        operation,
        status,
        method,
        path: path.into(),
        token: token.map(str::to_owned),
        body,
    }
}

/// A JSON body over the host's 64 KiB limit.
fn too_large() -> Option<Value> {
    Some(json!({ "text": "x".repeat(70 * 1024) }))
}

/// Ids and tokens the examples refer to.
struct Fixtures {
    admin: String,
    alice: String,
    bob: String,
    erin: String,
    tea: String,
    coffee: String,
    doomed_good: String,
    sale: String,
    approved_review: String,
    bobs_pending_review: String,
    alices_other_review: String,
}

async fn fixtures(app: &TestApp) -> Fixtures {
    let admin = app.admin_token().await;
    let alice = app.customer("alice").await;
    let bob = app.customer("bob").await;
    let erin = app.customer("erin").await;
    let tea = app.add_good("Tea", json!(2.5), 100).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let coffee = app.add_good("Coffee", json!(4), 100).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.add_good("Empty", json!(1), 0).await;
    let doomed_good = app.add_good("Doomed", json!(1), 1).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.charge("alice", json!(100)).await.status, 200);
    let sale = app
        .post("/api/v1/sales", Some(&alice), json!({ "good": "Tea" }))
        .await;
    assert_eq!(sale.status, 201, "{}", sale.text);
    let sale = sale.body["sale"]["id"].as_str().unwrap().to_owned();
    let review = |token: &str, good: &str| {
        let body = json!({ "good_id": good, "rating": 4, "comment": "fine" });
        let token = token.to_owned();
        async move {
            let reply = app.post("/api/v1/reviews", Some(&token), body).await;
            assert_eq!(reply.status, 201, "{}", reply.text);
            reply.body["id"].as_str().unwrap().to_owned()
        }
    };
    let approved_review = review(&alice, &tea).await;
    let moderated = app
        .post(
            &format!("/api/v1/reviews/{approved_review}/moderate"),
            Some(&admin),
            json!({ "status": "approved" }),
        )
        .await;
    assert_eq!(moderated.status, 200, "{}", moderated.text);
    let bobs_pending_review = review(&bob, &coffee).await;
    let alices_other_review = review(&alice, &coffee).await;
    let wished = app
        .post("/api/v1/wishlist", Some(&alice), json!({ "good_id": tea }))
        .await;
    assert_eq!(wished.status, 201, "{}", wished.text);
    Fixtures {
        admin,
        alice,
        bob,
        erin,
        tea,
        coffee,
        doomed_good,
        sale,
        approved_review,
        bobs_pending_review,
        alices_other_review,
    }
}

/// Every example, in the order they run: one line each, as a table.
#[rustfmt::skip]
fn examples(f: &Fixtures) -> Vec<Example> {
    use Method as M;
    let (admin, alice, bob) = (Some(f.admin.as_str()), Some(f.alice.as_str()), Some(f.bob.as_str()));
    let none = None;
    let nul = "a%00b";
    let tea = f.tea.as_str();
    let good = |id: &str| format!("/api/v1/goods/{id}");
    let review = |id: &str| format!("/api/v1/reviews/{id}");
    let empty = || Some(json!({}));
    vec![
        // Customers.
        example("registerCustomer", 201, M::POST, "/api/v1/customers", none, Some(customer_body("frank"))),
        example("registerCustomer", 400, M::POST, "/api/v1/customers", none, empty()),
        example("registerCustomer", 409, M::POST, "/api/v1/customers", none, Some(customer_body("alice"))),
        example("registerCustomer", 413, M::POST, "/api/v1/customers", none, too_large()),
        example("listCustomers", 200, M::GET, "/api/v1/customers?q=ali", admin, None),
        example("listCustomers", 400, M::GET, "/api/v1/customers?limit=0", admin, None),
        example("listCustomers", 401, M::GET, "/api/v1/customers", none, None),
        example("listCustomers", 403, M::GET, "/api/v1/customers", alice, None),
        example("getCustomer", 200, M::GET, "/api/v1/customers/alice", alice, None),
        example("getCustomer", 400, M::GET, format!("/api/v1/customers/{nul}"), admin, None),
        example("getCustomer", 401, M::GET, "/api/v1/customers/alice", none, None),
        example("getCustomer", 403, M::GET, "/api/v1/customers/bob", alice, None),
        example("getCustomer", 404, M::GET, "/api/v1/customers/nobody", admin, None),
        example("updateCustomer", 200, M::PATCH, "/api/v1/customers/alice", alice, Some(json!({ "full_name": "Alice A" }))),
        example("updateCustomer", 400, M::PATCH, "/api/v1/customers/alice", alice, empty()),
        example("updateCustomer", 401, M::PATCH, "/api/v1/customers/alice", none, Some(json!({ "age": 31 }))),
        example("updateCustomer", 403, M::PATCH, "/api/v1/customers/alice", alice, Some(json!({ "role": "admin" }))),
        example("updateCustomer", 404, M::PATCH, "/api/v1/customers/nobody", admin, Some(json!({ "age": 31 }))),
        example("updateCustomer", 409, M::PATCH, "/api/v1/customers/root", admin, Some(json!({ "role": "customer" }))),
        example("updateCustomer", 413, M::PATCH, "/api/v1/customers/alice", admin, too_large()),
        example("chargeWallet", 200, M::POST, "/api/v1/customers/alice/wallet/charge", alice, Some(json!({ "amount": 5 }))),
        example("chargeWallet", 400, M::POST, "/api/v1/customers/alice/wallet/charge", alice, Some(json!({ "amount": -1 }))),
        example("chargeWallet", 401, M::POST, "/api/v1/customers/alice/wallet/charge", none, Some(json!({ "amount": 5 }))),
        example("chargeWallet", 403, M::POST, "/api/v1/customers/bob/wallet/charge", alice, Some(json!({ "amount": 5 }))),
        example("chargeWallet", 404, M::POST, "/api/v1/customers/nobody/wallet/charge", admin, Some(json!({ "amount": 5 }))),
        example("chargeWallet", 413, M::POST, "/api/v1/customers/alice/wallet/charge", admin, too_large()),
        example("deductWallet", 200, M::POST, "/api/v1/customers/alice/wallet/deduct", alice, Some(json!({ "amount": 1 }))),
        example("deductWallet", 400, M::POST, "/api/v1/customers/alice/wallet/deduct", alice, Some(json!({ "amount": "1" }))),
        example("deductWallet", 401, M::POST, "/api/v1/customers/alice/wallet/deduct", none, Some(json!({ "amount": 1 }))),
        example("deductWallet", 403, M::POST, "/api/v1/customers/bob/wallet/deduct", alice, Some(json!({ "amount": 1 }))),
        example("deductWallet", 404, M::POST, "/api/v1/customers/nobody/wallet/deduct", admin, Some(json!({ "amount": 1 }))),
        example("deductWallet", 409, M::POST, "/api/v1/customers/bob/wallet/deduct", bob, Some(json!({ "amount": 1 }))),
        example("deductWallet", 413, M::POST, "/api/v1/customers/alice/wallet/deduct", admin, too_large()),
        example("login", 200, M::POST, "/api/v1/auth/login", none, Some(json!({ "username": "bob", "password": PASSWORD }))),
        example("login", 400, M::POST, "/api/v1/auth/login", none, empty()),
        example("login", 401, M::POST, "/api/v1/auth/login", none, Some(json!({ "username": "bob", "password": "wrong1234" }))),
        example("login", 413, M::POST, "/api/v1/auth/login", none, too_large()),
        // Inventory.
        example("addGood", 201, M::POST, "/api/v1/goods", admin, Some(good_body("Biscuit", json!(1.25), 3))),
        example("addGood", 400, M::POST, "/api/v1/goods", admin, empty()),
        example("addGood", 401, M::POST, "/api/v1/goods", none, Some(good_body("Cake", json!(1), 1))),
        example("addGood", 403, M::POST, "/api/v1/goods", alice, Some(good_body("Cake", json!(1), 1))),
        example("addGood", 409, M::POST, "/api/v1/goods", admin, Some(good_body("tea", json!(1), 1))),
        example("addGood", 413, M::POST, "/api/v1/goods", admin, too_large()),
        example("listGoods", 200, M::GET, "/api/v1/goods?category=food&in_stock=true&q=t", none, None),
        example("listGoods", 400, M::GET, "/api/v1/goods?category=toys", none, None),
        example("getGood", 200, M::GET, good(tea), none, None),
        example("getGood", 400, M::GET, good(nul), none, None),
        example("getGood", 404, M::GET, good("nope"), none, None),
        example("updateGood", 200, M::PATCH, good(tea), admin, Some(json!({ "description": "Hot" }))),
        example("updateGood", 400, M::PATCH, good(tea), admin, empty()),
        example("updateGood", 401, M::PATCH, good(tea), none, Some(json!({ "count": 5 }))),
        example("updateGood", 403, M::PATCH, good(tea), alice, Some(json!({ "count": 5 }))),
        example("updateGood", 404, M::PATCH, good("nope"), admin, Some(json!({ "count": 5 }))),
        example("updateGood", 409, M::PATCH, good(tea), admin, Some(json!({ "name": "COFFEE" }))),
        example("updateGood", 413, M::PATCH, good(tea), admin, too_large()),
        example("deductStock", 200, M::POST, format!("{}/deduct", good(tea)), admin, Some(json!({ "count": 1 }))),
        example("deductStock", 400, M::POST, format!("{}/deduct", good(tea)), admin, Some(json!({ "count": 0 }))),
        example("deductStock", 401, M::POST, format!("{}/deduct", good(tea)), none, Some(json!({ "count": 1 }))),
        example("deductStock", 403, M::POST, format!("{}/deduct", good(tea)), alice, Some(json!({ "count": 1 }))),
        example("deductStock", 404, M::POST, format!("{}/deduct", good("nope")), admin, Some(json!({ "count": 1 }))),
        example("deductStock", 409, M::POST, format!("{}/deduct", good(tea)), admin, Some(json!({ "count": 1_000_000 }))),
        example("deductStock", 413, M::POST, format!("{}/deduct", good(tea)), admin, too_large()),
        // Sales.
        example("listGoodsForSale", 200, M::GET, "/api/v1/sales/goods", none, None),
        example("listGoodsForSale", 400, M::GET, "/api/v1/sales/goods?offset=-1", none, None),
        example("getGoodForSale", 200, M::GET, "/api/v1/sales/goods/tea", none, None),
        example("getGoodForSale", 400, M::GET, format!("/api/v1/sales/goods/{nul}"), none, None),
        example("getGoodForSale", 404, M::GET, "/api/v1/sales/goods/Nothing", none, None),
        example("purchase", 201, M::POST, "/api/v1/sales", alice, Some(json!({ "good": "Tea", "quantity": 2 }))),
        example("purchase", 400, M::POST, "/api/v1/sales", alice, empty()),
        example("purchase", 401, M::POST, "/api/v1/sales", none, Some(json!({ "good": "Tea" }))),
        example("purchase", 403, M::POST, "/api/v1/sales", alice, Some(json!({ "good": "Tea", "username": "bob" }))),
        example("purchase", 404, M::POST, "/api/v1/sales", alice, Some(json!({ "good": "Nothing" }))),
        example("purchase", 409, M::POST, "/api/v1/sales", alice, Some(json!({ "good": "Empty" }))),
        example("purchase", 413, M::POST, "/api/v1/sales", admin, too_large()),
        example("getSale", 200, M::GET, format!("/api/v1/sales/{}", f.sale), alice, None),
        example("getSale", 400, M::GET, format!("/api/v1/sales/{nul}"), alice, None),
        example("getSale", 401, M::GET, format!("/api/v1/sales/{}", f.sale), none, None),
        example("getSale", 404, M::GET, format!("/api/v1/sales/{}", f.sale), bob, None),
        example("salesHistory", 200, M::GET, "/api/v1/sales/history/alice", alice, None),
        example("salesHistory", 400, M::GET, "/api/v1/sales/history/alice?limit=201", alice, None),
        example("salesHistory", 401, M::GET, "/api/v1/sales/history/alice", none, None),
        example("salesHistory", 403, M::GET, "/api/v1/sales/history/bob", alice, None),
        example("salesHistory", 404, M::GET, "/api/v1/sales/history/nobody", admin, None),
        // Reviews: reads first, then the writes that change them.
        example("getReview", 200, M::GET, review(&f.approved_review), none, None),
        example("getReview", 400, M::GET, review(nul), none, None),
        example("getReview", 404, M::GET, review(&f.bobs_pending_review), none, None),
        example("listReviews", 200, M::GET, "/api/v1/reviews?status=pending", admin, None),
        example("listReviews", 400, M::GET, "/api/v1/reviews?status=gone", admin, None),
        example("listReviews", 401, M::GET, "/api/v1/reviews", none, None),
        example("listReviews", 403, M::GET, "/api/v1/reviews", alice, None),
        example("listReviewsOfGood", 200, M::GET, format!("/api/v1/reviews/good/{tea}"), none, None),
        example("listReviewsOfGood", 400, M::GET, format!("/api/v1/reviews/good/{tea}?limit=0"), none, None),
        example("listReviewsOfGood", 401, M::GET, format!("/api/v1/reviews/good/{tea}?status=pending"), none, None),
        example("listReviewsOfGood", 403, M::GET, format!("/api/v1/reviews/good/{tea}?status=pending"), alice, None),
        example("listReviewsOfGood", 404, M::GET, "/api/v1/reviews/good/nope", none, None),
        example("listReviewsOfCustomer", 200, M::GET, "/api/v1/reviews/customer/alice", alice, None),
        example("listReviewsOfCustomer", 400, M::GET, "/api/v1/reviews/customer/alice?offset=x", none, None),
        example("submitReview", 201, M::POST, "/api/v1/reviews", bob, Some(json!({ "good_id": tea, "rating": 5 }))),
        example("submitReview", 400, M::POST, "/api/v1/reviews", bob, empty()),
        example("submitReview", 401, M::POST, "/api/v1/reviews", none, Some(json!({ "good_id": tea, "rating": 5 }))),
        example("submitReview", 404, M::POST, "/api/v1/reviews", alice, Some(json!({ "good_id": "nope", "rating": 5 }))),
        example("submitReview", 409, M::POST, "/api/v1/reviews", alice, Some(json!({ "good_id": tea, "rating": 5 }))),
        example("submitReview", 413, M::POST, "/api/v1/reviews", admin, too_large()),
        example("editReview", 200, M::PATCH, review(&f.alices_other_review), alice, Some(json!({ "rating": 2 }))),
        example("editReview", 400, M::PATCH, review(&f.alices_other_review), alice, empty()),
        example("editReview", 401, M::PATCH, review(&f.alices_other_review), none, Some(json!({ "rating": 2 }))),
        example("editReview", 403, M::PATCH, review(&f.alices_other_review), bob, Some(json!({ "rating": 2 }))),
        example("editReview", 404, M::PATCH, review("nope"), alice, Some(json!({ "rating": 2 }))),
        example("editReview", 413, M::PATCH, review(&f.alices_other_review), admin, too_large()),
        example("flagReview", 200, M::POST, format!("{}/flag", review(&f.bobs_pending_review)), bob, None),
        example("flagReview", 400, M::POST, format!("{}/flag", review(&f.bobs_pending_review)), bob, Some(json!({ "why": "x" }))),
        example("flagReview", 401, M::POST, format!("{}/flag", review(&f.bobs_pending_review)), none, None),
        example("flagReview", 404, M::POST, format!("{}/flag", review(&f.bobs_pending_review)), alice, None),
        example("flagReview", 413, M::POST, format!("{}/flag", review(&f.bobs_pending_review)), admin, too_large()),
        example("moderateReview", 200, M::POST, format!("{}/moderate", review(&f.bobs_pending_review)), admin, Some(json!({ "status": "approved", "note": "ok" }))),
        example("moderateReview", 400, M::POST, format!("{}/moderate", review(&f.bobs_pending_review)), admin, Some(json!({ "status": "pending" }))),
        example("moderateReview", 401, M::POST, format!("{}/moderate", review(&f.bobs_pending_review)), none, Some(json!({ "status": "approved" }))),
        example("moderateReview", 403, M::POST, format!("{}/moderate", review(&f.bobs_pending_review)), alice, Some(json!({ "status": "approved" }))),
        example("moderateReview", 404, M::POST, format!("{}/moderate", review("nope")), admin, Some(json!({ "status": "approved" }))),
        example("moderateReview", 413, M::POST, format!("{}/moderate", review(&f.bobs_pending_review)), admin, too_large()),
        example("deleteReview", 204, M::DELETE, review(&f.alices_other_review), alice, None),
        example("deleteReview", 400, M::DELETE, review(nul), alice, None),
        example("deleteReview", 401, M::DELETE, review(&f.approved_review), none, None),
        example("deleteReview", 403, M::DELETE, review(&f.approved_review), bob, None),
        example("deleteReview", 404, M::DELETE, review("nope"), alice, None),
        // Extensions.
        example("listWishlist", 200, M::GET, "/api/v1/wishlist", alice, None),
        example("listWishlist", 400, M::GET, "/api/v1/wishlist?limit=x", alice, None),
        example("listWishlist", 401, M::GET, "/api/v1/wishlist", none, None),
        example("addToWishlist", 201, M::POST, "/api/v1/wishlist", alice, Some(json!({ "good_id": f.coffee }))),
        example("addToWishlist", 400, M::POST, "/api/v1/wishlist", alice, empty()),
        example("addToWishlist", 401, M::POST, "/api/v1/wishlist", none, Some(json!({ "good_id": tea }))),
        example("addToWishlist", 404, M::POST, "/api/v1/wishlist", alice, Some(json!({ "good_id": "nope" }))),
        example("addToWishlist", 409, M::POST, "/api/v1/wishlist", alice, Some(json!({ "good_id": tea }))),
        example("addToWishlist", 413, M::POST, "/api/v1/wishlist", admin, too_large()),
        example("removeFromWishlist", 204, M::DELETE, format!("/api/v1/wishlist/{tea}"), alice, None),
        example("removeFromWishlist", 400, M::DELETE, format!("/api/v1/wishlist/{nul}"), alice, None),
        example("removeFromWishlist", 401, M::DELETE, format!("/api/v1/wishlist/{tea}"), none, None),
        example("removeFromWishlist", 404, M::DELETE, "/api/v1/wishlist/nope", alice, None),
        example("recommendGoods", 200, M::GET, "/api/v1/recommendations/alice?limit=3", alice, None),
        example("recommendGoods", 400, M::GET, "/api/v1/recommendations/alice?limit=0", alice, None),
        example("recommendGoods", 401, M::GET, "/api/v1/recommendations/alice", none, None),
        example("recommendGoods", 403, M::GET, "/api/v1/recommendations/bob", alice, None),
        example("recommendGoods", 404, M::GET, "/api/v1/recommendations/nobody", admin, None),
        // Deletions, once nothing else needs what they delete.
        example("deleteGood", 204, M::DELETE, good(&f.doomed_good), admin, None),
        example("deleteGood", 400, M::DELETE, good(nul), admin, None),
        example("deleteGood", 401, M::DELETE, good(tea), none, None),
        example("deleteGood", 403, M::DELETE, good(tea), alice, None),
        example("deleteGood", 404, M::DELETE, good("nope"), admin, None),
        example("deleteCustomer", 204, M::DELETE, "/api/v1/customers/erin", Some(f.erin.as_str()), None),
        example("deleteCustomer", 400, M::DELETE, format!("/api/v1/customers/{nul}"), admin, None),
        example("deleteCustomer", 401, M::DELETE, "/api/v1/customers/alice", none, None),
        example("deleteCustomer", 403, M::DELETE, "/api/v1/customers/bob", alice, None),
        example("deleteCustomer", 404, M::DELETE, "/api/v1/customers/nobody", admin, None),
        example("deleteCustomer", 409, M::DELETE, "/api/v1/customers/root", admin, None),
    ]
}

#[tokio::test]
async fn the_shipped_components_assemble_into_valid_openapi_without_a_clash() {
    let app = spawn_app().await;
    assert_eq!(app.openapi.clashes, Vec::new());
    let problems = souk::http::openapi::structural_problems(&app.openapi.document);
    assert_eq!(problems, Vec::<String>::new());
    let served = app.get("/openapi.json", None).await;
    assert_eq!(served.body, app.openapi.document);
}

#[tokio::test]
async fn every_documented_status_of_every_component_operation_has_an_example_that_produces_it() {
    let app = spawn_app().await;
    let document = app.get("/openapi.json", None).await.body;
    let documented = component_operations(&document);
    let fixtures = fixtures(&app).await;

    let mut produced: BTreeSet<(String, u16)> = BTreeSet::new();
    let mut problems: Vec<String> = Vec::new();
    for example in examples(&fixtures) {
        let what = format!(
            "{} {} {} ({} expected)",
            example.operation, example.method, example.path, example.status
        );
        let reply = send(&app, &example).await;
        if reply.status.as_u16() != example.status {
            problems.push(format!("{what}: answered {}: {}", reply.status, reply.text));
            continue;
        }
        let Some((method, path)) = documented.get(example.operation) else {
            problems.push(format!("{what}: no such operation is documented"));
            continue;
        };
        if !example.path.starts_with(&path_prefix(path))
            || example.method.as_str() != method.to_uppercase()
        {
            problems.push(format!("{what}: not a request to {method} {path}"));
        }
        let Some(response) =
            document["paths"][path][method]["responses"].get(example.status.to_string())
        else {
            problems.push(format!("{what}: the status is not documented"));
            continue;
        };
        problems.extend(
            body_problems(&document, response, &reply)
                .into_iter()
                .map(|problem| format!("{what}: {problem}")),
        );
        produced.insert((example.operation.to_owned(), example.status));
    }

    // Last: throttled logins, which throttle this client from now on.
    let mut throttled = false;
    for _ in 0..30 {
        let reply = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({ "username": "bob", "password": "wrong1234" }),
            )
            .await;
        if reply.status.as_u16() == 429 {
            let response = &document["paths"]["/api/v1/auth/login"]["post"]["responses"]["429"];
            problems.extend(body_problems(&document, response, &reply));
            throttled = true;
            break;
        }
    }
    if throttled {
        produced.insert(("login".to_owned(), 429));
    }

    for (operation, (method, path)) in &documented {
        let responses = document["paths"][path][method]["responses"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for status in responses.keys().filter_map(|code| code.parse::<u16>().ok()) {
            if !PLATFORM_ONLY.contains(&status) && !produced.contains(&(operation.clone(), status))
            {
                problems.push(format!(
                    "{operation}: documented {status} has no example producing it"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Every operation under `/api/v1` (the components'), by operationId:
/// its method and path.
fn component_operations(document: &Value) -> BTreeMap<String, (String, String)> {
    let mut operations = BTreeMap::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        for (method, operation) in item.as_object().into_iter().flatten() {
            if let Some(id) = operation["operationId"].as_str() {
                operations.insert(id.to_owned(), (method.clone(), path.clone()));
            }
        }
    }
    operations
}

/// The literal start of a path template, up to its first parameter.
fn path_prefix(template: &str) -> String {
    template.split('{').next().unwrap_or_default().to_owned()
}

async fn send(app: &TestApp, example: &Example) -> Reply {
    let mut request = app.request(
        example.method.clone(),
        &example.path,
        example.token.as_deref(),
    );
    if let Some(body) = &example.body {
        request = request.json(body);
    }
    app.send_built(request).await
}

/// How `reply` differs from the documented `response`: its content type,
/// or its body against the schema.
fn body_problems(document: &Value, response: &Value, reply: &Reply) -> Vec<String> {
    let response = resolve(document, response);
    let Some(content) = response["content"].as_object() else {
        return if reply.text.is_empty() {
            Vec::new()
        } else {
            vec![format!("an undocumented body: {}", reply.text)]
        };
    };
    let content_type = reply
        .content_type()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    let Some(media) = content.get(content_type) else {
        return vec![format!("content type {content_type} is not documented")];
    };
    let mut problems = Vec::new();
    mismatches(
        document,
        &media["schema"],
        &reply.body,
        "body",
        true,
        &mut problems,
    );
    problems
}

fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"]
        .as_str()
        .and_then(|target| target.strip_prefix('#'))
    {
        Some(pointer) => document
            .pointer(pointer)
            .map_or(&Value::Null, |target| resolve(document, target)),
        None => value,
    }
}

/// The properties `schema` lists, its `allOf` parts' included.
fn listed_properties(document: &Value, schema: &Value) -> Vec<String> {
    let schema = resolve(document, schema);
    let mut names: Vec<String> = schema["properties"]
        .as_object()
        .into_iter()
        .flat_map(|properties| properties.keys().cloned())
        .collect();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        names.extend(listed_properties(document, part));
    }
    names
}

/// How `value` breaks `schema`, for the keywords the documents use:
/// `$ref`, `allOf`, `anyOf`, `type`, `enum`, `const`, `required`,
/// `properties`, `items`, numeric bounds, string lengths and `date-time`.
/// When `closed`, a property no part of the schema lists is a mismatch
/// too: no undocumented fields.
fn mismatches(
    document: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    closed: bool,
    out: &mut Vec<String>,
) {
    let schema = resolve(document, schema);
    for part in schema["allOf"].as_array().into_iter().flatten() {
        mismatches(document, part, value, at, false, out);
    }
    if let Some(options) = schema["anyOf"].as_array() {
        let fits = options.iter().any(|option| {
            let mut found = Vec::new();
            mismatches(document, option, value, at, closed, &mut found);
            found.is_empty()
        });
        if !fits {
            out.push(format!("{at}: {value} matches no `anyOf` option"));
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(name) => vec![name.as_str()],
        Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() {
        let kind = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        if !(types.contains(&kind) || (kind == "integer" && types.contains(&"number"))) {
            out.push(format!("{at}: {value} is not {types:?}"));
            return;
        }
    }
    if let Some(choices) = schema["enum"].as_array()
        && !choices.contains(value)
    {
        out.push(format!("{at}: {value} is not one of {choices:?}"));
    }
    if let Some(constant) = schema.get("const")
        && constant != value
    {
        out.push(format!("{at}: {value} is not {constant}"));
    }
    if let Some(number) = value.as_f64() {
        let bound = |key: &str| schema[key].as_f64();
        if bound("minimum").is_some_and(|min| number < min)
            || bound("maximum").is_some_and(|max| number > max)
            || bound("exclusiveMinimum").is_some_and(|min| number <= min)
        {
            out.push(format!("{at}: {value} is out of bounds"));
        }
    }
    if let Some(text) = value.as_str() {
        let chars = text.chars().count() as u64;
        if schema["minLength"].as_u64().is_some_and(|min| chars < min)
            || schema["maxLength"].as_u64().is_some_and(|max| chars > max)
        {
            out.push(format!("{at}: {value} has a length out of bounds"));
        }
        if schema["format"] == "date-time" && !is_rfc3339_utc(text) {
            out.push(format!("{at}: {value} is not an RFC 3339 UTC time"));
        }
    }
    if let Some(object) = value.as_object() {
        let empty = serde_json::Map::new();
        let properties = schema["properties"].as_object().unwrap_or(&empty);
        for name in schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(name) {
                out.push(format!("{at}: required `{name}` is missing"));
            }
        }
        let listed = listed_properties(document, schema);
        for (name, field) in object {
            if let Some(property) = properties.get(name) {
                mismatches(
                    document,
                    property,
                    field,
                    &format!("{at}.{name}"),
                    true,
                    out,
                );
            }
            if closed && !listed.contains(name) {
                out.push(format!("{at}: `{name}` is not documented"));
            }
        }
    }
    if let (Some(items), Some(values)) = (schema.get("items"), value.as_array()) {
        for (index, item) in values.iter().enumerate() {
            mismatches(document, items, item, &format!("{at}[{index}]"), true, out);
        }
    }
}
