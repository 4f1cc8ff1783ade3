//! Command line and configuration: clap flags that mirror the `SOUK_*`
//! environment variables of API.md, and the [`Settings`] the application is
//! built from. Secrets are wrapped in [`Secret`] so they never reach `Debug`
//! output or logs.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

/// A value that must never be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    /// For clap: a flag or variable holding a secret.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self(value.to_owned()))
    }
}

/// `souk`: an e-commerce backend whose services are WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "souk", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(ServeArgs),
    /// Apply pending migrations of every component and exit.
    Migrate(CommonArgs),
    /// Administrative tasks.
    Admin {
        /// The admin task.
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Start something new from a template.
    New {
        /// What to create.
        #[command(subcommand)]
        command: NewCommand,
    },
    /// Build (if given a crate) and deploy a component to a running host;
    /// `--grant FILE` sets its grant first.
    Deploy(DeployArgs),
    /// List the components a running host serves, with versions and history.
    Components(RemoteArgs),
    /// Return a component to its previous version.
    Rollback(NamedArgs),
    /// Stop serving an extension; its tables are kept unless `--data drop`.
    #[command(alias = "delete")]
    Unload(UnloadArgs),
    /// List every component's grant.
    Grants(RemoteArgs),
    /// Set a component's grant (imports and limits), replacing the old one.
    Grant(GrantArgs),
    /// Revoke a component's grant: back to the base imports and strict limits.
    Revoke(NamedArgs),
}

/// What `souk new` creates.
#[derive(Debug, Subcommand)]
pub enum NewCommand {
    /// A crate for an out-of-tree extension: builds for wasm32-wasip2,
    /// tests natively and deploys with `souk deploy`, with no edits.
    Extension(NewExtensionArgs),
}

/// Options of `souk new extension`.
#[derive(Debug, Clone, Args)]
pub struct NewExtensionArgs {
    /// The component's name: 2-32 of a-z, 0-9 and _, starting with a
    /// letter; not `souk*` nor a core service's name. Its route is
    /// `/api/v1/NAME` and its tables `NAME_*`.
    pub name: String,
    /// Directory to create (must not exist, or be empty). Default: ./NAME.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The Souk checkout whose SDK and WIT package the crate uses (by
    /// path). Default: the checkout this binary was built from.
    #[arg(long, env = "SOUK_CHECKOUT")]
    pub souk: Option<PathBuf>,
}

/// How the developer commands reach a running host's admin API.
#[derive(Debug, Clone, Args)]
pub struct RemoteArgs {
    /// Base URL of the host. Plain HTTP only (no TLS stack is built in): use
    /// it on loopback, or through an SSH tunnel.
    #[arg(long, env = "SOUK_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An admin's access token (`POST /api/v1/auth/login`).
    #[arg(long, env = "SOUK_TOKEN", hide_env_values = true)]
    pub token: Secret,
    /// Print the host's JSON answer instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// A command on one component.
#[derive(Debug, Clone, Args)]
pub struct NamedArgs {
    /// The host to talk to.
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The component's name.
    pub name: String,
}

/// Options of `souk unload`.
#[derive(Debug, Clone, Args)]
pub struct UnloadArgs {
    /// The host and the component.
    #[command(flatten)]
    pub target: NamedArgs,
    /// What happens to the extension's tables: `keep` (a later deploy finds
    /// its data as it was) or `drop`.
    #[arg(long, default_value = "keep", value_parser = ["keep", "drop"])]
    pub data: String,
}

/// Options of `souk deploy`.
#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// The host to talk to.
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// A component `.wasm` file, or a crate directory to build with `cargo
    /// build --release --target wasm32-wasip2` first.
    pub path: PathBuf,
    /// The name to deploy under. Default: the crate's library name, or the
    /// file's name without `.wasm`.
    #[arg(long)]
    pub name: Option<String>,
    /// A grant (JSON, as `PUT /admin/grants/NAME` takes it) to set before
    /// deploying, e.g. the crate's `grant.json`.
    #[arg(long)]
    pub grant: Option<PathBuf>,
}

