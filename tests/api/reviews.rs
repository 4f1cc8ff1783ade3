//! The reviews rows of API.md, from the outside: submitting (one per
//! customer per good, verified purchases, markup stripping, field rules),
//! reading and listing with who-sees-what, editing, deleting, flagging,
//! moderating, average ratings, and the shape of every error.
//!
//! Goods come from the inventory (`POST /api/v1/goods`) and purchases from
//! sales (`POST /api/v1/sales`), so these tests need all four core services.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, is_rfc3339_utc, spawn_app};

/// Every field of a review object, sorted.
const REVIEW_FIELDS: [&str; 10] = [
    "comment",
    "created_at",
    "good_id",
    "good_name",
    "id",
    "rating",
    "status",
    "updated_at",
    "username",
    "verified_purchase",
];

fn review_path(id: &str) -> String {
    format!("/api/v1/reviews/{id}")
}

fn good_reviews_path(good_id: &str) -> String {
    format!("/api/v1/reviews/good/{good_id}")
}

fn customer_reviews_path(username: &str) -> String {
    format!("/api/v1/reviews/customer/{username}")
}

/// Adds a good as the admin (price 2.5, 100 in stock); returns its id.
async fn add_good(app: &TestApp, name: &str) -> String {
    app.add_good(name, json!(2.5), 100).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Submits a review; returns the reply.
async fn submit(
    app: &TestApp,
    token: Option<&str>,
    good_id: &str,
    rating: Value,
    comment: &str,
) -> Reply {
    app.post(
        "/api/v1/reviews",
        token,
        json!({ "good_id": good_id, "rating": rating, "comment": comment }),
    )
    .await
}

/// Submits a review, asserting 201; returns the review.
async fn review(app: &TestApp, token: &str, good_id: &str, rating: u8, comment: &str) -> Value {
    let reply = submit(app, Some(token), good_id, json!(rating), comment).await;
    assert_eq!(reply.status, StatusCode::CREATED, "submit: {}", reply.text);
    reply.body
}

/// Moderates review `id` as the admin, asserting 200; returns the review.
async fn moderate(app: &TestApp, id: &str, status: &str) -> Value {
    let admin = app.admin_token().await;
    let reply = app
        .post(
            &format!("{}/moderate", review_path(id)),
            Some(&admin),
            json!({ "status": status }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "moderate: {}", reply.text);
    reply.body
}

/// The id of a review body.
fn id_of(review: &Value) -> String {
    review["id"].as_str().unwrap().to_owned()
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

/// Asserts a 400 `invalid-input` naming exactly `fields` (sorted).
#[track_caller]
fn assert_invalid(reply: &Reply, fields: &[&str], case: &str) {
    reply.assert_problem(400);
    assert_eq!(
        reply.problem_type(),
        "urn:souk:error:invalid-input",
        "{case}: {}",
        reply.text
    );
    assert_eq!(reply.error_fields(), fields, "{case}: {}", reply.text);
    for error in reply.body["errors"].as_array().unwrap() {
        assert!(
            !error["message"].as_str().unwrap_or("").is_empty(),
            "{case}: {}",
            reply.text
        );
    }
}

/// A customer `username` who bought one unit of `good_name`.
async fn buyer(app: &TestApp, username: &str, good_name: &str) -> String {
    let token = app.customer(username).await;
    let charged = app.charge(username, json!(50)).await;
    assert_eq!(charged.status, StatusCode::OK, "charge: {}", charged.text);
    buy(app, &token, good_name).await;
    token
}

/// Buys one unit of `good_name`, asserting 201.
async fn buy(app: &TestApp, token: &str, good_name: &str) {
    let reply = app
        .post(
            "/api/v1/sales",
            Some(token),
            json!({ "good": good_name, "quantity": 1 }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "buy: {}", reply.text);
}

// ---------------------------------------------------------------- submitting

#[tokio::test]
async fn submitting_a_review_returns_201_with_a_pending_review_and_its_location() {
    let app = spawn_app().await;
    let good = add_good(&app, "Green Tea").await;
    let token = app.customer("alice").await;

    let reply = submit(
        &app,
        Some(&token),
        &good,
        json!(4),
        "Lovely and fresh.\nWould buy again.",
    )
    .await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert!(
        reply.content_type().starts_with("application/json"),
        "{}",
        reply.content_type()
    );
    let review = &reply.body;
    let mut fields: Vec<&str> = review
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, REVIEW_FIELDS);
    let id = id_of(review);
    assert!(!id.is_empty());
    assert_eq!(reply.header("location"), Some(review_path(&id).as_str()));
    assert_eq!(review["good_id"], good.as_str());
    assert_eq!(review["good_name"], "Green Tea");
    assert_eq!(review["username"], "alice");
    assert_eq!(review["rating"], 4);
    assert_eq!(review["comment"], "Lovely and fresh.\nWould buy again.");
    assert_eq!(review["status"], "pending");
    assert_eq!(review["verified_purchase"], false);
    for stamp in ["created_at", "updated_at"] {
        let text = review[stamp].as_str().unwrap();
        assert!(is_rfc3339_utc(text), "{stamp} = {text}");
    }

    let read = app.get(&review_path(&id), Some(&token)).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.body, reply.body);
}

#[tokio::test]
async fn an_admin_can_review_a_good_too() {
    let app = spawn_app().await;
    let good = add_good(&app, "Green Tea").await;
    let admin = app.admin_token().await;

    let review = review(&app, &admin, &good, 5, "").await;

    assert_eq!(review["username"], "root");
    assert_eq!(review["status"], "pending");
}

#[tokio::test]
async fn submitting_a_review_without_a_token_gets_401() {
    let app = spawn_app().await;
    let good = add_good(&app, "Green Tea").await;

    let reply = submit(&app, None, &good, json!(4), "nice").await;

    reply.assert_problem(401);
    let page = app
        .get(&good_reviews_path(&good), Some(&app.admin_token().await))
        .await;
    assert_eq!(page.body["total"], 0, "{}", page.text);
}

#[tokio::test]
async fn reviewing_a_good_that_does_not_exist_gets_404() {
    let app = spawn_app().await;
    let token = app.customer("alice").await;

    let reply = submit(
        &app,
        Some(&token),
        "0190a5c0-0000-7000-8000-000000000000",
        json!(4),
        "hm",
    )
    .await;

    reply.assert_problem(404);
    assert_eq!(reply.problem_type(), "urn:souk:error:not-found");
}

#[tokio::test]
async fn a_second_review_of_the_same_good_by_the_same_customer_gets_409() {
    let app = spawn_app().await;
    let tea = add_good(&app, "Green Tea").await;
    let coffee = add_good(&app, "Coffee").await;
    let alice = app.customer("alice").await;
    let bob = app.customer("bob").await;
    review(&app, &alice, &tea, 4, "first").await;

    let again = submit(&app, Some(&alice), &tea, json!(2), "second").await;
    again.assert_problem(409);
    assert_eq!(again.problem_type(), "urn:souk:error:already-reviewed");

    // Another good by the same customer, and the same good by another, are fine.
    review(&app, &alice, &coffee, 3, "").await;
    review(&app, &bob, &tea, 5, "").await;
    let admin = app.admin_token().await;
    let pending = app
        .get(
            &format!("{}?status=pending", good_reviews_path(&tea)),
            Some(&admin),
        )
        .await;
    assert_eq!(pending.body["total"], 2, "{}", pending.text);
}

#[tokio::test]
async fn ratings_must_be_integers_from_1_to_5() {
    let app = spawn_app().await;
    let good = add_good(&app, "Green Tea").await;
    let token = app.customer("alice").await;

    for bad in [
        json!(0),
        json!(6),
        json!(-1),
        json!(4.5),
        json!(4.0),
        json!("4"),
        json!(null),
        json!(true),
        json!(1e3),
    ] {
        let reply = submit(&app, Some(&token), &good, bad.clone(), "").await;
        assert_invalid(&reply, &["rating"], &format!("rating = {bad}"));
    }

    for (index, rating) in (1..=5).enumerate() {
        let username = format!("rater_{index}");
        let token = app.customer(&username).await;
        let review = review(&app, &token, &good, rating, "").await;
        assert_eq!(review["rating"], rating);
    }
}

#[tokio::test]
async fn submitting_names_every_bad_and_missing_field() {
    let app = spawn_app().await;
    let token = app.customer("alice").await;

    let reply = app
        .post(
            "/api/v1/reviews",
            Some(&token),
            json!({ "good_id": 5, "rating": "five", "comment": ["x"], "stars": 5 }),
        )
        .await;
    assert_invalid(
        &reply,
        &["comment", "good_id", "rating", "stars"],
        "all bad",
    );

    let reply = app.post("/api/v1/reviews", Some(&token), json!({})).await;
    assert_invalid(&reply, &["good_id", "rating"], "empty");

    let reply = app
        .post(
            "/api/v1/reviews",
            Some(&token),
            json!({ "good_id": "", "rating": 3 }),
        )
        .await;
    assert_invalid(&reply, &["good_id"], "blank good id");
}

#[tokio::test]
async fn status_and_verified_purchase_cannot_be_chosen_by_the_reviewer() {
    let app = spawn_app().await;
    let good = add_good(&app, "Green Tea").await;
    let token = app.customer("alice").await;

    let reply = app
        .post(
            "/api/v1/reviews",
            Some(&token),
            json!({ "good_id": good, "rating": 5, "comment": "", "status": "approved", "verified_purchase": true }),
        )
        .await;

    assert_invalid(&reply, &["status", "verified_purchase"], "chosen status");
}

#[tokio::test]
async fn the_comment_may_be_left_out_and_is_then_empty() {
    let app = spawn_app().await;
    let good = add_good(&app, "Green Tea").await;
    let token = app.customer("alice").await;

    let reply = app
        .post(
            "/api/v1/reviews",
            Some(&token),
            json!({ "good_id": good, "rating": 3 }),
        )
        .await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.body["comment"], "");
}

#[tokio::test]
async fn comments_may_have_up_to_2000_characters() {
    let app = spawn_app().await;
    let good = add_good(&app, "Green Tea").await;
    let alice = app.customer("alice").await;

    let too_long = submit(&app, Some(&alice), &good, json!(4), &"é".repeat(2001)).await;
    assert_invalid(&too_long, &["comment"], "2001 characters");

    let longest = "é".repeat(2000);
    let review = review(&app, &alice, &good, 4, &longest).await;
    assert_eq!(review["comment"], longest.as_str());
}

#[tokio::test]
async fn comments_with_control_characters_other_than_newline_and_tab_are_rejected() {
    let app = spawn_app().await;
    let good = add_good(&app, "Green Tea").await;
    let token = app.customer("alice").await;

    for bad in [
        "nul\u{0}byte",
        "bell\u{7}",
        "windows\r\nline",
        "esc\u{1b}[31mred",
        "del\u{7f}",
        "c1\u{85}next",
    ] {
        let reply = submit(&app, Some(&token), &good, json!(3), bad).await;
        assert_invalid(&reply, &["comment"], &format!("{bad:?}"));
    }

    let review = review(&app, &token, &good, 3, "line one\nline two\tindented").await;
    assert_eq!(review["comment"], "line one\nline two\tindented");
}

#[tokio::test]
async fn html_markup_is_removed_from_comments_before_storage() {
    let app = spawn_app().await;
    let tea = add_good(&app, "Green Tea").await;
    let token = app.customer("alice").await;

    let submitted = review(&app, &token, &tea, 5, "<b>great</b><script>x</script>").await;
    assert_eq!(submitted["comment"], "great");

    let stored = app
        .get(&review_path(&id_of(&submitted)), Some(&token))
        .await;
    assert_eq!(stored.body["comment"], "great", "{}", stored.text);

    for (index, (input, expected)) in [
        ("<p onclick=\"steal()\">tasty</p><!-- hidden -->", "tasty"),
        (
            "<img src=x onerror=alert(1)>pic <a href=\"javascript:alert(1)\">link</a>",
            "pic link",
        ),
        ("<style>body{display:none}</style>ok", "ok"),
        ("<b>unclosed", "unclosed"),
    ]
    .into_iter()
    .enumerate()
    {
        let good = add_good(&app, &format!("Good {index}")).await;
        let review = review(&app, &token, &good, 4, input).await;
        assert_eq!(review["comment"], expected, "{input}");
        assert!(
            !review["comment"].as_str().unwrap().contains('<'),
            "{input}"
        );
    }
}

#[tokio::test]
async fn stored_comments_are_html_safe_and_round_trip_unchanged() {
    let app = spawn_app().await;
    let good = add_good(&app, "Green Tea").await;
    let token = app.customer("alice").await;

    let submitted = review(&app, &token, &good, 4, "5 > 3 & &lt;script&gt;").await;
    let comment = submitted["comment"].as_str().unwrap().to_owned();
    assert_eq!(comment, "5 &gt; 3 &amp; &lt;script&gt;");

    // Sending the stored text back stores the same text: no double escaping.
    let edited = app
        .patch(
            &review_path(&id_of(&submitted)),
            Some(&token),
            json!({ "comment": comment }),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.text);
    assert_eq!(edited.body["comment"], comment.as_str());
}

#[tokio::test]
async fn a_review_body_that_is_not_json_is_rejected() {
    let app = spawn_app().await;
    let good = add_good(&app, "Green Tea").await;
    let token = app.customer("alice").await;
    let body = json!({ "good_id": good, "rating": 4 })
        .to_string()
        .into_bytes();

    let no_type = app
        .post_raw("/api/v1/reviews", Some(&token), None, body.clone())
        .await;
    assert!(
        matches!(no_type.status.as_u16(), 400 | 415),
        "{}",
        no_type.text
    );
    let text = app
        .post_raw("/api/v1/reviews", Some(&token), Some("text/plain"), body)
        .await;
    assert!(matches!(text.status.as_u16(), 400 | 415), "{}", text.text);
    let broken = app
        .post_raw(
            "/api/v1/reviews",
            Some(&token),
            Some("application/json"),
            b"{\"rating\":".to_vec(),
        )
        .await;
    broken.assert_problem(400);
    let array = app
        .post_raw(
            "/api/v1/reviews",
            Some(&token),
            Some("application/json"),
            b"[1]".to_vec(),
        )
        .await;
    array.assert_problem(400);
}

#[tokio::test]
async fn the_good_name_is_kept_as_it_was_when_the_review_was_submitted() {
    let app = spawn_app().await;
    let good = add_good(&app, "Green Tea").await;
    let token = app.customer("alice").await;
    let submitted = review(&app, &token, &good, 4, "").await;

    let admin = app.admin_token().await;
    let renamed = app
        .patch(
            &format!("/api/v1/goods/{good}"),
            Some(&admin),
            json!({ "name": "Matcha" }),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);

    let read = app
        .get(&review_path(&id_of(&submitted)), Some(&token))
        .await;
    assert_eq!(read.body["good_name"], "Green Tea", "{}", read.text);
}

// ---------------------------------------------------------------- verified purchases

#[tokio::test]
async fn a_review_is_a_verified_purchase_when_the_customer_bought_the_good() {
    let app = spawn_app().await;
    let tea = add_good(&app, "Green Tea").await;
    let coffee = add_good(&app, "Coffee").await;
    let alice = buyer(&app, "alice", "Green Tea").await;

    let bought = review(&app, &alice, &tea, 5, "bought it").await;
    let not_bought = review(&app, &alice, &coffee, 2, "never had it").await;

    assert_eq!(bought["verified_purchase"], true);
    assert_eq!(not_bought["verified_purchase"], false);
}

#[tokio::test]
async fn someone_elses_purchase_does_not_verify_a_review() {
    let app = spawn_app().await;
    let tea = add_good(&app, "Green Tea").await;
    buyer(&app, "alice", "Green Tea").await;
    let bob = app.customer("bob").await;

    let review = review(&app, &bob, &tea, 1, "").await;

    assert_eq!(review["verified_purchase"], false);
}

#[tokio::test]
async fn editing_a_review_after_buying_the_good_verifies_it() {
    let app = spawn_app().await;
    let tea = add_good(&app, "Green Tea").await;
    let alice = app.customer("alice").await;
    let submitted = review(&app, &alice, &tea, 3, "before").await;
    assert_eq!(submitted["verified_purchase"], false);

    app.charge("alice", json!(10)).await;
    buy(&app, &alice, "Green Tea").await;
    let edited = app
        .patch(
            &review_path(&id_of(&submitted)),
            Some(&alice),
            json!({ "comment": "after" }),
        )
        .await;

    assert_eq!(edited.status, StatusCode::OK, "{}", edited.text);
    assert_eq!(edited.body["verified_purchase"], true);
}

// ---------------------------------------------------------------- reading

#[tokio::test]
async fn a_pending_review_is_visible_only_to_its_author_and_admins() {
    let app = spawn_app().await;
    let good = add_good(&app, "Green Tea").await;
    let alice = app.customer("alice").await;
    let bob = app.customer("bob").await;
    let admin = app.admin_token().await;
    let id = id_of(&review(&app, &alice, &good, 4, "").await);
    let path = review_path(&id);

    assert_eq!(app.get(&path, Some(&alice)).await.status, StatusCode::OK);
    assert_eq!(app.get(&path, Some(&admin)).await.status, StatusCode::OK);
    let anonymous = app.get(&path, None).await;
    anonymous.assert_problem(404);
    let other = app.get(&path, Some(&bob)).await;
    other.assert_problem(404);
    // Hidden looks exactly like missing.
    let missing = app
        .get(
            &review_path("0190a5c0-0000-7000-8000-000000000000"),
            Some(&bob),
        )
        .await;
    assert_eq!(other.body["detail"], missing.body["detail"]);

    moderate(&app, &id, "approved").await;
    for token in [None, Some(bob.as_str())] {
        let reply = app.get(&path, token).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(reply.body["status"], "approved");
    }
}

#[tokio::test]
async fn reading_a_review_that_does_not_exist_gets_404() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let reply = app.get(&review_path("no-such-review"), Some(&admin)).await;

    reply.assert_problem(404);
    assert_eq!(reply.problem_type(), "urn:souk:error:not-found");
}

