//! The whole assignment as one story, through HTTP only: customers register
//! and fill their wallets, the admin stocks the shop, customers see what is
//! for sale, buy, read their history, review what they bought, the admin
//! moderates, and anyone reads a good's reviews with its average rating.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, cents, spawn_app};

#[tokio::test]
async fn customers_buy_review_and_read_reviews_after_moderation() {
    let app = spawn_app().await;

    // Two customers register and log in.
    for username in ["amira", "bilal"] {
        let registered = app.register(username).await;
        assert_eq!(
            registered.status,
            StatusCode::CREATED,
            "{}",
            registered.text
        );
        assert_eq!(registered.body["wallet_balance"], 0);
    }
    let amira = app.token("amira", PASSWORD).await;
    let bilal = app.token("bilal", PASSWORD).await;

    // They charge their own wallets.
    for (username, token) in [("amira", &amira), ("bilal", &bilal)] {
        let charged = app
            .post(
                &format!("/api/v1/customers/{username}/wallet/charge"),
                Some(token),
                json!({ "amount": 100 }),
            )
            .await;
        assert_eq!(charged.status, StatusCode::OK, "{}", charged.text);
        assert_eq!(charged.body["wallet_balance"], 100);
    }

    // The admin adds goods; one of them is out of stock.
    let admin = app.admin_token().await;
    let mut ids = std::collections::HashMap::new();
    for (name, category, price, count) in [
        ("Saffron", "food", json!(12.5), 10),
        ("Silk Scarf", "clothes", json!(40), 3),
        ("Brass Lamp", "accessories", json!(75.99), 0),
    ] {
        let added = app
            .post(
                "/api/v1/goods",
                Some(&admin),
                json!({
                    "name": name,
                    "category": category,
                    "price": price,
                    "description": format!("{name} from the old market"),
                    "count": count,
                }),
            )
            .await;
        assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
        ids.insert(name, added.body["id"].as_str().unwrap().to_owned());
    }

    // Anyone sees what is for sale: name and price, only goods in stock.
    let display = app.get("/api/v1/sales/goods", None).await;
    assert_eq!(display.status, StatusCode::OK, "{}", display.text);
    let mut for_sale: Vec<(String, i64)> = display.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["name"].as_str().unwrap().to_owned(),
                cents(&item["price"]),
            )
        })
        .collect();
    for_sale.sort();
    assert_eq!(
        for_sale,
        vec![
            ("Saffron".to_owned(), 1250),
            ("Silk Scarf".to_owned(), 4000)
        ]
    );
    let details = app.get("/api/v1/sales/goods/silk%20scarf", None).await;
    assert_eq!(details.status, StatusCode::OK, "{}", details.text);
    assert_eq!(details.body["id"], ids["Silk Scarf"].as_str());

    // Amira buys two saffron and a scarf; Bilal buys one saffron.
    let bought = app
        .post(
            "/api/v1/sales",
            Some(&amira),
            json!({ "good": "Saffron", "quantity": 2 }),
        )
        .await;
    assert_eq!(bought.status, StatusCode::CREATED, "{}", bought.text);
    assert_eq!(cents(&bought.body["sale"]["total"]), 2500);
    assert_eq!(cents(&bought.body["wallet_balance"]), 7500);
    let scarf = app
        .post(
            "/api/v1/sales",
            Some(&amira),
            json!({ "good": "Silk Scarf" }),
        )
        .await;
    assert_eq!(scarf.status, StatusCode::CREATED, "{}", scarf.text);
    assert_eq!(cents(&scarf.body["wallet_balance"]), 3500);
    let bilal_bought = app
        .post(
            "/api/v1/sales",
            Some(&bilal),
            json!({ "good": "Saffron", "quantity": 1 }),
        )
        .await;
    assert_eq!(
        bilal_bought.status,
        StatusCode::CREATED,
        "{}",
        bilal_bought.text
    );

    // The lamp is out of stock.
    let lamp = app
        .post(
            "/api/v1/sales",
            Some(&bilal),
            json!({ "good": "Brass Lamp" }),
        )
        .await;
    lamp.assert_problem(409);

    // Amira reads her history, newest first; Bilal may not read it.
    let history = app.get("/api/v1/sales/history/amira", Some(&amira)).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.text);
    assert_eq!(history.body["total"], 2);
    let goods: Vec<&str> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sale| sale["good_name"].as_str().unwrap())
        .collect();
    assert_eq!(goods, vec!["Silk Scarf", "Saffron"]);
    app.get("/api/v1/sales/history/amira", Some(&bilal))
        .await
        .assert_problem(403);
    assert_eq!(cents(&app.profile("amira").await["wallet_balance"]), 3500);

    // They review the saffron they bought, with some markup that is removed.
    let amira_review = app
        .post(
            "/api/v1/reviews",
            Some(&amira),
            json!({ "good_id": ids["Saffron"], "rating": 5, "comment": "<b>Wonderful</b> aroma" }),
        )
        .await;
    assert_eq!(
        amira_review.status,
        StatusCode::CREATED,
        "{}",
        amira_review.text
    );
    assert_eq!(amira_review.body["status"], "pending");
    assert_eq!(amira_review.body["verified_purchase"], true);
    assert_eq!(amira_review.body["comment"], "Wonderful aroma");
    assert_eq!(amira_review.body["good_name"], "Saffron");
    let bilal_review = app
        .post(
            "/api/v1/reviews",
            Some(&bilal),
            json!({ "good_id": ids["Saffron"], "rating": 4, "comment": "Good, a bit pricey." }),
        )
        .await;
    assert_eq!(
        bilal_review.status,
        StatusCode::CREATED,
        "{}",
        bilal_review.text
    );
    // Bilal also reviews the scarf he never bought: not a verified purchase.
    let unverified = app
        .post(
            "/api/v1/reviews",
            Some(&bilal),
            json!({ "good_id": ids["Silk Scarf"], "rating": 1, "comment": "Looks cheap." }),
        )
        .await;
    assert_eq!(
        unverified.status,
        StatusCode::CREATED,
        "{}",
        unverified.text
    );
    assert_eq!(unverified.body["verified_purchase"], false);

    // Nothing is public before moderation.
    let before = app
        .get(&format!("/api/v1/reviews/good/{}", ids["Saffron"]), None)
        .await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.text);
    assert_eq!(before.body["total"], 0);
    assert!(before.body["average_rating"].is_null());

    // The admin works through the queue: approves the saffron reviews and
    // flags the scarf review.
    let queue = app
        .get(
            &format!("/api/v1/reviews/good/{}?status=pending", ids["Saffron"]),
            Some(&admin),
        )
        .await;
    assert_eq!(queue.body["total"], 2, "{}", queue.text);
    for (review, status) in [
        (&amira_review, "approved"),
        (&bilal_review, "approved"),
        (&unverified, "flagged"),
    ] {
        let id = review.body["id"].as_str().unwrap();
        let moderated = app
            .post(
                &format!("/api/v1/reviews/{id}/moderate"),
                Some(&admin),
                json!({ "status": status, "note": "checked" }),
            )
            .await;
        assert_eq!(moderated.status, StatusCode::OK, "{}", moderated.text);
        assert_eq!(moderated.body["status"], status);
    }

    // Anyone reads the saffron's reviews, newest first, with the average.
    let saffron = app
        .get(&format!("/api/v1/reviews/good/{}", ids["Saffron"]), None)
        .await;
    assert_eq!(saffron.status, StatusCode::OK, "{}", saffron.text);
    assert_eq!(saffron.body["total"], 2);
    assert_eq!(saffron.body["average_rating"], 4.5);
    let authors: Vec<&str> = saffron.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|review| review["username"].as_str().unwrap())
        .collect();
    assert_eq!(authors, vec!["bilal", "amira"]);

    // The flagged scarf review stays hidden and does not count.
    let scarf_reviews = app
        .get(&format!("/api/v1/reviews/good/{}", ids["Silk Scarf"]), None)
        .await;
    assert_eq!(scarf_reviews.body["total"], 0, "{}", scarf_reviews.text);
    assert!(scarf_reviews.body["average_rating"].is_null());

    // Bilal sees all his reviews; others see only the approved one.
    let own = app
        .get("/api/v1/reviews/customer/bilal", Some(&bilal))
        .await;
    assert_eq!(own.body["total"], 2, "{}", own.text);
    let public = app.get("/api/v1/reviews/customer/bilal", None).await;
    assert_eq!(public.body["total"], 1, "{}", public.text);
}