/// Options of `souk grant`.
#[derive(Debug, Clone, Args)]
pub struct GrantArgs {
    /// The host and the component.
    #[command(flatten)]
    pub target: NamedArgs,
    /// Service interfaces it may call, comma-separated: `inventory-api` or
    /// `souk:platform/inventory-api`.
    #[arg(long, value_delimiter = ',')]
    pub imports: Vec<String>,
    /// Event types (or `noun.*`) delivered to it, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub subscribe: Vec<String>,
    /// Linear memory cap, MiB.
    #[arg(long)]
    pub memory_mib: Option<u64>,
    /// Wall-clock deadline of one call, milliseconds.
    #[arg(long)]
    pub deadline_ms: Option<u64>,
    /// Instances that may run at once.
    #[arg(long)]
    pub max_concurrency: Option<u64>,
    /// Largest response, KiB.
    #[arg(long)]
    pub max_response_kib: Option<u64>,
    /// Read the whole grant from a JSON file instead of the flags above.
    #[arg(long, conflicts_with_all = ["imports", "subscribe", "memory_mib", "deadline_ms", "max_concurrency", "max_response_kib"])]
    pub file: Option<PathBuf>,
}

/// Administrative subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin, or promote an existing customer and reset their password.
    Create {
        /// Shared options.
        #[command(flatten)]
        common: CommonArgs,
        /// Username of the admin.
        #[arg(long)]
        username: String,
        /// Password of the admin (8..128 characters, a letter and a digit).
        #[arg(long, env = "SOUK_ADMIN_CREATE_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

/// Options every subcommand that touches the database needs.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Database URL: `sqlite://FILE` (created if missing) or `postgres://...`.
    #[arg(long, env = "SOUK_DATABASE_URL", default_value = "sqlite://souk.db")]
    pub database_url: String,
    /// Directory holding the component `.wasm` files to load at start.
    /// Defaults to the directory the build wrote them to.
    #[arg(long, env = "SOUK_COMPONENTS_DIR")]
    pub components_dir: Option<PathBuf>,
    /// Log filter, e.g. `info` or `souk=debug,info`.
    #[arg(long, env = "SOUK_LOG", default_value = "info")]
    pub log: String,
    /// JSON file granting extensions their imports and limits (deny by
    /// default); without it, the shipped defaults grant the bundled extensions.
    #[arg(long, env = "SOUK_GRANTS")]
    pub grants: Option<PathBuf>,
    /// Directory for compiled component code, so restarts skip compilation.
    #[arg(long, env = "SOUK_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// Options of `souk serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Shared options.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Address to listen on.
    #[arg(long, env = "SOUK_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// HS256 signing secret for access tokens. If unset, one is generated once
    /// and kept in the database so restarts and replicas agree.
    #[arg(long, env = "SOUK_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Username of the first admin, created at start if the name is free
    /// (an existing customer is never promoted: see `souk admin create`).
    #[arg(long, env = "SOUK_ADMIN_USERNAME", requires = "admin_password")]
    pub admin_username: Option<String>,
    /// Password of the first admin.
    #[arg(
        long,
        env = "SOUK_ADMIN_PASSWORD",
        hide_env_values = true,
        requires = "admin_username"
    )]
    pub admin_password: Option<String>,
    /// Development loop: deploy rebuilt `.wasm` files in the components
    /// directory automatically. `SOUK_WATCH` takes true/false, 1/0, yes/no.
    #[arg(
        long,
        env = "SOUK_WATCH",
        num_args = 0..=1,
        default_value_t = false,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub watch: bool,
    /// Reverse proxies whose `X-Forwarded-For` names the client (comma-
    /// separated addresses or CIDR blocks, e.g. `10.0.0.0/8,127.0.0.1`).
    /// Off by default: the socket's peer is the client.
    #[arg(long, env = "SOUK_TRUSTED_PROXIES", value_parser = TrustedProxies::parse)]
    pub trusted_proxies: Option<TrustedProxies>,
    /// Seconds a client has to send a request's head; also how long an
    /// idle keep-alive connection is kept (default 10).
    #[arg(long, env = "SOUK_HEADER_TIMEOUT_SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds a request body may pause between two chunks (default 10).
    #[arg(long, env = "SOUK_BODY_STALL_TIMEOUT_SECS")]
    pub body_stall_timeout_secs: Option<u64>,
    /// Seconds a whole request body may take (default 60).
    #[arg(long, env = "SOUK_BODY_TIMEOUT_SECS")]
    pub body_timeout_secs: Option<u64>,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT
    /// before their connections are cut (default 8).
    #[arg(long, env = "SOUK_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// Attempts to deliver one event to one webhook before it is marked
    /// `failed`, 1-50 (default 8). Retries wait about 1 s, then twice as
    /// long each time up to 5 minutes, so the default gives up after one
    /// to two minutes, and 20 attempts within an hour.
    #[arg(
        long,
        env = "SOUK_WEBHOOK_MAX_ATTEMPTS",
        value_parser = clap::value_parser!(u32).range(1..=50)
    )]
    pub webhook_max_attempts: Option<u32>,
    /// NATS server to publish committed events to (JetStream stream
    /// `SOUK_EVENTS`, subjects `souk.events.<type>`), e.g.
    /// `nats://127.0.0.1:4222` (it may carry credentials, so it is kept
    /// out of logs). Unset: no publishing.
    #[arg(long, env = "SOUK_NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,
}

