//! The customers and authentication rows of API.md, from the outside:
//! registration and its field rules, profiles, search and paging, wallets
//! and money rules, login and tokens, and the shape of every error.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_USERNAME, JWT_SECRET, PASSWORD, Reply, TestApp, claims, customer_body, is_rfc3339_utc,
    sign_token, spawn_app, unix_now, unsigned_token,
};

/// Every field of a customer object, sorted.
const CUSTOMER_FIELDS: [&str; 11] = [
    "address",
    "age",
    "created_at",
    "full_name",
    "gender",
    "id",
    "marital_status",
    "role",
    "updated_at",
    "username",
    "wallet_balance",
];

/// Every registration field, sorted.
const REGISTRATION_FIELDS: [&str; 7] = [
    "address",
    "age",
    "full_name",
    "gender",
    "marital_status",
    "password",
    "username",
];

fn customer_path(username: &str) -> String {
    format!("/api/v1/customers/{username}")
}

fn wallet_path(username: &str, operation: &str) -> String {
    format!("/api/v1/customers/{username}/wallet/{operation}")
}

/// `customer_body(username)` with `field` set to `value`.
fn body_with(username: &str, field: &str, value: Value) -> Value {
    let mut body = customer_body(username);
    body[field] = value;
    body
}

/// Registers `body` and asserts a 400 naming exactly `field`.
#[track_caller]
fn assert_rejects_only(reply: &Reply, field: &str, case: &str) {
    reply.assert_problem(400);
    assert_eq!(
        reply.problem_type(),
        "urn:souk:error:invalid-input",
        "{case}: {}",
        reply.text
    );
    assert_eq!(
        reply.error_fields(),
        vec![field.to_owned()],
        "{case}: {}",
        reply.text
    );
    let message = reply.body["errors"][0]["message"].as_str().unwrap_or("");
    assert!(!message.is_empty(), "{case}: {}", reply.text);
}

/// Registers one body per bad `value` of `field` and asserts each is
/// rejected naming only `field`, and that no account was created.
async fn assert_registration_rejects(app: &TestApp, field: &str, values: Vec<Value>) {
    for (index, value) in values.into_iter().enumerate() {
        let username = if field == "username" {
            value.clone()
        } else {
            json!(format!("user_{index}"))
        };
        let mut body = customer_body(username.as_str().unwrap_or("placeholder"));
        body["username"] = username;
        body[field] = value.clone();
        let reply = app.post("/api/v1/customers", None, body).await;
        assert_rejects_only(&reply, field, &format!("{field} = {value}"));
    }
    let admin = app.admin_token().await;
    let list = app.get("/api/v1/customers", Some(&admin)).await;
    assert_eq!(
        list.body["total"], 1,
        "only the admin exists: {}",
        list.text
    );
}

/// Registers one body per good `value` of `field` and asserts each succeeds.
async fn assert_registration_accepts(app: &TestApp, field: &str, values: Vec<Value>) {
    for (index, value) in values.into_iter().enumerate() {
        let username = format!("ok_{field}_{index}");
        let body = if field == "username" {
            body_with(value.as_str().unwrap(), field, value.clone())
        } else {
            body_with(&username, field, value.clone())
        };
        let reply = app.post("/api/v1/customers", None, body).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{field} = {value}: {}",
            reply.text
        );
    }
}

// ---------------------------------------------------------------- registration

#[tokio::test]
async fn registration_returns_201_with_the_customer_and_its_location() {
    let app = spawn_app().await;

    let reply = app.register("alice").await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.header("location"), Some("/api/v1/customers/alice"));
    assert!(
        reply.content_type().starts_with("application/json"),
        "{}",
        reply.content_type()
    );
    let customer = &reply.body;
    let mut fields: Vec<&str> = customer
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, CUSTOMER_FIELDS);
    assert!(!customer["id"].as_str().unwrap().is_empty());
    assert_eq!(customer["username"], "alice");
    assert_eq!(customer["full_name"], "alice Example");
    assert_eq!(customer["age"], 30);
    assert_eq!(customer["address"], "1 Market Street");
    assert_eq!(customer["gender"], "female");
    assert_eq!(customer["marital_status"], "single");
    assert_eq!(customer["wallet_balance"], 0);
    assert_eq!(customer["role"], "customer");
    for stamp in ["created_at", "updated_at"] {
        let text = customer[stamp].as_str().unwrap();
        assert!(is_rfc3339_utc(text), "{stamp} = {text}");
    }
}

#[tokio::test]
async fn a_registered_customer_can_log_in_and_read_their_profile() {
    let app = spawn_app().await;
    let created = app.register("alice").await.body;

    let token = app.token("alice", PASSWORD).await;
    let reply = app.get("/api/v1/customers/alice", Some(&token)).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body, created);
}

#[tokio::test]
async fn registration_stores_gender_and_marital_status_in_lower_case() {
    let app = spawn_app().await;
    let mut body = customer_body("alice");
    body["gender"] = json!("FeMale");
    body["marital_status"] = json!("MARRIED");

    let reply = app.post("/api/v1/customers", None, body).await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.body["gender"], "female");
    assert_eq!(reply.body["marital_status"], "married");
}

#[tokio::test]
async fn registration_accepts_every_listed_gender_and_marital_status() {
    let app = spawn_app().await;
    assert_registration_accepts(
        &app,
        "gender",
        vec![
            json!("female"),
            json!("male"),
            json!("other"),
            json!("undisclosed"),
        ],
    )
    .await;
    let statuses = ["single", "married", "divorced", "widowed", "undisclosed"];
    assert_registration_accepts(
        &app,
        "marital_status",
        statuses.iter().map(|s| json!(s)).collect(),
    )
    .await;
}

#[tokio::test]
async fn registration_rejects_a_full_name_that_is_empty_blank_too_long_or_not_text() {
    let app = spawn_app().await;
    assert_registration_rejects(
        &app,
        "full_name",
        vec![
            json!(""),
            json!("   "),
            json!("x".repeat(101)),
            json!(42),
            Value::Null,
        ],
    )
    .await;
    assert_registration_accepts(&app, "full_name", vec![json!("x"), json!("é".repeat(100))]).await;
}

#[tokio::test]
async fn registration_rejects_a_username_with_spaces() {
    let app = spawn_app().await;
    assert_registration_rejects(
        &app,
        "username",
        vec![json!("al ice"), json!(" alice"), json!("alice ")],
    )
    .await;
}

#[tokio::test]
async fn registration_rejects_usernames_that_break_the_pattern() {
    let app = spawn_app().await;
    assert_registration_rejects(
        &app,
        "username",
        vec![
            json!("ab"),
            json!("a".repeat(33)),
            json!("alice!"),
            json!("alice-b"),
            json!("alïce"),
            json!("al.ice"),
            json!(""),
            json!(12345),
        ],
    )
    .await;
    assert_registration_accepts(
        &app,
        "username",
        vec![json!("abc"), json!("A_1"), json!("z".repeat(32))],
    )
    .await;
}

