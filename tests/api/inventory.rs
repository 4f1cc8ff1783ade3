//! The inventory rows of API.md, from the outside: adding goods and their
//! field rules, reading, listing with filters and paging, changing,
//! deducting stock (also under concurrency), deleting, who may do what,
//! and the shape of every error.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, cents, good_body, is_rfc3339_utc, spawn_app};

/// Every field of a good object, sorted.
const GOOD_FIELDS: [&str; 8] = [
    "category",
    "count",
    "created_at",
    "description",
    "id",
    "name",
    "price",
    "updated_at",
];

const GOODS: &str = "/api/v1/goods";

fn good_path(id: &str) -> String {
    format!("{GOODS}/{id}")
}

fn deduct_path(id: &str) -> String {
    format!("{GOODS}/{id}/deduct")
}

fn id_of(good: &Value) -> String {
    good["id"].as_str().unwrap().to_owned()
}

/// The names of a page's items, in order.
fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|good| good["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Asserts a 400 `invalid-input` naming exactly `fields` (any order), each
/// with a message.
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
    for error in reply.body["errors"].as_array().unwrap() {
        assert!(
            !error["message"].as_str().unwrap_or("").is_empty(),
            "{case}: {}",
            reply.text
        );
    }
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

/// Posts `good_body(name)` with `field` set to each bad value and asserts
/// a 400 naming only `field`; then that no good was added.
async fn assert_add_rejects(app: &TestApp, field: &str, values: Vec<Value>) {
    let admin = app.admin_token().await;
    for (index, value) in values.into_iter().enumerate() {
        let mut body = good_body(&format!("Good {index}"), json!(2.5), 3);
        body[field] = value.clone();
        let reply = app.post(GOODS, Some(&admin), body).await;
        assert_invalid(&reply, &[field], &format!("{field} = {value}"));
    }
    let list = app.get(GOODS, None).await;
    assert_eq!(list.body["total"], 0, "nothing was added: {}", list.text);
}

/// Posts `good_body(name)` with `field` set to each good value and asserts
/// 201; returns the goods.
async fn assert_add_accepts(app: &TestApp, field: &str, values: Vec<Value>) -> Vec<Value> {
    let admin = app.admin_token().await;
    let mut goods = Vec::new();
    for (index, value) in values.into_iter().enumerate() {
        let mut body = good_body(&format!("Accepted {field} {index}"), json!(2.5), 3);
        body[field] = value.clone();
        let reply = app.post(GOODS, Some(&admin), body).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{field} = {value}: {}",
            reply.text
        );
        goods.push(reply.body);
    }
    goods
}

// ---------------------------------------------------------------- adding

#[tokio::test]
async fn adding_a_good_returns_201_with_the_good_and_its_location() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let reply = app
        .post(
            GOODS,
            Some(&admin),
            json!({
                "name": "Green Tea",
                "category": "food",
                "price": 12.5,
                "description": "Loose leaf, 100 g.",
                "count": 40,
            }),
        )
        .await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.content_type(), "application/json");
    let good = &reply.body;
    let mut fields: Vec<&str> = good
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, GOOD_FIELDS);
    assert_eq!(good["name"], "Green Tea");
    assert_eq!(good["category"], "food");
    assert_eq!(good["price"], json!(12.5));
    assert_eq!(
        reply.text.matches("\"price\":12.5").count(),
        1,
        "{}",
        reply.text
    );
    assert_eq!(good["description"], "Loose leaf, 100 g.");
    assert_eq!(good["count"], 40);
    assert!(!good["id"].as_str().unwrap().is_empty());
    assert!(is_rfc3339_utc(good["created_at"].as_str().unwrap()));
    assert!(is_rfc3339_utc(good["updated_at"].as_str().unwrap()));
    let location = reply.header("location").unwrap();
    assert_eq!(location, good_path(&id_of(good)));

    let fetched = app.get(location, None).await;
    assert_eq!(fetched.status, StatusCode::OK, "{}", fetched.text);
    assert_eq!(&fetched.body, good);
}

#[tokio::test]
async fn description_defaults_to_empty_and_count_to_zero() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let reply = app
        .post(
            GOODS,
            Some(&admin),
            json!({ "name": "Mug", "category": "accessories", "price": 4 }),
        )
        .await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.body["description"], "");
    assert_eq!(reply.body["count"], 0);
    assert_eq!(reply.body["price"], json!(4));
}

