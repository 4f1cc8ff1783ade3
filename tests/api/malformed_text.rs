//! Text no database can store never becomes a 500 (issue #10).
//!
//! PostgreSQL's `text` refuses the NUL character, so before the SDK checked
//! for it, `%00` in a path or query parameter, or `\u0000` in a JSON string,
//! reached a statement and came back as 500 on PostgreSQL (and meant
//! something else on SQLite). This sweep sends NUL in every string path
//! parameter, query parameter and body string field of every route in
//! API.md, extensions and operations included, against real resources so
//! the request gets as far as it can, and requires on both backends a 400
//! naming the parameter or field: from the SDK for components' routes, from
//! the edge for the host's own. (Operations routes a build does not serve
//! yet may answer 404.)

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Reply, TestApp, customer_body, good_body, spawn_app};

/// NUL inside otherwise ordinary text, percent-encoded for a URL.
const NUL_URL: &str = "x%00y";
/// The same text in a JSON string.
const NUL_TEXT: &str = "x\u{0}y";

/// What the sweep needs to exist: an admin, a customer with money who
/// bought a good and reviewed it, and that good.
struct World {
    admin: String,
    customer: String,
    username: &'static str,
    good_id: String,
    good_name: String,
    review_id: String,
    sale_id: String,
}

async fn world(app: &TestApp) -> World {
    let username = "nul_sweeper";
    let customer = app.customer(username).await;
    let admin = app.admin_token().await;
    let charged = app.charge(username, json!(100)).await;
    assert_eq!(charged.status.as_u16(), 200, "{}", charged.text);
    let good = app.add_good("Sweeping Brush", json!(2.5), 10).await;
    let good_id = good["id"].as_str().unwrap().to_owned();
    let sale = app
        .post(
            "/api/v1/sales",
            Some(&customer),
            json!({ "good": "Sweeping Brush", "quantity": 1 }),
        )
        .await;
    assert_eq!(sale.status.as_u16(), 201, "{}", sale.text);
    let sale_id = sale.body["sale"]["id"].as_str().unwrap().to_owned();
    let review = app
        .post(
            "/api/v1/reviews",
            Some(&customer),
            json!({ "good_id": good_id, "rating": 4, "comment": "sweeps well" }),
        )
        .await;
    assert_eq!(review.status.as_u16(), 201, "{}", review.text);
    World {
        admin,
        customer,
        username,
        good_id,
        good_name: "Sweeping Brush".to_owned(),
        review_id: review.body["id"].as_str().unwrap().to_owned(),
        sale_id,
    }
}

#[track_caller]
fn assert_client_error(reply: &Reply, what: &str) {
    assert!(
        reply.status.is_client_error(),
        "{what}: expected 4xx, got {}: {}",
        reply.status,
        reply.text
    );
    assert_eq!(
        reply.content_type(),
        "application/problem+json",
        "{what}: {}",
        reply.text
    );
}

#[track_caller]
fn assert_names(reply: &Reply, field: &str, what: &str) {
    assert_client_error(reply, what);
    assert_eq!(reply.status.as_u16(), 400, "{what}: {}", reply.text);
    assert!(
        reply.error_fields().iter().any(|f| f == field),
        "{what}: `{field}` not named: {}",
        reply.text
    );
}

/// (method, path, the parameter given NUL, token, JSON body if any)
type PathCase<'a> = (Method, String, &'static str, Option<&'a str>, Option<Value>);