#[tokio::test]
async fn registration_rejects_a_username_taken_in_any_case() {
    let app = spawn_app().await;
    app.customer("alice").await;

    for taken in ["alice", "ALICE", "Alice"] {
        let reply = app.register(taken).await;
        reply.assert_problem(409);
        assert_eq!(
            reply.problem_type(),
            "urn:souk:error:username-taken",
            "{taken}: {}",
            reply.text
        );
    }
    let admin = app.admin_token().await;
    let list = app.get("/api/v1/customers", Some(&admin)).await;
    assert_eq!(list.body["total"], 2, "{}", list.text);
}

#[tokio::test]
async fn registration_rejects_passwords_that_break_the_rules() {
    let app = spawn_app().await;
    assert_registration_rejects(
        &app,
        "password",
        vec![
            json!("abc1234"),
            json!("password"),
            json!("12345678"),
            json!(format!("a1{}", "x".repeat(127))),
            json!(""),
            json!(12345678),
        ],
    )
    .await;
    assert_registration_accepts(
        &app,
        "password",
        vec![json!("abcdefg1"), json!(format!("a1{}", "x".repeat(126)))],
    )
    .await;
}

#[tokio::test]
async fn registration_rejects_ages_outside_13_to_120_and_non_integers() {
    let app = spawn_app().await;
    assert_registration_rejects(
        &app,
        "age",
        vec![
            json!(12),
            json!(121),
            json!(0),
            json!(-20),
            json!(30.5),
            json!("30"),
            Value::Null,
        ],
    )
    .await;
    assert_registration_accepts(&app, "age", vec![json!(13), json!(120)]).await;
}

#[tokio::test]
async fn registration_rejects_an_address_that_is_empty_or_too_long() {
    let app = spawn_app().await;
    assert_registration_rejects(
        &app,
        "address",
        vec![json!(""), json!("  "), json!("x".repeat(201)), json!(7)],
    )
    .await;
    assert_registration_accepts(&app, "address", vec![json!("x"), json!("x".repeat(200))]).await;
}

#[tokio::test]
async fn registration_rejects_a_gender_outside_the_list() {
    let app = spawn_app().await;
    assert_registration_rejects(
        &app,
        "gender",
        vec![json!("unknown"), json!(""), json!("f"), json!(1)],
    )
    .await;
}

#[tokio::test]
async fn registration_rejects_a_marital_status_outside_the_list() {
    let app = spawn_app().await;
    assert_registration_rejects(
        &app,
        "marital_status",
        vec![json!("engaged"), json!(""), json!(true)],
    )
    .await;
}

#[tokio::test]
async fn registration_names_every_missing_field() {
    let app = spawn_app().await;

    let reply = app.post("/api/v1/customers", None, json!({})).await;

    reply.assert_problem(400);
    assert_eq!(reply.error_fields(), REGISTRATION_FIELDS);
}

#[tokio::test]
async fn registration_names_every_bad_field_not_only_the_first() {
    let app = spawn_app().await;
    let body = json!({
        "username": "a b",
        "password": "short",
        "full_name": "",
        "age": 7,
        "address": "",
        "gender": "robot",
        "marital_status": "complicated",
        "nickname": "al",
    });

    let reply = app.post("/api/v1/customers", None, body).await;

    reply.assert_problem(400);
    let mut expected: Vec<&str> = REGISTRATION_FIELDS.to_vec();
    expected.push("nickname");
    expected.sort_unstable();
    assert_eq!(reply.error_fields(), expected);
    for error in reply.body["errors"].as_array().unwrap() {
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
    }
}

#[tokio::test]
async fn registration_rejects_unknown_fields() {
    let app = spawn_app().await;

    let reply = app
        .post(
            "/api/v1/customers",
            None,
            body_with("alice", "nickname", json!("al")),
        )
        .await;

    assert_rejects_only(&reply, "nickname", "unknown field");
}

#[tokio::test]
async fn registration_rejects_a_field_given_twice() {
    let app = spawn_app().await;
    let body = customer_body("alice").to_string();
    let body = body.replacen('{', r#"{"age": 30,"#, 1);

    let reply = app
        .post_raw(
            "/api/v1/customers",
            None,
            Some("application/json"),
            body.into_bytes(),
        )
        .await;

    assert_rejects_only(&reply, "age", "duplicate key");
}

#[tokio::test]
async fn registration_cannot_choose_a_role_or_a_wallet_balance() {
    let app = spawn_app().await;

    for (field, value) in [("role", json!("admin")), ("wallet_balance", json!(1000))] {
        let reply = app
            .post(
                "/api/v1/customers",
                None,
                body_with("mallory", field, value),
            )
            .await;
        assert_rejects_only(&reply, field, field);
    }
    let customer = app.register("mallory").await;
    assert_eq!(customer.status, StatusCode::CREATED, "{}", customer.text);
    assert_eq!(customer.body["role"], "customer");
    assert_eq!(customer.body["wallet_balance"], 0);
}

#[tokio::test]
async fn registration_without_a_json_content_type_is_rejected() {
    let app = spawn_app().await;
    let body = customer_body("alice").to_string().into_bytes();

    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let reply = app
            .post_raw("/api/v1/customers", None, content_type, body.clone())
            .await;
        assert!(
            matches!(reply.status.as_u16(), 400 | 415),
            "{content_type:?}: {} {}",
            reply.status,
            reply.text
        );
        reply.assert_problem(reply.status.as_u16());
    }
    let admin = app.admin_token().await;
    assert_eq!(
        app.get("/api/v1/customers/alice", Some(&admin))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn registration_with_a_body_that_is_not_a_json_object_gets_400() {
    let app = spawn_app().await;

    for body in [
        "",
        "{",
        "not json",
        "[1, 2]",
        "\"alice\"",
        "null",
        r#"{"age": NaN}"#,
        "{'a': 1}",
    ] {
        let reply = app
            .post_raw(
                "/api/v1/customers",
                None,
                Some("application/json"),
                body.into(),
            )
            .await;
        reply.assert_problem(400);
        assert_eq!(
            reply.problem_type(),
            "urn:souk:error:bad-request",
            "{body}: {}",
            reply.text
        );
    }
}

#[tokio::test]
async fn a_body_over_64_kib_gets_413_and_one_at_the_limit_does_not() {
    let app = spawn_app().await;
    const LIMIT: usize = 64 * 1024;
    // Valid JSON padded with trailing whitespace to an exact size.
    let padded = |size: usize| {
        let mut body = customer_body("alice").to_string().into_bytes();
        body.resize(size, b' ');
        body
    };

    let over = app
        .post_raw(
            "/api/v1/customers",
            None,
            Some("application/json"),
            padded(LIMIT + 1),
        )
        .await;
    over.assert_problem(413);
    assert!(over.header("x-request-id").is_some(), "{:?}", over.headers);

    let at_limit = app
        .post_raw(
            "/api/v1/customers",
            None,
            Some("application/json"),
            padded(LIMIT),
        )
        .await;
    assert_eq!(at_limit.status, StatusCode::CREATED, "{}", at_limit.text);
}

#[tokio::test]
async fn a_large_body_is_refused_on_every_business_route() {
    let app = spawn_app().await;
    let token = app.customer("alice").await;
    let big = vec![b' '; 100 * 1024];

    for (method, path) in [
        (Method::POST, "/api/v1/auth/login".to_owned()),
        (Method::PATCH, customer_path("alice")),
        (Method::POST, wallet_path("alice", "charge")),
    ] {
        let reply = app
            .send_raw(
                method.clone(),
                &path,
                Some(&token),
                Some("application/json"),
                big.clone(),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{method} {path}: {}",
            reply.text
        );
    }
}

// ------------------------------------------------------------ reading profiles

#[tokio::test]
async fn reading_a_profile_without_a_token_gets_401() {
    let app = spawn_app().await;
    app.register("alice").await;

    let reply = app.get("/api/v1/customers/alice", None).await;

    reply.assert_problem(401);
}

#[tokio::test]
async fn a_customer_cannot_read_another_customers_profile() {
    let app = spawn_app().await;
    app.register("alice").await;
    let bob = app.customer("bob").await;

    let reply = app.get("/api/v1/customers/alice", Some(&bob)).await;
    reply.assert_problem(403);
    assert!(!reply.text.contains("alice Example"), "{}", reply.text);

    // The same answer whether or not the username exists: no enumeration.
    let missing = app.get("/api/v1/customers/nobody", Some(&bob)).await;
    missing.assert_problem(403);
}

#[tokio::test]
async fn an_admin_can_read_any_profile_and_gets_404_for_an_unknown_one() {
    let app = spawn_app().await;
    app.register("alice").await;
    let admin = app.admin_token().await;

    let reply = app.get("/api/v1/customers/alice", Some(&admin)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["username"], "alice");

    let missing = app.get("/api/v1/customers/nobody", Some(&admin)).await;
    missing.assert_problem(404);
}

#[tokio::test]
async fn the_first_admin_comes_from_the_settings() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let reply = app.get(&customer_path(ADMIN_USERNAME), Some(&admin)).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["role"], "admin");
}

