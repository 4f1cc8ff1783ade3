//! The host's own boundaries, attacked as an extension author or a client
//! would: spellings of the login route, routes claimed inside or above
//! another component's, schema objects of another component, uploads from
//! strangers, tokens that outlive their privileges, and bootstrap turning a
//! customer into an admin.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

// ------------------------------------------------------------ login spelling

/// Ways to spell `POST /api/v1/auth/login` that reach the login handler.
const LOGIN_SPELLINGS: &[(&str, &str)] = &[
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/%6cogin"),
    ("POST", "/api/v1/auth/%6Cogin"),
    ("post", "/api/v1/auth/login"),
    ("Post", "/api/v1/auth/%6C%6F%67%69%6E"),
    ("POST", "/api//v1/auth//login"),
    ("POST", "/%61pi/v1/%61uth/login"),
];

async fn login_as(
    app: &TestApp,
    method: &str,
    path: &str,
    username: &str,
    password: &str,
) -> Reply {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let builder = app
        .request(method, path, None)
        .json(&json!({ "username": username, "password": password }));
    app.send_built(builder).await
}

#[tokio::test]
async fn every_spelling_of_the_login_route_reaches_login() {
    let app = spawn_app().await;
    app.register("alice").await;
    for (method, path) in LOGIN_SPELLINGS {
        let reply = login_as(&app, method, path, "alice", PASSWORD).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{method} {path}: {}",
            reply.text
        );
    }
}

#[tokio::test]
async fn no_spelling_of_the_login_route_escapes_the_guess_limit() {
    let app = spawn_app().await;
    for (index, (method, path)) in LOGIN_SPELLINGS.iter().enumerate() {
        let username = format!("victim{index}");
        app.register(&username).await;
        // Five wrong guesses, in this spelling...
        for _ in 0..5 {
            let reply = login_as(&app, method, path, &username, "wrong-guess-1").await;
            reply.assert_problem(401);
        }
        // ...and neither this spelling nor any other gets a sixth, even
        // with the right password.
        for (other_method, other_path) in LOGIN_SPELLINGS {
            let reply = login_as(&app, other_method, other_path, &username, PASSWORD).await;
            let problem = reply.assert_problem(429);
            assert_eq!(problem["type"], "urn:souk:error:rate-limited");
            assert!(
                reply.header("retry-after").is_some(),
                "{other_method} {other_path}"
            );
        }
    }
}

#[tokio::test]
async fn guesses_in_different_spellings_share_one_budget() {
    let app = spawn_app().await;
    app.register("alice").await;
    for (method, path) in LOGIN_SPELLINGS.iter().take(5) {
        login_as(&app, method, path, "alice", "wrong-guess-1")
            .await
            .assert_problem(401);
    }
    login_as(&app, "POST", "/api/v1/auth/login", "alice", PASSWORD)
        .await
        .assert_problem(429);
}

#[tokio::test]
async fn dot_segments_and_malformed_escapes_in_a_path_are_refused() {
    let app = spawn_app().await;
    // Sent as raw bytes: HTTP clients resolve dot segments before sending.
    for path in [
        "/api/v1/goods/%2e%2e/customers",
        "/api/v1/goods/../customers",
        "/api/v1/goods/%2E",
        "/api/v1/goods/./x",
        "/api/v1/goods/%zz",
        "/api/v1/goods/%ff",
    ] {
        let head = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        let answer = raw_answer(&app, &head).await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{path}: {answer}");
        assert!(
            answer.contains("urn:souk:error:bad-request"),
            "{path}: {answer}"
        );
        assert!(
            answer.contains("application/problem+json"),
            "{path}: {answer}"
        );
    }
}

// ------------------------------------------------------------------- routes

#[tokio::test]
async fn an_extension_cannot_claim_a_route_inside_a_core_service() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.register("alice").await;

    let reply = app
        .put_component("shadow", test_component_bytes("shadow_login"), Some(&admin))
        .await;
    let problem = reply.assert_problem(400);
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("/api/v1/auth/login"), "{detail}");
    assert!(detail.contains("customers"), "{detail}");
    assert!(app.component("shadow").await.is_none());

    // Nothing changed: passwords still go to the customers service only.
    let login = app.login("alice", PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    assert!(login.header("x-squatter").is_none());
}

