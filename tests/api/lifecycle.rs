//! An extension's lifecycle as its operator sees it: what unloading does to
//! its data (kept unless asked otherwise), and deploy errors that say what
//! actually happened.

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn unloading_an_extension_keeps_its_data_unless_asked_to_drop_it() {
    let app = spawn_app_with(SpawnOptions {
        test_components: vec!["greeter"],
        ..SpawnOptions::default()
    })
    .await;
    let admin = app.admin_token().await;
    assert!(app.table_exists("greeter_greetings").await);

    let kept = app.delete("/admin/components/greeter", Some(&admin)).await;
    assert_eq!(kept.status, StatusCode::NO_CONTENT, "{}", kept.text);
    assert!(app.table_exists("greeter_greetings").await);

    let again = app
        .put_component("greeter", test_component_bytes("greeter"), Some(&admin))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    let dropped = app
        .delete("/admin/components/greeter?data=drop", Some(&admin))
        .await;
    assert_eq!(dropped.status, StatusCode::NO_CONTENT, "{}", dropped.text);
    assert!(!app.table_exists("greeter_greetings").await);

    // A later deploy starts from an empty schema: its migrations run again.
    let fresh = app
        .put_component("greeter", test_component_bytes("greeter"), Some(&admin))
        .await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text);
    assert!(app.table_exists("greeter_greetings").await);
}

#[tokio::test]
async fn unload_accepts_only_keep_or_drop() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let reply = app
        .delete("/admin/components/wishlist?data=shred", Some(&admin))
        .await;
    assert_eq!(reply.assert_problem(400)["errors"][0]["field"], "data");
    assert!(app.component("wishlist").await.is_some());
    let core = app
        .delete("/admin/components/customers?data=drop", Some(&admin))
        .await;
    core.assert_problem(409);
}

#[tokio::test]
async fn a_refused_first_deploy_says_nothing_was_deployed_and_hints_at_a_typo() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    // A typo for wishlist: no grant names it, so its import is not granted.
    let reply = app
        .put_component(
            "wishlst",
            test_component_bytes("wallet_thief"),
            Some(&admin),
        )
        .await;
    let detail = reply.assert_problem(400)["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("nothing was deployed"), "{detail}");
    assert!(!detail.contains("keeps serving"), "{detail}");
    assert!(detail.contains("is the name right?"), "{detail}");
}
