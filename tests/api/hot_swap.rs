//! Hot swap, from the outside: an admin deploys a new version of a running
//! extension (`greeter`, tests/components/greeter*) while clients hammer it,
//! rolls it back, unloads it; bad deploys are refused with their reason and
//! change nothing; a restarted host serves what was deployed.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{
    ADMIN_USERNAME, SpawnOptions, TestApp, is_rfc3339_utc, metric, spawn_app_with,
    test_component_bytes,
};

const V1: &str = "1.0.0";
const V2: &str = "2.0.0";

/// A host with the product components and greeter version 1.
async fn greeter_app() -> TestApp {
    spawn_app_with(SpawnOptions {
        test_components: vec!["greeter"],
        ..SpawnOptions::default()
    })
    .await
}

/// The version of greeter that answers `GET /api/v1/greeter`, asserting 200.
async fn greeter_version(app: &TestApp) -> String {
    let reply = app.get("/api/v1/greeter", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["component"], "greeter", "{}", reply.text);
    reply.body["version"].as_str().unwrap().to_owned()
}

/// Deploy greeter version 2 as `greeter`, asserting 200; returns its entry.
async fn deploy_v2(app: &TestApp, admin: &str) -> Value {
    let reply = app
        .put_component("greeter", test_component_bytes("greeter_v2"), Some(admin))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body
}

/// `POST /admin/components/{name}/rollback` as `token`.
async fn roll_back(app: &TestApp, name: &str, token: Option<&str>) -> crate::helpers::Reply {
    app.send(
        Method::POST,
        &format!("/admin/components/{name}/rollback"),
        token,
        None,
    )
    .await
}

fn is_sha256(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// One request of a hammering client.
#[derive(Debug, Clone)]
struct Sample {
    client: usize,
    started: Instant,
    finished: Instant,
    status: u16,
    version: Option<String>,
}

/// Samples that started at or after `since` (and have finished).
fn started_since(samples: &Mutex<Vec<Sample>>, since: Instant) -> usize {
    samples
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.started >= since)
        .count()
}

/// Wait until `wanted` requests that started at or after `since` have
/// finished, and at least `at_least` has passed. Panics after a minute: a
/// host that stopped answering must fail the test, not hang it.
async fn wait_for_samples(
    samples: &Mutex<Vec<Sample>>,
    since: Instant,
    wanted: usize,
    at_least: Duration,
) {
    let give_up = Instant::now() + Duration::from_secs(60);
    while started_since(samples, since) < wanted || since.elapsed() < at_least {
        assert!(
            Instant::now() < give_up,
            "the clients stopped getting answers"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_deploys_under_load_with_no_failed_request_then_rolls_back() {
    const CLIENTS: usize = 8;
    const PER_PHASE: usize = 24;
    const PHASE: Duration = Duration::from_millis(650);
    let app = Arc::new(greeter_app().await);
    let admin = app.admin_token().await;
    assert_eq!(greeter_version(&app).await, V1);

    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (app, samples, stop) = (app.clone(), samples.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let response = app
                    .request(Method::GET, "/api/v1/greeter", None)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                let (status, version) = match response {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body: Value = response.json().await.unwrap_or(Value::Null);
                        (status, body["version"].as_str().map(str::to_owned))
                    }
                    Err(_) => (0, None),
                };
                samples.lock().unwrap().push(Sample {
                    client,
                    started,
                    finished: Instant::now(),
                    status,
                    version,
                });
            }
        }));
    }

    let start = Instant::now();
    wait_for_samples(&samples, start, PER_PHASE, PHASE).await;
    let put_sent = Instant::now();
    let deployed = deploy_v2(&app, &admin).await;
    let put_returned = Instant::now();
    wait_for_samples(&samples, put_returned, PER_PHASE, PHASE).await;
    let rollback_sent = Instant::now();
    let rolled_back = roll_back(&app, "greeter", Some(&admin)).await;
    let rollback_returned = Instant::now();
    wait_for_samples(&samples, rollback_returned, PER_PHASE, PHASE).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }

    assert_eq!(deployed["version"], V2, "{deployed}");
    assert_eq!(rolled_back.status, StatusCode::OK, "{}", rolled_back.text);
    assert_eq!(rolled_back.body["version"], V1, "{}", rolled_back.text);
    let samples = samples.lock().unwrap().clone();
    let failed: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.status != 200 || s.version.is_none())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the swap: {failed:?}",
        failed.len(),
        samples.len()
    );
    let version_of = |s: &Sample| s.version.clone().unwrap_or_default();
    // Before the deploy was sent, version 1 answered.
    let before: Vec<&Sample> = samples.iter().filter(|s| s.finished <= put_sent).collect();
    // Between the deploy's answer and the rollback, version 2 did.
    let between: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.started >= put_returned && s.finished <= rollback_sent)
        .collect();
    // After the rollback's answer, version 1 again.
    let after: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.started >= rollback_returned)
        .collect();
    for (phase, wanted, group) in [
        ("before the deploy", V1, &before),
        ("after the deploy", V2, &between),
        ("after the rollback", V1, &after),
    ] {
        assert!(!group.is_empty(), "no request {phase}");
        let wrong: Vec<_> = group.iter().filter(|s| version_of(s) != wanted).collect();
        assert!(wrong.is_empty(), "{phase}, not {wanted}: {wrong:?}");
    }
    // Each client saw 1.0.0, then 2.0.0, then 1.0.0: no flapping back and
    // forth while a version was being swapped in.
    for client in 0..CLIENTS {
        let mut versions: Vec<String> = samples
            .iter()
            .filter(|s| s.client == client)
            .map(version_of)
            .collect();
        versions.dedup();
        assert!(
            versions.len() <= 3 && versions.first().map(String::as_str) == Some(V1),
            "client {client} saw {versions:?}"
        );
    }
}

