//! `infra apply`: preflight, server-side apply, prune and wait against a cluster.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::EnvArgs;
use super::cluster::{ClusterArgs, runtime};
use crate::apply::set::{self, Event, Options};

/// Arguments of `infra apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    env: EnvArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Server-side dry run (`dryRun=All`): the API server validates and admits every apply and
    /// prune but persists nothing; nothing is waited for.
    #[arg(long)]
    dry_run: bool,
    /// Take over fields another field manager owns (e.g. after `kubectl scale` or `kubectl
    /// edit`) instead of failing on the conflict.
    #[arg(long)]
    force_conflicts: bool,
    /// Keep objects that left the plan instead of deleting them.
    #[arg(long)]
    no_prune: bool,
    /// Return once everything is applied, without waiting for it to be ready.
    #[arg(long)]
    no_wait: bool,
    /// How long to wait for readiness (e.g. `90s`, `5m`, `1h`); past it, exit 1 naming what is
    /// not ready and why.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

impl ApplyArgs {
    pub(super) fn run(self, environments: &Path) -> anyhow::Result<ExitCode> {
        let built = self.env.build(environments)?;
        let options = Options {
            dry_run: self.dry_run,
            prune: !self.no_prune,
            force_conflicts: self.force_conflicts,
            wait: (!self.no_wait).then_some(self.timeout),
        };
        runtime()?.block_on(async {
            let (client, cluster) = self.cluster.client().await?;
            let dry = if self.dry_run {
                " (server-side dry run: nothing is persisted)"
            } else {
                ""
            };
            println!(
                "Applying {} objects of environment `{}` and their ApplySet to {cluster}, namespace {}{dry}",
                built.objects.len(),
                self.env.env,
                built.env.namespace.as_str(),
            );
            let mut screen = Screen::new();
            let result = set::run(&client, &built, &self.env.env, &options, &mut |event| {
                screen.show(event)
            })
            .await;
            screen.clear();
            result?;
            anyhow::Ok(())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Prints events: a status line that rewrites itself on a terminal, plain lines otherwise.
struct Screen {
    terminal: bool,
    status_shown: bool,
}

impl Screen {
    fn new() -> Self {
        Self {
            terminal: std::io::stdout().is_terminal(),
            status_shown: false,
        }
    }

    fn show(&mut self, event: Event<'_>) {
        match event {
            Event::Status(line) if self.terminal => {
                let mut out = std::io::stdout().lock();
                let _ = write!(out, "\r\x1b[2K{line}");
                let _ = out.flush();
                self.status_shown = true;
            }
            Event::Status(line) | Event::Note(line) => {
                self.clear();
                println!("{line}");
            }
            Event::Outcome(o) => {
                self.clear();
                println!("{o}");
            }
        }
    }

    fn clear(&mut self) {
        if std::mem::take(&mut self.status_shown) {
            print!("\r\x1b[2K");
            let _ = std::io::stdout().flush();
        }
    }
}
