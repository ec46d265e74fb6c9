//! `mcpgate completions SHELL`: the completion script for SHELL on stdout, generated from the
//! same clap types the binary parses with, so it cannot fall behind a new flag or subcommand.

use crate::cli::Cli;
use clap::{Command, CommandFactory};
use clap_complete::Shell;
use std::io::Write;

pub fn run(shell: Shell) -> anyhow::Result<()> {
    let mut cmd = without_hidden_subcommands(Cli::command());
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "mcpgate", &mut script);
    // A reader that stops early (`mcpgate completions bash | head`) is not an error.
    let mut out = std::io::stdout().lock();
    match out.write_all(&script).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// clap_complete offers hidden subcommands too (`demo-upstream`, which `serve --demo` runs), and
/// clap has no way to remove a subcommand: the root is put together again from `Cli`'s own
/// arguments and its visible subcommands, so nothing of the command line is restated here.
fn without_hidden_subcommands(cli: Command) -> Command {
    let visible: Vec<Command> = cli.get_subcommands().filter(|s| !s.is_hide_set()).cloned().collect();
    let mut root = Command::new("mcpgate")
        .version(crate::cli::VERSION)
        .args(cli.get_arguments().cloned())
        .subcommands(visible)
        .subcommand_required(true);
    if let Some(about) = cli.get_about() {
        root = root.about(about.clone());
    }
    root
}