#[tokio::test]
async fn a_deploy_shows_in_admin_components_health_and_metrics_and_a_rollback_reverts_it() {
    let app = greeter_app().await;
    let admin = app.admin_token().await;
    let v1 = app.component("greeter").await.expect("greeter is listed");
    assert_eq!(v1["version"], V1, "{v1}");
    assert!(is_sha256(&v1["sha256"]), "{v1}");
    assert_eq!(v1["deployed_by"], "build", "{v1}");
    assert!(is_rfc3339_utc(v1["deployed_at"].as_str().unwrap()), "{v1}");
    assert_eq!(v1["previous_versions"], serde_json::json!([]), "{v1}");

    let deployed = deploy_v2(&app, &admin).await;

    let listed = app.component("greeter").await.expect("greeter is listed");
    assert_eq!(listed, deployed, "the PUT answers with the listing's entry");
    assert_eq!(listed["name"], "greeter");
    assert_eq!(listed["version"], V2, "{listed}");
    assert!(is_sha256(&listed["sha256"]), "{listed}");
    assert_ne!(listed["sha256"], v1["sha256"], "{listed}");
    assert_eq!(listed["deployed_by"], ADMIN_USERNAME, "{listed}");
    assert!(
        is_rfc3339_utc(listed["deployed_at"].as_str().unwrap()),
        "{listed}"
    );
    let previous = listed["previous_versions"].as_array().unwrap();
    assert_eq!(previous.len(), 1, "{listed}");
    assert_eq!(previous[0]["version"], V1, "{listed}");
    assert_eq!(previous[0]["sha256"], v1["sha256"], "{listed}");
    assert_eq!(previous[0]["deployed_by"], "build", "{listed}");
    assert_eq!(greeter_version(&app).await, V2);

    let status = app.get("/health/status", None).await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.text);
    let greeter: Vec<&Value> = status.body["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "greeter")
        .collect();
    assert_eq!(greeter.len(), 1, "{}", status.text);
    assert_eq!(greeter[0]["version"], V2, "{}", status.text);
    let page = app.metrics_page().await;
    let sha = listed["sha256"].as_str().unwrap();
    assert_eq!(
        metric(
            &page,
            "souk_component_info",
            &[("component", "greeter"), ("version", V2), ("sha256", sha)]
        ),
        1.0,
        "{page}"
    );

    let rolled_back = roll_back(&app, "greeter", Some(&admin)).await;
    assert_eq!(rolled_back.status, StatusCode::OK, "{}", rolled_back.text);
    assert_eq!(greeter_version(&app).await, V1);
    let listed = app.component("greeter").await.unwrap();
    assert_eq!(listed["version"], V1, "{listed}");
    assert_eq!(listed["sha256"], v1["sha256"], "{listed}");
    let previous = listed["previous_versions"].as_array().unwrap();
    assert!(
        previous
            .iter()
            .any(|p| p["version"] == V2 && p["sha256"] == sha),
        "the rolled-back version stays in the history: {listed}"
    );
    let status = app.get("/health/status", None).await;
    assert!(
        status.body["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "greeter" && c["version"] == V1),
        "{}",
        status.text
    );

    // Rolling back again finds no earlier version than the first.
    let again = roll_back(&app, "greeter", Some(&admin)).await;
    let problem = again.assert_problem(409);
    assert_eq!(
        problem["type"], "urn:souk:error:no-previous-version",
        "{}",
        again.text
    );
    assert_eq!(greeter_version(&app).await, V1);
}

#[tokio::test]
async fn bad_deploys_are_refused_with_their_reason_and_change_nothing() {
    let app = greeter_app().await;
    let admin = app.admin_token().await;
    let before = app.component("greeter").await.expect("greeter is listed");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage",
            b"\0asm but not really a component".to_vec(),
            "not a valid WebAssembly component",
        ),
        ("empty", Vec::new(), "not a valid WebAssembly component"),
        (
            "another world (no handler)",
            test_component_bytes("not_a_service"),
            "does not export what its world requires",
        ),
        (
            "an ungranted import",
            test_component_bytes("token_thief"),
            "imports `souk:platform/tokens",
        ),
        (
            "a migration that fails half-way",
            test_component_bytes("greeter_bad_migration"),
            "migration 2 (create_extra_then_fail) failed",
        ),
        (
            "a migration the check refuses",
            test_component_bytes("greeter_refused_migration"),
            "migration 2 (create_extra_and_wipe_customers) refused",
        ),
        (
            "another component's name",
            test_component_bytes("hostile"),
            "calls itself `hostile`, but was loaded as `greeter`",
        ),
    ];

    for (case, bytes, reason) in cases {
        let reply = app.put_component("greeter", bytes, Some(&admin)).await;

        let problem = reply.assert_problem(400);
        assert_eq!(
            problem["type"], "urn:souk:error:invalid-component",
            "{case}: {}",
            reply.text
        );
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(reason), "{case}: {detail}");
        assert_eq!(greeter_version(&app).await, V1, "{case}");
        assert_eq!(
            app.component("greeter").await.as_ref(),
            Some(&before),
            "{case}: the deployment history changed"
        );
    }

    // A bad name is refused before anything is read.
    let reply = app
        .put_component("Not-A-Name", test_component_bytes("greeter"), Some(&admin))
        .await;
    let problem = reply.assert_problem(400);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("invalid component name"),
        "{}",
        reply.text
    );
    // Neither the refused nor the half-failed migration left anything
    // behind: version 2, whose own migration creates `greeter_extra`,
    // deploys, and the table is empty.
    let deployed = deploy_v2(&app, &admin).await;
    assert_eq!(
        deployed["previous_versions"].as_array().unwrap().len(),
        1,
        "{deployed}"
    );
    let extra = app.get("/api/v1/greeter/extra", None).await;
    assert_eq!(extra.status, StatusCode::OK, "{}", extra.text);
    assert_eq!(extra.body["rows"], 0, "{}", extra.text);
    // The customers the refused migration meant to delete are still there.
    let admin_profile = app
        .get(&format!("/api/v1/customers/{ADMIN_USERNAME}"), Some(&admin))
        .await;
    assert_eq!(
        admin_profile.status,
        StatusCode::OK,
        "{}",
        admin_profile.text
    );
}

