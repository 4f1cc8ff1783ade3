//! How many instances a request makes, counted by the real `souk` binary's
//! `souk_component_instances_total`: a request's second call to the same
//! component runs on the instance its first call left behind, and no
//! instance outlives its request (every request makes its own).
//!
//! A process of its own, so that no other test's requests move the count.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use support::{Host, request, send};

const ADMIN: (&str, &str) = ("root", "rootpass123");

/// `souk_component_instances_total{component="NAME"}`, 0 before the first.
fn instances(host: &Host, component: &str) -> f64 {
    let page = request(&host.addr, "GET", "/metrics", None);
    let series = format!("souk_component_instances_total{{component=\"{component}\"}} ");
    page.body()
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

/// The instances of each of `components` that `work` made.
fn made_by(host: &Host, components: &[&str], work: impl FnOnce()) -> Vec<f64> {
    let before: Vec<f64> = components.iter().map(|c| instances(host, c)).collect();
    work();
    components
        .iter()
        .zip(before)
        .map(|(component, before)| instances(host, component) - before)
        .collect()
}

fn token(host: &Host, username: &str, password: &str) -> String {
    let body = serde_json::json!({ "username": username, "password": password }).to_string();
    let reply = request(&host.addr, "POST", "/api/v1/auth/login", Some(&body));
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn a_request_makes_one_instance_of_each_component_it_calls() {
    let db = support::sqlite();
    let host = Host::start(
        &db.url,
        &[
            ("SOUK_ADMIN_USERNAME", ADMIN.0),
            ("SOUK_ADMIN_PASSWORD", ADMIN.1),
        ],
    );
    let addr = host.addr.as_str();
    let admin = token(&host, ADMIN.0, ADMIN.1);
    let good = serde_json::json!({
        "name": "saffron", "category": "food", "price": 2.5,
        "description": "Saffron threads", "count": 100,
    })
    .to_string();
    let added = send(addr, "POST", "/api/v1/goods", Some(&admin), Some(&good));
    assert_eq!(added.status, 201, "{}", added.text);
    let registered = request(
        addr,
        "POST",
        "/api/v1/customers",
        Some(&support::customer_json("amira")),
    );
    assert_eq!(registered.status, 201, "{}", registered.text);
    let amira = token(&host, "amira", "secret123");
    let charge = serde_json::json!({ "amount": 100 }).to_string();
    let charged = send(
        addr,
        "POST",
        "/api/v1/customers/amira/wallet/charge",
        Some(&amira),
        Some(&charge),
    );
    assert_eq!(charged.status, 200, "{}", charged.text);

    // The caller is resolved by the customers service, whose handler then
    // serves the read: one instance for both calls.
    let made = made_by(&host, &["customers"], || {
        let read = send(addr, "GET", "/api/v1/customers/amira", Some(&amira), None);
        assert_eq!(read.status, 200, "{}", read.text);
    });
    assert_eq!(made, [1.0]);

    // Each request its own: the next read makes a new one.
    let made = made_by(&host, &["customers"], || {
        for _ in 0..3 {
            let read = send(addr, "GET", "/api/v1/customers/amira", Some(&amira), None);
            assert_eq!(read.status, 200, "{}", read.text);
        }
    });
    assert_eq!(made, [3.0]);

    // A purchase resolves the caller and debits the wallet (customers),
    // reads the good and takes its stock (inventory), and is served by
    // sales: one instance of each.
    let purchase = serde_json::json!({ "good": "saffron", "quantity": 2 }).to_string();
    let made = made_by(&host, &["customers", "inventory", "sales"], || {
        let bought = send(addr, "POST", "/api/v1/sales", Some(&amira), Some(&purchase));
        assert_eq!(bought.status, 201, "{}", bought.text);
    });
    assert_eq!(made, [1.0, 1.0, 1.0]);

    // A failed purchase (more than the stock) keeps nothing and still
    // makes one instance of each component it reached.
    let too_many = serde_json::json!({ "good": "saffron", "quantity": 1000 }).to_string();
    let made = made_by(&host, &["customers", "inventory", "sales"], || {
        let refused = send(addr, "POST", "/api/v1/sales", Some(&amira), Some(&too_many));
        assert_eq!(refused.status, 409, "{}", refused.text);
    });
    assert_eq!(made[2], 1.0);
    assert!(made[0] <= 1.0 && made[1] <= 1.0, "{made:?}");
}