#[tokio::test]
async fn names_are_trimmed_and_categories_stored_in_lower_case() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let mut body = good_body("  Phone Case  ", json!(9.99), 1);
    body["category"] = json!("ACCESSORIES");

    let reply = app.post(GOODS, Some(&admin), body).await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.body["name"], "Phone Case");
    assert_eq!(reply.body["category"], "accessories");
}

#[tokio::test]
async fn every_category_in_the_list_is_accepted() {
    let app = spawn_app().await;
    let goods = assert_add_accepts(
        &app,
        "category",
        vec![
            json!("food"),
            json!("clothes"),
            json!("accessories"),
            json!("Electronics"),
        ],
    )
    .await;
    let categories: Vec<&str> = goods
        .iter()
        .map(|g| g["category"].as_str().unwrap())
        .collect();
    assert_eq!(
        categories,
        ["food", "clothes", "accessories", "electronics"]
    );
}

#[tokio::test]
async fn only_an_admin_can_add_goods() {
    let app = spawn_app().await;
    let customer = app.customer("alice").await;

    let anonymous = app.post(GOODS, None, good_body("Tea", json!(1), 1)).await;
    anonymous.assert_problem(401);
    let forbidden = app
        .post(GOODS, Some(&customer), good_body("Tea", json!(1), 1))
        .await;
    forbidden.assert_problem(403);

    let list = app.get(GOODS, None).await;
    assert_eq!(list.body["total"], 0, "{}", list.text);
}

