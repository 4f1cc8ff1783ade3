//! `/health/status` says the truth about components that should serve but
//! cannot load: `degraded`, the component listed with a status other than
//! `serving` and the reason, until an operator fixes it (here: unloads the
//! extension), after which it is `ok` again.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{SpawnOptions, spawn_app, spawn_app_with};

/// Grants without the `inventory-api` import `wishlist` needs.
const WISHLIST_UNGRANTED: &str = r#"{"wishlist": {"imports": []}}"#;

fn entry<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["components"]
        .as_array()
        .and_then(|components| components.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no `{name}` in {status}"))
}

async fn assert_wishlist_reported_then_fixed_by_unloading(app: &crate::helpers::TestApp) {
    let status = app.get("/health/status", None).await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.text);
    let body = &status.body;
    assert_eq!(body["status"], "degraded", "{body}");
    let wishlist = entry(body, "wishlist");
    assert_eq!(wishlist["status"], "failed", "{body}");
    let reason = wishlist["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("inventory-api"), "{body}");
    assert!(
        body["problems"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["source"] == "component:wishlist")),
        "{body}"
    );
    // Every other component still serves, and says so.
    assert_eq!(entry(body, "customers")["status"], "serving", "{body}");
    for field in ["version", "uptime_seconds", "components"] {
        assert!(!body[field].is_null(), "{field} missing: {body}");
    }

    let admin = app.admin_token().await;
    let unloaded = app.delete("/admin/components/wishlist", Some(&admin)).await;
    assert!(unloaded.status.is_success(), "{}", unloaded.text);
    let status = app.get("/health/status", None).await;
    assert_eq!(status.body["status"], "ok", "{}", status.text);
    assert_eq!(
        status.body["problems"],
        serde_json::json!([]),
        "{}",
        status.text
    );
}

#[tokio::test]
async fn health_is_degraded_while_an_ungranted_extension_cannot_load_and_ok_once_it_is_unloaded() {
    let app = spawn_app_with(SpawnOptions {
        grants: Some(WISHLIST_UNGRANTED),
        ..SpawnOptions::default()
    })
    .await;
    assert_wishlist_reported_then_fixed_by_unloading(&app).await;
}

#[tokio::test]
async fn health_is_degraded_when_a_deployed_extension_lost_its_grant_and_ok_once_it_is_unloaded() {
    let app = spawn_app().await;
    let healthy = app.get("/health/status", None).await;
    assert_eq!(healthy.body["status"], "ok", "{}", healthy.text);
    assert_eq!(entry(&healthy.body, "wishlist")["status"], "serving");
    let stopped = app.shut_down().await;

    // The same database, restarted with the grant reduced: the deployed
    // wishlist can no longer load.
    let app = spawn_app_with(SpawnOptions {
        database_url: Some(stopped.database_url.clone()),
        grants: Some(WISHLIST_UNGRANTED),
        ..SpawnOptions::default()
    })
    .await;
    assert_wishlist_reported_then_fixed_by_unloading(&app).await;
}