// ---------------------------------------------------------------- editing

#[tokio::test]
async fn the_author_can_edit_rating_and_comment_and_the_review_is_pending_again() {
    let app = spawn_app().await;
    let good = add_good(&app, "Green Tea").await;
    let alice = app.customer("alice").await;
    let submitted = review(&app, &alice, &good, 2, "meh").await;
    let id = id_of(&submitted);
    assert_eq!(moderate(&app, &id, "approved").await["status"], "approved");

    let reply = app
        .patch(
            &review_path(&id),
            Some(&alice),
            json!({ "rating": 5, "comment": "<i>grew</i> on me" }),
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let edited = &reply.body;
    assert_eq!(edited["id"], id.as_str());
    assert_eq!(edited["rating"], 5);
    assert_eq!(edited["comment"], "grew on me");
    assert_eq!(edited["status"], "pending");
    assert_eq!(edited["created_at"], submitted["created_at"]);
    assert!(edited["updated_at"].as_str().unwrap() >= submitted["updated_at"].as_str().unwrap());
    // Pending again: hidden from the public until approved again.
    app.get(&review_path(&id), None).await.assert_problem(404);
}

#[tokio::test]
async fn the_author_can_change_only_the_rating_or_only_the_comment() {
    let app = spawn_app().await;
    let good = add_good(&app, "Green Tea").await;
    let alice = app.customer("alice").await;
    let id = id_of(&review(&app, &alice, &good, 2, "meh").await);

    let rated = app
        .patch(&review_path(&id), Some(&alice), json!({ "rating": 4 }))
        .await;
    assert_eq!(rated.status, StatusCode::OK, "{}", rated.text);
    assert_eq!(
        (rated.body["rating"].clone(), rated.body["comment"].clone()),
        (json!(4), json!("meh"))
    );

    let commented = app
        .patch(&review_path(&id), Some(&alice), json!({ "comment": "" }))
        .await;
    assert_eq!(commented.status, StatusCode::OK, "{}", commented.text);
    assert_eq!(
        (
            commented.body["rating"].clone(),
            commented.body["comment"].clone()
        ),
        (json!(4), json!(""))
    );
}

#[tokio::test]
async fn only_the_author_can_edit_a_review() {
    let app = spawn_app().await;
    let good = add_good(&app, "Green Tea").await;
    let alice = app.customer("alice").await;
    let bob = app.customer("bob").await;
    let admin = app.admin_token().await;
    let id = id_of(&review(&app, &alice, &good, 2, "meh").await);
    moderate(&app, &id, "approved").await;
    let change = json!({ "rating": 1 });

    app.patch(&review_path(&id), None, change.clone())
        .await
        .assert_problem(401);
    let other = app
        .patch(&review_path(&id), Some(&bob), change.clone())
        .await;
    other.assert_problem(403);
    assert_eq!(other.problem_type(), "urn:souk:error:forbidden");
    app.patch(&review_path(&id), Some(&admin), change.clone())
        .await
        .assert_problem(403);
    app.patch(&review_path("no-such-review"), Some(&alice), change)
        .await
        .assert_problem(404);

    let unchanged = app.get(&review_path(&id), None).await;
    assert_eq!(unchanged.body["rating"], 2);
    assert_eq!(unchanged.body["status"], "approved");
}

#[tokio::test]
async fn an_edit_rejects_an_empty_body_and_names_every_bad_field() {
    let app = spawn_app().await;
    let good = add_good(&app, "Green Tea").await;
    let alice = app.customer("alice").await;
    let id = id_of(&review(&app, &alice, &good, 2, "meh").await);
    let path = review_path(&id);

    let empty = app.patch(&path, Some(&alice), json!({})).await;
    empty.assert_problem(400);

    let bad = app
        .patch(
            &path,
            Some(&alice),
            json!({ "rating": 0, "comment": "tab\tok but bell\u{7}", "good_id": good, "status": "approved", "title": "x" }),
        )
        .await;
    assert_invalid(
        &bad,
        &["comment", "good_id", "rating", "status", "title"],
        "bad edit",
    );

    let unchanged = app.get(&path, Some(&alice)).await;
    assert_eq!(unchanged.body["rating"], 2);
    assert_eq!(unchanged.body["comment"], "meh");
}

// ---------------------------------------------------------------- deleting

#[tokio::test]
async fn the_author_can_delete_their_review_and_then_review_the_good_again() {
    let app = spawn_app().await;
    let good = add_good(&app, "Green Tea").await;
    let alice = app.customer("alice").await;
    let id = id_of(&review(&app, &alice, &good, 2, "meh").await);

    let reply = app.delete(&review_path(&id), Some(&alice)).await;

    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    assert!(reply.text.is_empty());
    app.get(&review_path(&id), Some(&alice))
        .await
        .assert_problem(404);
    app.delete(&review_path(&id), Some(&alice))
        .await
        .assert_problem(404);
    review(&app, &alice, &good, 4, "second thoughts").await;
}

#[tokio::test]
async fn an_admin_can_delete_any_review_and_other_customers_cannot() {
    let app = spawn_app().await;
    let good = add_good(&app, "Green Tea").await;
    let alice = app.customer("alice").await;
    let bob = app.customer("bob").await;
    let admin = app.admin_token().await;
    let id = id_of(&review(&app, &alice, &good, 1, "spam").await);
    moderate(&app, &id, "approved").await;

    app.delete(&review_path(&id), None)
        .await
        .assert_problem(401);
    app.delete(&review_path(&id), Some(&bob))
        .await
        .assert_problem(403);
    assert_eq!(
        app.get(&review_path(&id), None).await.status,
        StatusCode::OK
    );

    let reply = app.delete(&review_path(&id), Some(&admin)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    app.get(&review_path(&id), Some(&admin))
        .await
        .assert_problem(404);
    app.delete(&review_path("no-such-review"), Some(&admin))
        .await
        .assert_problem(404);
}

// ---------------------------------------------------------------- a good's reviews

#[tokio::test]
async fn a_goods_reviews_list_only_approved_ones_with_their_average_rating() {
    let app = spawn_app().await;
    let tea = add_good(&app, "Green Tea").await;
    let coffee = add_good(&app, "Coffee").await;
    let mut approved = Vec::new();
    for (username, rating, approve) in [
        ("alice", 5, true),
        ("bob", 4, true),
        ("carol", 1, false),
        ("dave", 2, false),
    ] {
        let token = app.customer(username).await;
        let id = id_of(&review(&app, &token, &tea, rating, username).await);
        if approve {
            moderate(&app, &id, "approved").await;
            approved.push(id);
        }
    }
    let admin = app.admin_token().await;
    let coffee_review = id_of(&review(&app, &admin, &coffee, 1, "").await);
    moderate(&app, &coffee_review, "approved").await;

    let reply = app.get(&good_reviews_path(&tea), None).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let page = &reply.body;
    assert_eq!(page["total"], 2);
    assert_eq!(page["limit"], 50);
    assert_eq!(page["offset"], 0);
    assert_eq!(page["average_rating"], 4.5);
    approved.reverse();
    assert_eq!(ids(page), approved, "newest first");
    for item in page["items"].as_array().unwrap() {
        assert_eq!(item["status"], "approved");
        assert_eq!(item["good_id"], tea.as_str());
    }
}

#[tokio::test]
async fn the_average_rating_is_null_without_approved_reviews_and_has_two_decimals() {
    let app = spawn_app().await;
    let tea = add_good(&app, "Green Tea").await;

    let none = app.get(&good_reviews_path(&tea), None).await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.text);
    assert!(
        none.body
            .as_object()
            .unwrap()
            .contains_key("average_rating"),
        "{}",
        none.text
    );
    assert!(none.body["average_rating"].is_null());
    assert_eq!(none.body["items"], json!([]));
    assert_eq!(none.body["total"], 0);

    // A pending review does not count.
    let alice = app.customer("alice").await;
    review(&app, &alice, &tea, 5, "").await;
    assert!(app.get(&good_reviews_path(&tea), None).await.body["average_rating"].is_null());

    // 5 + 5 + 4 = 14 over 3 = 4.666... -> 4.67
    for (username, rating) in [("bob", 5), ("carol", 5), ("dave", 4)] {
        let token = app.customer(username).await;
        let id = id_of(&review(&app, &token, &tea, rating, "").await);
        moderate(&app, &id, "approved").await;
    }
    let reply = app.get(&good_reviews_path(&tea), None).await;
    assert_eq!(reply.body["average_rating"], 4.67, "{}", reply.text);
    assert!(
        reply.text.contains("\"average_rating\":4.67"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn an_admin_can_list_a_goods_reviews_by_status() {
    let app = spawn_app().await;
    let tea = add_good(&app, "Green Tea").await;
    let admin = app.admin_token().await;
    let mut by_status = std::collections::HashMap::new();
    for (username, status) in [
        ("alice", "pending"),
        ("bob", "approved"),
        ("carol", "flagged"),
    ] {
        let token = app.customer(username).await;
        let id = id_of(&review(&app, &token, &tea, 3, "").await);
        if status != "pending" {
            moderate(&app, &id, status).await;
        }
        by_status.insert(status, id);
    }

    for status in ["pending", "approved", "flagged"] {
        let reply = app
            .get(
                &format!("{}?status={status}", good_reviews_path(&tea)),
                Some(&admin),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(
            ids(&reply.body),
            vec![by_status[status].clone()],
            "{status}"
        );
        // The average is always that of the approved reviews.
        assert_eq!(reply.body["average_rating"], 3.0, "{status}");
    }
    // Without a status, an admin sees the approved ones like everyone.
    let plain = app.get(&good_reviews_path(&tea), Some(&admin)).await;
    assert_eq!(ids(&plain.body), vec![by_status["approved"].clone()]);

    let bad = app
        .get(
            &format!("{}?status=deleted", good_reviews_path(&tea)),
            Some(&admin),
        )
        .await;
    assert_invalid(&bad, &["status"], "unknown status");
}

#[tokio::test]
async fn only_an_admin_may_filter_a_goods_reviews_by_status() {
    let app = spawn_app().await;
    let tea = add_good(&app, "Green Tea").await;
    let alice = app.customer("alice").await;
    let path = format!("{}?status=pending", good_reviews_path(&tea));

    app.get(&path, None).await.assert_problem(401);
    let customer = app.get(&path, Some(&alice)).await;
    customer.assert_problem(403);
    assert_eq!(customer.problem_type(), "urn:souk:error:forbidden");
}

#[tokio::test]
async fn the_reviews_of_a_good_that_does_not_exist_get_404() {
    let app = spawn_app().await;

    let reply = app
        .get(
            &good_reviews_path("0190a5c0-0000-7000-8000-000000000000"),
            None,
        )
        .await;

    reply.assert_problem(404);
}

#[tokio::test]
async fn a_goods_reviews_are_paged() {
    let app = spawn_app().await;
    let tea = add_good(&app, "Green Tea").await;
    let mut all = Vec::new();
    for username in ["alice", "bob", "carol"] {
        let token = app.customer(username).await;
        let id = id_of(&review(&app, &token, &tea, 4, "").await);
        moderate(&app, &id, "approved").await;
        all.insert(0, id);
    }

    let first = app
        .get(&format!("{}?limit=2", good_reviews_path(&tea)), None)
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(ids(&first.body), all[..2]);
    assert_eq!(
        (first.body["total"].clone(), first.body["limit"].clone()),
        (json!(3), json!(2))
    );
    let rest = app
        .get(
            &format!("{}?limit=2&offset=2", good_reviews_path(&tea)),
            None,
        )
        .await;
    assert_eq!(ids(&rest.body), all[2..]);
    assert_eq!(rest.body["offset"], 2);

    for (query, fields) in [
        ("limit=0", vec!["limit"]),
        ("limit=201", vec!["limit"]),
        ("limit=x", vec!["limit"]),
        ("offset=-1", vec!["offset"]),
        ("limit=0&offset=-1", vec!["limit", "offset"]),
    ] {
        let reply = app
            .get(&format!("{}?{query}", good_reviews_path(&tea)), None)
            .await;
        assert_invalid(&reply, &fields, query);
    }
}

// ---------------------------------------------------------------- a customer's reviews

#[tokio::test]
async fn a_customers_reviews_show_all_statuses_only_to_them_and_admins() {
    let app = spawn_app().await;
    let tea = add_good(&app, "Green Tea").await;
    let coffee = add_good(&app, "Coffee").await;
    let jam = add_good(&app, "Jam").await;
    let alice = app.customer("alice").await;
    let bob = app.customer("bob").await;
    let admin = app.admin_token().await;
    let pending = id_of(&review(&app, &alice, &tea, 4, "").await);
    let approved = id_of(&review(&app, &alice, &coffee, 5, "").await);
    let flagged = id_of(&review(&app, &alice, &jam, 1, "").await);
    moderate(&app, &approved, "approved").await;
    moderate(&app, &flagged, "flagged").await;
    // Bob's own approved review is not Alice's.
    let bobs = id_of(&review(&app, &bob, &tea, 3, "").await);
    moderate(&app, &bobs, "approved").await;

    let everything = vec![flagged.clone(), approved.clone(), pending.clone()];
    for (who, token, expected) in [
        ("alice herself", Some(alice.as_str()), everything.clone()),
        ("an admin", Some(admin.as_str()), everything),
        ("bob", Some(bob.as_str()), vec![approved.clone()]),
        ("anyone", None, vec![approved.clone()]),
    ] {
        let reply = app.get(&customer_reviews_path("alice"), token).await;
        assert_eq!(reply.status, StatusCode::OK, "{who}: {}", reply.text);
        assert_eq!(ids(&reply.body), expected, "{who}");
        assert_eq!(reply.body["total"], expected.len(), "{who}");
        for item in reply.body["items"].as_array().unwrap() {
            assert_eq!(item["username"], "alice", "{who}");
        }
    }

    // Usernames match ignoring case, as everywhere.
    let upper = app.get(&customer_reviews_path("ALICE"), Some(&alice)).await;
    assert_eq!(upper.body["total"], 3, "{}", upper.text);
}

#[tokio::test]
async fn an_unknown_customer_has_an_empty_page_of_reviews() {
    let app = spawn_app().await;

    let reply = app.get(&customer_reviews_path("nobody"), None).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({ "items": [], "total": 0, "limit": 50, "offset": 0 })
    );
    let bad = app
        .get(
            &format!("{}?limit=500", customer_reviews_path("nobody")),
            None,
        )
        .await;
    assert_invalid(&bad, &["limit"], "limit=500");
}

// ---------------------------------------------------------------- flagging

#[tokio::test]
async fn any_signed_in_user_can_flag_a_review_and_it_is_hidden() {
    let app = spawn_app().await;
    let tea = add_good(&app, "Green Tea").await;
    let alice = app.customer("alice").await;
    let bob = app.customer("bob").await;
    let id = id_of(&review(&app, &alice, &tea, 1, "rude words").await);
    moderate(&app, &id, "approved").await;

    let reply = app
        .post(
            &format!("{}/flag", review_path(&id)),
            Some(&bob),
            json!({ "reason": "offensive" }),
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["status"], "flagged");
    assert_eq!(reply.body["id"], id.as_str());
    app.get(&review_path(&id), None).await.assert_problem(404);
    app.get(&review_path(&id), Some(&bob))
        .await
        .assert_problem(404);
    assert_eq!(
        app.get(&review_path(&id), Some(&alice)).await.body["status"],
        "flagged"
    );
    let listed = app.get(&good_reviews_path(&tea), None).await;
    assert_eq!(listed.body["total"], 0);
    assert!(listed.body["average_rating"].is_null());
}

#[tokio::test]
async fn a_flag_needs_no_reason_and_no_body() {
    let app = spawn_app().await;
    let tea = add_good(&app, "Green Tea").await;
    let alice = app.customer("alice").await;
    let bob = app.customer("bob").await;
    let id = id_of(&review(&app, &alice, &tea, 3, "").await);
    let flag = format!("{}/flag", review_path(&id));

    moderate(&app, &id, "approved").await;
    let empty_object = app.post(&flag, Some(&bob), json!({})).await;
    assert_eq!(empty_object.status, StatusCode::OK, "{}", empty_object.text);

    moderate(&app, &id, "approved").await;
    let no_body = app.send(Method::POST, &flag, Some(&bob), None).await;
    assert_eq!(no_body.status, StatusCode::OK, "{}", no_body.text);
    assert_eq!(no_body.body["status"], "flagged");
}

#[tokio::test]
async fn flagging_checks_the_caller_the_reason_and_the_review() {
    let app = spawn_app().await;
    let tea = add_good(&app, "Green Tea").await;
    let alice = app.customer("alice").await;
    let bob = app.customer("bob").await;
    let id = id_of(&review(&app, &alice, &tea, 3, "").await);
    let flag = format!("{}/flag", review_path(&id));

    // Pending: Bob cannot see it, so for him it does not exist.
    app.post(&flag, Some(&bob), json!({}))
        .await
        .assert_problem(404);
    app.post(
        &format!("{}/flag", review_path("no-such-review")),
        Some(&bob),
        json!({}),
    )
    .await
    .assert_problem(404);

    moderate(&app, &id, "approved").await;
    app.post(&flag, None, json!({})).await.assert_problem(401);
    let too_long = app
        .post(&flag, Some(&bob), json!({ "reason": "x".repeat(501) }))
        .await;
    assert_invalid(&too_long, &["reason"], "501 characters");
    let bad = app
        .post(
            &flag,
            Some(&bob),
            json!({ "reason": 5, "severity": "high" }),
        )
        .await;
    assert_invalid(&bad, &["reason", "severity"], "bad flag body");
    let control = app
        .post(&flag, Some(&bob), json!({ "reason": "a\u{0}b" }))
        .await;
    assert_invalid(&control, &["reason"], "control character");
    assert_eq!(
        app.get(&review_path(&id), None).await.body["status"],
        "approved"
    );

    let longest = app
        .post(&flag, Some(&bob), json!({ "reason": "x".repeat(500) }))
        .await;
    assert_eq!(longest.status, StatusCode::OK, "{}", longest.text);
}

// ---------------------------------------------------------------- moderating

#[tokio::test]
async fn an_admin_approves_and_flags_reviews_with_an_optional_note() {
    let app = spawn_app().await;
    let tea = add_good(&app, "Green Tea").await;
    let alice = app.customer("alice").await;
    let admin = app.admin_token().await;
    let submitted = review(&app, &alice, &tea, 4, "").await;
    let id = id_of(&submitted);
    let path = format!("{}/moderate", review_path(&id));

    let approved = app
        .post(
            &path,
            Some(&admin),
            json!({ "status": "approved", "note": "looks fine" }),
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
    assert_eq!(approved.body["status"], "approved");
    assert_eq!(approved.body["rating"], 4);
    let mut fields: Vec<&str> = approved
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, REVIEW_FIELDS, "the note is not part of the review");

    let flagged = app
        .post(&path, Some(&admin), json!({ "status": "flagged" }))
        .await;
    assert_eq!(flagged.status, StatusCode::OK, "{}", flagged.text);
    assert_eq!(flagged.body["status"], "flagged");
    app.get(&review_path(&id), None).await.assert_problem(404);
}

#[tokio::test]
async fn only_an_admin_can_moderate() {
    let app = spawn_app().await;
    let tea = add_good(&app, "Green Tea").await;
    let alice = app.customer("alice").await;
    let bob = app.customer("bob").await;
    let admin = app.admin_token().await;
    let id = id_of(&review(&app, &alice, &tea, 4, "").await);
    let path = format!("{}/moderate", review_path(&id));
    let approve = json!({ "status": "approved" });

    app.post(&path, None, approve.clone())
        .await
        .assert_problem(401);
    app.post(&path, Some(&alice), approve.clone())
        .await
        .assert_problem(403);
    app.post(&path, Some(&bob), approve.clone())
        .await
        .assert_problem(403);
    app.post(
        &format!("{}/moderate", review_path("no-such-review")),
        Some(&admin),
        approve,
    )
    .await
    .assert_problem(404);

    assert_eq!(
        app.get(&review_path(&id), Some(&admin)).await.body["status"],
        "pending"
    );
}

#[tokio::test]
async fn moderation_names_every_bad_field() {
    let app = spawn_app().await;
    let tea = add_good(&app, "Green Tea").await;
    let alice = app.customer("alice").await;
    let admin = app.admin_token().await;
    let id = id_of(&review(&app, &alice, &tea, 4, "").await);
    let path = format!("{}/moderate", review_path(&id));

    for (body, fields) in [
        (json!({}), vec!["status"]),
        (json!({ "status": "pending" }), vec!["status"]),
        (json!({ "status": "deleted" }), vec!["status"]),
        (json!({ "status": 1 }), vec!["status"]),
        (
            json!({ "status": "approved", "note": "x".repeat(501) }),
            vec!["note"],
        ),
        (
            json!({ "status": "approved", "note": "bell\u{7}" }),
            vec!["note"],
        ),
        (
            json!({ "status": "nope", "note": 5, "reason": "x" }),
            vec!["note", "reason", "status"],
        ),
    ] {
        let reply = app.post(&path, Some(&admin), body.clone()).await;
        assert_invalid(&reply, &fields, &body.to_string());
    }
    assert_eq!(
        app.get(&review_path(&id), Some(&admin)).await.body["status"],
        "pending"
    );
}

// ---------------------------------------------------------------- the moderation queue

#[tokio::test]
async fn an_admin_can_list_every_review_and_filter_by_status() {
    let app = spawn_app().await;
    let tea = add_good(&app, "Green Tea").await;
    let coffee = add_good(&app, "Coffee").await;
    let alice = app.customer("alice").await;
    let admin = app.admin_token().await;
    let first = id_of(&review(&app, &alice, &tea, 4, "").await);
    let second = id_of(&review(&app, &alice, &coffee, 2, "").await);
    moderate(&app, &first, "approved").await;

    let all = app.get("/api/v1/reviews", Some(&admin)).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert_eq!(ids(&all.body), vec![second.clone(), first.clone()]);
    let queue = app
        .get("/api/v1/reviews?status=pending", Some(&admin))
        .await;
    assert_eq!(ids(&queue.body), vec![second]);

    app.get("/api/v1/reviews", None).await.assert_problem(401);
    app.get("/api/v1/reviews", Some(&alice))
        .await
        .assert_problem(403);
}

// ---------------------------------------------------------------- errors

#[tokio::test]
async fn review_errors_are_problem_details_without_internals() {
    let app = spawn_app().await;
    let tea = add_good(&app, "Green Tea").await;
    let alice = app.customer("alice").await;
    review(&app, &alice, &tea, 4, "").await;

    let replies = [
        submit(&app, Some(&alice), &tea, json!(9), "").await,
        submit(&app, Some(&alice), &tea, json!(4), "").await,
        submit(&app, None, &tea, json!(4), "").await,
        app.get(&review_path("x' OR '1'='1"), None).await,
        app.send(
            Method::PUT,
            &review_path("abc"),
            Some(&alice),
            Some(json!({})),
        )
        .await,
    ];
    for (reply, status) in replies.iter().zip([400, 409, 401, 404, 405]) {
        let body = reply.assert_problem(status);
        let text = body.to_string().to_lowercase();
        for leak in [
            "select", "insert", "reviews_", "sqlite", "postgres", ".rs", "panicked", "wasm",
        ] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
    }
}

#[tokio::test]
async fn a_wrong_method_on_a_review_path_gets_405() {
    let app = spawn_app().await;
    let alice = app.customer("alice").await;

    for (method, path) in [
        (Method::PUT, "/api/v1/reviews/abc"),
        (Method::GET, "/api/v1/reviews/abc/flag"),
        (Method::DELETE, "/api/v1/reviews/good/abc"),
    ] {
        let reply = app.send(method.clone(), path, Some(&alice), None).await;
        reply.assert_problem(405);
    }
}
