//! The extensions rows of API.md, from the outside: the wishlist (rows,
//! errors, privacy, goods that change or disappear) and recommendations
//! (fallback for a new customer, a ranking worked out by hand, who may ask).
//!
//! The shop is built through the public API only: goods by the admin,
//! purchases and reviews by customers, approvals by the admin.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Reply, SpawnOptions, TestApp, good_body, is_rfc3339_utc, spawn_app, spawn_app_with,
};

/// An app with an admin token at hand, for building a shop.
struct Shop<'a> {
    app: &'a TestApp,
    admin: String,
}

impl<'a> Shop<'a> {
    async fn open(app: &'a TestApp) -> Self {
        Shop {
            app,
            admin: app.admin_token().await,
        }
    }

    /// Adds a good priced 2.5 with `count` units (see [`good_body`]);
    /// returns its id.
    async fn good(&self, name: &str, count: i64) -> String {
        let body = good_body(name, json!(2.5), count);
        let reply = self
            .app
            .post("/api/v1/goods", Some(&self.admin), body)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "add {name}: {}",
            reply.text
        );
        reply.body["id"].as_str().unwrap().to_owned()
    }

    /// Registers `username` with 100 dollars in the wallet; returns a token.
    async fn customer(&self, username: &str) -> String {
        let token = self.app.customer(username).await;
        let path = format!("/api/v1/customers/{username}/wallet/charge");
        let reply = self
            .app
            .post(&path, Some(&self.admin), json!({ "amount": 100 }))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "charge {username}: {}",
            reply.text
        );
        token
    }

    /// The customer of `token` buys `quantity` units of the good named `good`.
    async fn buy(&self, token: &str, good: &str, quantity: i64) {
        let body = json!({ "good": good, "quantity": quantity });
        let reply = self.app.post("/api/v1/sales", Some(token), body).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "buy {good}: {}",
            reply.text
        );
    }

    /// The customer of `token` rates good `good_id` and the admin approves it.
    async fn rate(&self, token: &str, good_id: &str, stars: i64) {
        let body = json!({ "good_id": good_id, "rating": stars, "comment": "" });
        let reply = self.app.post("/api/v1/reviews", Some(token), body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "review: {}", reply.text);
        let path = format!(
            "/api/v1/reviews/{}/moderate",
            reply.body["id"].as_str().unwrap()
        );
        let verdict = json!({ "status": "approved" });
        let reply = self.app.post(&path, Some(&self.admin), verdict).await;
        assert_eq!(reply.status, StatusCode::OK, "approve: {}", reply.text);
    }
}

// ---------------------------------------------------------------- wishlist

const WISHLIST: &str = "/api/v1/wishlist";

fn wishlist_item(good_id: &str) -> String {
    format!("{WISHLIST}/{good_id}")
}

#[tokio::test]
async fn the_wishlist_needs_a_token() {
    let app = spawn_app().await;

    app.get(WISHLIST, None).await.assert_problem(401);
    app.post(WISHLIST, None, json!({ "good_id": "x" }))
        .await
        .assert_problem(401);
    app.delete(&wishlist_item("x"), None)
        .await
        .assert_problem(401);
}