#[tokio::test]
async fn a_wrong_method_on_a_customer_path_gets_405() {
    let app = spawn_app().await;
    let token = app.customer("alice").await;

    let reply = app
        .send(
            Method::PUT,
            "/api/v1/customers/alice",
            Some(&token),
            Some(json!({})),
        )
        .await;

    reply.assert_problem(405);
}

// ------------------------------------------------------- listing and searching

#[tokio::test]
async fn only_an_admin_can_list_customers() {
    let app = spawn_app().await;
    let alice = app.customer("alice").await;

    app.get("/api/v1/customers", None).await.assert_problem(401);
    app.get("/api/v1/customers", Some(&alice))
        .await
        .assert_problem(403);

    let admin = app.admin_token().await;
    let reply = app.get("/api/v1/customers", Some(&admin)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["total"], 2);
    assert_eq!(reply.body["limit"], 50);
    assert_eq!(reply.body["offset"], 0);
    let names: Vec<&str> = reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", ADMIN_USERNAME]);
}

#[tokio::test]
async fn listing_customers_pages_with_limit_and_offset() {
    let app = spawn_app().await;
    for name in ["carol", "alice", "dave", "bob"] {
        app.register(name).await;
    }
    let admin = app.admin_token().await;

    let mut seen = Vec::new();
    for offset in [0, 2, 4] {
        let reply = app
            .get(
                &format!("/api/v1/customers?limit=2&offset={offset}"),
                Some(&admin),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(reply.body["total"], 5);
        assert_eq!(reply.body["limit"], 2);
        assert_eq!(reply.body["offset"], offset);
        let items = reply.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|c| c["username"].as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(seen, ["alice", "bob", "carol", "dave", ADMIN_USERNAME]);

    let beyond = app.get("/api/v1/customers?offset=10", Some(&admin)).await;
    assert_eq!(beyond.status, StatusCode::OK, "{}", beyond.text);
    assert_eq!(beyond.body["items"], json!([]));
    assert_eq!(beyond.body["total"], 5);
}

#[tokio::test]
async fn listing_accepts_the_ends_of_the_paging_ranges() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    for query in ["limit=1", "limit=200", "offset=0", "limit=1&offset=1000000"] {
        let reply = app
            .get(&format!("/api/v1/customers?{query}"), Some(&admin))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text);
    }
}

#[tokio::test]
async fn listing_rejects_bad_paging_values() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    for (query, fields) in [
        ("limit=0", vec!["limit"]),
        ("limit=201", vec!["limit"]),
        ("limit=-1", vec!["limit"]),
        ("limit=abc", vec!["limit"]),
        ("limit=2.5", vec!["limit"]),
        ("limit=", vec!["limit"]),
        ("offset=-1", vec!["offset"]),
        ("offset=x", vec!["offset"]),
        ("limit=0&offset=-1", vec!["limit", "offset"]),
    ] {
        let reply = app
            .get(&format!("/api/v1/customers?{query}"), Some(&admin))
            .await;
        reply.assert_problem(400);
        assert_eq!(reply.error_fields(), fields, "{query}: {}", reply.text);
    }
}

#[tokio::test]
async fn searching_customers_matches_username_or_full_name_ignoring_case() {
    let app = spawn_app().await;
    for (username, full_name) in [
        ("alice", "Alice Smith"),
        ("bob", "Bob Jones"),
        ("carol", "Carol Smithers"),
    ] {
        let reply = app
            .post(
                "/api/v1/customers",
                None,
                body_with(username, "full_name", json!(full_name)),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }
    let admin = app.admin_token().await;

    for (q, expected) in [
        ("SMITH", vec!["alice", "carol"]),
        ("bob", vec!["bob"]),
        ("ALI", vec!["alice"]),
        ("jones", vec!["bob"]),
        ("zzz", vec![]),
    ] {
        let reply = app
            .get(&format!("/api/v1/customers?q={q}"), Some(&admin))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{q}: {}", reply.text);
        let names: Vec<&str> = reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["username"].as_str().unwrap())
            .collect();
        assert_eq!(names, expected, "q={q}");
        assert_eq!(reply.body["total"], expected.len(), "q={q}");
    }

    let paged = app
        .get("/api/v1/customers?q=smith&limit=1&offset=1", Some(&admin))
        .await;
    assert_eq!(paged.body["total"], 2, "{}", paged.text);
    assert_eq!(paged.body["items"][0]["username"], "carol");
}