#[tokio::test]
async fn only_an_admin_may_manage_components_and_only_with_wasm() {
    let app = greeter_app().await;
    let admin = app.admin_token().await;
    let customer = app.customer("alice").await;
    let greeter = test_component_bytes("greeter_v2");

    let anonymous = app.put_component("greeter", greeter.clone(), None).await;
    anonymous.assert_problem(401);
    let forged = app
        .put_component("greeter", greeter.clone(), Some("not.a.token"))
        .await;
    forged.assert_problem(401);
    let by_customer = app
        .put_component("greeter", greeter.clone(), Some(&customer))
        .await;
    by_customer.assert_problem(403);
    for content_type in [None, Some("application/octet-stream")] {
        let reply = app
            .send_raw(
                Method::PUT,
                "/admin/components/greeter",
                Some(&admin),
                content_type,
                greeter.clone(),
            )
            .await;
        reply.assert_problem(415);
    }
    app.get("/admin/components", None).await.assert_problem(401);
    app.get("/admin/components", Some(&customer))
        .await
        .assert_problem(403);
    roll_back(&app, "greeter", None).await.assert_problem(401);
    roll_back(&app, "greeter", Some(&customer))
        .await
        .assert_problem(403);
    app.delete("/admin/components/greeter", None)
        .await
        .assert_problem(401);
    app.delete("/admin/components/greeter", Some(&customer))
        .await
        .assert_problem(403);

    // None of it changed what serves.
    assert_eq!(greeter_version(&app).await, V1);
    let listed = app.component("greeter").await.unwrap();
    assert_eq!(
        listed["previous_versions"],
        serde_json::json!([]),
        "{listed}"
    );
}