/// Addresses of reverse proxies trusted to say who the client is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(std::net::IpAddr, u8)>);

impl TrustedProxies {
    /// Parse `a.b.c.d`, `a.b.c.d/n`, IPv6 and IPv6 blocks, comma-separated.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut blocks = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (address, bits) = match item.split_once('/') {
                Some((address, bits)) => (address, Some(bits)),
                None => (item, None),
            };
            let address: std::net::IpAddr = address
                .parse()
                .map_err(|_| format!("`{item}` is not an IP address or CIDR block"))?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(bits) => bits
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("`{item}` has an invalid prefix length"))?,
                None => max,
            };
            blocks.push((address, bits));
        }
        Ok(Self(blocks))
    }

    /// Is `address` one of the trusted proxies?
    pub fn contains(&self, address: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|(block, bits)| match (block, address) {
            (IpAddr::V4(block), IpAddr::V4(address)) => {
                prefix_matches(&block.octets(), &address.octets(), *bits)
            }
            (IpAddr::V6(block), IpAddr::V6(address)) => {
                prefix_matches(&block.octets(), &address.octets(), *bits)
            }
            _ => false,
        })
    }

    /// The client of a request that arrived from `peer` with these
    /// `X-Forwarded-For` values: walking from the nearest hop, the first
    /// address that is not a trusted proxy. A peer that is not trusted is
    /// the client whatever the header says (anyone can send one).
    pub fn client<'a>(
        &self,
        peer: std::net::IpAddr,
        forwarded_for: impl Iterator<Item = &'a str>,
    ) -> std::net::IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop.parse::<std::net::IpAddr>() {
                Ok(address) => {
                    client = address;
                    if !self.contains(address) {
                        break;
                    }
                }
                // Junk in the chain: trust nothing beyond the last good hop.
                Err(_) => break,
            }
        }
        client
    }
}

fn prefix_matches(block: &[u8], address: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let (whole, rest) = (bits / 8, bits % 8);
    if block[..whole] != address[..whole] {
        return false;
    }
    rest == 0 || {
        let mask = 0xff_u8 << (8 - rest);
        block[whole] & mask == address[whole] & mask
    }
}

/// Where the build put the components (set by host/build.rs).
pub const BUILT_COMPONENTS_DIR: &str = env!("SOUK_BUILT_COMPONENTS_DIR");

