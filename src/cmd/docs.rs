//! `infra completions` and `infra man`: shell completion scripts and the manual page, both
//! generated from the command-line definition itself, so they cannot drift from it.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

/// Arguments of `infra completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

impl CompletionsArgs {
    /// Prints the completion script for the shell.
    pub(super) fn run(self) -> anyhow::Result<ExitCode> {
        let mut command = Cli::command();
        let mut out = Vec::new();
        clap_complete::generate(self.shell, &mut command, "infra", &mut out);
        write_stdout(&out)
    }
}

/// Arguments of `infra man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// A subcommand's page (`infra-plan(1)`) instead of `infra(1)`.
    #[arg(value_name = "COMMAND")]
    command: Option<String>,
}

impl ManArgs {
    /// Prints the page as roff.
    pub(super) fn run(self) -> anyhow::Result<ExitCode> {
        let mut command = Cli::command();
        command.build();
        let page = match &self.command {
            None => command,
            Some(name) => {
                let names: Vec<String> = command
                    .get_subcommands()
                    .map(|c| c.get_name().to_owned())
                    .collect();
                let sub = command
                    .find_subcommand(name)
                    .with_context(|| {
                        format!("no command `{name}`; commands: {}", names.join(", "))
                    })?
                    .clone();
                let full = format!("infra-{}", sub.get_name());
                sub.name(full)
            }
        };
        let mut out = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut out)
            .context("cannot render the manual page")?;
        write_stdout(&out)
    }
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}
