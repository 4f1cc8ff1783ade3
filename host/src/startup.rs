//! The one place the application is wired together: database, host schema,
//! token keys, runtime and components, router and listener. `main` and the
//! black-box tests build the same [`Application`].

use std::{net::SocketAddr, sync::Arc, time::Instant};

use anyhow::{Context, bail};
use argon2::password_hash::rand_core::{OsRng, RngCore};
use tokio::net::TcpListener;

use crate::{
    auth,
    config::{Secret, Settings},
    http::{self, AppState},
    login_guard::LoginGuard,
    runtime::{
        Runtime,
        state::{HostServices, RequestScope},
    },
    storage::{
        Database, Intent, migrations,
        uow::{Outcome, UnitOfWork},
    },
    telemetry,
};

/// A built application, bound to its port and ready to serve.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    state: Arc<AppState>,
}

impl Application {
    /// Connect, migrate, load components, create the first admin, and bind.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let started = Instant::now();
        let (runtime, verifier) = prepare(&settings).await?;
        if let Some((username, password)) = &settings.admin {
            ensure_admin(&runtime, username, password, Promotion::Never).await?;
        }
        let listener = TcpListener::bind(settings.addr)
            .await
            .with_context(|| format!("cannot listen on {}", settings.addr))?;
        let state = Arc::new(AppState {
            db: runtime.database().clone(),
            runtime,
            verifier,
            metrics: telemetry::metrics_handle(),
            started,
            settings,
        });
        state.runtime.spawn_reconciler();
        if state.settings.watch {
            state
                .runtime
                .spawn_watcher(state.settings.components_dir.clone());
        }
        let router = http::router(state.clone());
        Ok(Self {
            listener,
            router,
            state,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listener
            .local_addr()
            .context("listener has no address")
    }

    /// Serve until Ctrl-C or SIGTERM, then finish in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let addr = self.local_addr()?;
        tracing::info!(%addr, "serving");
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("server failed")?;
        self.state.db.close().await;
        Ok(())
    }
}

/// `souk migrate`: apply every component's pending migrations.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let (runtime, _) = prepare(settings).await?;
    runtime.database().close().await;
    Ok(())
}

/// `souk admin create`.
pub async fn create_admin(
    settings: &Settings,
    username: &str,
    password: &Secret,
) -> anyhow::Result<()> {
    let (runtime, _) = prepare(settings).await?;
    ensure_admin(&runtime, username, password, Promotion::Explicit).await?;
    runtime.database().close().await;
    Ok(())
}

/// Database, host schema, keys, runtime, and every component in the
/// components directory.
async fn prepare(settings: &Settings) -> anyhow::Result<(Arc<Runtime>, auth::TokenVerifier)> {
    let db = Database::connect(&settings.database_url).await?;
    migrations::prepare_host_schema(&db).await?;
    let secret = match &settings.jwt_secret {
        Some(secret) => secret.expose().to_owned(),
        None => migrations::get_or_init_setting(&db, "jwt_secret", random_secret).await?,
    };
    let (issuer, verifier) = auth::keys(secret.as_bytes(), settings.token_ttl)?;
    let login_guard = Arc::new(LoginGuard::new(
        settings.login_failures_per_username,
        settings.login_failures_per_client,
        settings.login_window,
    ));
    let runtime = Runtime::new(
        db,
        HostServices {
            tokens: issuer,
            login_guard,
        },
        settings.cache_dir.clone(),
        settings.grants.load()?,
    )?;
    runtime.start(&settings.components_dir).await?;
    Ok((runtime, verifier))
}

/// Whether ensuring an admin may turn an existing customer into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Promotion {
    /// Bootstrapping at start (`SOUK_ADMIN_USERNAME`): never; an existing
    /// customer of that name is left as it is, and the operator is told.
    Never,
    /// `souk admin create`: the operator asked for it by name.
    Explicit,
}

/// Create (or, when explicit, promote) the admin through the customers
/// component, in a unit of work of its own.
async fn ensure_admin(
    runtime: &Runtime,
    username: &str,
    password: &Secret,
    promotion: Promotion,
) -> anyhow::Result<()> {
    let scope = Arc::new(RequestScope {
        uow: UnitOfWork::new(runtime.database().clone(), Intent::Write),
        request_id: "startup".into(),
        client: std::net::IpAddr::from([127, 0, 0, 1]),
    });
    let result = runtime
        .ensure_admin(
            scope.clone(),
            username,
            password.expose(),
            promotion == Promotion::Explicit,
        )
        .await;
    match result {
        Ok(Ok(identity)) => {
            scope
                .uow
                .finish(Outcome::Commit)
                .await
                .context("cannot commit the admin")?;
            tracing::info!(username = %identity.username, "admin ready");
            Ok(())
        }
        // Bootstrap found a customer, not an admin, under that name: serve
        // anyway (refusing to start would let anyone who registers the
        // name first keep the shop down), but never promote silently.
        Ok(Err(crate::bindings::types::Error::Conflict(conflict)))
            if conflict.code == "not-an-admin" && promotion == Promotion::Never =>
        {
            scope.uow.finish(Outcome::Rollback).await.ok();
            tracing::error!(
                username,
                "SOUK_ADMIN_USERNAME names an existing customer who is not an admin; \
                 not promoting them. Run `souk admin create` to promote them explicitly"
            );
            Ok(())
        }
        Ok(Err(error)) => {
            scope.uow.finish(Outcome::Rollback).await.ok();
            bail!(
                "cannot create admin `{username}`: {}",
                describe_wit_error(&error)
            )
        }
        Err(error) => {
            scope.uow.finish(Outcome::Rollback).await.ok();
            bail!("cannot create admin `{username}`: {error}")
        }
    }
}

fn describe_wit_error(error: &crate::bindings::types::Error) -> String {
    use crate::bindings::types::Error;
    match error {
        Error::InvalidInput(fields) => fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        Error::Conflict(conflict) => conflict.detail.clone(),
        Error::BadRequest(d)
        | Error::Unauthorized(d)
        | Error::Forbidden(d)
        | Error::NotFound(d)
        | Error::MethodNotAllowed(d)
        | Error::Unavailable(d)
        | Error::Internal(d) => d.clone(),
    }
}

/// 256 random bits, hex-encoded.
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {error}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!("cannot listen for SIGTERM: {error}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