#[tokio::test]
async fn adding_rejects_names_that_are_empty_blank_too_long_or_not_text() {
    let app = spawn_app().await;
    assert_add_rejects(
        &app,
        "name",
        vec![
            json!(""),
            json!("   "),
            json!("x".repeat(101)),
            json!("Tea\u{0}Pot"),
            json!("Tea\nPot"),
            json!(42),
            json!(null),
            json!(["Tea"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn names_of_1_and_100_characters_are_accepted() {
    let app = spawn_app().await;
    let goods = assert_add_accepts(
        &app,
        "name",
        vec![
            json!("x"),
            json!("é".repeat(100)),
            json!("Tea & \"Biscuits\""),
        ],
    )
    .await;
    assert_eq!(goods[1]["name"], json!("é".repeat(100)));
}

#[tokio::test]
async fn adding_rejects_a_category_outside_the_list() {
    let app = spawn_app().await;
    assert_add_rejects(
        &app,
        "category",
        vec![
            json!("toys"),
            json!(""),
            json!("food "),
            json!(1),
            json!(null),
        ],
    )
    .await;
}

#[tokio::test]
async fn adding_rejects_prices_that_break_the_money_rules() {
    let app = spawn_app().await;
    assert_add_rejects(
        &app,
        "price",
        vec![
            json!(0),
            json!(0.0),
            json!(-1),
            json!(-0.01),
            json!(0.001),
            json!(12.345),
            json!(1_000_000.01),
            json!(1e7),
            json!("2.50"),
            json!(null),
            json!(true),
            json!({"amount": 1}),
        ],
    )
    .await;
}

#[tokio::test]
async fn prices_from_one_cent_to_a_million_are_accepted_exactly() {
    let app = spawn_app().await;
    let goods = assert_add_accepts(
        &app,
        "price",
        vec![json!(0.01), json!(1_000_000), json!(19.99), json!(0.1)],
    )
    .await;
    let prices: Vec<i64> = goods.iter().map(|g| cents(&g["price"])).collect();
    assert_eq!(prices, [1, 100_000_000, 1999, 10]);
}

#[tokio::test]
async fn adding_rejects_descriptions_that_are_too_long_or_not_text() {
    let app = spawn_app().await;
    assert_add_rejects(
        &app,
        "description",
        vec![
            json!("d".repeat(2001)),
            json!("bell\u{7}"),
            json!(5),
            json!(null),
        ],
    )
    .await;
}

#[tokio::test]
async fn descriptions_of_up_to_2000_characters_with_line_breaks_are_accepted() {
    let app = spawn_app().await;
    let goods = assert_add_accepts(
        &app,
        "description",
        vec![
            json!("ü".repeat(2000)),
            json!(""),
            json!("Line one.\nLine two.\tTabbed."),
        ],
    )
    .await;
    assert_eq!(goods[2]["description"], "Line one.\nLine two.\tTabbed.");
}

#[tokio::test]
async fn adding_rejects_counts_outside_0_to_a_million_and_non_integers() {
    let app = spawn_app().await;
    assert_add_rejects(
        &app,
        "count",
        vec![
            json!(-1),
            json!(1_000_001),
            json!(1.5),
            json!("3"),
            json!(null),
        ],
    )
    .await;
}

#[tokio::test]
async fn counts_of_0_and_a_million_are_accepted() {
    let app = spawn_app().await;
    let goods = assert_add_accepts(&app, "count", vec![json!(0), json!(1_000_000)]).await;
    assert_eq!(goods[1]["count"], 1_000_000);
}

#[tokio::test]
async fn adding_names_every_missing_required_field() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let reply = app.post(GOODS, Some(&admin), json!({})).await;

    assert_invalid(&reply, &["category", "name", "price"], "empty body");
}

#[tokio::test]
async fn adding_names_every_bad_field_not_only_the_first() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let reply = app
        .post(
            GOODS,
            Some(&admin),
            json!({
                "name": "",
                "category": "toys",
                "price": -5,
                "description": 7,
                "count": -2,
                "colour": "red",
            }),
        )
        .await;

    assert_invalid(
        &reply,
        &[
            "category",
            "colour",
            "count",
            "description",
            "name",
            "price",
        ],
        "all bad",
    );
}

#[tokio::test]
async fn adding_rejects_unknown_and_server_assigned_fields() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for field in ["id", "created_at", "updated_at", "stock", "nmae"] {
        let mut body = good_body("Tea", json!(1), 1);
        body[field] = json!("x");
        let reply = app.post(GOODS, Some(&admin), body).await;
        assert_invalid(&reply, &[field], field);
    }
}

#[tokio::test]
async fn adding_a_name_taken_in_any_case_gets_409() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.add_good("Green Tea", json!(1), 1).await;
    app.add_good("Café Crème", json!(1), 1).await;

    for taken in ["Green Tea", "GREEN TEA", "  green tea ", "CAFÉ CRÈME"] {
        let reply = app
            .post(GOODS, Some(&admin), good_body(taken, json!(2), 2))
            .await;
        assert_conflict(&reply, "good-name-taken");
    }
    let list = app.get(GOODS, None).await;
    assert_eq!(list.body["total"], 2, "{}", list.text);
}

#[tokio::test]
async fn concurrent_adds_of_one_name_create_exactly_one_good() {
    let app = Arc::new(spawn_app().await);
    let admin = app.admin_token().await;

    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..8 {
        let (app, admin) = (app.clone(), admin.clone());
        let name = if index % 2 == 0 { "Dates" } else { "DATES" };
        tasks.spawn(async move {
            app.post(GOODS, Some(&admin), good_body(name, json!(3), 1))
                .await
        });
    }
    let mut created = 0;
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        if reply.status == StatusCode::CREATED {
            created += 1;
        } else {
            assert_conflict(&reply, "good-name-taken");
        }
    }
    assert_eq!(created, 1);
}

#[tokio::test]
async fn adding_without_a_json_body_gets_400() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let valid = good_body("Tea", json!(1), 1).to_string().into_bytes();
    let cases: [(Option<&str>, Vec<u8>); 4] = [
        (None, valid.clone()),
        (Some("text/plain"), valid),
        (Some("application/json"), b"{\"name\": ".to_vec()),
        (Some("application/json"), b"[1, 2]".to_vec()),
    ];
    for (content_type, body) in cases {
        let reply = app
            .send_raw(Method::POST, GOODS, Some(&admin), content_type, body)
            .await;
        let status = reply.status.as_u16();
        assert!(
            status == 400 || status == 415,
            "{content_type:?}: {}",
            reply.text
        );
        reply.assert_problem(status);
    }
}

// ---------------------------------------------------------------- reading

