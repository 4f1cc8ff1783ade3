//! The `souk` command: parse the command line and run the subcommand.

use clap::Parser;
use souk::{
    Settings,
    config::{AdminCommand, Cli, Command, Secret},
    startup, telemetry,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
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