#[tokio::test]
async fn search_treats_sql_wildcards_as_plain_characters() {
    let app = spawn_app().await;
    app.register("a_b").await;
    app.register("axb").await;
    let admin = app.admin_token().await;

    for (q, expected) in [
        ("_", vec!["a_b"]),
        ("a_", vec!["a_b"]),
        ("%25", vec![]),
        ("!", vec![]),
    ] {
        let reply = app
            .get(&format!("/api/v1/customers?q={q}"), Some(&admin))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{q}: {}", reply.text);
        let names: Vec<&str> = reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["username"].as_str().unwrap())
            .collect();
        assert_eq!(names, expected, "q={q}");
    }
}

// -------------------------------------------------------------------- updating

#[tokio::test]
async fn a_customer_can_update_any_subset_of_their_profile() {
    let app = spawn_app().await;
    let created = app.register("alice").await.body;
    let token = app.token("alice", PASSWORD).await;

    let reply = app
        .patch(
            "/api/v1/customers/alice",
            Some(&token),
            json!({
                "full_name": "Alice Liddell",
                "age": 31,
                "address": "2 Rabbit Hole",
                "gender": "OTHER",
                "marital_status": "married",
            }),
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let updated = &reply.body;
    assert_eq!(updated["full_name"], "Alice Liddell");
    assert_eq!(updated["age"], 31);
    assert_eq!(updated["address"], "2 Rabbit Hole");
    assert_eq!(updated["gender"], "other");
    assert_eq!(updated["marital_status"], "married");
    for unchanged in ["id", "username", "role", "wallet_balance", "created_at"] {
        assert_eq!(updated[unchanged], created[unchanged], "{unchanged}");
    }
    assert!(is_rfc3339_utc(updated["updated_at"].as_str().unwrap()));
    assert_eq!(app.profile("alice").await, *updated);

    let one_field = app
        .patch(
            "/api/v1/customers/alice",
            Some(&token),
            json!({ "age": 32 }),
        )
        .await;
    assert_eq!(one_field.status, StatusCode::OK, "{}", one_field.text);
    assert_eq!(one_field.body["age"], 32);
    assert_eq!(one_field.body["full_name"], "Alice Liddell");
}

#[tokio::test]
async fn changing_the_password_makes_the_old_one_stop_working() {
    let app = spawn_app().await;
    let token = app.customer("alice").await;

    let reply = app
        .patch(
            "/api/v1/customers/alice",
            Some(&token),
            json!({ "password": "newpass456" }),
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    app.login("alice", PASSWORD).await.assert_problem(401);
    app.token("alice", "newpass456").await;
}

#[tokio::test]
async fn patch_rejects_a_username_change() {
    let app = spawn_app().await;
    let token = app.customer("alice").await;

    let reply = app
        .patch(
            "/api/v1/customers/alice",
            Some(&token),
            json!({ "username": "alicia" }),
        )
        .await;

    assert_rejects_only(&reply, "username", "username change");
    assert_eq!(app.profile("alice").await["username"], "alice");
}

#[tokio::test]
async fn patch_rejects_an_empty_body() {
    let app = spawn_app().await;
    let token = app.customer("alice").await;

    let reply = app
        .patch("/api/v1/customers/alice", Some(&token), json!({}))
        .await;

    reply.assert_problem(400);
}

#[tokio::test]
async fn patch_names_every_bad_field_and_changes_nothing() {
    let app = spawn_app().await;
    let before = app.register("alice").await.body;
    let token = app.token("alice", PASSWORD).await;

    let reply = app
        .patch(
            "/api/v1/customers/alice",
            Some(&token),
            json!({
                "full_name": "Alice Liddell",
                "age": 5,
                "gender": "robot",
                "address": "",
                "password": "short",
                "marital_status": 3,
                "favourite_colour": "blue",
            }),
        )
        .await;

    reply.assert_problem(400);
    assert_eq!(
        reply.error_fields(),
        [
            "address",
            "age",
            "favourite_colour",
            "gender",
            "marital_status",
            "password"
        ]
    );
    assert_eq!(app.profile("alice").await, before);
}

#[tokio::test]
async fn patch_cannot_set_the_wallet_balance() {
    let app = spawn_app().await;
    let token = app.customer("alice").await;
    let admin = app.admin_token().await;

    for caller in [&token, &admin] {
        let reply = app
            .patch(
                "/api/v1/customers/alice",
                Some(caller),
                json!({ "wallet_balance": 500 }),
            )
            .await;
        assert_rejects_only(&reply, "wallet_balance", "wallet via patch");
    }
    assert_eq!(app.profile("alice").await["wallet_balance"], 0);
}

#[tokio::test]
async fn patch_without_a_json_content_type_is_rejected() {
    let app = spawn_app().await;
    let token = app.customer("alice").await;

    let reply = app
        .send_raw(
            Method::PATCH,
            "/api/v1/customers/alice",
            Some(&token),
            Some("text/plain"),
            br#"{"age": 40}"#.to_vec(),
        )
        .await;

    assert!(matches!(reply.status.as_u16(), 400 | 415), "{}", reply.text);
    reply.assert_problem(reply.status.as_u16());
    assert_eq!(app.profile("alice").await["age"], 30);
}

#[tokio::test]
async fn a_customer_cannot_change_their_own_role() {
    let app = spawn_app().await;
    let token = app.customer("alice").await;

    let reply = app
        .patch(
            "/api/v1/customers/alice",
            Some(&token),
            json!({ "role": "admin" }),
        )
        .await;

    reply.assert_problem(403);
    assert_eq!(app.profile("alice").await["role"], "customer");
    app.get("/api/v1/customers", Some(&token))
        .await
        .assert_problem(403);
}

#[tokio::test]
async fn an_admin_can_promote_a_customer_and_it_takes_effect_at_once() {
    let app = spawn_app().await;
    let alice = app.customer("alice").await;
    let admin = app.admin_token().await;

    let reply = app
        .patch(
            "/api/v1/customers/alice",
            Some(&admin),
            json!({ "role": "admin" }),
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["role"], "admin");
    // A token carries the privileges of the moment it was issued (API.md):
    // the one from before the promotion stops working, a new one is admin.
    app.get("/api/v1/customers", Some(&alice))
        .await
        .assert_problem(401);
    let alice_admin = app.token("alice", PASSWORD).await;
    let list = app.get("/api/v1/customers", Some(&alice_admin)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);

    let demoted = app
        .patch(
            "/api/v1/customers/alice",
            Some(&admin),
            json!({ "role": "customer" }),
        )
        .await;
    assert_eq!(demoted.body["role"], "customer", "{}", demoted.text);
    app.get("/api/v1/customers", Some(&alice_admin))
        .await
        .assert_problem(401);
    let alice = app.token("alice", PASSWORD).await;
    app.get("/api/v1/customers", Some(&alice))
        .await
        .assert_problem(403);
}

#[tokio::test]
async fn an_admin_rejects_an_unknown_role() {
    let app = spawn_app().await;
    app.register("alice").await;
    let admin = app.admin_token().await;

    let reply = app
        .patch(
            "/api/v1/customers/alice",
            Some(&admin),
            json!({ "role": "superuser" }),
        )
        .await;

    assert_rejects_only(&reply, "role", "unknown role");
}

#[tokio::test]
async fn an_admin_can_update_another_customers_profile() {
    let app = spawn_app().await;
    app.register("alice").await;
    let admin = app.admin_token().await;

    let reply = app
        .patch(
            "/api/v1/customers/alice",
            Some(&admin),
            json!({ "address": "3 Admin Way" }),
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["address"], "3 Admin Way");
    let missing = app
        .patch(
            "/api/v1/customers/nobody",
            Some(&admin),
            json!({ "age": 40 }),
        )
        .await;
    missing.assert_problem(404);
}

#[tokio::test]
async fn only_the_customer_or_an_admin_can_update_a_profile() {
    let app = spawn_app().await;
    app.register("alice").await;
    let bob = app.customer("bob").await;

    app.patch("/api/v1/customers/alice", None, json!({ "age": 40 }))
        .await
        .assert_problem(401);
    app.patch("/api/v1/customers/alice", Some(&bob), json!({ "age": 40 }))
        .await
        .assert_problem(403);
    assert_eq!(app.profile("alice").await["age"], 30);
}

// -------------------------------------------------------------------- deleting

#[tokio::test]
async fn a_customer_can_delete_their_account_and_their_token_stops_working() {
    let app = spawn_app().await;
    let token = app.customer("alice").await;

    let reply = app.delete("/api/v1/customers/alice", Some(&token)).await;

    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    assert!(reply.text.is_empty(), "{}", reply.text);
    app.get("/api/v1/customers/alice", Some(&token))
        .await
        .assert_problem(401);
    app.login("alice", PASSWORD).await.assert_problem(401);
    let admin = app.admin_token().await;
    app.get("/api/v1/customers/alice", Some(&admin))
        .await
        .assert_problem(404);
}

#[tokio::test]
async fn an_admin_can_delete_a_customer() {
    let app = spawn_app().await;
    let alice = app.customer("alice").await;
    let admin = app.admin_token().await;

    let reply = app.delete("/api/v1/customers/alice", Some(&admin)).await;

    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    app.get("/api/v1/customers/alice", Some(&alice))
        .await
        .assert_problem(401);
    app.delete("/api/v1/customers/alice", Some(&admin))
        .await
        .assert_problem(404);
}

#[tokio::test]
async fn only_the_customer_or_an_admin_can_delete_an_account() {
    let app = spawn_app().await;
    app.register("alice").await;
    let bob = app.customer("bob").await;

    app.delete("/api/v1/customers/alice", None)
        .await
        .assert_problem(401);
    app.delete("/api/v1/customers/alice", Some(&bob))
        .await
        .assert_problem(403);
    assert_eq!(app.profile("alice").await["username"], "alice");
}

#[tokio::test]
async fn a_deleted_customers_token_does_not_open_a_new_account_with_the_same_username() {
    let app = spawn_app().await;
    let old_token = app.customer("alice").await;
    app.delete("/api/v1/customers/alice", Some(&old_token))
        .await;

    let again = app.register("alice").await;

    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    app.get("/api/v1/customers/alice", Some(&old_token))
        .await
        .assert_problem(401);
}

// --------------------------------------------------------------------- wallets

#[tokio::test]
async fn charging_adds_exact_cents_to_the_wallet() {
    let app = spawn_app().await;
    app.register("alice").await;

    let mut last = Value::Null;
    for (amount, balance) in [
        (json!(0.1), json!(0.1)),
        (json!(0.2), json!(0.3)),
        (json!(12.5), json!(12.8)),
    ] {
        let reply = app.charge("alice", amount.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{amount}: {}", reply.text);
        assert_eq!(
            reply.body,
            json!({ "username": "alice", "wallet_balance": balance })
        );
        last = balance;
    }
    assert_eq!(app.profile("alice").await["wallet_balance"], last);
}

#[tokio::test]
async fn amounts_are_read_from_their_exact_digits() {
    let app = spawn_app().await;
    app.register("alice").await;
    let admin = app.admin_token().await;

    // The balance as the JSON text the client reads: no float artefacts,
    // no exponent, no trailing zeros.
    for (amount, balance) in [("12.50", "12.5"), ("0.07", "12.57"), ("100.0", "112.57")] {
        let body = format!(r#"{{"amount": {amount}}}"#).into_bytes();
        let reply = app
            .post_raw(
                &wallet_path("alice", "charge"),
                Some(&admin),
                Some("application/json"),
                body,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{amount}: {}", reply.text);
        let balance = format!(r#""wallet_balance":{balance}}}"#);
        assert!(reply.text.ends_with(&balance), "{amount}: {}", reply.text);
    }
}

#[tokio::test]
async fn a_customer_can_charge_and_deduct_their_own_wallet() {
    let app = spawn_app().await;
    let token = app.customer("alice").await;

    let charged = app
        .post(
            &wallet_path("alice", "charge"),
            Some(&token),
            json!({ "amount": 20 }),
        )
        .await;
    assert_eq!(charged.status, StatusCode::OK, "{}", charged.text);
    assert_eq!(charged.body["wallet_balance"], 20);

    let deducted = app
        .post(
            &wallet_path("alice", "deduct"),
            Some(&token),
            json!({ "amount": 0.99 }),
        )
        .await;
    assert_eq!(deducted.status, StatusCode::OK, "{}", deducted.text);
    assert_eq!(
        deducted.body,
        json!({ "username": "alice", "wallet_balance": 19.01 })
    );
}

#[tokio::test]
async fn the_largest_amount_per_operation_is_one_million() {
    let app = spawn_app().await;
    app.register("alice").await;

    let reply = app.charge("alice", json!(1_000_000)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["wallet_balance"], 1_000_000);

    let reply = app.deduct("alice", json!(1_000_000.00)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["wallet_balance"], 0);
}

/// Amounts that break the money rules, as raw JSON text.
const BAD_AMOUNTS: [&str; 14] = [
    "12.345",
    "0.001",
    "0",
    "0.00",
    "-5",
    "-0.01",
    "1000000.01",
    "10000000",
    "1e7",
    "\"12.5\"",
    "\"NaN\"",
    "null",
    "true",
    "[5]",
];

async fn assert_wallet_rejects_bad_amounts(operation: &str) {
    let app = spawn_app().await;
    app.register("alice").await;
    app.charge("alice", json!(50)).await;
    let admin = app.admin_token().await;
    let path = wallet_path("alice", operation);

    for amount in BAD_AMOUNTS {
        let body = format!(r#"{{"amount": {amount}}}"#);
        let reply = app
            .post_raw(
                &path,
                Some(&admin),
                Some("application/json"),
                body.into_bytes(),
            )
            .await;
        assert_rejects_only(&reply, "amount", &format!("{operation} {amount}"));
    }
    for body in [
        r#"{"amount": NaN}"#,
        r#"{"amount": Infinity}"#,
        r#"{"amount": 1.}"#,
    ] {
        let reply = app
            .post_raw(&path, Some(&admin), Some("application/json"), body.into())
            .await;
        reply.assert_problem(400);
    }
    let missing = app.post(&path, Some(&admin), json!({})).await;
    assert_rejects_only(&missing, "amount", "missing amount");
    let extra = app
        .post(&path, Some(&admin), json!({ "amount": 5, "note": "x" }))
        .await;
    assert_rejects_only(&extra, "note", "unknown field");

    assert_eq!(app.profile("alice").await["wallet_balance"], 50);
}

#[tokio::test]
async fn charging_rejects_amounts_that_break_the_money_rules() {
    assert_wallet_rejects_bad_amounts("charge").await;
}

#[tokio::test]
async fn deducting_rejects_amounts_that_break_the_money_rules() {
    assert_wallet_rejects_bad_amounts("deduct").await;
}

#[tokio::test]
async fn deducting_more_than_the_balance_gets_409_insufficient_funds() {
    let app = spawn_app().await;
    app.register("alice").await;
    app.charge("alice", json!(10)).await;

    let reply = app.deduct("alice", json!(10.01)).await;

    reply.assert_problem(409);
    assert_eq!(reply.problem_type(), "urn:souk:error:insufficient-funds");
    assert_eq!(app.profile("alice").await["wallet_balance"], 10);
}

#[tokio::test]
async fn deducting_the_whole_balance_leaves_zero() {
    let app = spawn_app().await;
    app.register("alice").await;
    app.charge("alice", json!(10.5)).await;

    let reply = app.deduct("alice", json!(10.5)).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["wallet_balance"], 0);
    let again = app.deduct("alice", json!(0.01)).await;
    assert_eq!(
        again.problem_type(),
        "urn:souk:error:insufficient-funds",
        "{}",
        again.text
    );
}

#[tokio::test]
async fn only_the_customer_or_an_admin_can_move_a_wallet() {
    let app = spawn_app().await;
    app.register("alice").await;
    let bob = app.customer("bob").await;
    let admin = app.admin_token().await;

    for operation in ["charge", "deduct"] {
        let path = wallet_path("alice", operation);
        app.post(&path, None, json!({ "amount": 5 }))
            .await
            .assert_problem(401);
        app.post(&path, Some(&bob), json!({ "amount": 5 }))
            .await
            .assert_problem(403);
        app.post(
            &wallet_path("nobody", operation),
            Some(&admin),
            json!({ "amount": 5 }),
        )
        .await
        .assert_problem(404);
    }
    assert_eq!(app.profile("alice").await["wallet_balance"], 0);
}

#[tokio::test]
async fn a_username_that_cannot_exist_is_simply_not_found() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    // (NUL is a 400 naming the parameter: see malformed_text.rs.)
    for path in ["al%20ice", "%F0%9F%98%80", "a", "ab%27%3B--"] {
        let reply = app.get(&customer_path(path), Some(&admin)).await;
        reply.assert_problem(404);
        let patch = app
            .patch(&customer_path(path), Some(&admin), json!({ "age": 40 }))
            .await;
        patch.assert_problem(404);
        let charge = app
            .post(
                &wallet_path(path, "charge"),
                Some(&admin),
                json!({ "amount": 1 }),
            )
            .await;
        charge.assert_problem(404);
        app.delete(&customer_path(path), Some(&admin))
            .await
            .assert_problem(404);
    }
}

#[tokio::test]
async fn a_search_for_control_characters_is_rejected_naming_q() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    for q in ["%00", "a%00b", "%1B%5B2J"] {
        let reply = app
            .get(&format!("/api/v1/customers?q={q}"), Some(&admin))
            .await;
        reply.assert_problem(400);
        assert_eq!(reply.error_fields(), ["q"], "{q}: {}", reply.text);
    }
    let both = app
        .get("/api/v1/customers?q=%00&limit=0", Some(&admin))
        .await;
    both.assert_problem(400);
    assert_eq!(both.error_fields(), ["limit", "q"], "{}", both.text);
}

// ----------------------------------------------------------------------- login

#[tokio::test]
async fn login_returns_a_bearer_token_valid_for_an_hour() {
    let app = spawn_app().await;
    app.register("alice").await;

    let reply = app.login("alice", PASSWORD).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.body["expires_in"], 3600);
    // RFC 6749 §5.1: a token response must not be cached.
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let token = reply.body["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let me = app.get("/api/v1/customers/alice", Some(token)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
}

#[tokio::test]
async fn login_gives_the_same_401_for_an_unknown_user_and_a_wrong_password() {
    let app = spawn_app().await;
    app.register("alice").await;

    let wrong_password = app.login("alice", "wrongpass1").await;
    let unknown_user = app.login("nobody", PASSWORD).await;

    wrong_password.assert_problem(401);
    unknown_user.assert_problem(401);
    for key in ["type", "title", "status", "detail", "errors"] {
        assert_eq!(wrong_password.body[key], unknown_user.body[key], "{key}");
    }
}

#[tokio::test]
async fn login_with_a_username_that_cannot_exist_gets_the_usual_401() {
    let app = spawn_app().await;
    app.register("alice").await;
    let usual = app.login("nobody", PASSWORD).await;

    // (NUL is a 400 naming the field, whoever exists: malformed_text.rs.)
    for username in ["ali\u{130}ce", "alice ", "", &"a".repeat(1000)] {
        let reply = app.login(username, PASSWORD).await;
        reply.assert_problem(401);
        assert_eq!(reply.body["detail"], usual.body["detail"], "{username:?}");
    }
}

#[tokio::test]
async fn login_rejects_a_malformed_body_with_400() {
    let app = spawn_app().await;

    let missing = app
        .post("/api/v1/auth/login", None, json!({ "username": "alice" }))
        .await;
    assert_rejects_only(&missing, "password", "missing password");

    let extra = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "username": "alice", "password": PASSWORD, "otp": 1 }),
        )
        .await;
    assert_rejects_only(&extra, "otp", "unknown field");

    let not_json = app
        .post_raw(
            "/api/v1/auth/login",
            None,
            Some("application/json"),
            b"{".to_vec(),
        )
        .await;
    not_json.assert_problem(400);
}

#[tokio::test]
async fn repeated_login_failures_for_one_username_get_429_with_retry_after() {
    let app = spawn_app().await;
    app.register("alice").await;
    app.register("bob").await;

    let mut limited = None;
    for attempt in 1..=20 {
        let reply = app.login("alice", "wrongpass1").await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((attempt, reply));
            break;
        }
        reply.assert_problem(401);
    }
    let (attempt, reply) = limited.expect("no 429 after 20 failed logins");
    assert!(attempt > 1, "the first failure was already limited");
    reply.assert_problem(429);
    assert!(
        reply.header("x-request-id").is_some(),
        "{:?}",
        reply.headers
    );
    let retry_after: u64 = reply
        .header("retry-after")
        .expect("Retry-After header")
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "{retry_after}");

    // Even the right password waits, in any case of the username...
    app.login("alice", PASSWORD).await.assert_problem(429);
    app.login("ALICE", PASSWORD).await.assert_problem(429);
    // ...but other accounts are not locked out.
    app.token("bob", PASSWORD).await;
}