#[tokio::test]
async fn anyone_can_read_a_good_and_an_unknown_id_gets_404() {
    let app = spawn_app().await;
    let good = app.add_good("Figs", json!(3.2), 5).await;

    let reply = app.get(&good_path(&id_of(&good)), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body, good);

    let customer = app.customer("alice").await;
    let reply = app.get(&good_path(&id_of(&good)), Some(&customer)).await;
    assert_eq!(reply.body, good);

    let missing = app
        .get(&good_path("0190f5c2-0000-7000-8000-000000000000"), None)
        .await;
    let problem = missing.assert_problem(404);
    assert_eq!(problem["type"], "urn:souk:error:not-found");
}

#[tokio::test]
async fn a_wrong_method_on_a_goods_path_gets_405() {
    let app = spawn_app().await;
    let good = app.add_good("Figs", json!(3.2), 5).await;
    let admin = app.admin_token().await;

    let reply = app
        .send(
            Method::PUT,
            &good_path(&id_of(&good)),
            Some(&admin),
            Some(json!({})),
        )
        .await;
    reply.assert_problem(405);
    let reply = app.delete(GOODS, Some(&admin)).await;
    reply.assert_problem(405);
}

// ---------------------------------------------------------------- listing

#[tokio::test]
async fn listing_goods_pages_them_by_name_ignoring_case() {
    let app = spawn_app().await;
    for name in ["cherries", "Apples", "dates", "Bananas", "elderberries"] {
        app.add_good(name, json!(1), 1).await;
    }

    let all = app.get(GOODS, None).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert_eq!(
        names(&all.body),
        ["Apples", "Bananas", "cherries", "dates", "elderberries"]
    );
    assert_eq!(all.body["total"], 5);
    assert_eq!(all.body["limit"], 50);
    assert_eq!(all.body["offset"], 0);

    let page = app.get(&format!("{GOODS}?limit=2&offset=1"), None).await;
    assert_eq!(names(&page.body), ["Bananas", "cherries"]);
    assert_eq!(page.body["total"], 5);
    assert_eq!(page.body["limit"], 2);
    assert_eq!(page.body["offset"], 1);

    let past_the_end = app.get(&format!("{GOODS}?offset=10"), None).await;
    assert_eq!(names(&past_the_end.body), Vec::<String>::new());
    assert_eq!(past_the_end.body["total"], 5);
}

#[tokio::test]
async fn listing_rejects_bad_paging_values() {
    let app = spawn_app().await;
    for (query, fields) in [
        ("limit=0", vec!["limit"]),
        ("limit=201", vec!["limit"]),
        ("limit=ten", vec!["limit"]),
        ("offset=-1", vec!["offset"]),
        ("limit=0&offset=x", vec!["limit", "offset"]),
    ] {
        let reply = app.get(&format!("{GOODS}?{query}"), None).await;
        assert_invalid(&reply, &fields, query);
    }
}

#[tokio::test]
async fn listing_filters_by_category_ignoring_case() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for (name, category) in [
        ("Bread", "food"),
        ("Scarf", "clothes"),
        ("Radio", "electronics"),
        ("Cheese", "food"),
    ] {
        let mut body = good_body(name, json!(1), 1);
        body["category"] = json!(category);
        let reply = app.post(GOODS, Some(&admin), body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }

    let food = app.get(&format!("{GOODS}?category=food"), None).await;
    assert_eq!(names(&food.body), ["Bread", "Cheese"]);
    assert_eq!(food.body["total"], 2);
    let shouted = app
        .get(&format!("{GOODS}?category=ELECTRONICS"), None)
        .await;
    assert_eq!(names(&shouted.body), ["Radio"]);
    let none = app
        .get(&format!("{GOODS}?category=accessories"), None)
        .await;
    assert_eq!(none.body["total"], 0);
}

#[tokio::test]
async fn listing_rejects_an_unknown_category_and_a_non_boolean_in_stock() {
    let app = spawn_app().await;
    for (query, fields) in [
        ("category=toys", vec!["category"]),
        ("category=", vec!["category"]),
        ("in_stock=yes", vec!["in_stock"]),
        ("in_stock=1", vec!["in_stock"]),
        (
            "category=toys&in_stock=maybe&limit=0",
            vec!["category", "in_stock", "limit"],
        ),
    ] {
        let reply = app.get(&format!("{GOODS}?{query}"), None).await;
        assert_invalid(&reply, &fields, query);
    }
}

