//! Domain events (issue #14): the core services emit the catalogue's
//! events inside their requests, so a request that rolls back leaves no
//! event and no audit row, and one that commits leaves exactly its own;
//! subscribing components (the wishlist, and the `event_counter` test
//! component, which records every delivery it acknowledges) receive each
//! event once, in order, also with a failing neighbour and with two
//! replicas on one database.
//!
//! The outbox is not part of the HTTP API: where a test must see that an
//! event does *not* exist, it reads `souk_events` directly.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{SpawnOptions, TestApp, spawn_app_with};

/// How long a subscriber may take to see an event (it is woken at commit;
/// this bounds a loaded 2-core CI machine running a debug host).
const DELIVERED_WITHIN: Duration = Duration::from_secs(15);

/// The shipped wishlist grant with a test-friendly deadline, the event
/// counter subscribed to everything the tests emit, and the wallet thief
/// allowed to move money.
const GRANTS: &str = r#"{
    "wishlist": {
        "imports": ["souk:platform/inventory-api"],
        "subscribe": ["customer.deleted", "good.deleted"],
        "deadline_ms": 10000
    },
    "event_counter": {
        "subscribe": ["customer.*", "wallet.*", "good.*", "stock.*", "sale.*", "review.*",
                      "event_counter.*"],
        "deadline_ms": 10000
    },
    "wallet_thief": {
        "imports": ["souk:platform/customers-api", "souk:platform/wallet"]
    }
}"#;

async fn spawn(test_components: Vec<&'static str>, database_url: Option<String>) -> TestApp {
    spawn_app_with(SpawnOptions {
        test_components,
        database_url,
        grants: Some(GRANTS),
        ..SpawnOptions::default()
    })
    .await
}

/// The audit entries of request `request_id`, oldest first.
async fn audit_of(app: &TestApp, request_id: &str) -> Vec<Value> {
    let admin = app.admin_token().await;
    let reply = app.get("/admin/audit?limit=200", Some(&admin)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let mut entries: Vec<Value> = reply.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|entry| entry["request_id"] == request_id)
        .cloned()
        .collect();
    entries.reverse();
    entries
}

