//! A service that cannot read its own data answers an error through every
//! component that asked it, never a guess: not a 404 for a good that
//! exists, not a review committed as an unverified purchase, not a wishlist
//! of "unavailable" goods, not recommendations without the purchases.
//!
//! The fault is injected from outside: the owning service's table is
//! dropped behind the host's back, so its reads fail in the database while
//! the asking component's own tables still work.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Reply, TestApp, spawn_app};

/// The asking component passed the callee's failure on: a server-side
/// problem (500 for a failure, 503 for unavailability), never an answer.
fn assert_failed_honestly(what: &str, reply: &Reply) {
    assert!(
        reply.status == StatusCode::INTERNAL_SERVER_ERROR
            || reply.status == StatusCode::SERVICE_UNAVAILABLE,
        "{what}: expected the callee's failure, got {}: {}",
        reply.status,
        reply.text
    );
    assert!(
        reply.content_type().starts_with("application/problem+json"),
        "{what}: {}",
        reply.text
    );
}

/// How many reviews exist, in any state (the admin's list).
async fn reviews(app: &TestApp, admin: &str) -> usize {
    let reply = app.get("/api/v1/reviews", Some(admin)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body["items"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn a_callee_that_cannot_read_its_data_fails_the_caller_instead_of_answering_wrong() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let good = app.add_good("Green Tea", json!(2.5), 100).await;
    let good_id = good["id"].as_str().unwrap().to_owned();
    let alice = app.customer("alice").await;
    assert_eq!(app.charge("alice", json!(100)).await.status, StatusCode::OK);
    let bought = app
        .post(
            "/api/v1/sales",
            Some(&alice),
            json!({ "good": "Green Tea", "quantity": 1 }),
        )
        .await;
    assert_eq!(bought.status, StatusCode::CREATED, "{}", bought.text);
    let wished = app
        .post(
            "/api/v1/wishlist",
            Some(&alice),
            json!({ "good_id": good_id }),
        )
        .await;
    assert_eq!(wished.status, StatusCode::CREATED, "{}", wished.text);
    let review = json!({ "good_id": good_id, "rating": 5, "comment": "lovely" });

    // Sales cannot read its purchases.
    app.tamper_with_database("DROP TABLE sales").await;
    let submitted = app
        .post("/api/v1/reviews", Some(&alice), review.clone())
        .await;
    assert_failed_honestly("review while sales is broken", &submitted);
    assert_eq!(
        reviews(&app, &admin).await,
        0,
        "a review was committed without knowing whether it is a verified purchase"
    );
    let recommended = app.get("/api/v1/recommendations/alice", Some(&alice)).await;
    assert_failed_honestly("recommendations while sales is broken", &recommended);

    // The inventory cannot read its goods.
    app.tamper_with_database("DROP TABLE inventory_goods").await;
    let purchase = app
        .post(
            "/api/v1/sales",
            Some(&alice),
            json!({ "good": "Green Tea", "quantity": 1 }),
        )
        .await;
    assert_failed_honestly("purchase while the inventory is broken", &purchase);
    let for_sale = app.get("/api/v1/sales/goods/green%20tea", None).await;
    assert_failed_honestly("good by name while the inventory is broken", &for_sale);
    let wishlist = app.get("/api/v1/wishlist", Some(&alice)).await;
    assert_failed_honestly("wishlist while the inventory is broken", &wishlist);
    let wish_again = app
        .post(
            "/api/v1/wishlist",
            Some(&alice),
            json!({ "good_id": good_id }),
        )
        .await;
    assert_failed_honestly("wishlist add while the inventory is broken", &wish_again);
    let submitted = app.post("/api/v1/reviews", Some(&alice), review).await;
    assert_failed_honestly("review while the inventory is broken", &submitted);
}