#[tokio::test]
async fn listing_filters_by_stock() {
    let app = spawn_app().await;
    app.add_good("Sold Out", json!(1), 0).await;
    app.add_good("Plenty", json!(1), 7).await;
    app.add_good("Last One", json!(1), 1).await;

    let in_stock = app.get(&format!("{GOODS}?in_stock=true"), None).await;
    assert_eq!(names(&in_stock.body), ["Last One", "Plenty"]);
    assert_eq!(in_stock.body["total"], 2);
    let out = app.get(&format!("{GOODS}?in_stock=false"), None).await;
    assert_eq!(names(&out.body), ["Sold Out"]);
    assert_eq!(out.body["total"], 1);
}

#[tokio::test]
async fn searching_matches_name_or_description_ignoring_case() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for (name, description) in [
        ("Green Tea", "Loose leaf"),
        ("Teapot", "Porcelain"),
        ("Coffee", "Goes well with TEA biscuits"),
        ("Crème Brûlée", "Dessert"),
        ("Radio", "FM"),
    ] {
        let mut body = good_body(name, json!(1), 1);
        body["description"] = json!(description);
        let reply = app.post(GOODS, Some(&admin), body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }

    let tea = app.get(&format!("{GOODS}?q=tEa"), None).await;
    assert_eq!(names(&tea.body), ["Coffee", "Green Tea", "Teapot"]);
    assert_eq!(tea.body["total"], 3);
    let unicode = app.get(&format!("{GOODS}?q=CR%C3%88ME"), None).await;
    assert_eq!(names(&unicode.body), ["Crème Brûlée"]);
    let blank = app.get(&format!("{GOODS}?q=%20%20"), None).await;
    assert_eq!(blank.body["total"], 5, "a blank search keeps everything");
    let nothing = app.get(&format!("{GOODS}?q=zzz"), None).await;
    assert_eq!(nothing.body["total"], 0);
}

#[tokio::test]
async fn search_treats_sql_wildcards_as_plain_characters() {
    let app = spawn_app().await;
    app.add_good("50% off", json!(1), 1).await;
    app.add_good("Snake_case", json!(1), 1).await;
    app.add_good("Plain", json!(1), 1).await;

    for (query, expected) in [
        ("%25", vec!["50% off"]),
        ("_", vec!["Snake_case"]),
        ("!", vec![]),
    ] {
        let reply = app.get(&format!("{GOODS}?q={query}"), None).await;
        assert_eq!(names(&reply.body), expected, "{query}: {}", reply.text);
    }
}

#[tokio::test]
async fn filters_combine() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for (name, category, count) in [
        ("Tea Cup", "accessories", 0),
        ("Tea Towel", "accessories", 3),
        ("Tea", "food", 3),
    ] {
        let mut body = good_body(name, json!(1), count);
        body["category"] = json!(category);
        app.post(GOODS, Some(&admin), body).await;
    }

    let reply = app
        .get(
            &format!("{GOODS}?q=tea&category=accessories&in_stock=true"),
            None,
        )
        .await;
    assert_eq!(names(&reply.body), ["Tea Towel"]);
    assert_eq!(reply.body["total"], 1);
}

// ---------------------------------------------------------------- changing

#[tokio::test]
async fn an_admin_can_change_any_subset_of_a_goods_fields() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let good = app.add_good("Tea", json!(2.5), 10).await;
    let path = good_path(&id_of(&good));

    let reply = app
        .patch(&path, Some(&admin), json!({ "price": 3.75, "count": 4 }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["price"], json!(3.75));
    assert_eq!(reply.body["count"], 4);
    assert_eq!(reply.body["name"], "Tea");
    assert_eq!(reply.body["description"], good["description"]);
    assert_eq!(reply.body["created_at"], good["created_at"]);
    assert!(reply.body["updated_at"].as_str() >= good["updated_at"].as_str());

    let reply = app
        .patch(
            &path,
            Some(&admin),
            json!({
                "name": " Black Tea ",
                "category": "Clothes",
                "description": "",
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["name"], "Black Tea");
    assert_eq!(reply.body["category"], "clothes");
    assert_eq!(reply.body["description"], "");
    assert_eq!(reply.body["price"], json!(3.75));

    assert_eq!(app.good(&id_of(&good)).await, reply.body);
}

#[tokio::test]
async fn renaming_to_a_name_taken_by_another_good_gets_409() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.add_good("Tea", json!(1), 1).await;
    let coffee = app.add_good("Coffee", json!(1), 1).await;
    let path = good_path(&id_of(&coffee));

    let reply = app
        .patch(&path, Some(&admin), json!({ "name": "TEA" }))
        .await;
    assert_conflict(&reply, "good-name-taken");
    assert_eq!(app.good(&id_of(&coffee)).await["name"], "Coffee");

    let recased = app
        .patch(&path, Some(&admin), json!({ "name": "COFFEE" }))
        .await;
    assert_eq!(recased.status, StatusCode::OK, "{}", recased.text);
    assert_eq!(recased.body["name"], "COFFEE");
}

#[tokio::test]
async fn patch_rejects_an_empty_body_unknown_fields_and_server_fields() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let good = app.add_good("Tea", json!(1), 1).await;
    let path = good_path(&id_of(&good));

    let empty = app.patch(&path, Some(&admin), json!({})).await;
    empty.assert_problem(400);

    for field in ["id", "created_at", "updated_at", "colour"] {
        let reply = app.patch(&path, Some(&admin), json!({ field: "x" })).await;
        assert_invalid(&reply, &[field], field);
    }
    assert_eq!(app.good(&id_of(&good)).await, good);
}