#[tokio::test]
async fn repeated_login_failures_from_one_client_get_429_whatever_the_username() {
    let app = spawn_app().await;
    app.register("alice").await;

    let mut limited = None;
    for attempt in 1..=150 {
        let reply = app.login(&format!("nobody_{attempt}"), "wrongpass1").await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((attempt, reply));
            break;
        }
        reply.assert_problem(401);
    }
    let (attempt, reply) = limited.expect("no 429 after 150 failed logins from one client");
    assert!(
        attempt > 5,
        "limited after {attempt}: the per-username budget, not the client's"
    );
    reply.assert_problem(429);
    assert!(reply.header("retry-after").is_some(), "{:?}", reply.headers);
    app.login("fresh_name", "wrongpass1")
        .await
        .assert_problem(429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_login_failures_cannot_exceed_the_usernames_budget() {
    // A burst of guesses sent at once must not all be checked before the
    // first failure is counted: that would make the limit a formality.
    let app = Arc::new(spawn_app().await);
    app.register("alice").await;

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let app = app.clone();
        tasks.spawn(async move { app.login("alice", "wrongpass1").await });
    }
    let (mut guessed, mut limited) = (0, 0);
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        match reply.status {
            StatusCode::UNAUTHORIZED => guessed += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }

    assert_eq!(guessed + limited, 30);
    assert!(
        guessed <= 5,
        "{guessed} guesses were checked; the budget is 5"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_honest_logins_of_one_username_all_succeed() {
    let app = Arc::new(spawn_app().await);
    app.register("alice").await;

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let app = app.clone();
        tasks.spawn(async move { app.login("alice", PASSWORD).await });
    }
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
}

#[tokio::test]
async fn a_successful_login_resets_the_usernames_failure_count() {
    let app = spawn_app().await;
    app.register("alice").await;

    for round in 0..3 {
        for _ in 0..4 {
            app.login("alice", "wrongpass1").await.assert_problem(401);
        }
        let reply = app.login("alice", PASSWORD).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "round {round}: {}",
            reply.text
        );
    }
}

