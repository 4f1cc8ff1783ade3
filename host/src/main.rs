//! The `souk` command: parse the command line and run the subcommand. The
//! server's commands (`serve`, `migrate`, `admin`) are here; the extension
//! author's (`new`, `deploy`, `components`, grants...) are in [`cli`].
//!
//! `souk serve` drains and exits 0 on the first SIGTERM/SIGINT; a second
//! signal exits at once with status 130, for an operator who will not wait.

use std::time::Duration;

use clap::Parser;
use souk::{
    Settings,
    config::{AdminCommand, Cli, Command, Secret},
    startup::{self, Signals},
    telemetry,
};

/// Exit status after a second signal (128 + SIGINT, as shells report it).
const FORCED_EXIT: i32 = 130;
/// How long leftover blocking work (a component compile, a file read) may
/// delay the exit once everything else has stopped.
const LEFTOVER_WORK: Duration = Duration::from_secs(1);

mod cli;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The developer commands (`new`, `deploy`, ...) need none of the
    // server's runtime; they print their own errors.
    if cli::handles(&cli.command) {
        std::process::exit(cli::run(cli.command));
    }
    quiet_error_backtraces();
    return_large_buffers_to_the_system();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(cli));
    // Dropping the runtime would wait for every blocking task without
    // bound; the application has already stopped what matters.
    runtime.shutdown_timeout(LEFTOVER_WORK);
    result
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            telemetry::init_logging(&args.common.log);
            let settings = Settings::from_serve_args(args);
            let mut signals = Signals::new();
            let application = tokio::select! {
                application = startup::Application::build(settings) => application?,
                // Starting can take a while (migrations, compiles): a signal
                // then stops at once; nothing is serving yet.
                () = signals.next() => {
                    tracing::info!("stopped while starting");
                    return Ok(());
                }
            };
            let (first, stop) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(async move {
                signals.next().await;
                let _ = first.send(());
                signals.next().await;
                tracing::warn!("second signal: exiting at once");
                std::process::exit(FORCED_EXIT);
            });
            application
                .run_until(async {
                    let _ = stop.await;
                })
                .await
        }
        Command::Migrate(common) => {
            telemetry::init_logging(&common.log);
            startup::migrate(&Settings::from_common(&common)).await
        }
        Command::Admin {
            command:
                AdminCommand::Create {
                    common,
                    username,
                    password,
                },
        } => {
            telemetry::init_logging(&common.log);
            startup::create_admin(
                &Settings::from_common(&common),
                &username,
                &Secret::new(password),
            )
            .await
        }
        // `cli::run` ran every other command before the runtime started.
        developer => anyhow::bail!("not a server command: {developer:?}"),
    }
}

/// Every password hash or check allocates ~19 MiB (Argon2). glibc raises
/// its mmap threshold dynamically after freeing such a buffer, so later
/// ones come from the heap and stay resident after use: a few hundred
/// logins left the host at ~600 MiB RSS (souk-bench). A fixed 1 MiB
/// threshold keeps large buffers in their own mappings, returned to the
/// system when freed.
fn return_large_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called at the start of `main`, before any other thread
    // exists; mallopt only changes the allocator's tuning.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// With `RUST_BACKTRACE=1` in the environment, every error value (every
/// component trap, every refused statement) would capture a host backtrace:
/// measurable cost per request for no use in a server's logs. Panics keep
/// their backtraces; error values do not, unless `RUST_LIB_BACKTRACE` asks.
fn quiet_error_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: called at the start of `main`, before the runtime or any
        // other thread exists, so nothing reads the environment concurrently.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("RUST_LIB_BACKTRACE", "0");
        }
    }
}