/// Everything the application is built from.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on; port 0 picks a free port.
    pub addr: SocketAddr,
    /// Database URL (`sqlite://...` or `postgres://...`): a secret, since a
    /// PostgreSQL URL may carry the password.
    pub database_url: Secret,
    /// Directory of `.wasm` components loaded at start.
    pub components_dir: PathBuf,
    /// Directory of the compiled-code cache; `None` disables it.
    pub cache_dir: Option<PathBuf>,
    /// Token signing secret; `None` means "use the one kept in the database".
    pub jwt_secret: Option<Secret>,
    /// First admin to create or promote at start.
    pub admin: Option<(String, Secret)>,
    /// Lifetime of issued access tokens.
    pub token_ttl: Duration,
    /// Largest request body accepted on business routes.
    pub max_body_bytes: usize,
    /// Login failures allowed per username within [`Settings::login_window`].
    pub login_failures_per_username: u32,
    /// Login failures allowed per client address within the window.
    pub login_failures_per_client: u32,
    /// Window over which login failures are counted.
    pub login_window: Duration,
    /// Deploy rebuilt components from `components_dir` automatically.
    pub watch: bool,
    /// Where extensions' grants come from.
    pub grants: GrantsSource,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// Timeouts of the edge and of shutdown.
    pub timeouts: Timeouts,
    /// How webhook deliveries are sent and retried.
    pub webhooks: WebhookSettings,
    /// NATS server committed events are published to (JetStream), if any.
    pub nats_url: Option<Secret>,
}

/// How webhook deliveries are sent and retried: the one place their
/// bounds live (`SOUK_WEBHOOK_MAX_ATTEMPTS`; the rest is fixed for
/// operators and shortened by tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Attempts per delivery before it is `failed`.
    pub max_attempts: u32,
    /// Wait before the first retry; each later one doubles (with jitter
    /// in the upper half of each step).
    pub retry_base: Duration,
    /// Longest wait between two attempts.
    pub retry_cap: Duration,
    /// Connect plus whole-exchange bound of one attempt; a receiver that
    /// does not answer within it counts as failed.
    pub timeout: Duration,
    /// How often due deliveries are looked for when nothing woke the
    /// sender (retries coming due, other replicas' fan-out).
    pub poll: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(300),
            timeout: Duration::from_secs(5),
            poll: Duration::from_secs(1),
        }
    }
}

/// How long a database connection may be waited for (pool acquire, which
/// includes connecting): a request during an outage fails with 503 after
/// this instead of hanging. Longer than any healthy wait for a free
/// connection, short enough that clients and load balancers see the
/// outage quickly.
pub const DATABASE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Every timeout of the edge and of shutdown, in one place (flags
/// `SOUK_*_SECS` of `souk serve`). The database's is
/// [`DATABASE_ACQUIRE_TIMEOUT`]; the background loops' retry delays are in
/// `runtime::deploy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Time to send a request's head, counted from when the connection
    /// starts waiting for it. hyper starts that timer as soon as a
    /// connection opens or a response is written, so this is also the idle
    /// keep-alive timeout: a silent connection is closed after it.
    pub header_read: Duration,
    /// Longest pause between two chunks of a request body.
    pub body_stall: Duration,
    /// Longest time to receive a whole request body, from its head (bounds
    /// a client that trickles a byte just often enough).
    pub body_total: Duration,
    /// After SIGTERM/SIGINT: time in-flight requests get to finish
    /// (longer than the core services' 5 s deadline) before the remaining
    /// connections are cut. Idle connections close at once.
    pub shutdown_grace: Duration,
    /// After the drain: time background tasks get to stop and the pool to
    /// close (a runaway statement must not keep the process alive).
    pub shutdown_cleanup: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            body_stall: Duration::from_secs(10),
            body_total: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(8),
            shutdown_cleanup: Duration::from_secs(3),
        }
    }
}

/// Where the grants come from.
#[derive(Debug, Clone)]
pub enum GrantsSource {
    /// The shipped `host/default-grants.json`.
    Shipped,
    /// An operator's file (`SOUK_GRANTS`).
    File(PathBuf),
    /// Given directly, in the grants file format, used as it is: no shipped
    /// defaults merged in (tests, embedding).
    Given(String),
}