#[tokio::test]
async fn core_services_cannot_be_unloaded_but_extensions_can_and_come_back_with_a_deploy() {
    let app = greeter_app().await;
    let admin = app.admin_token().await;

    for core in ["customers", "inventory", "sales", "reviews"] {
        let reply = app
            .delete(&format!("/admin/components/{core}"), Some(&admin))
            .await;
        let problem = reply.assert_problem(409);
        assert_eq!(problem["type"], "urn:souk:error:core-service", "{core}");
    }
    let registered = app.register("alice").await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text
    );

    let unloaded = app.delete("/admin/components/greeter", Some(&admin)).await;
    assert_eq!(unloaded.status, StatusCode::NO_CONTENT, "{}", unloaded.text);
    let gone = app.get("/api/v1/greeter", None).await;
    gone.assert_problem(404);
    assert!(app.component("greeter").await.is_none());
    let status = app.get("/health/status", None).await;
    assert!(
        !status.text.contains("\"greeter\""),
        "greeter is still listed: {}",
        status.text
    );
    app.delete("/admin/components/greeter", Some(&admin))
        .await
        .assert_problem(404);

    // Deploying it again brings it back.
    let back = app
        .put_component("greeter", test_component_bytes("greeter"), Some(&admin))
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text);
    assert_eq!(greeter_version(&app).await, V1);
}

#[tokio::test]
async fn a_restarted_host_serves_the_deployed_version_not_the_one_in_its_directory() {
    let first = greeter_app().await;
    let admin = first.admin_token().await;
    let deployed = deploy_v2(&first, &admin).await;
    assert_eq!(greeter_version(&first).await, V2);
    let stopped = first.shut_down().await;

    // Its components directory still holds greeter version 1.
    let second = spawn_app_with(SpawnOptions {
        test_components: vec!["greeter"],
        database_url: Some(stopped.database_url.clone()),
        ..SpawnOptions::default()
    })
    .await;

    assert_eq!(greeter_version(&second).await, V2);
    let listed = second.component("greeter").await.unwrap();
    assert_eq!(listed["sha256"], deployed["sha256"], "{listed}");
    assert_eq!(listed["deployed_by"], ADMIN_USERNAME, "{listed}");
    // And its rollback target survived the restart too.
    let admin = second.admin_token().await;
    let rolled_back = roll_back(&second, "greeter", Some(&admin)).await;
    assert_eq!(rolled_back.status, StatusCode::OK, "{}", rolled_back.text);
    assert_eq!(greeter_version(&second).await, V1);
}

