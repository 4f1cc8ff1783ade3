//! Two replicas on one database (a shared SQLite file, or one PostgreSQL
//! database with `SOUK_TEST_BACKEND=postgres`): a deploy, rollback or unload
//! on either is served by both within a bounded wait, and purchases spread
//! across both never oversell and conserve money.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Reply, SpawnOptions, TestApp, cents, spawn_app_with, test_component_bytes};

/// How long a replica may take to pick up a change made on the other (it
/// re-reads the deployments every second, and at once on PostgreSQL).
const CONVERGE_WITHIN: Duration = Duration::from_secs(5);

/// Two hosts on one database, each with greeter version 1 in its directory.
async fn replicas() -> (TestApp, TestApp) {
    let first = spawn_app_with(SpawnOptions {
        test_components: vec!["greeter"],
        ..SpawnOptions::default()
    })
    .await;
    let second = spawn_app_with(SpawnOptions {
        test_components: vec!["greeter"],
        database_url: Some(first.database_url.clone()),
        ..SpawnOptions::default()
    })
    .await;
    (first, second)
}

/// What `GET /api/v1/greeter` answers: the version, or the status if not 200.
async fn greeter_answer(app: &TestApp) -> String {
    let reply = app.get("/api/v1/greeter", None).await;
    if reply.status == StatusCode::OK {
        reply.body["version"].as_str().unwrap_or("?").to_owned()
    } else {
        reply.status.as_u16().to_string()
    }
}

