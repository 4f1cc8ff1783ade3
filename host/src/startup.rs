//! The one place the application is wired together: database, host schema,
//! token keys, runtime and components, router and listener. `main` and the
//! black-box tests build the same [`Application`].
//!
//! It also owns the edge's connections and the order of shutdown. axum's
//! own `serve` has no read timeouts, so connections are served here with
//! hyper directly, each bounded (see [`crate::config::Timeouts`]):
//! - the request head must arrive within `header_read` (hyper's timer,
//!   which also runs while a keep-alive connection is idle, so it is the
//!   idle timeout too);
//! - the body must keep coming (`body_stall` between chunks) and be
//!   complete within `body_total`, else the request gets a 408;
//! - URI, header count and header bytes have limits answered with
//!   problem+json here, below hyper's own (which answer a bare 414/431).
//!
//! Shutdown, on the first SIGTERM/SIGINT: stop accepting, tell every
//! background task to stop, let in-flight requests finish (idle and
//! half-received connections close at once) for up to `shutdown_grace`,
//! cut what is left, join the background tasks and close the pool, each
//! within `shutdown_cleanup`.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context as TaskContext, Poll},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use argon2::password_hash::rand_core::{OsRng, RngCore};
use axum::{
    extract::ConnectInfo,
    http::{HeaderValue, Request, Response, header},
};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::watch, task::JoinSet, time::Sleep};
use tower::ServiceExt;

use crate::{
    auth,
    config::{Secret, Settings, Timeouts},
    http::{self, AppState, REQUEST_ID, problem::Refusal},
    login_guard::LoginGuard,
    runtime::background::FailureLog,
    runtime::{
        Runtime,
        policy::Grants,
        state::{HostServices, RequestScope},
    },
    storage::{Database, Intent, migrations, uow::UnitOfWork},
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
        state.runtime.spawn_event_pump();
        state.runtime.spawn_checkpointer();
        crate::webhooks::spawn(&state.runtime, state.settings.webhooks);
        crate::nats::spawn(&state.runtime, state.settings.nats_url.clone());
        state.runtime.spawn_event_subscribers();
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

    /// The OpenAPI document `GET /openapi.json` serves now, with every
    /// definition its assembly refused (the black-box suite asserts that
    /// the shipped components leave none).
    pub fn openapi(&self) -> http::openapi::Assembled {
        http::openapi::assemble(&self.state.runtime.registry().snapshot())
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listener
            .local_addr()
            .context("listener has no address")
    }

    /// Serve until Ctrl-C or SIGTERM, then shut down (see the module doc).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(async {
            Signals::new().next().await;
        })
        .await
    }

    /// Serve until `stop` resolves, then shut down: stop accepting, stop
    /// the background tasks, drain in-flight requests within the grace
    /// period, and close the pool. Returns once everything is down.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
        let addr = self.local_addr()?;
        tracing::info!(%addr, "serving");
        let timeouts = self.state.settings.timeouts;
        let builder = connection_builder(&timeouts);
        let (drain, draining) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut accept_failures = FailureLog::new("accepting connections");
        tokio::pin!(stop);
        loop {
            tokio::select! {
                biased;
                () = &mut stop => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        accept_failures.succeeded();
                        connections.spawn(serve_connection(
                            stream,
                            peer,
                            builder.clone(),
                            self.router.clone(),
                            timeouts,
                            draining.clone(),
                        ));
                    }
                    Err(error) => {
                        // Out of file descriptors, typically: wait a little
                        // rather than spin on an error that persists.
                        accept_failures.failed(&error);
                        tokio::time::sleep(ACCEPT_RETRY).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }

        tracing::info!(connections = connections.len(), "shutting down");
        drop(self.listener);
        let runtime = &self.state.runtime;
        runtime.background().stop();
        drain.send_replace(true);
        let drained = tokio::time::timeout(timeouts.shutdown_grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await
        .is_ok();
        if !drained {
            tracing::warn!(
                connections = connections.len(),
                grace = ?timeouts.shutdown_grace,
                "requests still running after the grace period; cutting their connections"
            );
            connections.abort_all();
            while connections.join_next().await.is_some() {}
        }
        runtime
            .background()
            .stop_and_join(timeouts.shutdown_cleanup)
            .await;
        if tokio::time::timeout(timeouts.shutdown_cleanup, self.state.db.close())
            .await
            .is_err()
        {
            tracing::warn!(
                "the database pool did not close in time (a statement is still running); exiting anyway"
            );
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// How long to pause after a failed `accept`.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// The longest request target accepted (answered 414 beyond).
const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header fields accepted (431 beyond).
const MAX_HEADERS: usize = 100;
/// The most header bytes (names and values) accepted (431 beyond).
const MAX_HEADER_BYTES: usize = 32 * 1024;
/// hyper's own limits sit above ours, so that a request just over ours
/// gets a problem+json from [`check_head`] rather than hyper's bare status
/// line. Only a head beyond these (or malformed) gets hyper's answer.
const HYPER_MAX_HEADERS: usize = 2 * MAX_HEADERS;
/// See [`HYPER_MAX_HEADERS`]; also bounds each connection's read buffer.
const HYPER_MAX_BUF_BYTES: usize = 4 * (MAX_URI_BYTES + MAX_HEADER_BYTES);

fn connection_builder(timeouts: &Timeouts) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read)
        .max_headers(HYPER_MAX_HEADERS)
        .max_buf_size(HYPER_MAX_BUF_BYTES);
    builder
}

/// Serve one connection until it closes, or until the drain begins: then
/// let the request in progress finish and close (hyper closes an idle or
/// half-received connection at once).
async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    builder: hyper::server::conn::http1::Builder,
    router: axum::Router,
    timeouts: Timeouts,
    mut draining: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        handle(router.clone(), peer, timeouts, request)
    });
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = async {
            // An error means the server is gone: drain as well.
            let _ = draining.wait_for(|draining| *draining).await;
        } => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        // Timeouts, resets and malformed requests: the client's doing.
        tracing::debug!(%peer, "connection ended: {error}");
    }
}