#[tokio::test]
async fn a_restarted_host_does_not_reload_an_unloaded_extension_from_its_directory() {
    let first = greeter_app().await;
    let admin = first.admin_token().await;
    let unloaded = first
        .delete("/admin/components/greeter", Some(&admin))
        .await;
    assert_eq!(unloaded.status, StatusCode::NO_CONTENT, "{}", unloaded.text);
    let stopped = first.shut_down().await;

    let second = spawn_app_with(SpawnOptions {
        test_components: vec!["greeter"],
        database_url: Some(stopped.database_url.clone()),
        ..SpawnOptions::default()
    })
    .await;

    second
        .get("/api/v1/greeter", None)
        .await
        .assert_problem(404);
    assert!(second.component("greeter").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_core_service_redeploys_under_load_with_no_failed_request() {
    const CLIENTS: usize = 4;
    let app = Arc::new(greeter_app().await);
    let admin = app.admin_token().await;
    let alice = app.customer("alice").await;
    let customers = std::fs::read(
        std::path::Path::new(souk::config::BUILT_COMPONENTS_DIR).join("customers.wasm"),
    )
    .unwrap();

    // Every request of these clients needs the customers service twice:
    // the host resolves the token through it, then it serves the profile.
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (app, alice, stop) = (app.clone(), alice.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let reply = app.get("/api/v1/customers/alice", Some(&alice)).await;
                statuses.push((reply.status.as_u16(), reply.text));
            }
            statuses
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let redeployed = app
        .put_component("customers", customers.clone(), Some(&admin))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rolled_back = roll_back(&app, "customers", Some(&admin)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut statuses = Vec::new();
    for client in clients {
        statuses.extend(client.await.unwrap());
    }

    assert_eq!(redeployed.status, StatusCode::OK, "{}", redeployed.text);
    assert_eq!(redeployed.body["core"], true, "{}", redeployed.text);
    assert_eq!(rolled_back.status, StatusCode::OK, "{}", rolled_back.text);
    assert!(!statuses.is_empty());
    let failed: Vec<_> = statuses
        .iter()
        .filter(|(status, _)| *status != 200)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        statuses.len()
    );
    // Logins and registrations work on the version rolled back to.
    let bob = app.register("bob").await;
    assert_eq!(bob.status, StatusCode::CREATED, "{}", bob.text);
    app.token("bob", crate::helpers::PASSWORD).await;
}

#[tokio::test]
async fn a_replaced_version_is_no_longer_reported_as_running_in_metrics() {
    // Only this test scrapes `/metrics` while greeter 1.0.0 serves (the
    // metrics recorder is shared by every test in this process).
    let app = greeter_app().await;
    let admin = app.admin_token().await;
    let v1 = app.component("greeter").await.unwrap();
    let v1_info = [
        ("component", "greeter"),
        ("version", V1),
        ("sha256", v1["sha256"].as_str().unwrap()),
    ];
    let page = app.metrics_page().await;
    assert_eq!(
        metric(&page, "souk_component_info", &v1_info),
        1.0,
        "{page}"
    );

    deploy_v2(&app, &admin).await;

    let page = app.metrics_page().await;
    assert_eq!(
        metric(&page, "souk_component_info", &v1_info),
        0.0,
        "greeter {V1} was replaced but is still reported as running:\n{}",
        page.lines()
            .filter(|l| l.starts_with("souk_component_info{component=\"greeter\""))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test]
async fn a_core_service_without_its_service_export_is_refused_and_purchases_keep_working() {
    let app = spawn_app_with(SpawnOptions::default()).await;
    let admin = app.admin_token().await;
    app.add_good("Copper Kettle", serde_json::json!(2), 5).await;
    let alice = app.customer("alice").await;
    app.charge("alice", serde_json::json!(10)).await;
    let buy = || {
        app.post(
            "/api/v1/sales",
            Some(&alice),
            serde_json::json!({ "good": "Copper Kettle" }),
        )
    };
    let first = buy().await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);

    // It calls itself inventory and serves /api/v1/goods, but lacks the
    // inventory-api export the sales service buys through.
    let reply = app
        .put_component(
            "inventory",
            test_component_bytes("inventory_impostor"),
            Some(&admin),
        )
        .await;

    let problem = reply.assert_problem(400);
    assert_eq!(problem["type"], "urn:souk:error:invalid-component");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("inventory-api"),
        "{}",
        reply.text
    );
    let second = buy().await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);
}

