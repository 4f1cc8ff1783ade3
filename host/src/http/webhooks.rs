//! `/admin/webhooks`: register, list, change and delete the endpoints
//! committed events are POSTed to, read their delivery log, and replay
//! events to one of them. Admins only; every change is audited (never the
//! secret, which is shown once, in the answer that creates it).
//!
//! The sending itself happens in the background ([`crate::webhooks`]).

use std::sync::Arc;

use axum::{
    Json,
    body::Body,
    extract::{ConnectInfo, Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use super::{
    AppState,
    admin::{audit, require_admin, respond},
    problem::Refusal,
};
use crate::{
    bindings::types::FieldError,
    storage::webhooks::{self as storage, DeliveryStatus},
    webhooks::{MAX_PATTERNS, MAX_URL_BYTES, new_secret, now_ms},
};

/// Largest request body of these routes.
const MAX_BODY_BYTES: usize = 16 << 10;

/// `POST /admin/webhooks` `{url, events}` → 201 with the secret, once.
pub async fn create(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(&headers, async {
        let admin = require_admin(&app, peer, &headers).await?;
        let fields = super::json_object(&headers, body, MAX_BODY_BYTES).await?;
        let mut errors = Vec::new();
        let (mut url, mut patterns) = (None, None);
        for (name, value) in &fields {
            match name.as_str() {
                "url" => match check_url(value) {
                    Ok(ok) => url = Some(ok),
                    Err(message) => errors.push(field_error(name, message)),
                },
                "events" => match check_patterns(value) {
                    Ok(ok) => patterns = Some(ok),
                    Err(message) => errors.push(field_error(name, message)),
                },
                _ => errors.push(field_error(name, "unknown field".into())),
            }
        }
        for (name, given) in [
            ("url", fields.contains_key("url")),
            ("events", fields.contains_key("events")),
        ] {
            if !given {
                errors.push(field_error(name, "is required".into()));
            }
        }
        let (Some(url), Some(patterns), true) = (url, patterns, errors.is_empty()) else {
            return Err(Refusal::InvalidInput(errors).into());
        };
        let secret = new_secret();
        let webhook = storage::create(&app.db, &url, &patterns, &secret)
            .await
            .map_err(Refusal::database)?;
        let changes = json!({ "url": webhook.url, "events": webhook.events });
        audit(
            &app,
            &headers,
            &admin,
            "webhook.created",
            &webhook.id,
            changes,
        )
        .await;
        let location = format!("/admin/webhooks/{}", webhook.id);
        let mut shown = json!(webhook);
        shown["secret"] = Value::String(secret.expose().to_owned());
        let mut response = (StatusCode::CREATED, Json(shown)).into_response();
        if let Ok(location) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Ok(response)
    })
    .await
}

/// `GET /admin/webhooks`: a page of webhooks, oldest first, no secrets.
pub async fn list(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    respond(&headers, async {
        require_admin(&app, peer, &headers).await?;
        let page = page_query(&query, &[])?;
        let (items, total) = storage::list(&app.db, page.limit, page.offset)
            .await
            .map_err(Refusal::database)?;
        Ok(page.render(&items, total))
    })
    .await
}

/// `GET /admin/webhooks/{id}`.
pub async fn get(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(&headers, async {
        require_admin(&app, peer, &headers).await?;
        let webhook = storage::get(&app.db, &id)
            .await
            .map_err(Refusal::database)?
            .ok_or_else(not_found)?;
        Ok(Json(webhook).into_response())
    })
    .await
}

/// `PATCH /admin/webhooks/{id}` with `events` and/or `enabled`.
pub async fn update(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(&headers, async {
        let admin = require_admin(&app, peer, &headers).await?;
        let fields = super::json_object(&headers, body, MAX_BODY_BYTES).await?;
        let mut errors = Vec::new();
        let (mut patterns, mut enabled) = (None, None);
        for (name, value) in &fields {
            match name.as_str() {
                "events" => match check_patterns(value) {
                    Ok(ok) => patterns = Some(ok),
                    Err(message) => errors.push(field_error(name, message)),
                },
                "enabled" => match value.as_bool() {
                    Some(ok) => enabled = Some(ok),
                    None => errors.push(field_error(name, "must be true or false".into())),
                },
                "url" => errors.push(field_error(
                    name,
                    "cannot change: delete the webhook and create another".into(),
                )),
                _ => errors.push(field_error(name, "unknown field".into())),
            }
        }
        if !errors.is_empty() {
            return Err(Refusal::InvalidInput(errors).into());
        }
        if fields.is_empty() {
            return Err(Refusal::BadRequest(
                "nothing to change: send `events` and/or `enabled`".into(),
            )
            .into());
        }
        let before = storage::get(&app.db, &id)
            .await
            .map_err(Refusal::database)?
            .ok_or_else(not_found)?;
        let after = storage::update(&app.db, &id, patterns.as_deref(), enabled)
            .await
            .map_err(Refusal::database)?
            .ok_or_else(not_found)?;
        let mut changes = Map::new();
        if before.events != after.events {
            changes.insert(
                "events".into(),
                json!({ "before": before.events, "after": after.events }),
            );
        }
        if before.enabled != after.enabled {
            changes.insert(
                "enabled".into(),
                json!({ "before": before.enabled, "after": after.enabled }),
            );
        }
        audit(
            &app,
            &headers,
            &admin,
            "webhook.updated",
            &id,
            Value::Object(changes),
        )
        .await;
        Ok(Json(after).into_response())
    })
    .await
}

/// `DELETE /admin/webhooks/{id}` → 204; its pending deliveries go too.
pub async fn delete(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(&headers, async {
        let admin = require_admin(&app, peer, &headers).await?;
        let webhook = storage::get(&app.db, &id)
            .await
            .map_err(Refusal::database)?
            .ok_or_else(not_found)?;
        if !storage::delete(&app.db, &id)
            .await
            .map_err(Refusal::database)?
        {
            return Err(not_found().into());
        }
        let changes = json!({ "url": webhook.url, "events": webhook.events });
        audit(&app, &headers, &admin, "webhook.deleted", &id, changes).await;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

/// `GET /admin/webhooks/{id}/deliveries`: a page of its deliveries,
/// newest first, optionally `?status=pending|delivered|failed`.
pub async fn deliveries(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    respond(&headers, async {
        require_admin(&app, peer, &headers).await?;
        let page = page_query(&query, &["status"])?;
        let status = match page.extra("status") {
            None => None,
            Some(text) => Some(DeliveryStatus::parse(text).ok_or_else(|| {
                Refusal::InvalidInput(vec![field_error(
                    "status",
                    "must be `pending`, `delivered` or `failed`".into(),
                )])
            })?),
        };
        storage::get(&app.db, &id)
            .await
            .map_err(Refusal::database)?
            .ok_or_else(not_found)?;
        let (items, total) = storage::deliveries(&app.db, &id, status, page.limit, page.offset)
            .await
            .map_err(Refusal::database)?;
        Ok(page.render(&items, total))
    })
    .await
}

/// `POST /admin/webhooks/{id}/replay` `{from_sequence}` → 202: a new
/// delivery of every matching event from that number on (as far as the
/// fan-out has got), at most [`storage::MAX_REPLAY`] per call; `next_sequence`
/// says where to continue if that cut it short.
pub async fn replay(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(&headers, async {
        let admin = require_admin(&app, peer, &headers).await?;
        let fields = super::json_object(&headers, body, MAX_BODY_BYTES).await?;
        let mut errors = Vec::new();
        let mut from = None;
        for (name, value) in &fields {
            match name.as_str() {
                "from_sequence" => match value
                    .as_u64()
                    .filter(|n| *n >= 1 && i64::try_from(*n).is_ok())
                {
                    Some(n) => from = Some(n),
                    None => errors.push(field_error(
                        name,
                        "must be an event sequence number (an integer of 1 or more)".into(),
                    )),
                },
                _ => errors.push(field_error(name, "unknown field".into())),
            }
        }
        if !fields.contains_key("from_sequence") {
            errors.push(field_error("from_sequence", "is required".into()));
        }
        let (Some(from), true) = (from, errors.is_empty()) else {
            return Err(Refusal::InvalidInput(errors).into());
        };
        let replayed = storage::replay(&app.db, &id, from, now_ms())
            .await
            .map_err(Refusal::database)?
            .ok_or_else(not_found)?;
        let changes = json!({ "from_sequence": from, "enqueued": replayed.enqueued });
        audit(&app, &headers, &admin, "webhook.replayed", &id, changes).await;
        Ok((StatusCode::ACCEPTED, Json(replayed)).into_response())
    })
    .await
}

fn not_found() -> Refusal {
    Refusal::NotFound("no webhook has this id".into())
}

fn field_error(field: &str, message: String) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message,
    }
}

/// A webhook URL as it will be used, or why it cannot be one: absolute
/// `http` or `https` (checked against the system's trusted roots), with a
/// host, without credentials, at most [`MAX_URL_BYTES`].
fn check_url(value: &Value) -> Result<String, String> {
    let Some(text) = value.as_str() else {
        return Err("must be a string".into());
    };
    if text.len() > MAX_URL_BYTES {
        return Err(format!("must be at most {MAX_URL_BYTES} bytes"));
    }
    if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".into());
    }
    let url = reqwest::Url::parse(text)
        .map_err(|_| "must be an absolute URL, e.g. http://hooks.example.com/souk".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not contain credentials: verify deliveries with the signature instead".into(),
        );
    }
    let url = url.to_string();
    if url.len() > MAX_URL_BYTES {
        return Err(format!("must be at most {MAX_URL_BYTES} bytes"));
    }
    Ok(url)
}

/// Subscription patterns, de-duplicated in order, or why not: a non-empty
/// list of at most [`MAX_PATTERNS`] event types or `noun.*`.
fn check_patterns(value: &Value) -> Result<Vec<String>, String> {
    let Some(items) = value.as_array() else {
        return Err("must be a list of event types (`noun.verb` or `noun.*`)".into());
    };
    if items.is_empty() {
        return Err("must name at least one event type (`noun.verb` or `noun.*`)".into());
    }
    if items.len() > MAX_PATTERNS {
        return Err(format!("must have at most {MAX_PATTERNS} entries"));
    }
    let mut patterns: Vec<String> = Vec::new();
    let mut bad = Vec::new();
    for item in items {
        match item.as_str() {
            Some(pattern) if crate::events::is_subscription(pattern) => {
                if !patterns.iter().any(|p| p == pattern) {
                    patterns.push(pattern.to_owned());
                }
            }
            Some(other) if other.chars().all(|c| !c.is_control()) && other.len() <= 100 => {
                bad.push(format!("`{other}`"));
            }
            _ => bad.push("a non-string or unprintable entry".into()),
        }
    }
    if bad.is_empty() {
        Ok(patterns)
    } else {
        Err(format!(
            "{} is not an event type (`noun.verb` or `noun.*`, lower case)",
            bad.join(", ")
        ))
    }
}

/// `?limit=` and `?offset=` (the API's page rules), plus the extra
/// parameters a route allows.
struct Page<'a> {
    limit: u32,
    offset: u32,
    extra: Vec<(&'a str, &'a str)>,
}