#[tokio::test]
async fn a_customer_adds_lists_and_removes_goods() {
    let app = spawn_app().await;
    let shop = Shop::open(&app).await;
    let tea = shop.good("Tea", 3).await;
    let salt = shop.good("Salt", 0).await;
    let ann = shop.customer("ann").await;

    let added = app
        .post(WISHLIST, Some(&ann), json!({ "good_id": tea }))
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    let mut fields: Vec<&String> = added.body.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "added_at",
            "available",
            "good_id",
            "in_stock",
            "name",
            "price"
        ]
    );
    assert_eq!(added.body["good_id"], tea.as_str());
    assert_eq!(added.body["name"], "Tea");
    assert_eq!(added.body["price"], 2.5);
    assert_eq!(added.body["in_stock"], true);
    assert_eq!(added.body["available"], true);
    assert!(
        is_rfc3339_utc(added.body["added_at"].as_str().unwrap()),
        "{}",
        added.text
    );
    let added = app
        .post(WISHLIST, Some(&ann), json!({ "good_id": salt }))
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    assert_eq!(added.body["in_stock"], false, "Salt has no stock");

    let list = app.get(WISHLIST, Some(&ann)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["total"], 2);
    assert_eq!(list.body["limit"], 50);
    assert_eq!(list.body["offset"], 0);
    let mut names: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["Salt", "Tea"]);

    let removed = app.delete(&wishlist_item(&tea), Some(&ann)).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
    assert!(removed.text.is_empty());
    let list = app.get(WISHLIST, Some(&ann)).await;
    assert_eq!(list.body["total"], 1, "{}", list.text);
    assert_eq!(list.body["items"][0]["good_id"], salt.as_str());

    let again = app.delete(&wishlist_item(&tea), Some(&ann)).await;
    again.assert_problem(404);
}

#[tokio::test]
async fn the_wishlist_is_paged() {
    let app = spawn_app().await;
    let shop = Shop::open(&app).await;
    let ann = shop.customer("ann").await;
    for name in ["Tea", "Salt", "Rice"] {
        let id = shop.good(name, 1).await;
        let reply = app
            .post(WISHLIST, Some(&ann), json!({ "good_id": id }))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }

    let page = app
        .get(&format!("{WISHLIST}?limit=2&offset=1"), Some(&ann))
        .await;

    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(page.body["total"], 3);
    assert_eq!(page.body["limit"], 2);
    assert_eq!(page.body["offset"], 1);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
    for query in ["limit=0", "limit=201", "offset=-1", "limit=x"] {
        let reply = app.get(&format!("{WISHLIST}?{query}"), Some(&ann)).await;
        reply.assert_problem(400);
        assert_eq!(
            reply.problem_type(),
            "urn:souk:error:invalid-input",
            "{query}"
        );
    }
}

#[tokio::test]
async fn adding_an_unknown_good_a_good_twice_or_a_bad_body_fails() {
    let app = spawn_app().await;
    let shop = Shop::open(&app).await;
    let tea = shop.good("Tea", 3).await;
    let ann = shop.customer("ann").await;

    let unknown = app
        .post(WISHLIST, Some(&ann), json!({ "good_id": "no-such-good" }))
        .await;
    unknown.assert_problem(404);

    let first = app
        .post(WISHLIST, Some(&ann), json!({ "good_id": tea }))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let twice = app
        .post(WISHLIST, Some(&ann), json!({ "good_id": tea }))
        .await;
    twice.assert_problem(409);
    assert_eq!(twice.problem_type(), "urn:souk:error:already-in-wishlist");

    for (body, fields) in [
        (json!({}), vec!["good_id"]),
        (json!({ "good_id": 7 }), vec!["good_id"]),
        (json!({ "good_id": "" }), vec!["good_id"]),
        (json!({ "good_id": tea, "note": "x" }), vec!["note"]),
    ] {
        let reply = app.post(WISHLIST, Some(&ann), body.clone()).await;
        reply.assert_problem(400);
        assert_eq!(reply.error_fields(), fields, "{body}: {}", reply.text);
    }
    let raw = app
        .post_raw(
            WISHLIST,
            Some(&ann),
            Some("application/json"),
            b"{".to_vec(),
        )
        .await;
    raw.assert_problem(400);

    let list = app.get(WISHLIST, Some(&ann)).await;
    assert_eq!(
        list.body["total"], 1,
        "nothing but the first add stuck: {}",
        list.text
    );
}