// ----------------------------------------------------------------------- tokens

#[tokio::test]
async fn a_token_crafted_with_the_right_secret_is_accepted() {
    // The control for the token tests below: the crafted claims are right.
    let app = spawn_app().await;
    let id = app.register_id("alice").await;

    let token = sign_token(
        JWT_SECRET,
        &claims(&id, "alice", "customer", unix_now(), 600),
    );
    let reply = app.get("/api/v1/customers/alice", Some(&token)).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test]
async fn an_expired_token_gets_401() {
    let app = spawn_app().await;
    let id = app.register_id("alice").await;

    let issued = unix_now() - 7200;
    let token = sign_token(JWT_SECRET, &claims(&id, "alice", "customer", issued, 3600));
    let reply = app.get("/api/v1/customers/alice", Some(&token)).await;

    reply.assert_problem(401);
}

#[tokio::test]
async fn a_token_signed_with_another_key_gets_401() {
    let app = spawn_app().await;
    let id = app.register_id("alice").await;

    let token = sign_token(
        "another-secret",
        &claims(&id, "alice", "customer", unix_now(), 600),
    );
    let reply = app.get("/api/v1/customers/alice", Some(&token)).await;

    reply.assert_problem(401);
}

#[tokio::test]
async fn an_unsigned_token_gets_401() {
    let app = spawn_app().await;
    let id = app.register_id("alice").await;

    let token = unsigned_token(&claims(&id, "alice", "admin", unix_now(), 600));
    let reply = app.get("/api/v1/customers/alice", Some(&token)).await;

    reply.assert_problem(401);
}

