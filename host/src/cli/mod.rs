//! The extension author's side of the `souk` binary: `souk new extension`
//! writes a crate from the templates, and `deploy`, `components`,
//! `rollback`, `unload`, `grants`, `grant` and `revoke` talk to a running
//! host's admin API (`SOUK_URL`, `SOUK_TOKEN`). The server's own commands
//! stay in `main.rs`; these need no database and no multi-threaded runtime.

mod client;
mod scaffold;

use souk::config::{Command, NewCommand};

/// Is `command` one of the developer commands [`run`] handles?
pub fn handles(command: &Command) -> bool {
    matches!(
        command,
        Command::New { .. }
            | Command::Deploy(_)
            | Command::Components(_)
            | Command::Rollback(_)
            | Command::Unload(_)
            | Command::Grants(_)
            | Command::Grant(_)
            | Command::Revoke(_)
    )
}

/// Run a developer command and return the exit status. Errors are printed
/// here as `error: ...` (a refusal's detail and field errors on their own
/// lines) rather than as a report: they are answers, not crashes.
pub fn run(command: Command) -> i32 {
    let result = match command {
        Command::New {
            command: NewCommand::Extension(args),
        } => scaffold::new_extension(&args),
        Command::Deploy(args) => remote(client::deploy(&args)),
        Command::Components(args) => remote(client::components(&args)),
        Command::Rollback(args) => remote(client::rollback(&args)),
        Command::Unload(args) => remote(client::unload(&args)),
        Command::Grants(args) => remote(client::grants(&args)),
        Command::Grant(args) => remote(client::grant(&args)),
        Command::Revoke(args) => remote(client::revoke(&args)),
        Command::Serve(_) | Command::Migrate(_) | Command::Admin { .. } => {
            Err(anyhow::anyhow!("not a developer command"))
        }
    };
    match result {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("error: {error:#}");
            1
        }
    }
}

/// Run one admin API exchange on a single-threaded runtime.
fn remote(work: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(work)
}
