//! Webhooks: managed by admins through `/admin/webhooks`, fed by committed
//! events, delivered signed to receivers that run inside the test (tiny
//! axum servers on random ports), retried, logged, replayed — and never on
//! a request's path.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode as AxumStatus},
    routing::post,
};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::*;

/// What a receiver answers to its `n`-th request (1-based).
type Script = fn(usize) -> Answer;

#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// Never answer within any sane timeout.
    Hang,
}

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Hit {
    headers: HeaderMap,
    body: Bytes,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A receiver on 127.0.0.1, recording every request.
struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self._server.abort();
    }
}

impl Receiver {
    async fn start(script: Script) -> Self {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        async fn hook(
            State((hits, script)): State<(Arc<Mutex<Vec<Hit>>>, Script)>,
            headers: HeaderMap,
            body: Bytes,
        ) -> AxumStatus {
            let n = {
                let mut hits = hits.lock().unwrap();
                hits.push(Hit { headers, body });
                hits.len()
            };
            match script(n) {
                Answer::Status(code) => AxumStatus::from_u16(code).unwrap(),
                Answer::Hang => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    AxumStatus::OK
                }
            }
        }
        let router = Router::new()
            .route("/hook", post(hook))
            .with_state((hits.clone(), script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            url,
            hits,
            _server: server,
        }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// The hits once there are at least `n`, waiting up to `within`.
    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Hit> {
        let deadline = Instant::now() + within;
        loop {
            let hits = self.hits();
            if hits.len() >= n {
                return hits;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} requests in {within:?}, expected {n}: {:?}",
                hits.len(),
                hits.iter().map(Hit::json).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Retries fast enough to watch: 4 attempts, 100 ms doubling.
fn fast_retries(settings: &mut souk::Settings) {
    settings.webhooks.max_attempts = 4;
    settings.webhooks.retry_base = Duration::from_millis(100);
    settings.webhooks.retry_cap = Duration::from_millis(400);
    settings.webhooks.timeout = Duration::from_secs(2);
    settings.webhooks.poll = Duration::from_millis(50);
}

/// Three attempts of at most a second each.
fn impatient(settings: &mut souk::Settings) {
    fast_retries(settings);
    settings.webhooks.max_attempts = 3;
    settings.webhooks.timeout = Duration::from_secs(1);
}

async fn spawn_webhook_app(configure: fn(&mut souk::Settings)) -> TestApp {
    spawn_app_with(SpawnOptions {
        settings: Some(configure),
        ..SpawnOptions::default()
    })
    .await
}

/// Create a webhook as `token`, asserting 201; the reply body.
async fn create_webhook(app: &TestApp, token: &str, url: &str, events: Value) -> Value {
    let reply = app
        .post(
            "/admin/webhooks",
            Some(token),
            json!({ "url": url, "events": events }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.body
}

async fn deliveries(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let reply = app
        .get(&format!("/admin/webhooks/{id}/deliveries"), Some(token))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body["items"].as_array().unwrap().clone()
}

/// The deliveries of `id` once `done` holds for them, waiting up to `within`.
async fn wait_for_deliveries(
    app: &TestApp,
    token: &str,
    id: &str,
    within: Duration,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let items = deliveries(app, token, id).await;
        if done(&items) {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries never settled: {items:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Assert `hit` carries a valid `Souk-Signature` for `secret`, made now.
fn assert_signed(hit: &Hit, secret: &str) {
    let header = hit.header("souk-signature");
    let (t, v1) = header
        .split_once(',')
        .and_then(|(t, v1)| Some((t.strip_prefix("t=")?, v1.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("malformed signature header {header:?}"));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(&hit.body);
    mac.verify_slice(&hex::decode(v1).unwrap())
        .unwrap_or_else(|_| panic!("the signature does not verify: {header}"));
    let age = unix_now().abs_diff(t.parse::<u64>().unwrap());
    assert!(age < 60, "signature timestamp {t} is {age} s off");
}

#[tokio::test]
async fn a_webhook_shows_its_secret_once_and_never_again() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let reply = app
        .post(
            "/admin/webhooks",
            Some(&admin),
            json!({ "url": "http://127.0.0.1:9/hook", "events": ["customer.*", "sale.completed"] }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let created = &reply.body;
    let id = created["id"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("whsec_") && secret.len() >= 38,
        "{secret}"
    );
    assert_eq!(created["url"], "http://127.0.0.1:9/hook");
    assert_eq!(created["events"], json!(["customer.*", "sale.completed"]));
    assert_eq!(created["enabled"], true);
    assert!(is_rfc3339_utc(created["created_at"].as_str().unwrap()));
    assert_eq!(
        reply.header("location"),
        Some(format!("/admin/webhooks/{id}").as_str())
    );

    let list = app.get("/admin/webhooks", Some(&admin)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["total"], 1);
    assert_eq!(
        (list.body["limit"].clone(), list.body["offset"].clone()),
        (json!(50), json!(0))
    );
    assert_eq!(list.body["items"][0]["id"], id);
    assert!(list.body["items"][0].get("secret").is_none());
    let one = app
        .get(&format!("/admin/webhooks/{id}"), Some(&admin))
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert!(one.body.get("secret").is_none());
    let patched = app
        .patch(
            &format!("/admin/webhooks/{id}"),
            Some(&admin),
            json!({ "events": ["good.*"] }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.body["events"], json!(["good.*"]));
    let audit = app
        .get(&format!("/admin/audit?subject={id}"), Some(&admin))
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.text);
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["action"].as_str())
        .collect();
    assert_eq!(actions, ["webhook.updated", "webhook.created"]);
    for text in [&list.text, &one.text, &patched.text, &audit.text] {
        assert!(!text.contains(secret), "the secret leaked: {text}");
    }

    let deleted = app
        .delete(&format!("/admin/webhooks/{id}"), Some(&admin))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    let list = app.get("/admin/webhooks", Some(&admin)).await;
    assert_eq!(list.body["total"], 0);
}

#[tokio::test]
async fn webhook_input_is_validated_naming_every_bad_field() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let cases = [
        (json!({}), vec!["events", "url"]),
        (
            json!({ "url": "ftp://example.com/", "events": [] }),
            vec!["events", "url"],
        ),
        (
            json!({ "url": "http://user:pw@example.com/", "events": ["*"], "secret": "x" }),
            vec!["events", "secret", "url"],
        ),
        (
            json!({ "url": "/relative", "events": "customer.*" }),
            vec!["events", "url"],
        ),
        (
            json!({ "url": format!("http://example.com/{}", "a".repeat(3000)), "events": ["Customer.Registered"] }),
            vec!["events", "url"],
        ),
        (
            json!({ "url": 7, "events": ["good.*", 3] }),
            vec!["events", "url"],
        ),
    ];
    for (body, fields) in cases {
        let reply = app
            .post("/admin/webhooks", Some(&admin), body.clone())
            .await;
        reply.assert_problem(400);
        assert_eq!(reply.error_fields(), fields, "{body}: {}", reply.text);
    }
    // https is verified with the system's roots; the scheme is accepted.
    create_webhook(
        &app,
        &admin,
        "https://hooks.example.com/souk",
        json!(["sale.*"]),
    )
    .await;
    let not_json = app
        .post_raw(
            "/admin/webhooks",
            Some(&admin),
            Some("application/json"),
            b"{".to_vec(),
        )
        .await;
    not_json.assert_problem(400);

    let id = create_webhook(&app, &admin, "http://127.0.0.1:9/", json!(["good.*"])).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/admin/webhooks/{id}");
    for (body, fields) in [
        (
            json!({ "enabled": "yes", "events": [] }),
            vec!["enabled", "events"],
        ),
        (
            json!({ "url": "http://127.0.0.1:10/", "colour": 1 }),
            vec!["colour", "url"],
        ),
    ] {
        let reply = app.patch(&path, Some(&admin), body.clone()).await;
        reply.assert_problem(400);
        assert_eq!(reply.error_fields(), fields, "{body}: {}", reply.text);
    }
    app.patch(&path, Some(&admin), json!({}))
        .await
        .assert_problem(400);
    for (body, fields) in [
        (json!({}), vec!["from_sequence"]),
        (
            json!({ "from_sequence": 0, "to": 1 }),
            vec!["from_sequence", "to"],
        ),
        (json!({ "from_sequence": "1" }), vec!["from_sequence"]),
    ] {
        let reply = app
            .post(&format!("{path}/replay"), Some(&admin), body.clone())
            .await;
        reply.assert_problem(400);
        assert_eq!(reply.error_fields(), fields, "{body}: {}", reply.text);
    }
    for query in ["status=lost", "limit=0", "offset=-1", "colour=red"] {
        let reply = app
            .get(&format!("{path}/deliveries?{query}"), Some(&admin))
            .await;
        reply.assert_problem(400);
    }
    app.get("/admin/webhooks?limit=201", Some(&admin))
        .await
        .assert_problem(400);
}

#[tokio::test]
async fn only_admins_manage_webhooks_and_unknown_ids_are_404() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let alice = app.customer("alice").await;
    let id = create_webhook(&app, &admin, "http://127.0.0.1:9/", json!(["good.*"])).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({ "url": "http://127.0.0.1:9/", "events": ["good.*"] });
    let routes = |id: &str| {
        vec![
            (
                Method::POST,
                "/admin/webhooks".to_owned(),
                Some(body.clone()),
            ),
            (Method::GET, "/admin/webhooks".to_owned(), None),
            (Method::GET, format!("/admin/webhooks/{id}"), None),
            (
                Method::PATCH,
                format!("/admin/webhooks/{id}"),
                Some(json!({ "enabled": false })),
            ),
            (
                Method::GET,
                format!("/admin/webhooks/{id}/deliveries"),
                None,
            ),
            (
                Method::POST,
                format!("/admin/webhooks/{id}/replay"),
                Some(json!({ "from_sequence": 1 })),
            ),
            (Method::DELETE, format!("/admin/webhooks/{id}"), None),
        ]
    };
    for (method, path, body) in routes(&id) {
        let reply = app
            .send(method.clone(), &path, Some(&alice), body.clone())
            .await;
        reply.assert_problem(403);
        let reply = app.send(method.clone(), &path, None, body.clone()).await;
        reply.assert_problem(401);
    }
    for (method, path, body) in routes("01890000-0000-7000-8000-000000000000")
        .into_iter()
        .skip(2)
    {
        let reply = app.send(method.clone(), &path, Some(&admin), body).await;
        reply.assert_problem(404);
    }
    // Nothing a customer tried changed anything.
    let list = app.get("/admin/webhooks", Some(&admin)).await;
    assert_eq!(list.body["total"], 1);
    assert_eq!(list.body["items"][0]["enabled"], true);
}

#[tokio::test]
async fn a_registration_reaches_the_receiver_signed_with_the_documented_body() {
    let app = spawn_webhook_app(fast_retries).await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start(|_| Answer::Status(204)).await;
    let webhook = create_webhook(&app, &admin, &receiver.url, json!(["customer.*"])).await;
    let secret = webhook["secret"].as_str().unwrap();

    let registered = app.register("alice").await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text
    );
    let request_id = registered.header("x-request-id").unwrap().to_owned();

    let hits = receiver.wait_for(1, Duration::from_secs(10)).await;
    let hit = &hits[0];
    assert_signed(hit, secret);
    assert_eq!(hit.header("content-type"), "application/json");
    assert_eq!(hit.header("souk-event-type"), "customer.registered");
    let event = hit.json();
    assert_eq!(hit.header("souk-event-id"), event["id"].as_str().unwrap());
    let mut keys: Vec<&str> = event
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "actor",
            "data",
            "id",
            "occurred_at",
            "request_id",
            "sequence",
            "subject",
            "type"
        ]
    );
    assert_eq!(event["type"], "customer.registered");
    assert_eq!(event["request_id"], request_id);
    assert_eq!(event["data"]["username"], "alice");
    assert!(event["sequence"].as_u64().unwrap() >= 1);
    assert!(is_rfc3339_utc(event["occurred_at"].as_str().unwrap()));

    let id = webhook["id"].as_str().unwrap();
    let items = wait_for_deliveries(&app, &admin, id, Duration::from_secs(5), |items| {
        items.iter().any(|d| d["status"] == "delivered")
    })
    .await;
    let delivery = items.iter().find(|d| d["event_id"] == event["id"]).unwrap();
    assert_eq!(delivery["status"], "delivered");
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["last_status_code"], 204);
    assert_eq!(delivery["event_type"], "customer.registered");
    assert_eq!(delivery["event_sequence"], event["sequence"]);
    assert_eq!(delivery["next_attempt_at"], Value::Null);
    assert!(is_rfc3339_utc(delivery["delivered_at"].as_str().unwrap()));
}

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_the_same_event_three_times() {
    let app = spawn_webhook_app(fast_retries).await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start(|n| Answer::Status(if n <= 2 { 500 } else { 200 })).await;
    let webhook = create_webhook(&app, &admin, &receiver.url, json!(["customer.registered"])).await;
    let secret = webhook["secret"].as_str().unwrap();

    app.register("bob").await;

    let hits = receiver.wait_for(3, Duration::from_secs(15)).await;
    let id = hits[0].json()["id"].clone();
    for hit in &hits {
        assert_signed(hit, secret);
        assert_eq!(hit.json()["id"], id, "the id is stable across retries");
        assert_eq!(hit.header("souk-event-id"), id.as_str().unwrap());
        assert_eq!(hit.body, hits[0].body, "every attempt sends the same body");
    }
    let items = wait_for_deliveries(
        &app,
        &admin,
        webhook["id"].as_str().unwrap(),
        Duration::from_secs(5),
        |items| items.first().is_some_and(|d| d["status"] == "delivered"),
    )
    .await;
    assert_eq!(items.len(), 1, "{items:#?}");
    assert_eq!(items[0]["attempts"], 3);
    assert_eq!(items[0]["last_status_code"], 200);
    assert_eq!(items[0]["event_id"], id);
    // Nothing more arrives once delivered.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.hits().len(), 3);
}

#[tokio::test]
async fn a_receiver_that_never_answers_ends_failed_while_the_api_answers_normally() {
    let app = spawn_webhook_app(impatient).await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start(|_| Answer::Hang).await;
    let webhook = create_webhook(&app, &admin, &receiver.url, json!(["customer.registered"])).await;
    let id = webhook["id"].as_str().unwrap();

    // Several events, each retried against a receiver that hangs: the API
    // keeps answering as fast as ever meanwhile.
    let started = Instant::now();
    for n in 0..4 {
        let began = Instant::now();
        let reply = app.register(&format!("user{n}")).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        assert!(
            began.elapsed() < Duration::from_secs(2),
            "{:?}",
            began.elapsed()
        );
    }
    receiver.wait_for(2, Duration::from_secs(10)).await;
    for _ in 0..10 {
        let began = Instant::now();
        let reply = app.get("/api/v1/goods", None).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            began.elapsed() < Duration::from_secs(1),
            "{:?}",
            began.elapsed()
        );
    }

    let items = wait_for_deliveries(&app, &admin, id, Duration::from_secs(30), |items| {
        items.len() == 4 && items.iter().all(|d| d["status"] == "failed")
    })
    .await;
    for delivery in &items {
        assert_eq!(delivery["attempts"], 3, "{delivery}");
        assert_eq!(delivery["last_status_code"], Value::Null);
        assert!(
            delivery["last_error"]
                .as_str()
                .unwrap()
                .contains("no answer"),
            "{delivery}"
        );
        assert_eq!(delivery["next_attempt_at"], Value::Null);
    }
    assert_eq!(receiver.hits().len(), 12, "3 attempts of 4 events");
    assert!(started.elapsed() < Duration::from_secs(30));
    let failed = app
        .get(
            &format!("/admin/webhooks/{id}/deliveries?status=failed&limit=2"),
            Some(&admin),
        )
        .await;
    assert_eq!(failed.body["total"], 4);
    assert_eq!(failed.body["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_disabled_webhook_gets_nothing_and_a_replay_sends_again() {
    let app = spawn_webhook_app(fast_retries).await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start(|_| Answer::Status(200)).await;
    let webhook = create_webhook(&app, &admin, &receiver.url, json!(["customer.registered"])).await;
    let id = webhook["id"].as_str().unwrap();
    let path = format!("/admin/webhooks/{id}");

    app.register("carol").await;
    let first = receiver.wait_for(1, Duration::from_secs(10)).await[0].json();
    assert_eq!(first["data"]["username"], "carol");

    let disabled = app
        .patch(&path, Some(&admin), json!({ "enabled": false }))
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.text);
    assert_eq!(disabled.body["enabled"], false);
    app.register("dave").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.hits().len(), 1, "a disabled webhook gets nothing");
    assert_eq!(deliveries(&app, &admin, id).await.len(), 1);

    // Back on, replayed from carol's event: carol again (same id), and
    // dave, whose event happened while it was off.
    let enabled = app
        .patch(&path, Some(&admin), json!({ "enabled": true }))
        .await;
    assert_eq!(enabled.body["enabled"], true);
    let replayed = app
        .post(
            &format!("{path}/replay"),
            Some(&admin),
            json!({ "from_sequence": first["sequence"] }),
        )
        .await;
    assert_eq!(replayed.status, StatusCode::ACCEPTED, "{}", replayed.text);
    assert_eq!(replayed.body["enqueued"], 2);
    assert_eq!(replayed.body["next_sequence"], Value::Null);
    let hits = receiver.wait_for(3, Duration::from_secs(10)).await;
    let mut names: Vec<String> = hits[1..]
        .iter()
        .map(|hit| hit.json()["data"]["username"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["carol", "dave"]);
    let again = hits[1..]
        .iter()
        .find(|hit| hit.json()["data"]["username"] == "carol")
        .unwrap();
    assert_eq!(
        again.json()["id"],
        first["id"],
        "a replay sends the same event id"
    );

    // Deleted: nothing more, and its log is gone with it.
    let deleted = app.delete(&path, Some(&admin)).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.register("erin").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.hits().len(), 3);
    app.get(&format!("{path}/deliveries"), Some(&admin))
        .await
        .assert_problem(404);
}

#[tokio::test]
async fn a_rolled_back_purchase_sends_nothing() {
    let app = spawn_webhook_app(fast_retries).await;
    let admin = app.admin_token().await;
    app.add_good("Saffron", json!(25), 5).await;
    let frank = app.customer("frank").await;
    let receiver = Receiver::start(|_| Answer::Status(200)).await;
    let webhook = create_webhook(
        &app,
        &admin,
        &receiver.url,
        json!(["sale.*", "wallet.*", "good.*", "stock.*"]),
    )
    .await;

    // Refused for funds: the sale, the deduction and the stock change are
    // rolled back together, and so are their events.
    let refused = app
        .post(
            "/api/v1/sales",
            Some(&frank),
            json!({ "good": "Saffron", "quantity": 1 }),
        )
        .await;
    refused.assert_problem(409);
    // A marker that does commit, to know the fan-out has gone past.
    let charged = app.charge("frank", json!(1)).await;
    assert_eq!(charged.status, StatusCode::OK, "{}", charged.text);

    let hits = receiver.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let types: Vec<String> = receiver
        .hits()
        .iter()
        .map(|hit| hit.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["wallet.charged"], "{hits:?}");
    let items = deliveries(&app, &admin, webhook["id"].as_str().unwrap()).await;
    assert_eq!(items.len(), 1, "{items:#?}");
}

/// Publishes to JetStream with `SOUK_NATS_URL` set: run against the server
/// at `SOUK_TEST_NATS_URL`, skipped without it.
fn with_nats(settings: &mut souk::Settings) {
    fast_retries(settings);
    settings.nats_url = std::env::var("SOUK_TEST_NATS_URL")
        .ok()
        .map(souk::config::Secret::new);
}

#[tokio::test]
async fn committed_events_are_published_to_jetstream_once_by_event_id() {
    use async_nats::jetstream::{self, consumer};
    let Ok(url) = std::env::var("SOUK_TEST_NATS_URL") else {
        println!("SKIPPED: SOUK_TEST_NATS_URL is unset (no NATS server to publish to)");
        return;
    };
    let since = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
    let app = spawn_webhook_app(with_nats).await;
    // A name no other run of this test uses: the stream outlives runs.
    let username = format!("n{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let registered = app.register(&username).await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text
    );
    // A rolled-back request publishes nothing.
    let refused = app
        .post(
            &format!("/api/v1/customers/{username}/wallet/deduct"),
            Some(&app.admin_token().await),
            json!({ "amount": 5 }),
        )
        .await;
    refused.assert_problem(409);

    let client = async_nats::connect(url).await.unwrap();
    let context = jetstream::new(client);
    // The host creates the stream; wait for its first publish.
    let deadline = Instant::now() + Duration::from_secs(15);
    let stream = loop {
        if let Ok(stream) = context.get_stream(souk::nats::STREAM).await {
            break stream;
        }
        assert!(Instant::now() < deadline, "the stream was never created");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: format!("{}.>", souk::nats::SUBJECT_PREFIX),
            deliver_policy: consumer::DeliverPolicy::ByStartTime { start_time: since },
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut mine = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    // Read until this run's registration arrived, then a little longer to
    // see that no copy and no rolled-back event follows.
    let mut quiet_until = None;
    loop {
        let wait = quiet_until
            .unwrap_or(deadline)
            .saturating_duration_since(Instant::now());
        match tokio::time::timeout(wait, next_message(&mut messages)).await {
            Ok(Some(message)) => {
                let event: Value = serde_json::from_slice(&message.payload).unwrap();
                if event["data"]["username"] == username.as_str() {
                    let id = message
                        .headers
                        .as_ref()
                        .and_then(|h| h.get("Nats-Msg-Id"))
                        .map(|v| v.as_str().to_owned());
                    mine.push((message.subject.to_string(), id, event));
                    quiet_until.get_or_insert(Instant::now() + Duration::from_secs(2));
                }
            }
            Ok(None) => break,
            Err(_) if quiet_until.is_some() => break,
            Err(_) => panic!("the registration never reached JetStream"),
        }
    }
    assert_eq!(mine.len(), 1, "{mine:#?}");
    let (subject, id, event) = &mine[0];
    assert_eq!(subject, "souk.events.customer.registered");
    assert_eq!(event["type"], "customer.registered");
    assert_eq!(id.as_deref(), event["id"].as_str());
}

/// The next message of a JetStream message stream, if any.
async fn next_message(
    messages: &mut async_nats::jetstream::consumer::pull::Ordered,
) -> Option<async_nats::jetstream::Message> {
    use futures_core::Stream;
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *messages).poll_next(cx))
        .await
        .and_then(Result::ok)
}

#[tokio::test]
async fn an_https_url_is_spoken_to_over_tls_only() {
    let app = spawn_webhook_app(impatient).await;
    let admin = app.admin_token().await;
    // A plain-HTTP receiver behind an https URL: the host must open TLS,
    // which the receiver cannot speak, so nothing reaches it as HTTP.
    let receiver = Receiver::start(|_| Answer::Status(200)).await;
    let url = receiver.url.replacen("http://", "https://", 1);
    let webhook = create_webhook(&app, &admin, &url, json!(["customer.registered"])).await;
    app.register("grace").await;
    let items = wait_for_deliveries(
        &app,
        &admin,
        webhook["id"].as_str().unwrap(),
        Duration::from_secs(15),
        |items| items.first().is_some_and(|d| d["last_error"].is_string()),
    )
    .await;
    assert_eq!(items[0]["last_status_code"], Value::Null, "{items:#?}");
    assert!(receiver.hits().is_empty());
}
