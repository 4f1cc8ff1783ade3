//! Grants managed at run time through `/admin/grants`: granted, used,
//! revoked, without a restart, validated, and the same on every replica.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// What wallet_thief needs to move money.
fn wallet_grant() -> Value {
    json!({ "imports": ["souk:platform/customers-api", "souk:platform/wallet"] })
}

async fn put_grant(app: &TestApp, component: &str, grant: &Value, token: &str) -> Reply {
    app.send(
        Method::PUT,
        &format!("/admin/grants/{component}"),
        Some(token),
        Some(grant.clone()),
    )
    .await
}

async fn grant_of(app: &TestApp, component: &str, token: &str) -> Option<Value> {
    let reply = app.get("/admin/grants", Some(token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["component"] == component)
        .cloned()
}

#[tokio::test]
async fn every_components_grant_is_listed_with_where_it_comes_from() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let wishlist = grant_of(&app, "wishlist", &admin).await.unwrap();
    assert_eq!(wishlist["source"], "configured");
    assert_eq!(wishlist["imports"], json!(["souk:platform/inventory-api"]));
    let customers = grant_of(&app, "customers", &admin).await.unwrap();
    assert_eq!(customers["source"], "builtin");
    assert!(customers["memory_mib"].as_u64().unwrap() > 0);

    let alice = app.customer("alice").await;
    app.get("/admin/grants", Some(&alice))
        .await
        .assert_problem(403);
    app.get("/admin/grants", None).await.assert_problem(401);
    put_grant(&app, "wallet_thief", &wallet_grant(), &alice)
        .await
        .assert_problem(403);
}

#[tokio::test]
async fn an_extension_granted_at_run_time_deploys_serves_and_fails_cleanly_once_revoked() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let alice = app.customer("alice").await;
    app.charge("alice", json!(10)).await;

    // Not granted yet: the deploy is refused, naming what is missing.
    let refused = app
        .put_component(
            "wallet_thief",
            test_component_bytes("wallet_thief"),
            Some(&admin),
        )
        .await;
    refused.assert_problem(400);

    let granted = put_grant(&app, "wallet_thief", &wallet_grant(), &admin).await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text);
    assert_eq!(granted.body["source"], "operator");
    let deployed = app
        .put_component(
            "wallet_thief",
            test_component_bytes("wallet_thief"),
            Some(&admin),
        )
        .await;
    assert_eq!(deployed.status, StatusCode::OK, "{}", deployed.text);
    let debit = app
        .post(
            "/api/v1/wallet_thief/debit?cents=100",
            Some(&alice),
            json!({}),
        )
        .await;
    assert_eq!(debit.status, StatusCode::OK, "{}", debit.text);
    assert_eq!(app.balance_cents("alice").await, 900);

    let revoked = app.delete("/admin/grants/wallet_thief", Some(&admin)).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
    let listed = grant_of(&app, "wallet_thief", &admin).await.unwrap();
    assert_eq!(listed["imports"], json!([]));
    assert_eq!(listed["source"], "operator");
    assert_eq!(listed["updated_by"], ADMIN_USERNAME);

    // Its next call into the revoked interface fails cleanly, changing
    // nothing; everything else keeps working.
    let after = app
        .post(
            "/api/v1/wallet_thief/debit?cents=100",
            Some(&alice),
            json!({}),
        )
        .await;
    assert_eq!(
        after.assert_problem(503)["type"],
        "urn:souk:error:not-granted"
    );
    assert_eq!(app.balance_cents("alice").await, 900);
    let profile = app.get("/api/v1/customers/alice", Some(&alice)).await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.text);
    let wishlist = app.get("/api/v1/wishlist", Some(&alice)).await;
    assert_eq!(wishlist.status, StatusCode::OK, "{}", wishlist.text);
}