impl Settings {
    /// Settings with the documented defaults, for a database and components dir.
    pub fn new(database_url: impl Into<String>, components_dir: impl Into<PathBuf>) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: Secret::new(database_url),
            components_dir: components_dir.into(),
            cache_dir: None,
            jwt_secret: None,
            admin: None,
            token_ttl: Duration::from_secs(3600),
            max_body_bytes: 64 * 1024,
            login_failures_per_username: 5,
            login_failures_per_client: 100,
            login_window: Duration::from_secs(300),
            watch: false,
            grants: GrantsSource::Shipped,
            trusted_proxies: TrustedProxies::default(),
            timeouts: Timeouts::default(),
            webhooks: WebhookSettings::default(),
            nats_url: None,
        }
    }

    /// Settings for `souk serve`.
    pub fn from_serve_args(args: ServeArgs) -> Self {
        let mut settings = Self::from_common(&args.common);
        settings.addr = args.addr;
        settings.watch = args.watch;
        settings.trusted_proxies = args.trusted_proxies.unwrap_or_default();
        let timeouts = &mut settings.timeouts;
        let secs = |flag: Option<u64>, default| flag.map_or(default, Duration::from_secs);
        timeouts.header_read = secs(args.header_timeout_secs, timeouts.header_read);
        timeouts.body_stall = secs(args.body_stall_timeout_secs, timeouts.body_stall);
        timeouts.body_total = secs(args.body_timeout_secs, timeouts.body_total);
        timeouts.shutdown_grace = secs(args.shutdown_grace_secs, timeouts.shutdown_grace);
        settings.jwt_secret = args.jwt_secret.map(Secret::from);
        settings.admin = args
            .admin_username
            .zip(args.admin_password.map(Secret::from));
        if let Some(attempts) = args.webhook_max_attempts {
            settings.webhooks.max_attempts = attempts;
        }
        settings.nats_url = args.nats_url.map(Secret::from);
        settings
    }

    /// Settings for subcommands that only need the database and components.
    pub fn from_common(args: &CommonArgs) -> Self {
        let components_dir = args
            .components_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(BUILT_COMPONENTS_DIR));
        let mut settings = Self::new(args.database_url.clone(), components_dir);
        settings.cache_dir = args.cache_dir.clone().or_else(default_cache_dir);
        if let Some(path) = &args.grants {
            settings.grants = GrantsSource::File(path.clone());
        }
        settings
    }
}