/// One request: check its head, bound its body, route it.
async fn handle(
    router: axum::Router,
    peer: SocketAddr,
    timeouts: Timeouts,
    request: Request<Incoming>,
) -> Result<Response<axum::body::Body>, Infallible> {
    if let Err(refusal) = check_head(&request) {
        return Ok(refuse_outside_router(
            refusal,
            &uuid::Uuid::now_v7().to_string(),
        ));
    }
    let timed_out = Arc::new(AtomicBool::new(false));
    let mut request = request.map(|body| TimedBody::new(body, &timeouts, timed_out.clone()));
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if !timed_out.load(Ordering::Relaxed) {
        return Ok(response);
    }
    // The handler saw a body error (and may have answered 400 or 413): the
    // truth is that the client was too slow.
    let id = http::request_id(response.headers()).to_owned();
    Ok(refuse_outside_router(Refusal::RequestTimeout, &id))
}

/// The answer to a request refused where the router's layers do not reach
/// (before it, or in place of its answer): the problem and the request id
/// header they would have added, and the connection closed, since the rest
/// of what the client sends cannot be trusted to frame a request.
fn refuse_outside_router(refusal: Refusal, request_id: &str) -> Response<axum::body::Body> {
    let mut response = refusal.respond(request_id);
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID, id);
    }
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The edge's limits on a request head, answered as problem+json.
fn check_head<B>(request: &Request<B>) -> Result<(), Refusal> {
    let uri = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return Err(Refusal::UriTooLong {
            limit: MAX_URI_BYTES,
        });
    }
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Err(Refusal::HeadersTooLarge {
            fields: MAX_HEADERS,
            bytes: MAX_HEADER_BYTES,
        });
    }
    Ok(())
}

/// A request body that fails (and marks its request timed out) when the
/// client pauses longer than `body_stall` or takes longer than
/// `body_total` in all.
struct TimedBody {
    inner: Incoming,
    stall: Duration,
    stall_timer: Pin<Box<Sleep>>,
    total_timer: Pin<Box<Sleep>>,
    timed_out: Arc<AtomicBool>,
}

/// The error a [`TimedBody`] fails with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl TimedBody {
    fn new(inner: Incoming, timeouts: &Timeouts, timed_out: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            stall: timeouts.body_stall,
            stall_timer: Box::pin(tokio::time::sleep(timeouts.body_stall)),
            total_timer: Box::pin(tokio::time::sleep(timeouts.body_total)),
            timed_out,
        }
    }
}

impl HttpBody for TimedBody {
    type Data = axum::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        // Data already there wins over a timer that also expired.
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            let deadline = tokio::time::Instant::now() + this.stall;
            this.stall_timer.as_mut().reset(deadline);
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let stalled = this.stall_timer.as_mut().poll(cx).is_ready();
        if stalled || this.total_timer.as_mut().poll(cx).is_ready() {
            this.timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(BodyTimedOut.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
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
    let db = Database::connect(settings.database_url.expose()).await?;
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
        Grants::load(&settings.grants)?,
        crate::capabilities::add_to_linker,
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
    let result = RequestScope::new(
        UnitOfWork::new(runtime.database().clone(), Intent::Write),
        "startup",
        std::net::IpAddr::from([127, 0, 0, 1]),
    )
    .run(
        runtime.event_bus(),
        async |scope| {
            runtime
                .ensure_admin(
                    scope.clone(),
                    username,
                    password.expose(),
                    promotion == Promotion::Explicit,
                )
                .await
        },
        |result| matches!(result, Ok(Ok(_))),
    )
    .await
    .context("cannot commit the admin")?;
    match result {
        Ok(Ok(identity)) => {
            tracing::info!(username = %identity.username, "admin ready");
            Ok(())
        }
        // Bootstrap found a customer, not an admin, under that name: serve
        // anyway (refusing to start would let anyone who registers the
        // name first keep the shop down), but never promote silently.
        Ok(Err(crate::bindings::types::Error::Conflict(conflict)))
            if conflict.code == "not-an-admin" && promotion == Promotion::Never =>
        {
            tracing::error!(
                username,
                "SOUK_ADMIN_USERNAME names an existing customer who is not an admin; \
                 not promoting them. Run `souk admin create` to promote them explicitly"
            );
            Ok(())
        }
        Ok(Err(error)) => bail!(
            "cannot create admin `{username}`: {}",
            describe_wit_error(&error)
        ),
        Err(error) => bail!("cannot create admin `{username}`: {error}"),
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

/// SIGTERM and SIGINT (Ctrl-C), as a stream: `souk serve` drains on the
/// first and exits at once on the second.
pub struct Signals {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Default for Signals {
    fn default() -> Self {
        Self::new()
    }
}

impl Signals {
    /// Start listening (install the handlers) now, so that no signal sent
    /// from here on is missed.
    pub fn new() -> Self {
        #[cfg(unix)]
        let terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => Some(signal),
                Err(error) => {
                    tracing::error!("cannot listen for SIGTERM: {error}");
                    None
                }
            };
        Self {
            #[cfg(unix)]
            terminate,
        }
    }

    /// The next SIGTERM or SIGINT.
    pub async fn next(&mut self) {
        let ctrl_c = async {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::error!("cannot listen for Ctrl-C: {error}");
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let terminate = async {
            match &mut self.terminate {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {},
            () = terminate => {},
        }
    }
}