impl Page<'_> {
    fn extra(&self, name: &str) -> Option<&str> {
        self.extra.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    fn render(&self, items: &impl serde::Serialize, total: u64) -> Response {
        Json(json!({
            "items": items,
            "total": total,
            "limit": self.limit,
            "offset": self.offset,
        }))
        .into_response()
    }
}

fn page_query<'a>(query: &'a [(String, String)], allowed: &[&str]) -> Result<Page<'a>, Refusal> {
    let mut page = Page {
        limit: 50,
        offset: 0,
        extra: Vec::new(),
    };
    let mut errors = Vec::new();
    for (name, value) in query {
        match name.as_str() {
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=200).contains(&n) => page.limit = n,
                _ => errors.push(field_error(name, "must be an integer from 1 to 200".into())),
            },
            "offset" => match value.parse::<u32>() {
                Ok(n) => page.offset = n,
                Err(_) => errors.push(field_error(name, "must be an integer of 0 or more".into())),
            },
            other if allowed.contains(&other) => page.extra.push((name, value)),
            _ => errors.push(field_error(name, "unknown parameter".into())),
        }
    }
    if errors.is_empty() {
        Ok(page)
    } else {
        Err(Refusal::InvalidInput(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_absolute_http_without_credentials() {
        assert_eq!(
            check_url(&json!("http://hooks.example.com/souk?x=1")),
            Ok("http://hooks.example.com/souk?x=1".into())
        );
        assert_eq!(
            check_url(&json!("http://127.0.0.1:9000")),
            Ok("http://127.0.0.1:9000/".into())
        );
        assert_eq!(
            check_url(&json!("https://hooks.example.com/souk")),
            Ok("https://hooks.example.com/souk".into())
        );
        for bad in [
            json!("/relative"),
            json!("ftp://example.com/"),
            json!("http://user:pw@example.com/"),
            json!("http://example.com/a b"),
            json!("javascript:alert(1)"),
            json!(42),
            json!(format!("http://example.com/{}", "a".repeat(MAX_URL_BYTES))),
        ] {
            assert!(check_url(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patterns_are_event_types_or_nouns() {
        assert_eq!(
            check_patterns(&json!(["good.*", "sale.completed", "good.*"])),
            Ok(vec!["good.*".to_owned(), "sale.completed".to_owned()])
        );
        for bad in [
            json!([]),
            json!("good.*"),
            json!(["*"]),
            json!(["Good.created"]),
            json!([1]),
        ] {
            assert!(check_patterns(&bad).is_err(), "{bad}");
        }
    }
}