#[tokio::test]
async fn each_customer_sees_and_changes_only_their_own_wishlist() {
    let app = spawn_app().await;
    let shop = Shop::open(&app).await;
    let tea = shop.good("Tea", 3).await;
    let ann = shop.customer("ann").await;
    let bob = shop.customer("bob").await;
    let reply = app
        .post(WISHLIST, Some(&ann), json!({ "good_id": tea }))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);

    let bobs = app.get(WISHLIST, Some(&bob)).await;
    assert_eq!(bobs.body["total"], 0, "{}", bobs.text);
    app.delete(&wishlist_item(&tea), Some(&bob))
        .await
        .assert_problem(404);
    let admins = app.get(WISHLIST, Some(&shop.admin)).await;
    assert_eq!(
        admins.body["total"], 0,
        "an admin has a wishlist of their own: {}",
        admins.text
    );

    // The same good in bob's wishlist is no conflict with ann's.
    let reply = app
        .post(WISHLIST, Some(&bob), json!({ "good_id": tea }))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let anns = app.get(WISHLIST, Some(&ann)).await;
    assert_eq!(anns.body["total"], 1, "{}", anns.text);
}

#[tokio::test]
async fn the_wishlist_shows_goods_as_they_are_now_and_keeps_deleted_ones_as_unavailable() {
    // Without its subscription to `good.deleted`, so that the row of a
    // deleted good stays (as it does until the event is handled; that the
    // wishlist then forgets it is tested in events.rs).
    let app = spawn_app_with(SpawnOptions {
        grants: Some(
            r#"{"wishlist": {"imports": ["souk:platform/inventory-api"], "deadline_ms": 10000}}"#,
        ),
        ..SpawnOptions::default()
    })
    .await;
    let shop = Shop::open(&app).await;
    let tea = shop.good("Tea", 3).await;
    let salt = shop.good("Salt", 2).await;
    let ann = shop.customer("ann").await;
    for id in [&tea, &salt] {
        let reply = app
            .post(WISHLIST, Some(&ann), json!({ "good_id": id }))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }

    let patch = json!({ "name": "Green tea", "price": 4.25, "count": 0 });
    let reply = app
        .patch(&format!("/api/v1/goods/{tea}"), Some(&shop.admin), patch)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let reply = app
        .delete(&format!("/api/v1/goods/{salt}"), Some(&shop.admin))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);

    let list = app.get(WISHLIST, Some(&ann)).await;
    assert_eq!(list.body["total"], 2, "{}", list.text);
    let items = list.body["items"].as_array().unwrap();
    let item = |id: &str| items.iter().find(|i| i["good_id"] == id).unwrap().clone();
    let tea_item = item(&tea);
    assert_eq!(
        (
            &tea_item["name"],
            &tea_item["price"],
            &tea_item["in_stock"],
            &tea_item["available"]
        ),
        (
            &json!("Green tea"),
            &json!(4.25),
            &json!(false),
            &json!(true)
        ),
        "{}",
        list.text
    );
    let salt_item = item(&salt);
    assert_eq!(
        (
            &salt_item["name"],
            &salt_item["price"],
            &salt_item["in_stock"],
            &salt_item["available"]
        ),
        (&json!("Salt"), &Value::Null, &json!(false), &json!(false)),
        "{}",
        list.text
    );
    let removed = app.delete(&wishlist_item(&salt), Some(&ann)).await;
    assert_eq!(
        removed.status,
        StatusCode::NO_CONTENT,
        "a deleted good can be removed: {}",
        removed.text
    );
}

// --------------------------------------------------------- recommendations

fn recommendations(username: &str, query: &str) -> String {
    format!("/api/v1/recommendations/{username}{query}")
}