#[tokio::test]
async fn an_extension_in_the_components_directory_that_shadows_login_is_not_loaded() {
    let app = spawn_app_with(SpawnOptions {
        test_components: vec!["shadow_login"],
        ..SpawnOptions::default()
    })
    .await;
    assert!(app.component("shadow").await.is_none());
    assert!(app.component("shadow_login").await.is_none());
    app.register("alice").await;
    let login = app.login("alice", PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
}

#[tokio::test]
async fn a_route_claim_above_another_extensions_prefix_is_refused() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let inner = app
        .put_component("shadow", test_component_bytes("shadow_inner"), Some(&admin))
        .await;
    assert_eq!(inner.status, StatusCode::OK, "{}", inner.text);

    let reply = app
        .put_component("umbrella", test_component_bytes("umbrella"), Some(&admin))
        .await;
    let detail = reply.assert_problem(400)["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("/api/v1/shadow/inner"), "{detail}");
    assert!(app.component("umbrella").await.is_none());

    let served = app.get("/api/v1/shadow/inner", None).await;
    assert_eq!(served.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(served.header("x-squatter"), Some("shadow"));
}

#[tokio::test]
async fn response_headers_count_toward_the_response_limit() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let deployed = app
        .put_component("shadow", test_component_bytes("shadow_inner"), Some(&admin))
        .await;
    assert_eq!(deployed.status, StatusCode::OK, "{}", deployed.text);
    // 300 KiB of header against the default 256 KiB extension limit.
    let reply = app.get("/api/v1/shadow/inner/big-header", None).await;
    assert_eq!(
        reply.assert_problem(500)["type"],
        "urn:souk:error:response-too-large"
    );
    assert!(reply.header("x-big").is_none());
}

// ------------------------------------------------------------------- schema

#[tokio::test]
async fn a_migration_that_drops_another_components_index_is_refused_whole() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let reply = app
        .put_component("thief", test_component_bytes("schema_thief"), Some(&admin))
        .await;
    let detail = reply.assert_problem(400)["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("customers_username_lower"), "{detail}");
    assert!(app.component("thief").await.is_none());

    // Usernames are still unique ignoring case, so the index is there; and
    // the thief's first migration was not half-applied either.
    app.register("alice").await;
    app.register("ALICE").await.assert_problem(409);
    assert!(!app.table_exists("thief_loot").await);
}

#[tokio::test]
async fn a_component_named_after_another_components_prefix_is_refused() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for name in ["customers_username", "inventory_x", "sales_idempotency"] {
        let reply = app
            .put_component(name, test_component_bytes("greeter"), Some(&admin))
            .await;
        let detail = reply.assert_problem(400)["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(detail.contains("is taken"), "{name}: {detail}");
    }
}

#[tokio::test]
async fn a_component_named_after_a_core_event_noun_is_refused() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for name in ["wallet", "sale", "customer", "good", "stock", "review"] {
        let reply = app
            .put_component(name, test_component_bytes("greeter"), Some(&admin))
            .await;
        let detail = reply.assert_problem(400)["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(detail.contains("is reserved"), "{name}: {detail}");
    }
}

#[tokio::test]
async fn an_index_named_under_another_components_prefix_is_refused() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let reply = app
        .put_component(
            "squat",
            test_component_bytes("index_squatter"),
            Some(&admin),
        )
        .await;
    let detail = reply.assert_problem(400)["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("customers_email_lower"), "{detail}");
    assert!(!app.table_exists("squat_t").await);
}

// ------------------------------------------------------------------ uploads

/// Send `head` as raw bytes (and nothing after it) and return the first
/// part of what the host answers, without waiting for more.
async fn raw_answer(app: &TestApp, head: &str) -> String {
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("the host answered without waiting for more of the request")
        .unwrap();
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

/// Send a request head announcing a body, send none of it, and return the
/// status line the host answers with.
async fn status_without_sending_the_body(app: &TestApp, head: &str) -> String {
    raw_answer(app, head)
        .await
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_deploy_from_a_stranger_is_refused_before_its_body_is_read() {
    let app = spawn_app().await;
    let customer = app.customer("alice").await;
    let anonymous = "PUT /admin/components/wishlist HTTP/1.1\r\nhost: x\r\n\
                     content-type: application/wasm\r\ncontent-length: 67108000\r\n\r\n";
    let status = status_without_sending_the_body(&app, anonymous).await;
    assert!(status.contains(" 401 "), "{status}");

    let non_admin = format!(
        "PUT /admin/components/wishlist HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {customer}\r\n\
         content-type: application/wasm\r\ncontent-length: 67108000\r\n\r\n"
    );
    let status = status_without_sending_the_body(&app, &non_admin).await;
    assert!(status.contains(" 403 "), "{status}");
}

#[tokio::test]
async fn an_admin_upload_larger_than_the_limit_gets_413() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let reply = app
        .put_component("wishlist", vec![0; (64 << 20) + 1], Some(&admin))
        .await;
    reply.assert_problem(413);
    assert!(app.component("wishlist").await.is_some());
}

// ------------------------------------------------------------------- tokens

#[tokio::test]
async fn a_password_change_ends_every_earlier_token() {
    let app = spawn_app().await;
    let old = app.customer("alice").await;
    let changed = app
        .patch(
            "/api/v1/customers/alice",
            Some(&old),
            json!({ "password": "newpass456" }),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);

    app.get("/api/v1/customers/alice", Some(&old))
        .await
        .assert_problem(401);
    let new = app.token("alice", "newpass456").await;
    let profile = app.get("/api/v1/customers/alice", Some(&new)).await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.text);
}

#[tokio::test]
async fn a_role_change_ends_the_tokens_issued_before_it() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let bob = app.customer("bob").await;

    let promoted = app
        .patch(
            "/api/v1/customers/bob",
            Some(&admin),
            json!({ "role": "admin" }),
        )
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.text);
    // The token from before the promotion carries a customer's privileges:
    // it does not become an admin token.
    app.get("/api/v1/customers", Some(&bob))
        .await
        .assert_problem(401);

    let bob_admin = app.token("bob", PASSWORD).await;
    let listed = app.get("/api/v1/customers", Some(&bob_admin)).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);

    let demoted = app
        .patch(
            "/api/v1/customers/bob",
            Some(&admin),
            json!({ "role": "customer" }),
        )
        .await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text);
    app.get("/api/v1/customers", Some(&bob_admin))
        .await
        .assert_problem(401);

    // Setting the role a customer already has changes nothing.
    let alice = app.customer("alice").await;
    let same = app
        .patch(
            "/api/v1/customers/alice",
            Some(&admin),
            json!({ "role": "customer" }),
        )
        .await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.text);
    let profile = app.get("/api/v1/customers/alice", Some(&alice)).await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.text);
}