#[tokio::test]
async fn revoking_a_shipped_grant_stops_the_bundled_extension_using_it() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let alice = app.customer("alice").await;
    let good = app.add_good("Lamp", json!(10), 3).await;
    let added = app
        .post(
            "/api/v1/wishlist",
            Some(&alice),
            json!({ "good_id": good["id"] }),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);

    let revoked = app.delete("/admin/grants/wishlist", Some(&admin)).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
    let listed = app.get("/api/v1/wishlist", Some(&alice)).await;
    assert_eq!(
        listed.assert_problem(503)["type"],
        "urn:souk:error:not-granted"
    );

    // Granted again, it works again: nothing was lost.
    let granted = put_grant(
        &app,
        "wishlist",
        &json!({ "imports": ["souk:platform/inventory-api"], "deadline_ms": 10000 }),
        &admin,
    )
    .await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text);
    let listed = app.get("/api/v1/wishlist", Some(&alice)).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_grant_is_validated_naming_every_bad_field() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let reply = put_grant(
        &app,
        "questions",
        &json!({
            "imports": ["souk:platform/tokens", "wasi:sockets/tcp"],
            "memory_mib": 0,
            "deadline_ms": "soon",
            "max_concurency": 4
        }),
        &admin,
    )
    .await;
    reply.assert_problem(400);
    let mut fields = reply.error_fields();
    fields.sort();
    fields.dedup();
    assert_eq!(
        fields,
        ["deadline_ms", "imports", "max_concurency", "memory_mib"],
        "{}",
        reply.text
    );

    let reply = put_grant(
        &app,
        "questions",
        &json!({ "imports": ["souk:platform/credentials"], "memory_mib": 100000 }),
        &admin,
    )
    .await;
    reply.assert_problem(400);
    let mut fields = reply.error_fields();
    fields.sort();
    fields.dedup();
    assert_eq!(fields, ["imports", "memory_mib"], "{}", reply.text);

    let core = put_grant(&app, "customers", &json!({}), &admin).await;
    assert_eq!(
        core.assert_problem(409)["type"],
        "urn:souk:error:core-service"
    );
    let revoke_core = app.delete("/admin/grants/sales", Some(&admin)).await;
    revoke_core.assert_problem(409);
    let bad_name = put_grant(&app, "Bad-Name", &json!({}), &admin).await;
    assert_eq!(
        bad_name.assert_problem(400)["errors"][0]["field"],
        "component"
    );
    let not_json = app
        .send_raw(
            Method::PUT,
            "/admin/grants/questions",
            Some(&admin),
            Some("text/plain"),
            b"{}".to_vec(),
        )
        .await;
    not_json.assert_problem(415);
    // Nothing above was stored.
    assert!(grant_of(&app, "questions", &admin).await.is_none());
}

#[tokio::test]
async fn a_grant_set_on_one_replica_is_honoured_by_the_other() {
    let a = spawn_app_with(SpawnOptions {
        test_components: vec!["wallet_thief"],
        ..SpawnOptions::default()
    })
    .await;
    let b = spawn_app_with(SpawnOptions {
        test_components: vec!["wallet_thief"],
        database_url: Some(a.database_url.clone()),
        ..SpawnOptions::default()
    })
    .await;
    let admin = a.admin_token().await;
    let alice = a.customer("alice").await;
    a.charge("alice", json!(10)).await;
    assert!(b.component("wallet_thief").await.is_none());

    let granted = put_grant(&a, "wallet_thief", &wallet_grant(), &admin).await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text);
    let deployed = a
        .put_component(
            "wallet_thief",
            test_component_bytes("wallet_thief"),
            Some(&admin),
        )
        .await;
    assert_eq!(deployed.status, StatusCode::OK, "{}", deployed.text);

    // B picks up the grant and the deployment, then serves the extension.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = b
            .post(
                "/api/v1/wallet_thief/debit?cents=100",
                Some(&alice),
                json!({}),
            )
            .await;
        if reply.status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "B never served: {}", reply.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A revocation on A stops the extension on B too.
    a.delete("/admin/grants/wallet_thief", Some(&admin)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = b
            .post(
                "/api/v1/wallet_thief/debit?cents=100",
                Some(&alice),
                json!({}),
            )
            .await;
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(reply.problem_type(), "urn:souk:error:not-granted");
            break;
        }
        assert!(Instant::now() < deadline, "B still debits: {}", reply.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