/// `(name, score, reason)` of each recommended item, asserting a 200 whose
/// items have exactly the documented fields.
#[track_caller]
fn ranking(reply: &Reply) -> Vec<(String, f64, String)> {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.body.as_object().unwrap().len(),
        1,
        "only items: {}",
        reply.text
    );
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let mut fields: Vec<&String> = item.as_object().unwrap().keys().collect();
            fields.sort();
            assert_eq!(
                fields,
                ["good_id", "name", "price", "reason", "score"],
                "{item}"
            );
            assert_eq!(item["price"], 2.5, "{item}");
            (
                item["name"].as_str().unwrap().to_owned(),
                item["score"].as_f64().unwrap(),
                item["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn row(name: &str, score: f64, reason: &str) -> (String, f64, String) {
    (name.to_owned(), score, reason.to_owned())
}

/// The worked example of the recommendations' scoring docs, built over HTTP.
///
/// Purchases (1 unit unless said): ann Apple, Bread; bob Apple, Cheese,
/// Dates, Ice cream; cat Apple, Bread, Cheese, Ice cream; dan Bread, Eggs;
/// eve Honey x2. Ice cream had 2 units, so it is sold out. Approved
/// ratings: ann Apple 5; bob Apple 4, Cheese 5, Dates 1; cat Apple 5,
/// Cheese 4; dan Figs 5 (never bought). Returns ann's token and a token of
/// zed, who has no history.
async fn worked_example(shop: &Shop<'_>) -> (String, String) {
    let mut ids = std::collections::HashMap::new();
    for (name, count) in [
        ("Apple", 100),
        ("Bread", 100),
        ("Cheese", 100),
        ("Dates", 100),
        ("Eggs", 100),
        ("Figs", 100),
        ("Honey", 100),
        ("Ice cream", 2),
    ] {
        ids.insert(name, shop.good(name, count).await);
    }
    let ann = shop.customer("ann").await;
    let bob = shop.customer("bob").await;
    let cat = shop.customer("cat").await;
    let dan = shop.customer("dan").await;
    let eve = shop.customer("eve").await;
    let zed = shop.customer("zed").await;
    for (token, goods) in [
        (&ann, &["Apple", "Bread"][..]),
        (&bob, &["Apple", "Cheese", "Dates", "Ice cream"][..]),
        (&cat, &["Apple", "Bread", "Cheese", "Ice cream"][..]),
        (&dan, &["Bread", "Eggs"][..]),
    ] {
        for good in goods {
            shop.buy(token, good, 1).await;
        }
    }
    shop.buy(&eve, "Honey", 2).await;
    for (token, good, stars) in [
        (&ann, "Apple", 5),
        (&bob, "Apple", 4),
        (&bob, "Cheese", 5),
        (&bob, "Dates", 1),
        (&cat, "Apple", 5),
        (&cat, "Cheese", 4),
        (&dan, "Figs", 5),
    ] {
        shop.rate(token, &ids[good], stars).await;
    }
    (ann, zed)
}

#[tokio::test]
async fn recommendations_rank_goods_by_the_documented_scores() {
    let app = spawn_app().await;
    let shop = Shop::open(&app).await;
    let (ann, _) = worked_example(&shop).await;

    // ann bought Apple and Bread and rated Apple 5 (weight 1). Co-purchase
    // cosine: buyers Apple {ann,bob,cat}, Bread {ann,cat,dan}, Cheese
    // {bob,cat}, Dates {bob}, Eggs {dan}. Rating cosine over stars - 3:
    // Apple (ann 2, bob 1, cat 2), Cheese (bob 2, cat 1), Dates (bob -2).
    //   Cheese = 2/√6 + 1/√6 + (1·2 + 2·1)/(3·√5) = 1.821030
    //   Eggs   = 1/√3                            = 0.577350
    //   Dates  = 1/√3 + (1·-2)/(3·2)             = 0.244017
    // Ice cream would score 3/√6 but is sold out; Apple and Bread are
    // bought. Filled up with the best seller Honey (2 units) and the top
    // rated Figs (one 5: damped mean 4).
    let reply = app.get(&recommendations("ann", ""), Some(&ann)).await;

    assert_eq!(
        ranking(&reply),
        vec![
            row("Cheese", 1.82103, "bought together with Apple"),
            row("Eggs", 0.57735, "bought together with Bread"),
            row("Dates", 0.244017, "bought together with Apple"),
            row("Honey", 0.0, "best seller"),
            row("Figs", 0.0, "top rated"),
        ]
    );
    let two = app
        .get(&recommendations("ann", "?limit=2"), Some(&ann))
        .await;
    let names: Vec<String> = ranking(&two).into_iter().map(|(name, _, _)| name).collect();
    assert_eq!(names, ["Cheese", "Eggs"]);
}

#[tokio::test]
async fn a_customer_without_history_gets_best_sellers_and_top_rated_in_turn() {
    let app = spawn_app().await;
    let shop = Shop::open(&app).await;
    let (_, zed) = worked_example(&shop).await;

    // Best sellers by units: Apple 3, Bread 3, Cheese 2, Honey 2 (Ice cream
    // is sold out), Dates 1, Eggs 1. Top rated by damped mean: Apple 4.25,
    // Cheese 4 (2 ratings), Figs 4 (1 rating). Taken in turn, skipping
    // what is already listed.
    let reply = app
        .get(&recommendations("zed", "?limit=50"), Some(&zed))
        .await;

    assert_eq!(
        ranking(&reply),
        vec![
            row("Apple", 0.0, "best seller"),
            row("Cheese", 0.0, "top rated"),
            row("Bread", 0.0, "best seller"),
            row("Figs", 0.0, "top rated"),
            row("Honey", 0.0, "best seller"),
            row("Dates", 0.0, "best seller"),
            row("Eggs", 0.0, "best seller"),
        ]
    );
}

#[tokio::test]
async fn a_shop_without_sales_or_ratings_recommends_nothing() {
    let app = spawn_app().await;
    let shop = Shop::open(&app).await;
    shop.good("Tea", 3).await;
    let ann = shop.customer("ann").await;

    let reply = app.get(&recommendations("ann", ""), Some(&ann)).await;

    assert!(ranking(&reply).is_empty(), "{}", reply.text);
}

#[tokio::test]
async fn recommendations_are_for_the_customer_themselves_or_an_admin() {
    let app = spawn_app().await;
    let shop = Shop::open(&app).await;
    let tea = shop.good("Tea", 3).await;
    let ann = shop.customer("ann").await;
    let bob = shop.customer("bob").await;
    shop.buy(&bob, "Tea", 1).await;

    app.get(&recommendations("ann", ""), None)
        .await
        .assert_problem(401);
    app.get(&recommendations("ann", ""), Some(&bob))
        .await
        .assert_problem(403);
    app.get(&recommendations("nobody", ""), Some(&bob))
        .await
        .assert_problem(403);

    let own = app.get(&recommendations("ANN", ""), Some(&ann)).await;
    assert_eq!(
        ranking(&own),
        vec![row("Tea", 0.0, "best seller")],
        "usernames ignore case"
    );
    let admins_own = app
        .get(&recommendations("root", ""), Some(&shop.admin))
        .await;
    assert_eq!(ranking(&admins_own), vec![row("Tea", 0.0, "best seller")]);
    let bobs = app.get(&recommendations("bob", ""), Some(&bob)).await;
    assert!(
        ranking(&bobs).is_empty(),
        "bob bought the only good {tea}: {}",
        bobs.text
    );

    // An admin may ask about any customer: the same ranking ann sees.
    let admin_for_ann = app
        .get(&recommendations("ann", ""), Some(&shop.admin))
        .await;
    let anns_own = app.get(&recommendations("ann", ""), Some(&ann)).await;
    assert_eq!(admin_for_ann.status, 200, "{}", admin_for_ann.text);
    assert_eq!(ranking(&admin_for_ann), ranking(&anns_own));
    let nobody = app
        .get(&recommendations("nobody_here", ""), Some(&shop.admin))
        .await;
    nobody.assert_problem(404);
}

#[tokio::test]
async fn recommendations_reject_a_bad_limit() {
    let app = spawn_app().await;
    let shop = Shop::open(&app).await;
    let ann = shop.customer("ann").await;

    for query in [
        "?limit=0",
        "?limit=51",
        "?limit=-1",
        "?limit=x",
        "?limit=",
        "?limit=2.5",
    ] {
        let reply = app.get(&recommendations("ann", query), Some(&ann)).await;
        reply.assert_problem(400);
        assert_eq!(reply.error_fields(), ["limit"], "{query}: {}", reply.text);
    }
    for query in ["?limit=1", "?limit=50"] {
        let reply = app.get(&recommendations("ann", query), Some(&ann)).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text);
    }
}