#[tokio::test]
async fn a_jwt_secret_shorter_than_32_bytes_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = souk::Settings::new(
        format!("sqlite://{}", dir.path().join("souk.db").display()),
        souk::config::BUILT_COMPONENTS_DIR,
    );
    settings.addr = "127.0.0.1:0".parse().unwrap();
    settings.jwt_secret = Some(souk::config::Secret::new("too-short-secret"));
    let error = souk::Application::build(settings)
        .await
        .err()
        .expect("refused");
    let message = format!("{error:#}");
    assert!(message.contains("at least 32 bytes"), "{message}");
    assert!(!message.contains("too-short-secret"), "{message}");
}

// --------------------------------------------------------------- bootstrap

#[tokio::test]
async fn bootstrap_never_turns_an_existing_customer_into_an_admin() {
    let app = spawn_app().await;
    let before = app.customer("boss").await;
    let stopped = app.shut_down().await;

    let app = spawn_app_with(SpawnOptions {
        database_url: Some(stopped.database_url.clone()),
        admin: Some(("boss", "bosspass123")),
        ..SpawnOptions::default()
    })
    .await;
    // Neither the old token nor the bootstrap password gives admin rights.
    app.get("/api/v1/customers", Some(&before))
        .await
        .assert_problem(403);
    app.login("boss", "bosspass123").await.assert_problem(401);
    let profile = app.get("/api/v1/customers/boss", Some(&before)).await;
    assert_eq!(profile.body["role"], "customer", "{}", profile.text);
}