/// Poll `probe` until it returns `wanted`, for at most [`CONVERGE_WITHIN`].
async fn converges<F, Fut>(what: &str, wanted: &str, probe: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = String>,
{
    let deadline = Instant::now() + CONVERGE_WITHIN;
    loop {
        let seen = probe().await;
        if seen == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {seen}, not {wanted}, after {CONVERGE_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_deploy_rollback_and_unload_on_one_replica_are_served_by_the_other() {
    let (a, b) = replicas().await;
    let admin = a.admin_token().await;
    assert_eq!(greeter_answer(&a).await, "1.0.0");
    assert_eq!(greeter_answer(&b).await, "1.0.0");

    let deployed = a
        .put_component("greeter", test_component_bytes("greeter_v2"), Some(&admin))
        .await;
    assert_eq!(deployed.status, StatusCode::OK, "{}", deployed.text);
    assert_eq!(greeter_answer(&a).await, "2.0.0");
    converges("B after the deploy on A", "2.0.0", || greeter_answer(&b)).await;
    // B lists what A deployed, with its history.
    let listed = b.component("greeter").await.unwrap();
    assert_eq!(listed["sha256"], deployed.body["sha256"], "{listed}");
    assert_eq!(
        listed["previous_versions"], deployed.body["previous_versions"],
        "{listed}"
    );
    // version 2's new table exists for B too.
    let extra = b.get("/api/v1/greeter/extra", None).await;
    assert_eq!(extra.status, StatusCode::OK, "{}", extra.text);

    let rolled_back = b
        .send(
            Method::POST,
            "/admin/components/greeter/rollback",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(rolled_back.status, StatusCode::OK, "{}", rolled_back.text);
    assert_eq!(greeter_answer(&b).await, "1.0.0");
    converges("A after the rollback on B", "1.0.0", || greeter_answer(&a)).await;

    let unloaded = a.delete("/admin/components/greeter", Some(&admin)).await;
    assert_eq!(unloaded.status, StatusCode::NO_CONTENT, "{}", unloaded.text);
    converges("B after the unload on A", "404", || greeter_answer(&b)).await;

    let redeployed = b
        .put_component("greeter", test_component_bytes("greeter_v2"), Some(&admin))
        .await;
    assert_eq!(redeployed.status, StatusCode::OK, "{}", redeployed.text);
    converges("A after the new deploy on B", "2.0.0", || {
        greeter_answer(&a)
    })
    .await;
}

#[tokio::test]
async fn a_bad_deploy_on_one_replica_changes_nothing_on_either() {
    let (a, b) = replicas().await;
    let admin = a.admin_token().await;

    let refused = a
        .put_component(
            "greeter",
            test_component_bytes("greeter_bad_migration"),
            Some(&admin),
        )
        .await;
    refused.assert_problem(400);

    // Give B more than a reconcile period to pick up anything there were.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(greeter_answer(&a).await, "1.0.0");
    assert_eq!(greeter_answer(&b).await, "1.0.0");
    assert_eq!(a.component("greeter").await, b.component("greeter").await);
}

/// `POST /api/v1/sales` for one unit of `good` as `token`.
async fn buy_one(app: &TestApp, token: &str, good: &str) -> Reply {
    app.post(
        "/api/v1/sales",
        Some(token),
        json!({ "good": good, "quantity": 1 }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchases_spread_across_two_replicas_never_oversell_and_conserve_money() {
    const CUSTOMERS: usize = 6;
    const TRIES_EACH: usize = 4;
    const STOCK: i64 = 10;
    const PRICE_CENTS: i64 = 300;
    const WALLET_CENTS: i64 = 1000;
    let (a, b) = replicas().await;
    let good = a.add_good("Brass Lamp", json!(3), STOCK).await;
    let good_id = good["id"].as_str().unwrap().to_owned();
    let mut buyers = Vec::new();
    for index in 0..CUSTOMERS {
        let username = format!("buyer{index}");
        let token = a.customer(&username).await;
        let charged = a.charge(&username, json!(10)).await;
        assert_eq!(charged.status, StatusCode::OK, "{}", charged.text);
        buyers.push((username, token));
    }
    let (a, b) = (Arc::new(a), Arc::new(b));

    // 24 attempts on 10 units: every buyer could afford 3, so the stock,
    // not the money, runs out. Attempts alternate between the replicas.
    let mut attempts = Vec::new();
    for (index, (_, token)) in buyers.iter().enumerate() {
        for attempt in 0..TRIES_EACH {
            let app = if (index + attempt) % 2 == 0 {
                a.clone()
            } else {
                b.clone()
            };
            let token = token.clone();
            attempts.push(tokio::spawn(async move {
                buy_one(&app, &token, "Brass Lamp").await
            }));
        }
    }
    let mut sold = 0;
    let mut unexpected = Vec::new();
    for attempt in attempts {
        let reply = attempt.await.unwrap();
        match (reply.status.as_u16(), reply.problem_type()) {
            (201, _) => sold += 1,
            (409, "urn:souk:error:insufficient-stock" | "urn:souk:error:insufficient-funds") => {}
            _ => unexpected.push(format!("{}: {}", reply.status, reply.text)),
        }
    }

    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:#?}");
    assert_eq!(sold, STOCK, "every unit sells exactly once");
    for app in [&a, &b] {
        assert_eq!(app.good(&good_id).await["count"], 0);
    }
    let mut wallets = 0;
    let mut recorded = 0;
    let admin = a.admin_token().await;
    for (username, _) in &buyers {
        let balance = b.balance_cents(username).await;
        assert!(balance >= 0, "{username} has {balance} cents");
        wallets += balance;
        let history = a
            .get(&format!("/api/v1/sales/history/{username}"), Some(&admin))
            .await;
        assert_eq!(history.status, StatusCode::OK, "{}", history.text);
        let total = history.body["total"].as_i64().unwrap();
        assert_eq!(
            WALLET_CENTS - balance,
            total * PRICE_CENTS,
            "{username} paid for exactly what their history shows"
        );
        let paid: i64 = history.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|sale: &Value| cents(&sale["total"]))
            .sum();
        assert_eq!(paid, WALLET_CENTS - balance, "{username}");
        recorded += total;
    }
    assert_eq!(recorded, STOCK);
    assert_eq!(
        wallets + STOCK * PRICE_CENTS,
        CUSTOMERS as i64 * WALLET_CENTS,
        "money was created or lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deploys_on_two_replicas_converge_on_one_version() {
    let (a, b) = replicas().await;
    let admin = a.admin_token().await;

    for _round in 0..3 {
        let (on_a, on_b) = tokio::join!(
            a.put_component("greeter", test_component_bytes("greeter_v2"), Some(&admin)),
            b.put_component("greeter", test_component_bytes("greeter"), Some(&admin)),
        );
        assert_eq!(on_a.status, StatusCode::OK, "{}", on_a.text);
        assert_eq!(on_b.status, StatusCode::OK, "{}", on_b.text);

        // Whichever was recorded last is current, and both serve it.
        let deadline = Instant::now() + CONVERGE_WITHIN;
        loop {
            let current = a.component("greeter").await.unwrap()["version"].clone();
            let (on_a, on_b) = (greeter_answer(&a).await, greeter_answer(&b).await);
            if on_a == on_b && current == on_a.as_str() {
                assert_eq!(b.component("greeter").await.unwrap()["version"], current);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the replicas disagree after {CONVERGE_WITHIN:?}: A serves {on_a}, B {on_b}, \
                 A lists {current}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn two_replicas_starting_together_on_an_empty_database_both_serve() {
    // Each round: both hosts migrate, generate the JWT secret and bootstrap
    // the same admin at the same moment on one empty database.
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let (url, _postgres) = crate::helpers::fresh_database(&dir).await;
        let options = || SpawnOptions {
            database_url: Some(url.clone()),
            ..SpawnOptions::default()
        };
        let (a, b) = tokio::join!(spawn_app_with(options()), spawn_app_with(options()));
        let token = a.admin_token().await;
        for app in [&a, &b] {
            let health = app.get("/health/status", None).await;
            assert_eq!(health.status, StatusCode::OK, "{}", health.text);
            // One admin, known to both: a token from one works on the other.
            let admins = app
                .get(
                    &format!("/api/v1/customers?q={}", crate::helpers::ADMIN_USERNAME),
                    Some(&token),
                )
                .await;
            assert_eq!(admins.status, StatusCode::OK, "{}", admins.text);
            assert_eq!(admins.body["total"], 1, "{}", admins.text);
        }
    }
}