#[tokio::test]
async fn patch_applies_the_field_rules_and_names_every_bad_field() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let good = app.add_good("Tea", json!(1), 1).await;
    let path = good_path(&id_of(&good));

    for (field, value) in [
        ("name", json!("")),
        ("name", json!("x".repeat(101))),
        ("category", json!("toys")),
        ("price", json!(0)),
        ("price", json!(1.234)),
        ("price", json!(1_000_001)),
        ("description", json!("d".repeat(2001))),
        ("count", json!(-1)),
        ("count", json!(1_000_001)),
        ("count", json!(2.5)),
        ("name", json!(null)),
    ] {
        let reply = app
            .patch(&path, Some(&admin), json!({ field: value }))
            .await;
        assert_invalid(&reply, &[field], &format!("{field} = {value}"));
    }

    let reply = app
        .patch(
            &path,
            Some(&admin),
            json!({ "price": -1, "count": "many", "name": 3 }),
        )
        .await;
    assert_invalid(&reply, &["count", "name", "price"], "several");
    assert_eq!(app.good(&id_of(&good)).await, good);
}

#[tokio::test]
async fn only_an_admin_can_change_a_good_and_an_unknown_one_gets_404() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let customer = app.customer("alice").await;
    let good = app.add_good("Tea", json!(1), 1).await;
    let path = good_path(&id_of(&good));

    app.patch(&path, None, json!({ "price": 100 }))
        .await
        .assert_problem(401);
    app.patch(&path, Some(&customer), json!({ "price": 100 }))
        .await
        .assert_problem(403);
    app.patch(&good_path("nope"), Some(&admin), json!({ "price": 100 }))
        .await
        .assert_problem(404);
    assert_eq!(app.good(&id_of(&good)).await, good);
}

// ---------------------------------------------------------------- deducting

#[tokio::test]
async fn deducting_lowers_the_stock_and_returns_the_good() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let good = app.add_good("Tea", json!(1), 10).await;
    let path = deduct_path(&id_of(&good));

    let reply = app.post(&path, Some(&admin), json!({ "count": 3 })).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["count"], 7);
    assert_eq!(reply.body["id"], good["id"]);

    let rest = app.post(&path, Some(&admin), json!({ "count": 7 })).await;
    assert_eq!(rest.status, StatusCode::OK, "{}", rest.text);
    assert_eq!(rest.body["count"], 0);
    assert_eq!(app.good(&id_of(&good)).await["count"], 0);
}

#[tokio::test]
async fn deducting_more_than_the_stock_gets_409_and_takes_nothing() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let good = app.add_good("Tea", json!(1), 2).await;
    let path = deduct_path(&id_of(&good));

    for count in [3_i64, 1_000_000_000_000] {
        let reply = app
            .post(&path, Some(&admin), json!({ "count": count }))
            .await;
        assert_conflict(&reply, "insufficient-stock");
    }
    assert_eq!(app.good(&id_of(&good)).await["count"], 2);
}