/// The actions of [`audit_of`].
async fn actions_of(app: &TestApp, request_id: &str) -> Vec<String> {
    audit_of(app, request_id)
        .await
        .iter()
        .map(|entry| entry["action"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// How many events request `request_id` left in the outbox.
async fn outbox_count(app: &TestApp, request_id: &str) -> i64 {
    scalar(
        app,
        "SELECT count(*) FROM souk_events WHERE request_id = $1",
        request_id,
    )
    .await
}

/// One number from the test's database (`$1` bound to `arg`).
async fn scalar(app: &TestApp, sql: &'static str, arg: &str) -> i64 {
    if app.database_url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
        let n: i64 = sqlx::query_scalar(sql)
            .bind(arg)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    } else {
        let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
        let n: i64 = sqlx::query_scalar(sql)
            .bind(arg)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    }
}

/// The `X-Request-Id` of a reply.
fn request_id(reply: &crate::helpers::Reply) -> String {
    reply
        .header("x-request-id")
        .expect("every reply has a request id")
        .to_owned()
}

/// What the event counter has acknowledged, once `done` holds (polled).
async fn counter_until(app: &TestApp, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + DELIVERED_WITHIN;
    loop {
        let reply = app.get("/api/v1/event_counter", None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        if done(&reply.body) {
            return reply.body;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {DELIVERED_WITHIN:?}; the counter has {}",
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The counter's items of `event_type`.
fn items_of(counter: &Value, event_type: &str) -> Vec<Value> {
    counter["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|item| item["event_type"] == event_type)
        .cloned()
        .collect()
}

/// Every delivery distinct, in increasing sequence order.
#[track_caller]
fn assert_once_in_order(counter: &Value) {
    assert_eq!(counter["deliveries"], counter["distinct"], "{counter}");
    let sequences: Vec<i64> = counter["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["sequence"].as_i64().expect("sequence"))
        .collect();
    assert!(
        sequences.windows(2).all(|pair| pair[0] < pair[1]),
        "out of order: {sequences:?}"
    );
}

#[tokio::test]
async fn a_committed_request_leaves_exactly_its_events_and_audit_rows() {
    let app = spawn(vec!["event_counter"], None).await;
    let admin = app.admin_token().await;
    let registered = app.register("ev_alice").await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text
    );
    let alice_id = registered.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        actions_of(&app, &request_id(&registered)).await,
        ["customer.registered"]
    );

    let charged = app.charge("ev_alice", json!(10)).await;
    assert_eq!(charged.status, StatusCode::OK, "{}", charged.text);
    let entries = audit_of(&app, &request_id(&charged)).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["action"], "wallet.charged");
    assert_eq!(entries[0]["subject"], alice_id.as_str());
    assert_eq!(entries[0]["actor"], "root");
    assert_eq!(
        entries[0]["changes"],
        json!({"username": "ev_alice", "amount": 10, "balance_before": 0, "balance_after": 10})
    );

    // A new password and a role change: reported, the password never.
    let patched = app
        .patch(
            "/api/v1/customers/ev_alice",
            Some(&admin),
            json!({"full_name": "Alice B.", "password": "newsecret9", "role": "admin"}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(
        actions_of(&app, &request_id(&patched)).await,
        ["customer.updated"]
    );

    let good = app.add_good("Event Dates", json!(2.5), 2).await;
    let good_id = good["id"].as_str().unwrap().to_owned();
    let token = app.token("ev_alice", "newsecret9").await;
    let purchase = app
        .request(Method::POST, "/api/v1/sales", Some(&token))
        .header("idempotency-key", "ev-buy-1")
        .json(&json!({"good": "Event Dates", "quantity": 2}));
    let bought = app.send_built(purchase).await;
    assert_eq!(bought.status, StatusCode::CREATED, "{}", bought.text);
    let sale_id = bought.body["sale"]["id"].as_str().unwrap().to_owned();
    let mut actions = actions_of(&app, &request_id(&bought)).await;
    actions.sort();
    assert_eq!(
        actions,
        [
            "good.updated",
            "sale.completed",
            "stock.depleted",
            "wallet.deducted"
        ]
    );
    assert_eq!(outbox_count(&app, &request_id(&bought)).await, 4);

    // A replay answers the first result and says nothing again.
    let replay = app
        .request(Method::POST, "/api/v1/sales", Some(&token))
        .header("idempotency-key", "ev-buy-1")
        .json(&json!({"good": "Event Dates", "quantity": 2}));
    let replayed = app.send_built(replay).await;
    assert_eq!(replayed.status, StatusCode::CREATED, "{}", replayed.text);
    assert_eq!(replayed.body["sale"]["id"], sale_id.as_str());
    assert!(actions_of(&app, &request_id(&replayed)).await.is_empty());
    assert_eq!(outbox_count(&app, &request_id(&replayed)).await, 0);

    // What a subscriber receives: the payloads of the catalogue.
    let counter = counter_until(&app, "the sale reaches the counter", |c| {
        !items_of(c, "sale.completed").is_empty()
    })
    .await;
    assert_once_in_order(&counter);
    let updated = &items_of(&counter, "customer.updated")[0];
    assert_eq!(updated["subject"], alice_id.as_str());
    assert_eq!(
        updated["data"],
        json!({"username": "ev_alice", "changes": {
            "full_name": {"before": "ev_alice Example", "after": "Alice B."},
            "role": {"before": "customer", "after": "admin"},
            "password": "changed",
        }})
    );
    assert!(!counter.to_string().contains("argon2"), "{counter}");
    let stock = items_of(&counter, "good.updated");
    assert_eq!(stock.len(), 1, "{stock:?}");
    assert_eq!(stock[0]["subject"], good_id.as_str());
    assert_eq!(
        stock[0]["data"]["changes"],
        json!({"count": {"before": 2, "after": 0}})
    );
    assert_eq!(
        items_of(&counter, "stock.depleted")[0]["data"],
        json!({"name": "Event Dates"})
    );
    let deducted = &items_of(&counter, "wallet.deducted")[0];
    assert_eq!(
        deducted["data"],
        json!({"username": "ev_alice", "amount": 5, "balance_before": 10, "balance_after": 5})
    );
    let sale = &items_of(&counter, "sale.completed")[0];
    assert_eq!(sale["subject"], sale_id.as_str());
    assert_eq!(sale["data"]["sale"]["total"], 5);
    assert_eq!(sale["data"]["sale"]["good_id"], good_id.as_str());
    assert_eq!(
        items_of(&counter, "good.created")[0]["data"]["good"]["name"],
        "Event Dates"
    );
}

#[tokio::test]
async fn reviews_and_deletions_say_what_happened() {
    let app = spawn(vec!["event_counter"], None).await;
    let admin = app.admin_token().await;
    let bob = app.customer("ev_bob").await;
    let good = app.add_good("Event Tea", json!(3), 5).await;
    let good_id = good["id"].as_str().unwrap();

    let review = app
        .post(
            "/api/v1/reviews",
            Some(&bob),
            json!({"good_id": good_id, "rating": 4, "comment": "nice"}),
        )
        .await;
    assert_eq!(review.status, StatusCode::CREATED, "{}", review.text);
    let review_id = review.body["id"].as_str().unwrap();
    let moderated = app
        .post(
            &format!("/api/v1/reviews/{review_id}/moderate"),
            Some(&admin),
            json!({"status": "approved", "note": "fine"}),
        )
        .await;
    assert_eq!(moderated.status, StatusCode::OK, "{}", moderated.text);
    let charged = app.charge("ev_bob", json!(7.25)).await;
    assert_eq!(charged.status, StatusCode::OK);
    let deleted = app.delete("/api/v1/customers/ev_bob", Some(&bob)).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    let gone = app
        .delete(&format!("/api/v1/goods/{good_id}"), Some(&admin))
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);

    let counter = counter_until(&app, "the good's deletion", |c| {
        !items_of(c, "good.deleted").is_empty()
    })
    .await;
    assert_once_in_order(&counter);
    let submitted = &items_of(&counter, "review.submitted")[0];
    assert_eq!(submitted["subject"], review_id);
    assert_eq!(submitted["data"]["review"]["status"], "pending");
    assert_eq!(
        items_of(&counter, "review.moderated")[0]["data"],
        json!({"good_id": good_id, "status": {"before": "pending", "after": "approved"}, "note": "fine"})
    );
    assert_eq!(
        items_of(&counter, "customer.deleted")[0]["data"],
        json!({"username": "ev_bob", "forfeited_balance": 7.25})
    );
    let deleted_good = &items_of(&counter, "good.deleted")[0];
    assert_eq!(deleted_good["subject"], good_id);
    assert_eq!(deleted_good["data"]["good"]["name"], "Event Tea");
}

#[tokio::test]
async fn a_refused_purchase_leaves_no_event_and_no_audit_row() {
    let app = spawn(vec![], None).await;
    let carol = app.customer("ev_carol").await;
    app.add_good("Event Lamp", json!(5), 3).await;
    assert_eq!(
        app.charge("ev_carol", json!(1)).await.status,
        StatusCode::OK
    );

    // The stock is taken (and `good.updated` emitted) before the wallet
    // refuses: all of it rolls back.
    let refused = app
        .post(
            "/api/v1/sales",
            Some(&carol),
            json!({"good": "Event Lamp", "quantity": 1}),
        )
        .await;
    refused.assert_problem(409);
    assert_eq!(refused.problem_type(), "urn:souk:error:insufficient-funds");
    assert!(actions_of(&app, &request_id(&refused)).await.is_empty());
    assert_eq!(outbox_count(&app, &request_id(&refused)).await, 0);
}

#[tokio::test]
async fn a_component_that_floods_events_gets_its_first_32_committed_and_the_rest_refused() {
    // Events are held in the request's unit of work until it commits: what
    // a request may emit bounds what the host holds for it.
    let app = spawn(vec!["hostile"], None).await;
    let flood = app
        .post("/api/v1/hostile/event_flood", None, json!({}))
        .await;
    assert_eq!(flood.status, StatusCode::CREATED, "{}", flood.text);
    assert_eq!(flood.body["accepted"], 32, "{}", flood.text);
    assert!(
        flood.body["refused"]
            .as_str()
            .is_some_and(|reason| reason.contains("at most 32 events")),
        "{}",
        flood.text
    );
    assert_eq!(outbox_count(&app, &request_id(&flood)).await, 32);
    // The host keeps serving.
    let health = app.get("/health/status", None).await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.text);
}

#[tokio::test]
async fn a_component_that_traps_after_emitting_leaves_no_event_and_no_audit_row() {
    let app = spawn(vec!["event_counter", "wallet_thief"], None).await;
    let doomed = app
        .post("/api/v1/event_counter/emit-then-trap", None, json!({}))
        .await;
    doomed.assert_problem(500);
    assert_eq!(outbox_count(&app, &request_id(&doomed)).await, 0);

    // customers emitted `wallet.deducted` (and its audit row) for the
    // debit, then its caller trapped.
    let dave = app.customer("ev_dave").await;
    assert_eq!(app.charge("ev_dave", json!(5)).await.status, StatusCode::OK);
    let trapped = app
        .post(
            "/api/v1/wallet_thief/debit-then-panic?cents=100",
            Some(&dave),
            json!({}),
        )
        .await;
    trapped.assert_problem(500);
    assert!(actions_of(&app, &request_id(&trapped)).await.is_empty());
    assert_eq!(outbox_count(&app, &request_id(&trapped)).await, 0);
    assert_eq!(app.balance_cents("ev_dave").await, 500);

    // The same debit without the trap commits with its event.
    let debited = app
        .post(
            "/api/v1/wallet_thief/debit?cents=100",
            Some(&dave),
            json!({}),
        )
        .await;
    assert_eq!(debited.status, StatusCode::OK, "{}", debited.text);
    let entries = audit_of(&app, &request_id(&debited)).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["action"], "wallet.deducted");
    assert_eq!(entries[0]["actor"], "ev_dave");
    assert_eq!(entries[0]["changes"]["balance_after"], 4);
}

#[tokio::test]
async fn a_component_may_not_emit_another_components_event_type() {
    let app = spawn(vec!["event_counter"], None).await;
    let forged = app
        .post("/api/v1/event_counter/emit-foreign", None, json!({}))
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    let refusal = forged.body["refused"].as_str().unwrap_or_default();
    assert!(
        refusal.contains("may not emit `sale.completed`") && refusal.contains("`sales`"),
        "{refusal}"
    );
    assert_eq!(outbox_count(&app, &request_id(&forged)).await, 0);

    // Its own type is fine, and reaches it as a subscriber.
    let own = app
        .post("/api/v1/event_counter/emit?verb=hello", None, json!({}))
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    assert_eq!(outbox_count(&app, &request_id(&own)).await, 1);
    counter_until(&app, "its own event", |c| {
        !items_of(c, "event_counter.hello").is_empty()
    })
    .await;
}

#[tokio::test]
async fn a_subscriber_may_not_emit_while_it_handles_an_event() {
    // event_counter subscribes to its own `event_counter.*`: were it allowed
    // to emit while handling one, it would feed itself for ever.
    let app = spawn(vec!["event_counter"], None).await;
    let echo = app
        .post("/api/v1/event_counter/emit?verb=echo", None, json!({}))
        .await;
    assert_eq!(echo.status, StatusCode::OK, "{}", echo.text);
    let counter = counter_until(&app, "the echo's delivery", |c| {
        !items_of(c, "event_counter.echo").is_empty()
    })
    .await;
    let answer = items_of(&counter, "event_counter.echo")[0]["data"].clone();
    assert_eq!(answer["echo"], "refused", "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("while handling an event"),
        "{answer}"
    );
    // Nothing was emitted: a later event arrives, the echo never does.
    app.post("/api/v1/event_counter/emit?verb=after", None, json!({}))
        .await;
    let counter = counter_until(&app, "a later event", |c| {
        !items_of(c, "event_counter.after").is_empty()
    })
    .await;
    assert!(
        items_of(&counter, "event_counter.echoed").is_empty(),
        "{counter}"
    );
}

#[tokio::test]
async fn the_wishlist_forgets_deleted_customers_and_goods() {
    let app = spawn(vec![], None).await;
    let admin = app.admin_token().await;
    let erin = app.customer("ev_erin").await;
    let erin_id = app.profile("ev_erin").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let frank = app.customer("ev_frank").await;
    let kept = app.add_good("Event Kept", json!(1), 5).await;
    let doomed = app.add_good("Event Doomed", json!(1), 5).await;
    for token in [&erin, &frank] {
        for good in [&kept, &doomed] {
            let added = app
                .post(
                    "/api/v1/wishlist",
                    Some(token),
                    json!({"good_id": good["id"]}),
                )
                .await;
            assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
        }
    }

    let doomed_id = doomed["id"].as_str().unwrap();
    let deleted = app
        .delete(&format!("/api/v1/goods/{doomed_id}"), Some(&admin))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let deleted = app.delete("/api/v1/customers/ev_erin", Some(&erin)).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    let deadline = Instant::now() + DELIVERED_WITHIN;
    loop {
        let erin_rows = scalar(
            &app,
            "SELECT count(*) FROM wishlist_items WHERE customer_id = $1",
            &erin_id,
        )
        .await;
        let doomed_rows = scalar(
            &app,
            "SELECT count(*) FROM wishlist_items WHERE good_id = $1",
            doomed_id,
        )
        .await;
        if erin_rows == 0 && doomed_rows == 0 {
            // Read after both are gone: read before, the list could still
            // show the good the handler removes a moment later.
            let frank_list = app.get("/api/v1/wishlist", Some(&frank)).await;
            assert_eq!(frank_list.status, StatusCode::OK, "{}", frank_list.text);
            let ids: Vec<&str> = frank_list.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|item| item["good_id"].as_str())
                .collect();
            assert_eq!(ids, [kept["id"].as_str().unwrap()], "frank keeps the rest");
            break;
        }
        if Instant::now() >= deadline {
            let health = app.get("/health/status", None).await;
            panic!(
                "not forgotten within {DELIVERED_WITHIN:?}: {erin_rows} rows of the customer, \
                 {doomed_rows} of the good; health: {}",
                health.text
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_failing_subscriber_is_retried_in_order_without_holding_up_others() {
    let app = spawn(vec!["event_counter"], None).await;
    let admin = app.admin_token().await;
    let grace = app.customer("ev_grace").await;
    let good = app.add_good("Event Soap", json!(1), 5).await;
    let added = app
        .post(
            "/api/v1/wishlist",
            Some(&grace),
            json!({"good_id": good["id"]}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED);
    counter_until(&app, "the good's creation", |c| {
        !items_of(c, "good.created").is_empty()
    })
    .await;

    let refusing = app
        .post("/api/v1/event_counter/refuse", None, json!({}))
        .await;
    assert_eq!(refusing.status, StatusCode::OK, "{}", refusing.text);
    for verb in ["one", "two", "three"] {
        let emitted = app
            .post(
                &format!("/api/v1/event_counter/emit?verb={verb}"),
                None,
                json!({}),
            )
            .await;
        assert_eq!(emitted.status, StatusCode::OK, "{}", emitted.text);
    }
    let good_id = good["id"].as_str().unwrap();
    let deleted = app
        .delete(&format!("/api/v1/goods/{good_id}"), Some(&admin))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    // The wishlist goes on while the counter refuses.
    let deadline = Instant::now() + DELIVERED_WITHIN;
    while scalar(
        &app,
        "SELECT count(*) FROM wishlist_items WHERE good_id = $1",
        good_id,
    )
    .await
        > 0
    {
        assert!(
            Instant::now() < deadline,
            "the wishlist was held up by a failing neighbour"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = app.get("/api/v1/event_counter", None).await.body;
    assert!(
        items_of(&before, "event_counter.one").is_empty(),
        "{before}"
    );

    let accepting = app
        .post("/api/v1/event_counter/accept", None, json!({}))
        .await;
    assert_eq!(accepting.status, StatusCode::OK);
    let counter = counter_until(&app, "the retried events", |c| {
        !items_of(c, "good.deleted").is_empty()
    })
    .await;
    assert_once_in_order(&counter);
    let types: Vec<&str> = counter["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|item| item["event_type"].as_str())
        .filter(|t| t.starts_with("event_counter.") || *t == "good.deleted")
        .collect();
    assert_eq!(
        types,
        [
            "event_counter.one",
            "event_counter.two",
            "event_counter.three",
            "good.deleted"
        ]
    );
}

#[tokio::test]
async fn every_event_reaches_a_subscriber_once_and_in_order_across_two_replicas() {
    let a = spawn(vec!["event_counter"], None).await;
    let b = spawn(vec!["event_counter"], Some(a.database_url.clone())).await;

    // One event alone first: how long from commit to acknowledgement.
    let started = Instant::now();
    let first = a
        .post("/api/v1/event_counter/emit?verb=first", None, json!({}))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    counter_until(&a, "the first event", |c| {
        !items_of(c, "event_counter.first").is_empty()
    })
    .await;
    println!(
        "delivery latency (emit answered -> acknowledged, polled every 20 ms): {:?}",
        started.elapsed()
    );

    const EACH: usize = 15;
    let burst = |app: &TestApp| {
        let client = app.client.clone();
        let url = format!("{}/api/v1/event_counter/emit?verb=burst", app.address);
        async move {
            for _ in 0..EACH {
                let reply = client.post(&url).json(&json!({})).send().await.unwrap();
                assert_eq!(reply.status(), StatusCode::OK);
            }
        }
    };
    tokio::join!(burst(&a), burst(&b));

    let counter = counter_until(&b, "every burst event", |c| {
        items_of(c, "event_counter.burst").len() >= 2 * EACH
    })
    .await;
    // Give a double delivery the chance to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counter_after = b.get("/api/v1/event_counter", None).await.body;
    assert_eq!(counter["deliveries"], counter_after["deliveries"]);
    assert_once_in_order(&counter_after);
    assert_eq!(
        items_of(&counter_after, "event_counter.burst").len(),
        2 * EACH
    );
    assert_eq!(items_of(&counter_after, "event_counter.first").len(), 1);
}

#[tokio::test]
async fn grants_show_subscriptions_and_refuse_bad_patterns() {
    let app = spawn(vec![], None).await;
    let admin = app.admin_token().await;
    let grants = app.get("/admin/grants", Some(&admin)).await;
    assert_eq!(grants.status, StatusCode::OK, "{}", grants.text);
    let wishlist = grants.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["component"] == "wishlist")
        .cloned()
        .unwrap();
    assert_eq!(
        wishlist["subscribe"],
        json!(["customer.deleted", "good.deleted"])
    );

    let bad = app
        .send(
            Method::PUT,
            "/admin/grants/wishlist",
            Some(&admin),
            Some(json!({"subscribe": ["everything", "good.*"], "memory_mib": 0})),
        )
        .await;
    bad.assert_problem(400);
    assert_eq!(bad.error_fields(), ["memory_mib", "subscribe"]);
    let set = app
        .send(
            Method::PUT,
            "/admin/grants/wishlist",
            Some(&admin),
            Some(json!({"imports": ["souk:platform/inventory-api"], "subscribe": ["good.*"]})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(set.body["subscribe"], json!(["good.*"]));
}
