//! The `souk` command: parse the command line and run the subcommand.

use clap::Parser;
use souk::{
    Settings,
    config::{AdminCommand, Cli, Command, Secret},
    startup, telemetry,
};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    quiet_error_backtraces();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            telemetry::init_logging(&args.common.log);
            let settings = Settings::from_serve_args(args);
            startup::Application::build(settings)
                .await?
                .run_until_stopped()
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