#[tokio::test]
async fn deducting_rejects_counts_that_are_not_positive_integers() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let good = app.add_good("Tea", json!(1), 5).await;
    let path = deduct_path(&id_of(&good));

    for value in [json!(0), json!(-1), json!(1.5), json!("1"), json!(null)] {
        let reply = app
            .post(&path, Some(&admin), json!({ "count": value }))
            .await;
        assert_invalid(&reply, &["count"], &value.to_string());
    }
    let missing = app.post(&path, Some(&admin), json!({})).await;
    assert_invalid(&missing, &["count"], "missing");
    let extra = app
        .post(
            &path,
            Some(&admin),
            json!({ "count": 1, "reason": "broken" }),
        )
        .await;
    assert_invalid(&extra, &["reason"], "unknown field");
    assert_eq!(app.good(&id_of(&good)).await["count"], 5);
}

#[tokio::test]
async fn only_an_admin_can_deduct_and_an_unknown_good_gets_404() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let customer = app.customer("alice").await;
    let good = app.add_good("Tea", json!(1), 5).await;
    let path = deduct_path(&id_of(&good));

    app.post(&path, None, json!({ "count": 1 }))
        .await
        .assert_problem(401);
    app.post(&path, Some(&customer), json!({ "count": 1 }))
        .await
        .assert_problem(403);
    app.post(&deduct_path("nope"), Some(&admin), json!({ "count": 1 }))
        .await
        .assert_problem(404);
    assert_eq!(app.good(&id_of(&good)).await["count"], 5);
}

#[tokio::test]
async fn concurrent_deductions_never_take_more_than_the_stock() {
    let app = Arc::new(spawn_app().await);
    let admin = app.admin_token().await;
    let good = app.add_good("Tea", json!(1), 10).await;
    let path = deduct_path(&id_of(&good));

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..25 {
        let (app, admin, path) = (app.clone(), admin.clone(), path.clone());
        tasks.spawn(async move { app.post(&path, Some(&admin), json!({ "count": 1 })).await });
    }
    let (mut ok, mut conflicts) = (0, 0);
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        if reply.status == StatusCode::OK {
            ok += 1;
        } else {
            assert_conflict(&reply, "insufficient-stock");
            conflicts += 1;
        }
    }
    assert_eq!((ok, conflicts), (10, 15));
    assert_eq!(app.good(&id_of(&good)).await["count"], 0);
}

// ---------------------------------------------------------------- deleting

#[tokio::test]
async fn an_admin_can_delete_a_good() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let good = app.add_good("Tea", json!(1), 5).await;
    let path = good_path(&id_of(&good));

    let reply = app.delete(&path, Some(&admin)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    assert!(reply.text.is_empty());

    app.get(&path, None).await.assert_problem(404);
    app.delete(&path, Some(&admin)).await.assert_problem(404);
    let list = app.get(GOODS, None).await;
    assert_eq!(list.body["total"], 0);

    // The name is free again.
    app.add_good("TEA", json!(1), 5).await;
}

#[tokio::test]
async fn only_an_admin_can_delete_a_good() {
    let app = spawn_app().await;
    let customer = app.customer("alice").await;
    let good = app.add_good("Tea", json!(1), 5).await;
    let path = good_path(&id_of(&good));

    app.delete(&path, None).await.assert_problem(401);
    app.delete(&path, Some(&customer)).await.assert_problem(403);
    assert_eq!(app.good(&id_of(&good)).await, good);
}

#[tokio::test]
async fn error_bodies_are_problem_details_without_internals() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.add_good("Tea", json!(1), 1).await;

    let replies = [
        app.post(GOODS, Some(&admin), json!({ "name": "" })).await,
        app.post(GOODS, Some(&admin), good_body("tea", json!(1), 1))
            .await,
        app.get(&good_path("'; DROP TABLE inventory_goods; --"), None)
            .await,
        app.get(&format!("{GOODS}?q=%27%20OR%201%3D1%20--"), None)
            .await,
    ];
    for reply in &replies[..3] {
        let status = reply.status.as_u16();
        reply.assert_problem(status);
        let text = reply.text.to_lowercase();
        for leak in [
            "select",
            "insert",
            "inventory_goods",
            "sqlite",
            "postgres",
            ".rs",
        ] {
            assert!(!text.contains(leak), "{leak} in {}", reply.text);
        }
    }
    assert_eq!(replies[3].status, StatusCode::OK);
    assert_eq!(replies[3].body["total"], 0);
}