#[tokio::test]
async fn nul_in_any_path_parameter_is_a_400_naming_it() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let (admin, customer) = (Some(w.admin.as_str()), Some(w.customer.as_str()));
    let n = NUL_URL;

    // (method, path with NUL in one parameter, that parameter, token, JSON
    // body if any)
    let cases: Vec<PathCase> = vec![
        (
            Method::GET,
            format!("/api/v1/customers/{n}"),
            "username",
            admin,
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/customers/{n}"),
            "username",
            admin,
            Some(json!({"age": 40})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/customers/{n}"),
            "username",
            admin,
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/customers/{n}/wallet/charge"),
            "username",
            admin,
            Some(json!({"amount": 1})),
        ),
        (
            Method::POST,
            format!("/api/v1/customers/{n}/wallet/deduct"),
            "username",
            admin,
            Some(json!({"amount": 1})),
        ),
        (Method::GET, format!("/api/v1/goods/{n}"), "id", None, None),
        (
            Method::PATCH,
            format!("/api/v1/goods/{n}"),
            "id",
            admin,
            Some(json!({"count": 3})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/goods/{n}"),
            "id",
            admin,
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/goods/{n}/deduct"),
            "id",
            admin,
            Some(json!({"count": 1})),
        ),
        (
            Method::GET,
            format!("/api/v1/sales/goods/{n}"),
            "name",
            None,
            None,
        ),
        (Method::GET, format!("/api/v1/sales/{n}"), "id", admin, None),
        (
            Method::GET,
            format!("/api/v1/sales/history/{n}"),
            "username",
            admin,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/reviews/{n}"),
            "id",
            admin,
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/reviews/{n}"),
            "id",
            customer,
            Some(json!({"rating": 5})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/reviews/{n}"),
            "id",
            admin,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/reviews/good/{n}"),
            "good_id",
            None,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/reviews/customer/{n}"),
            "username",
            None,
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/reviews/{n}/flag"),
            "id",
            customer,
            Some(json!({"reason": "spam"})),
        ),
        (
            Method::POST,
            format!("/api/v1/reviews/{n}/moderate"),
            "id",
            admin,
            Some(json!({"status": "approved"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/wishlist/{n}"),
            "good_id",
            customer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/recommendations/{n}"),
            "username",
            admin,
            None,
        ),
        (
            Method::DELETE,
            format!("/admin/components/{n}"),
            "name",
            admin,
            None,
        ),
        (
            Method::POST,
            format!("/admin/components/{n}/rollback"),
            "name",
            admin,
            None,
        ),
        (
            Method::PUT,
            format!("/admin/grants/{n}"),
            "component",
            admin,
            Some(json!({})),
        ),
        (
            Method::DELETE,
            format!("/admin/grants/{n}"),
            "component",
            admin,
            None,
        ),
        (
            Method::GET,
            format!("/admin/webhooks/{n}/deliveries"),
            "id",
            admin,
            None,
        ),
        (
            Method::PATCH,
            format!("/admin/webhooks/{n}"),
            "id",
            admin,
            Some(json!({"enabled": false})),
        ),
        (
            Method::DELETE,
            format!("/admin/webhooks/{n}"),
            "id",
            admin,
            None,
        ),
    ];

    for (method, path, parameter, token, body) in cases {
        let what = format!("{method} {path}");
        let reply = app.send(method, &path, token, body).await;
        if path.starts_with("/admin/webhooks") && reply.status.as_u16() == 404 {
            // Operations routes not served by this build: refused all the same.
            assert_client_error(&reply, &what);
        } else {
            assert_names(&reply, parameter, &what);
        }
    }
}

#[tokio::test]
async fn nul_in_any_query_parameter_is_a_400_naming_it() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let (admin, customer) = (Some(w.admin.as_str()), Some(w.customer.as_str()));
    let u = w.username;
    let g = &w.good_id;

    // (path, the parameter given NUL, token)
    let cases: Vec<(String, &str, Option<&str>)> = vec![
        ("/api/v1/customers".into(), "q", admin),
        ("/api/v1/customers".into(), "limit", admin),
        ("/api/v1/customers".into(), "offset", admin),
        ("/api/v1/goods".into(), "q", None),
        ("/api/v1/goods".into(), "category", None),
        ("/api/v1/goods".into(), "in_stock", None),
        ("/api/v1/goods".into(), "limit", None),
        ("/api/v1/sales/goods".into(), "offset", None),
        (format!("/api/v1/sales/history/{u}"), "limit", customer),
        ("/api/v1/reviews".into(), "status", admin),
        (format!("/api/v1/reviews/good/{g}"), "status", admin),
        (format!("/api/v1/reviews/good/{g}"), "limit", None),
        (format!("/api/v1/reviews/customer/{u}"), "offset", None),
        ("/api/v1/wishlist".into(), "limit", customer),
        (format!("/api/v1/recommendations/{u}"), "limit", customer),
        // Not read by the route: still not text anything may store or log.
        (format!("/api/v1/goods/{g}"), "unused", None),
    ];

    for (path, parameter, token) in cases {
        let url = format!("{path}?{parameter}={NUL_URL}");
        let reply = app.get(&url, token).await;
        assert_names(&reply, parameter, &format!("GET {url}"));
    }

    // Every bad field is named, not only the one with NUL (API.md).
    let reply = app
        .get(
            &format!("/api/v1/goods?q={NUL_URL}&limit=0&category=toys"),
            None,
        )
        .await;
    assert_names(&reply, "q", "NUL beside other bad parameters");
    assert_eq!(
        reply.error_fields(),
        ["category", "limit", "q"],
        "{}",
        reply.text
    );

    // NUL in a parameter's name.
    let reply = app.get("/api/v1/goods?q%00=soap", None).await;
    assert_client_error(&reply, "NUL in a query parameter's name");

    // The host's own routes refuse it the same way (the audit log's filters).
    for parameter in ["actor", "action", "subject", "since", "until"] {
        let url = format!("/admin/audit?{parameter}={NUL_URL}");
        let reply = app.get(&url, admin).await;
        assert_names(&reply, parameter, &format!("GET {url}"));
    }
}

/// (method, path, token, a valid body, its string fields)
type BodyCase<'a> = (Method, String, Option<&'a str>, Value, Vec<&'static str>);

#[tokio::test]
async fn nul_in_any_body_string_field_is_a_400_naming_it() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let (admin, customer) = (Some(w.admin.as_str()), Some(w.customer.as_str()));
    let u = w.username;

    let cases: Vec<BodyCase> = vec![
        (
            Method::POST,
            "/api/v1/auth/login".into(),
            None,
            json!({"username": u, "password": PASSWORD}),
            vec!["username", "password"],
        ),
        (
            Method::POST,
            "/api/v1/customers".into(),
            None,
            customer_body("nul_newcomer"),
            vec![
                "username",
                "password",
                "full_name",
                "address",
                "gender",
                "marital_status",
            ],
        ),
        (
            Method::PATCH,
            format!("/api/v1/customers/{u}"),
            admin,
            json!({
                "full_name": "New Name", "password": "n3wpassword", "address": "2 Street",
                "gender": "other", "marital_status": "married", "role": "customer",
            }),
            vec![
                "full_name",
                "password",
                "address",
                "gender",
                "marital_status",
                "role",
            ],
        ),
        (
            Method::POST,
            "/api/v1/goods".into(),
            admin,
            good_body("Another Brush", json!(1), 1),
            vec!["name", "category", "description"],
        ),
        (
            Method::PATCH,
            format!("/api/v1/goods/{}", w.good_id),
            admin,
            json!({"name": "Renamed Brush", "category": "food", "description": "d"}),
            vec!["name", "category", "description"],
        ),
        (
            Method::POST,
            "/api/v1/sales".into(),
            admin,
            json!({"good": w.good_name, "quantity": 1, "username": u}),
            vec!["good", "username"],
        ),
        (
            Method::POST,
            "/api/v1/reviews".into(),
            admin,
            json!({"good_id": w.good_id, "rating": 3, "comment": "ok"}),
            vec!["good_id", "comment"],
        ),
        (
            Method::PATCH,
            format!("/api/v1/reviews/{}", w.review_id),
            customer,
            json!({"comment": "changed"}),
            vec!["comment"],
        ),
        (
            Method::POST,
            format!("/api/v1/reviews/{}/flag", w.review_id),
            admin,
            json!({"reason": "spam"}),
            vec!["reason"],
        ),
        (
            Method::POST,
            format!("/api/v1/reviews/{}/moderate", w.review_id),
            admin,
            json!({"status": "approved", "note": "fine"}),
            vec!["status", "note"],
        ),
        (
            Method::POST,
            "/api/v1/wishlist".into(),
            customer,
            json!({"good_id": w.good_id}),
            vec!["good_id"],
        ),
        (
            Method::POST,
            format!("/api/v1/customers/{u}/wallet/charge"),
            admin,
            json!({"amount": 1}),
            vec![],
        ),
    ];

    for (method, path, token, body, fields) in cases {
        for field in fields {
            let mut bad = body.clone();
            bad[field] = json!(NUL_TEXT);
            let what = format!("{method} {path} with NUL in `{field}`");
            let reply = app.send(method.clone(), &path, token, Some(bad)).await;
            assert_names(&reply, field, &what);
        }
        // NUL in an unknown field's name is refused too, and named.
        let mut bad = body.clone();
        bad["x\u{0}"] = json!(1);
        let what = format!("{method} {path} with NUL in a field name");
        let reply = app.send(method.clone(), &path, token, Some(bad)).await;
        assert_client_error(&reply, &what);
    }

    // Nested strings: an array of strings is checked item by item.
    let reply = app
        .post(
            "/admin/webhooks",
            admin,
            json!({"url": "http://127.0.0.1:9/hook", "events": [NUL_TEXT]}),
        )
        .await;
    assert_client_error(&reply, "NUL in a webhook's event type");
    let reply = app
        .post(
            "/admin/webhooks",
            admin,
            json!({"url": format!("http://127.0.0.1:9/{NUL_TEXT}"), "events": ["sale.created"]}),
        )
        .await;
    assert_client_error(&reply, "NUL in a webhook's URL");

    // The sale in the world is untouched by all of this.
    let reply = app
        .get(&format!("/api/v1/sales/{}", w.sale_id), admin)
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
}
