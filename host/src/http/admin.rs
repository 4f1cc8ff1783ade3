//! Component management for admins: list, deploy (`PUT` the wasm bytes),
//! roll back, and unload extensions; and their grants, set and revoked at
//! run time. Every change is logged with who made it.

use std::sync::Arc;

use axum::{
    Json,
    body::Body,
    extract::{ConnectInfo, Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    AppState,
    dispatch::authenticate,
    problem::{Problem, Refusal},
};
use crate::{
    bindings::types::{FieldError, Identity, Role},
    runtime::{
        DataOnUnload, DeployError, core_services::is_core_service, grants::GrantError,
        policy::GrantSpec, registry::LoadedComponent, state::RequestScope,
    },
    storage::{
        Intent,
        deployments::{self, Source},
        events::{self, AuditEntry, AuditFilter},
        uow::UnitOfWork,
    },
};

/// Largest component accepted by a deploy.
pub const MAX_COMPONENT_BYTES: usize = 64 << 20;

/// `GET /admin/components`.
pub async fn list(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Response {
    respond(&headers, async {
        require_admin(&app, peer, &headers).await?;
        let snapshot = app.runtime.registry().snapshot();
        let mut items = Vec::new();
        for component in snapshot.components() {
            let history = deployments::history(&app.db, &component.name)
                .await
                .map_err(Refusal::database)?;
            items.push(describe(component, &history));
        }
        Ok(Json(json!({ "items": items })).into_response())
    })
    .await
}

/// `PUT /admin/components/{name}` with `Content-Type: application/wasm`.
///
/// The caller is authenticated and the media type checked before a byte of
/// the body is read, so an anonymous client cannot make the host buffer
/// anything; the admin's upload is read into [`MAX_COMPONENT_BYTES`] at most.
pub async fn deploy(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(&headers, async {
        let admin = require_admin(&app, peer, &headers).await?;
        if !super::has_media_type(&headers, "application/wasm") {
            return Err(Refusal::UnsupportedMediaType {
                send: "the component's bytes",
                media: "application/wasm",
            }
            .into());
        }
        let body = axum::body::to_bytes(body, MAX_COMPONENT_BYTES)
            .await
            .map_err(|_| Refusal::ComponentTooLarge {
                limit: MAX_COMPONENT_BYTES,
            })?;
        let serving = app.runtime.registry().snapshot().get(&name).is_some();
        let (component, _) = app
            .runtime
            .deploy(&name, &body, Source::Api, &admin.username)
            .await
            .map_err(|error| match error {
                DeployError::Load(load) if !serving => {
                    Refusal::InvalidComponent(format!("{load}; nothing was deployed"))
                }
                other => deploy_refusal(other),
            })?;
        let history = deployments::history(&app.db, &name)
            .await
            .map_err(Refusal::database)?;
        let changes = json!({ "version": component.version, "sha256": component.sha256 });
        audit(&app, &headers, &admin, "component.deployed", &name, changes).await;
        Ok(Json(describe(&component, &history)).into_response())
    })
    .await
}

/// `POST /admin/components/{name}/rollback`.
pub async fn rollback(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(&headers, async {
        let admin = require_admin(&app, peer, &headers).await?;
        let component = app
            .runtime
            .roll_back(&name, &admin.username)
            .await
            .map_err(deploy_refusal)?;
        let history = deployments::history(&app.db, &name)
            .await
            .map_err(Refusal::database)?;
        let changes = json!({ "version": component.version, "sha256": component.sha256 });
        audit(
            &app,
            &headers,
            &admin,
            "component.rolled_back",
            &name,
            changes,
        )
        .await;
        Ok(Json(describe(&component, &history)).into_response())
    })
    .await
}

/// `DELETE /admin/components/{name}[?data=keep|drop]` (extensions only):
/// stop serving it everywhere; with `data=drop` also drop its tables
/// (default `keep`: a later deploy finds its data as it was).
pub async fn unload(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(name): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    respond(&headers, async {
        let admin = require_admin(&app, peer, &headers).await?;
        let mut data = DataOnUnload::Keep;
        for (key, value) in &query {
            data = match (key.as_str(), value.as_str()) {
                ("data", "keep") => DataOnUnload::Keep,
                ("data", "drop") => DataOnUnload::Drop,
                _ => {
                    return Err(Refusal::InvalidInput(vec![FieldError {
                        field: key.clone(),
                        message: "the only parameter is `data`: `keep` (the default) or `drop`"
                            .into(),
                    }])
                    .into());
                }
            };
        }
        app.runtime
            .unload(&name, &admin.username, data)
            .await
            .map_err(deploy_refusal)?;
        let changes =
            json!({ "data": if data == DataOnUnload::Drop { "dropped" } else { "kept" } });
        audit(&app, &headers, &admin, "component.unloaded", &name, changes).await;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

/// `GET /admin/grants`: every component's grant and where it comes from.
pub async fn grants(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Response {
    respond(&headers, async {
        require_admin(&app, peer, &headers).await?;
        let items = app.runtime.grants_overview().await.map_err(grant_refusal)?;
        Ok(Json(json!({ "items": items })).into_response())
    })
    .await
}

/// `PUT /admin/grants/{component}` with the grant as JSON (the grants-file
/// format of one component): replaces its grant, at once and on every
/// replica.
pub async fn set_grant(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(component): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(&headers, async {
        let admin = require_admin(&app, peer, &headers).await?;
        let fields = super::json_object(&headers, body, MAX_GRANT_BYTES).await?;
        let (spec, mut errors) = grant_spec(&fields);
        // Name every bad field at once: the shapes above and the values.
        if let Err(problems) = spec.to_grant(&component) {
            errors.extend(problems.into_iter().map(|p| FieldError {
                field: p.field.to_owned(),
                message: p.message,
            }));
        }
        if !errors.is_empty() {
            return Err(Refusal::InvalidInput(errors).into());
        }
        let view = app
            .runtime
            .set_grant(&component, &spec, &admin.username)
            .await
            .map_err(grant_refusal)?;
        let changes = json!({ "after": spec });
        audit(&app, &headers, &admin, "grant.set", &component, changes).await;
        Ok(Json(view).into_response())
    })
    .await
}

/// `DELETE /admin/grants/{component}`: revoke; the component keeps only
/// the base imports and the strict extension limits.
pub async fn revoke_grant(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(component): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(&headers, async {
        let admin = require_admin(&app, peer, &headers).await?;
        app.runtime
            .revoke_grant(&component, &admin.username)
            .await
            .map_err(grant_refusal)?;
        audit(
            &app,
            &headers,
            &admin,
            "grant.revoked",
            &component,
            json!({}),
        )
        .await;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

/// Largest grant body accepted.
const MAX_GRANT_BYTES: usize = 16 << 10;

/// The grant a JSON object describes, and the fields of the wrong shape.
fn grant_spec(fields: &serde_json::Map<String, Value>) -> (GrantSpec, Vec<FieldError>) {
    let mut errors = Vec::new();
    let mut spec = GrantSpec::default();
    for (field, value) in fields {
        let mut number = |slot: &mut Option<u64>| match value.as_u64() {
            Some(n) => *slot = Some(n),
            None => errors.push(FieldError {
                field: field.clone(),
                message: "must be a positive integer".into(),
            }),
        };
        match field.as_str() {
            "imports" => match value.as_array().map(|items| {
                items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
            }) {
                Some(Some(imports)) => spec.imports = imports,
                _ => errors.push(FieldError {
                    field: field.clone(),
                    message: "must be a list of interface names".into(),
                }),
            },
            "subscribe" => match value.as_array().map(|items| {
                items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
            }) {
                Some(Some(patterns)) => spec.subscribe = patterns,
                _ => errors.push(FieldError {
                    field: field.clone(),
                    message: "must be a list of event types (`noun.verb` or `noun.*`)".into(),
                }),
            },
            "memory_mib" | "max_concurrency" | "max_response_kib" => {
                let mut n = None;
                number(&mut n);
                let n = n.and_then(|n| usize::try_from(n).ok());
                match field.as_str() {
                    "memory_mib" => spec.memory_mib = n,
                    "max_concurrency" => spec.max_concurrency = n,
                    _ => spec.max_response_kib = n,
                }
            }
            "deadline_ms" => number(&mut spec.deadline_ms),
            _ => errors.push(FieldError {
                field: field.clone(),
                message: "unknown field".into(),
            }),
        }
    }
    (spec, errors)
}

fn grant_refusal(error: GrantError) -> Refusal {
    match error {
        GrantError::Invalid(problems) => Refusal::InvalidInput(
            problems
                .into_iter()
                .map(|p| FieldError {
                    field: p.field.to_owned(),
                    message: p.message,
                })
                .collect(),
        ),
        GrantError::InvalidName(name) => Refusal::InvalidInput(vec![FieldError {
            field: "component".into(),
            message: format!(
                "`{name}` is not a component name: use 2-32 of a-z, 0-9 and _, starting with a letter"
            ),
        }]),
        GrantError::CoreService(_) => Refusal::CoreService(error.to_string()),
        GrantError::Storage(source) => Refusal::database(source),
    }
}

/// `GET /admin/audit`: a page of the audit log, newest first, filtered by
/// `?actor=`, `?action=`, `?subject=`, `?since=` and `?until=` (RFC 3339).
pub async fn audit_log(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    respond(&headers, async {
        require_admin(&app, peer, &headers).await?;
        let (filter, limit, offset) = audit_query(&query)?;
        let (items, total) = events::audit_page(&app.db, &filter, limit, offset)
            .await
            .map_err(Refusal::database)?;
        Ok(Json(json!({
            "items": items,
            "total": total,
            "limit": limit,
            "offset": offset,
        }))
        .into_response())
    })
    .await
}

/// The filter and page of `GET /admin/audit`, or a 400 naming every bad
/// parameter.
fn audit_query(query: &[(String, String)]) -> Result<(AuditFilter, u32, u32), Refusal> {
    let mut filter = AuditFilter::default();
    let (mut limit, mut offset) = (50, 0);
    let mut errors = Vec::new();
    let mut bad = |field: &str, message: &str| {
        errors.push(FieldError {
            field: field.to_owned(),
            message: message.to_owned(),
        });
    };
    for (name, value) in query {
        match name.as_str() {
            "actor" => filter.actor = Some(value.clone()),
            "action" => filter.action = Some(value.clone()),
            "subject" => filter.subject = Some(value.clone()),
            "since" | "until" => match crate::clock::parse_rfc3339(value) {
                Some(at) if name == "since" => filter.since = Some(at),
                Some(at) => filter.until = Some(at),
                None => bad(name, "must be an RFC 3339 time, e.g. 2026-11-21T10:00:00Z"),
            },
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=200).contains(&n) => limit = n,
                _ => bad(name, "must be an integer from 1 to 200"),
            },
            "offset" => match value.parse::<u32>() {
                Ok(n) => offset = n,
                Err(_) => bad(name, "must be an integer of 0 or more"),
            },
            _ => bad(name, "unknown parameter"),
        }
    }
    if errors.is_empty() {
        Ok((filter, limit, offset))
    } else {
        Err(Refusal::InvalidInput(errors))
    }
}

/// Record an admin action in the audit log. The action already happened,
/// in a transaction of its own, so a failure here is logged loudly rather
/// than reported as if the action had failed.
pub(super) async fn audit(
    app: &AppState,
    headers: &HeaderMap,
    admin: &Identity,
    action: &str,
    subject: &str,
    changes: Value,
) {
    let request_id = super::request_id(headers);
    let entry = AuditEntry {
        actor: Some(&admin.username),
        action,
        subject,
        request_id,
        changes,
    };
    if let Err(error) = events::audit(&app.db, &entry).await {
        tracing::error!(
            action,
            subject,
            "cannot record an admin action in the audit log: {error:#}"
        );
    }
}

/// Run `handler`, rendering a problem with the request id.
pub(super) async fn respond(
    headers: &HeaderMap,
    handler: impl Future<Output = Result<Response, Problem>>,
) -> Response {
    match handler.await {
        Ok(response) => response,
        Err(problem) => {
            let request_id = super::request_id(headers);
            problem.with_request_id(request_id).into_response()
        }
    }
}

/// The caller, who must be an admin.
pub(super) async fn require_admin(
    app: &AppState,
    peer: std::net::SocketAddr,
    headers: &HeaderMap,
) -> Result<Identity, Problem> {
    let scope = RequestScope::new(
        UnitOfWork::new(app.db.clone(), Intent::Read),
        super::request_id(headers).to_owned(),
        peer.ip(),
    );
    // Only reads the caller's account: nothing to keep.
    let caller = scope
        .run(
            app.runtime.event_bus(),
            async |scope| authenticate(app, headers, scope).await,
            |_| false,
        )
        .await
        .map_err(Refusal::database)?;
    match caller? {
        Some(identity) if identity.role == Role::Admin => Ok(identity),
        Some(_) => Err(Refusal::Forbidden("only an admin may manage components").into()),
        None => Err(Refusal::MissingToken.into()),
    }
}

fn describe(component: &LoadedComponent, history: &[deployments::Deployment]) -> Value {
    let current = history.iter().find(|d| d.state == "current");
    json!({
        "name": component.name,
        "version": component.version,
        "sha256": component.sha256,
        "status": "serving",
        "core": is_core_service(&component.name),
        "deployed_at": current.map(|d| d.deployed_at.as_str()),
        "deployed_by": current.map(|d| d.deployed_by.as_str()),
        "routes": component.descriptor.routes,
        "previous_versions": history
            .iter()
            .filter(|d| d.state != "current")
            .collect::<Vec<_>>(),
    })
}

fn deploy_refusal(error: DeployError) -> Refusal {
    match error {
        DeployError::Load(load) => {
            Refusal::InvalidComponent(format!("{load}; the previous version keeps serving"))
        }
        DeployError::NoPrevious(_) => Refusal::NoPreviousVersion(error.to_string()),
        DeployError::CoreService(_) => Refusal::CoreService(error.to_string()),
        DeployError::NotLoaded(_) => Refusal::NotFound(error.to_string().into()),
        DeployError::Storage(source) => Refusal::database(source),
    }
}