#[tokio::test]
async fn an_unload_lets_the_request_in_flight_finish_and_refuses_new_ones() {
    let app = Arc::new(
        spawn_app_with(SpawnOptions {
            test_components: vec!["hostile"],
            grants: Some(r#"{"hostile": {"max_concurrency": 1, "deadline_ms": 20000}}"#),
            ..SpawnOptions::default()
        })
        .await,
    );
    let admin = app.admin_token().await;

    // A long request that holds hostile's only slot (it retries if a probe
    // below happened to hold the slot when it arrived).
    let long = {
        let app = app.clone();
        tokio::spawn(async move {
            loop {
                let builder = app
                    .request(Method::GET, "/api/v1/hostile/busy?ms=2000", None)
                    .timeout(Duration::from_secs(60));
                let reply = app.send_built(builder).await;
                if reply.problem_type() != "urn:souk:error:overloaded" {
                    return reply;
                }
            }
        })
    };
    // Once a probe is turned away, the long request is running.
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let probe = app.get("/api/v1/hostile/busy?ms=1", None).await;
        if probe.problem_type() == "urn:souk:error:overloaded" {
            break;
        }
        assert_eq!(probe.status, StatusCode::OK, "{}", probe.text);
        assert!(Instant::now() < give_up, "the long request never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let unloaded = app.delete("/admin/components/hostile", Some(&admin)).await;
    assert_eq!(unloaded.status, StatusCode::NO_CONTENT, "{}", unloaded.text);
    app.get("/api/v1/hostile/busy?ms=1", None)
        .await
        .assert_problem(404);

    let finished = long.await.unwrap();
    assert_eq!(finished.status, StatusCode::OK, "{}", finished.text);
    assert_eq!(finished.body["busy_ms"], 2000, "{}", finished.text);
}

#[tokio::test]
async fn with_watch_a_rebuilt_file_is_deployed_and_a_bad_one_is_not() {
    let app = spawn_app_with(SpawnOptions {
        test_components: vec!["greeter"],
        watch: true,
        ..SpawnOptions::default()
    })
    .await;
    let file = app.dir.path().join("components").join("greeter.wasm");
    let converges = |wanted: &'static str| {
        let app = &app;
        async move {
            let give_up = Instant::now() + Duration::from_secs(10);
            loop {
                if greeter_version(app).await == wanted {
                    return;
                }
                assert!(Instant::now() < give_up, "greeter never became {wanted}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    std::fs::write(&file, test_component_bytes("greeter_v2")).unwrap();
    converges(V2).await;
    let listed = app.component("greeter").await.unwrap();
    assert_eq!(listed["deployed_by"], "watch", "{listed}");

    // A broken build is not deployed; version 2 keeps serving.
    std::fs::write(&file, test_component_bytes("greeter_bad_migration")).unwrap();
    std::fs::write(app.dir.path().join("components").join("junk.wasm"), b"junk").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(greeter_version(&app).await, V2);
    assert_eq!(app.component("greeter").await.unwrap(), listed);
    assert!(app.component("junk").await.is_none());

    std::fs::write(&file, test_component_bytes("greeter")).unwrap();
    converges(V1).await;
}