#[tokio::test]
async fn a_malformed_authorization_header_gets_401() {
    let app = spawn_app().await;
    let token = app.customer("alice").await;

    let basic = format!("Basic {token}");
    for value in [
        "Bearer not-a-jwt",
        "Bearer ",
        basic.as_str(),
        token.as_str(),
        "Bearer a.b.c",
    ] {
        let builder = app
            .request(Method::GET, "/api/v1/customers/alice", None)
            .header("authorization", value);
        let reply = app.send_built(builder).await;
        reply.assert_problem(401);
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_matched_ignoring_case() {
    let app = spawn_app().await;
    let token = app.customer("alice").await;

    for scheme in ["Bearer", "bearer", "BEARER"] {
        let builder = app
            .request(Method::GET, "/api/v1/customers/alice", None)
            .header("authorization", format!("{scheme} {token}"));
        let reply = app.send_built(builder).await;
        assert_eq!(reply.status, StatusCode::OK, "{scheme}: {}", reply.text);
    }
}

#[tokio::test]
async fn a_token_whose_claims_say_admin_does_not_make_a_customer_admin() {
    let app = spawn_app().await;
    let id = app.register_id("alice").await;

    let token = sign_token(
        JWT_SECRET,
        &claims(&id, ADMIN_USERNAME, "admin", unix_now(), 600),
    );
    let reply = app.get("/api/v1/customers", Some(&token)).await;

    reply.assert_problem(403);
}

#[tokio::test]
async fn a_token_for_a_subject_that_never_existed_gets_401() {
    let app = spawn_app().await;

    let token = sign_token(
        JWT_SECRET,
        &claims("no-such-id", "ghost", "admin", unix_now(), 600),
    );
    let reply = app.get("/api/v1/customers", Some(&token)).await;

    reply.assert_problem(401);
}

// ------------------------------------------------------------------ concurrency

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deductions_never_overdraw_a_wallet() {
    let app = Arc::new(spawn_app().await);
    app.register("alice").await;
    app.charge("alice", json!(10)).await;
    let admin = app.admin_token().await;

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (app, admin) = (app.clone(), admin.clone());
        tasks.spawn(async move {
            app.post(
                &wallet_path("alice", "deduct"),
                Some(&admin),
                json!({ "amount": 3 }),
            )
            .await
        });
    }
    let mut succeeded = 0;
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        if reply.status == StatusCode::OK {
            succeeded += 1;
        } else {
            reply.assert_problem(409);
            assert_eq!(
                reply.problem_type(),
                "urn:souk:error:insufficient-funds",
                "{}",
                reply.text
            );
        }
    }

    assert_eq!(succeeded, 3);
    assert_eq!(app.profile("alice").await["wallet_balance"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_charges_are_all_counted() {
    let app = Arc::new(spawn_app().await);
    let token = app.customer("alice").await;

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (app, token) = (app.clone(), token.clone());
        tasks.spawn(async move {
            app.post(
                &wallet_path("alice", "charge"),
                Some(&token),
                json!({ "amount": 1.11 }),
            )
            .await
        });
    }
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }

    assert_eq!(app.profile("alice").await["wallet_balance"], 11.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_of_one_username_create_exactly_one_customer() {
    let app = Arc::new(spawn_app().await);

    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..8 {
        let app = app.clone();
        let username = if index % 2 == 0 { "alice" } else { "ALICE" };
        tasks.spawn(async move { app.register(username).await });
    }
    let mut created = 0;
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        if reply.status == StatusCode::CREATED {
            created += 1;
        } else {
            reply.assert_problem(409);
            assert_eq!(
                reply.problem_type(),
                "urn:souk:error:username-taken",
                "{}",
                reply.text
            );
        }
    }

    assert_eq!(created, 1);
    let admin = app.admin_token().await;
    let list = app.get("/api/v1/customers?q=alice", Some(&admin)).await;
    assert_eq!(list.body["total"], 1, "{}", list.text);
}

// ------------------------------------------------------ errors and request ids

#[tokio::test]
async fn validation_problems_have_the_rfc_9457_shape() {
    let app = spawn_app().await;

    let reply = app
        .post(
            "/api/v1/customers",
            None,
            body_with("alice", "age", json!(5)),
        )
        .await;

    let problem = reply.assert_problem(400);
    assert_eq!(problem["type"], "urn:souk:error:invalid-input");
    assert_eq!(problem["title"], "Bad Request");
    assert!(!problem["detail"].as_str().unwrap().is_empty());
    assert_eq!(problem["errors"].as_array().unwrap().len(), 1);
    let error = &problem["errors"][0];
    assert_eq!(error["field"], "age");
    assert!(error["message"].is_string());
}

#[tokio::test]
async fn error_bodies_carry_no_sql_paths_or_internals() {
    let app = spawn_app().await;
    app.register("alice").await;
    let admin = app.admin_token().await;

    let replies = [
        app.register("ALICE").await,
        app.deduct("alice", json!(1)).await,
        app.post_raw(
            "/api/v1/customers",
            None,
            Some("application/json"),
            b"{".to_vec(),
        )
        .await,
        app.get("/api/v1/customers?limit=x", Some(&admin)).await,
        app.get("/api/v1/customers/%FF", Some(&admin)).await,
    ];
    for reply in replies {
        assert!(reply.status.is_client_error(), "{}", reply.text);
        let text = reply.text.to_lowercase();
        for leak in [
            "select ",
            "insert ",
            "update customers",
            "wallet_cents",
            "password_hash",
            "/src/",
            ".rs:",
            "panicked",
        ] {
            assert!(!text.contains(leak), "{leak} in {}", reply.text);
        }
    }
}

#[tokio::test]
async fn a_valid_x_request_id_is_echoed_on_success_and_on_errors() {
    let app = spawn_app().await;

    for (path, id) in [
        ("/api/v1/customers/alice", "trace-1:a.b_c"),
        ("/health/status", "abc-123"),
    ] {
        let builder = app
            .request(Method::GET, path, None)
            .header("x-request-id", id);
        let reply = app.send_built(builder).await;
        assert_eq!(reply.header("x-request-id"), Some(id), "{path}");
    }
    let builder = app
        .request(Method::GET, "/api/v1/customers/alice", None)
        .header("x-request-id", "req-42");
    let reply = app.send_built(builder).await;
    reply.assert_problem(401);
    assert_eq!(reply.body["request_id"], "req-42");
}

#[tokio::test]
async fn a_missing_or_invalid_x_request_id_is_replaced_by_a_new_one() {
    let app = spawn_app().await;

    let first = app.get("/api/v1/customers", None).await;
    let second = app.get("/api/v1/customers", None).await;
    let generated = [
        first.header("x-request-id").unwrap(),
        second.header("x-request-id").unwrap(),
    ];
    assert!(!generated[0].is_empty());
    assert_ne!(generated[0], generated[1]);
    assert_eq!(first.body["request_id"], generated[0]);

    let too_long = "a".repeat(129);
    for invalid in ["has space", "semi;colon", too_long.as_str(), "<script>"] {
        let builder = app
            .request(Method::GET, "/api/v1/customers", None)
            .header("x-request-id", invalid);
        let reply = app.send_built(builder).await;
        let id = reply.header("x-request-id").expect("a request id");
        assert!(!id.is_empty());
        assert_ne!(id, invalid);
    }
}

#[tokio::test]
async fn no_response_contains_a_password_or_its_hash() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let mut replies = vec![app.register("alice").await];
    let token = app.token("alice", PASSWORD).await;
    replies.push(app.login("alice", PASSWORD).await);
    replies.push(app.get("/api/v1/customers/alice", Some(&token)).await);
    replies.push(app.get("/api/v1/customers", Some(&admin)).await);
    replies.push(
        app.patch(
            "/api/v1/customers/alice",
            Some(&token),
            json!({ "password": "newpass456" }),
        )
        .await,
    );
    replies.push(
        app.patch(
            "/api/v1/customers/alice",
            Some(&admin),
            json!({ "password": "x" }),
        )
        .await,
    );
    replies.push(app.charge("alice", json!(5)).await);
    replies.push(
        app.post(
            "/api/v1/customers",
            None,
            body_with("bob", "password", json!("weak")),
        )
        .await,
    );

    for reply in replies {
        assert!(reply.status.as_u16() < 500, "{}", reply.text);
        for secret in [PASSWORD, "newpass456", "$argon2", "password_hash"] {
            assert!(!reply.text.contains(secret), "{secret} in {}", reply.text);
        }
        assert!(reply.body.get("password").is_none(), "{}", reply.text);
        if let Some(items) = reply.body["items"].as_array() {
            assert!(
                items.iter().all(|c| c.get("password").is_none()),
                "{}",
                reply.text
            );
        }
    }
}