#[tokio::test]
async fn bootstrap_leaves_an_existing_admin_and_their_tokens_alone() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let stopped = app.shut_down().await;
    let app = spawn_app_with(SpawnOptions {
        database_url: Some(stopped.database_url.clone()),
        ..SpawnOptions::default()
    })
    .await;
    let listed = app.get("/api/v1/customers", Some(&token)).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
}

#[tokio::test]
async fn the_last_admin_can_neither_be_demoted_nor_deleted() {
    let app = spawn_app().await;
    let root = app.admin_token().await;

    let demote = app
        .patch(
            &format!("/api/v1/customers/{ADMIN_USERNAME}"),
            Some(&root),
            json!({ "role": "customer" }),
        )
        .await;
    assert_eq!(
        demote.assert_problem(409)["type"],
        "urn:souk:error:last-admin"
    );
    let delete = app
        .delete(&format!("/api/v1/customers/{ADMIN_USERNAME}"), Some(&root))
        .await;
    assert_eq!(
        delete.assert_problem(409)["type"],
        "urn:souk:error:last-admin"
    );

    // With a second admin, either may go.
    app.register("deputy").await;
    let promoted = app
        .patch(
            "/api/v1/customers/deputy",
            Some(&root),
            json!({ "role": "admin" }),
        )
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.text);
    let deleted = app
        .delete(&format!("/api/v1/customers/{ADMIN_USERNAME}"), Some(&root))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    let deputy = app.token("deputy", PASSWORD).await;
    let last = app
        .patch(
            "/api/v1/customers/deputy",
            Some(&deputy),
            json!({ "role": "customer" }),
        )
        .await;
    last.assert_problem(409);
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    for _ in 0..3 {
        let app = spawn_app().await;
        let root = app.admin_token().await;
        app.register("deputy").await;
        app.patch(
            "/api/v1/customers/deputy",
            Some(&root),
            json!({ "role": "admin" }),
        )
        .await;
        let deputy = app.token("deputy", PASSWORD).await;
        let root_path = format!("/api/v1/customers/{ADMIN_USERNAME}");
        let (a, b) = tokio::join!(
            app.patch(
                "/api/v1/customers/deputy",
                Some(&root),
                json!({ "role": "customer" })
            ),
            app.patch(&root_path, Some(&deputy), json!({ "role": "customer" })),
        );
        // One demotion wins; the other is refused as the last admin's (409)
        // or, when the winner demoted its author first, for a token whose
        // privileges ended (401).
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort_unstable();
        assert!(
            statuses == [200, 401] || statuses == [200, 409],
            "{statuses:?}: {} / {}",
            a.text,
            b.text
        );
        let mut admins = 0;
        for (username, password) in [(ADMIN_USERNAME, ADMIN_PASSWORD), ("deputy", PASSWORD)] {
            let token = app.token(username, password).await;
            if app.get("/api/v1/customers", Some(&token)).await.status == StatusCode::OK {
                admins += 1;
            }
        }
        assert_eq!(admins, 1);
    }
}

#[tokio::test]
async fn a_component_that_exports_accounts_vouches_for_no_one() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let alice = app.customer("alice").await;

    // It answers "admin" for every token's subject, and is named after
    // the interface; it loads like any extension.
    let reply = app
        .put_component(
            "accounts",
            test_component_bytes("identity_forger"),
            Some(&admin),
        )
        .await;
    assert!(reply.status.is_success(), "{}", reply.text);
    assert_eq!(
        app.get("/api/v1/accounts", None).await.body["forger"],
        true,
        "the forger is not serving"
    );

    // The host still asks only the customers service who alice is.
    app.get("/admin/components", Some(&alice))
        .await
        .assert_problem(403);
    let profile = app.get("/api/v1/customers/alice", Some(&alice)).await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.text);
    assert_eq!(profile.body["role"], "customer", "{}", profile.text);
    // And an admin is still who the customers service says.
    assert_eq!(
        app.get("/admin/components", Some(&admin)).await.status,
        StatusCode::OK
    );
}
