//! Grants managed at run time: an admin sets or revokes a component's grant
//! through the admin API; the change is stored in the database and applied
//! without a restart, on this replica at once and on the others at their
//! next reconcile (a PostgreSQL notification makes that immediate).
//!
//! Applying a grant re-issues each loaded component whose grant changed
//! with its new grant ([`LoadedComponent::with_grant`]): new calls get the
//! new limits, and a call into an interface that is no longer granted fails
//! with [`super::CallError::NotGranted`] (503) while everything else keeps
//! working. A deployed version that could not load for want of a grant is
//! retried by the reconciler once its grant changes.
//!
//! [`LoadedComponent::with_grant`]: super::registry::LoadedComponent::with_grant

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    Runtime,
    core_services::is_core_service,
    load::validate_name,
    policy::{Grant, GrantSource, GrantSpec, Grants, SpecProblem},
};
use crate::storage::grants::{self, StoredGrant};

/// Why a grant was not changed.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The grant itself is invalid; every bad field is named.
    #[error("invalid grant")]
    Invalid(Vec<SpecProblem>),
    /// The component name is not a valid one.
    #[error("invalid component name `{0}`")]
    InvalidName(String),
    /// Core services' grants are built in.
    #[error("component `{0}` is a core service; its grant is built in")]
    CoreService(String),
    /// The database could not store the change.
    #[error("cannot store the grant: {0:#}")]
    Storage(anyhow::Error),
}

/// One component's grant as `GET /admin/grants` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct GrantView {
    /// Component name.
    pub component: String,
    /// Interfaces granted beyond the base set every component has.
    pub imports: Vec<String>,
    /// Event types (or `noun.*`) delivered to its `event-handler` export.
    pub subscribe: Vec<String>,
    /// Memory cap of one instance, MiB.
    pub memory_mib: usize,
    /// Wall-clock budget of one call, ms.
    pub deadline_ms: u64,
    /// Instances running at once.
    pub max_concurrency: usize,
    /// Largest response (body and headers), KiB.
    pub max_response_kib: usize,
    /// `builtin`, `configured` (shipped defaults or the grants file) or
    /// `operator` (set through this API).
    pub source: GrantSource,
    /// When an admin last changed it (operator grants only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Who changed it (operator grants only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
}

impl GrantView {
    fn new(
        component: &str,
        grant: &Grant,
        source: GrantSource,
        stored: Option<&StoredGrant>,
    ) -> Self {
        let millis = grant.limits.deadline.as_millis();
        Self {
            component: component.to_owned(),
            imports: grant.imports.clone(),
            subscribe: grant.subscribe.clone(),
            memory_mib: grant.limits.memory_bytes >> 20,
            deadline_ms: u64::try_from(millis).unwrap_or(u64::MAX),
            max_concurrency: grant.limits.max_concurrency,
            max_response_kib: grant.limits.max_response_bytes >> 10,
            source,
            updated_at: stored.map(|s| s.updated_at.clone()),
            updated_by: stored.map(|s| s.updated_by.clone()),
        }
    }
}

impl Runtime {
    /// Every component's grant: each one some grant names, and each loaded.
    pub async fn grants_overview(&self) -> Result<Vec<GrantView>, GrantError> {
        let stored = grants::all(&self.db).await.map_err(GrantError::Storage)?;
        let mut names = self.grants.named();
        names.extend(
            self.registry
                .snapshot()
                .components()
                .map(|c| c.name.clone()),
        );
        names.sort();
        names.dedup();
        Ok(names
            .iter()
            .map(|name| {
                let (grant, source) = self.grants.source_of(name);
                let row = stored.iter().find(|s| &s.component == name);
                GrantView::new(
                    name,
                    &grant,
                    source,
                    row.filter(|_| source == GrantSource::Operator),
                )
            })
            .collect())
    }

    /// Set `component`'s grant to `spec` (replacing whatever it had).
    pub async fn set_grant(
        &self,
        component: &str,
        spec: &GrantSpec,
        by: &str,
    ) -> Result<GrantView, GrantError> {
        if is_core_service(component) {
            return Err(GrantError::CoreService(component.to_owned()));
        }
        validate_name(component).map_err(|_| GrantError::InvalidName(component.to_owned()))?;
        spec.to_grant(component).map_err(GrantError::Invalid)?;
        let text =
            serde_json::to_string(spec).map_err(|e| GrantError::Storage(anyhow::Error::new(e)))?;
        let _serialised = self.deploy_lock.lock().await;
        grants::put(&self.db, component, &text, by)
            .await
            .map_err(GrantError::Storage)?;
        self.refresh_grants().await.map_err(GrantError::Storage)?;
        self.notify().await;
        tracing::info!(component, by, grant = %text, "grant set");
        let (grant, source) = self.grants.source_of(component);
        Ok(GrantView::new(component, &grant, source, None))
    }

    /// Revoke `component`'s grant: it keeps only the base imports and the
    /// strict extension limits, whatever the shipped defaults or the grants
    /// file said.
    pub async fn revoke_grant(&self, component: &str, by: &str) -> Result<GrantView, GrantError> {
        self.set_grant(component, &GrantSpec::default(), by).await
    }

    /// Read the grants set at run time and apply any change to the loaded
    /// components. The caller holds the deploy lock, so no deploy installs
    /// a version with the old grant meanwhile.
    pub(super) async fn refresh_grants(&self) -> anyhow::Result<()> {
        let stored = grants::all(&self.db).await?;
        let mut operator = BTreeMap::new();
        for row in stored {
            let grant = serde_json::from_str::<GrantSpec>(&row.spec)
                .ok()
                .and_then(|spec| spec.to_grant(&row.component).ok());
            // A stored grant that no longer parses grants nothing: failing
            // closed beats guessing what the admin meant.
            let grant = grant.unwrap_or_else(|| {
                tracing::error!(component = %row.component, "a stored grant is invalid; granting nothing");
                Grants::builtin(&row.component)
            });
            operator.insert(row.component, grant);
        }
        if !self.grants.set_operator_grants(operator) {
            return Ok(());
        }
        for component in self.registry.snapshot().components() {
            let grant = self.grants.for_component(&component.name);
            if grant != component.access.grant {
                tracing::info!(component = %component.name, "applying a changed grant");
                self.registry
                    .install(std::sync::Arc::new(component.with_grant(grant)));
            }
        }
        Ok(())
    }
}