/// `$XDG_CACHE_HOME/souk`, else `$HOME/.cache/souk`, else no cache.
fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .map(|base| base.join("souk"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let mut settings = Settings::new("postgres://souk:db-password-1@db/souk", "/tmp");
        settings.jwt_secret = Some(Secret::new("very-secret-value"));
        settings.admin = Some(("root".into(), Secret::new("hunter22")));
        let printed = format!("{settings:?}");
        assert!(!printed.contains("very-secret-value"), "{printed}");
        assert!(!printed.contains("hunter22"), "{printed}");
        assert!(!printed.contains("db-password-1"), "{printed}");
    }

    #[test]
    fn the_forwarded_client_is_believed_only_from_a_trusted_proxy() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1, ::1").unwrap_or_default();
        let ip = |s: &str| {
            s.parse::<std::net::IpAddr>()
                .unwrap_or(std::net::IpAddr::from([0; 4]))
        };
        // An untrusted peer is the client, whatever it claims.
        assert_eq!(
            proxies.client(ip("203.0.113.9"), ["1.2.3.4"].into_iter()),
            ip("203.0.113.9")
        );
        // Through the proxy chain, the nearest untrusted hop.
        assert_eq!(
            proxies.client(ip("127.0.0.1"), ["6.6.6.6, 1.2.3.4, 10.1.2.3"].into_iter()),
            ip("1.2.3.4")
        );
        assert_eq!(
            proxies.client(ip("::1"), ["1.2.3.4"].into_iter()),
            ip("1.2.3.4")
        );
        // No header, or junk: the last address we can trust.
        assert_eq!(
            proxies.client(ip("10.9.9.9"), std::iter::empty()),
            ip("10.9.9.9")
        );
        assert_eq!(
            proxies.client(ip("10.9.9.9"), ["nonsense"].into_iter()),
            ip("10.9.9.9")
        );
        // Off by default.
        assert_eq!(
            TrustedProxies::default().client(ip("127.0.0.1"), ["1.2.3.4"].into_iter()),
            ip("127.0.0.1")
        );
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("example.com").is_err());
        assert!(
            TrustedProxies::parse("10.0.0.0/7")
                .unwrap_or_default()
                .contains(ip("11.1.1.1"))
        );
        assert!(
            !TrustedProxies::parse("10.0.0.0/8")
                .unwrap_or_default()
                .contains(ip("11.1.1.1"))
        );
    }

    #[test]
    fn watch_takes_the_usual_spellings_of_true() {
        for value in ["1", "true", "yes", "on"] {
            let cli = Cli::try_parse_from(["souk", "serve", &format!("--watch={value}")]);
            assert!(
                matches!(
                    cli,
                    Ok(Cli {
                        command: Command::Serve(ServeArgs { watch: true, .. })
                    })
                ),
                "{value}"
            );
        }
        let cli = Cli::try_parse_from(["souk", "serve", "--watch"]);
        assert!(matches!(
            cli,
            Ok(Cli {
                command: Command::Serve(ServeArgs { watch: true, .. })
            })
        ));
    }

    #[test]
    fn developer_commands_parse_with_their_defaults() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("souk").chain(args.iter().copied()))
                .map(|cli| cli.command)
                .map_err(|e| e.to_string())
        };
        let Ok(Command::New {
            command: NewCommand::Extension(new),
        }) = parse(&["new", "extension", "notes"])
        else {
            panic!("new extension did not parse");
        };
        assert_eq!(
            (new.name.as_str(), new.dir, new.souk),
            ("notes", None, None)
        );

        let Ok(Command::Deploy(deploy)) = parse(&[
            "deploy", "./notes", "--token", "t", "--name", "n2", "--grant", "g.json",
        ]) else {
            panic!("deploy did not parse");
        };
        assert_eq!(deploy.remote.url, "http://127.0.0.1:8080");
        assert_eq!(deploy.remote.token.expose(), "t");
        assert_eq!(deploy.path, PathBuf::from("./notes"));
        assert_eq!(deploy.name.as_deref(), Some("n2"));
        assert_eq!(deploy.grant, Some(PathBuf::from("g.json")));

        let Ok(Command::Unload(unload)) = parse(&["delete", "notes", "--token", "t"]) else {
            panic!("delete (unload) did not parse");
        };
        assert_eq!(
            (unload.target.name.as_str(), unload.data.as_str()),
            ("notes", "keep")
        );
        assert!(parse(&["unload", "notes", "--token", "t", "--data", "burn"]).is_err());

        let Ok(Command::Components(remote)) = parse(&[
            "components",
            "--url",
            "http://10.0.0.1:9",
            "--token",
            "t",
            "--json",
        ]) else {
            panic!("components did not parse");
        };
        assert!(remote.json);
        assert_eq!(remote.url, "http://10.0.0.1:9");
        assert!(matches!(
            parse(&["rollback", "notes", "--token", "t"]),
            Ok(Command::Rollback(_))
        ));
        assert!(matches!(
            parse(&["revoke", "notes", "--token", "t"]),
            Ok(Command::Revoke(_))
        ));
        assert!(matches!(
            parse(&["grants", "--token", "t"]),
            Ok(Command::Grants(_))
        ));
        // The whole grant from a file, or from flags, not both.
        assert!(
            parse(&[
                "grant",
                "notes",
                "--token",
                "t",
                "--file",
                "g.json",
                "--imports",
                "x"
            ])
            .is_err()
        );
        // The token is never printed, even in a parse dump.
        let dump = format!("{:?}", parse(&["grants", "--token", "very-secret"]));
        assert!(!dump.contains("very-secret"), "{dump}");
    }

    #[test]
    fn serve_flags_parse_with_defaults() {
        let cli = Cli::try_parse_from(["souk", "serve"]).map_err(|e| e.to_string());
        let Ok(Cli {
            command: Command::Serve(args),
        }) = cli
        else {
            panic!("serve did not parse: {cli:?}");
        };
        assert_eq!(args.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(args.common.database_url, "sqlite://souk.db");
    }
}
